package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until something accepts connections on addr.
func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// process is a child process whose CPU time can be read from /proc.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProcess(name, logFile string, cmd *exec.Cmd) (*process, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// stop kills the process and waits for it.
func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// alive fails if the process has exited.
func (p *process) alive() error {
	select {
	case <-p.done:
		b, _ := os.ReadFile(p.log)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return fmt.Errorf("%s exited (%v); its log ends with:\n%s", p.name, p.cmd.ProcessState, b)
	default:
		return nil
	}
}

// cpu is the user+system CPU time the process has used so far, from
// /proc/<pid>/stat (Linux; zero elsewhere).
func (p *process) cpu() time.Duration {
	if p == nil {
		return 0
	}
	return procCPU(strconv.Itoa(p.cmd.Process.Pid))
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// the 14th and 15th fields of the whole line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks
}

// selfCPU is this process's CPU time: the load generator, the in-process
// signing and the null SMTP sink.
func selfCPU() time.Duration { return procCPU("self") }

// mailpitProc is a running mailpit with its SMTP port and HTTP API.
type mailpitProc struct {
	*process
	smtpPort int
	api      string
	client   *http.Client
}

func startMailpit(bin, dir string) (*mailpitProc, error) {
	uiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	smtpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--listen", fmt.Sprintf("127.0.0.1:%d", uiPort),
		"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
		"--database", filepath.Join(dir, "mailpit.db"),
		"--disable-version-check", "--smtp-disable-rdns")
	p, err := startProcess("mailpit", filepath.Join(dir, "mailpit.log"), cmd)
	if err != nil {
		return nil, err
	}
	m := &mailpitProc{process: p, smtpPort: smtpPort, api: fmt.Sprintf("http://127.0.0.1:%d", uiPort),
		client: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := p.alive(); err != nil {
			return nil, err
		}
		if resp, err := m.client.Get(m.api + "/api/v1/messages?limit=1"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && waitTCP(fmt.Sprintf("127.0.0.1:%d", smtpPort), time.Second) == nil {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("mailpit did not come up within 20s; see " + p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deleteAll empties mailpit's mailbox.
func (m *mailpitProc) deleteAll() error {
	req, err := http.NewRequest(http.MethodDelete, m.api+"/api/v1/messages", nil)
	if err != nil {
		return err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("mailpit DELETE /api/v1/messages: %s", resp.Status)
	}
	return nil
}

// nullSink is an SMTP server in this process that accepts every message and
// keeps only the code it carries, by recipient: the sink for the benchmark
// cells that must not measure a mail store, and the source of codes for the
// references the validate cells consume.
type nullSink struct {
	srv   *smtp.Server
	port  int
	mu    sync.Mutex
	codes map[string]string
	count int
}

var codeRE = regexp.MustCompile(`\b[0-9]{8}\b`)

func startNullSink() (*nullSink, error) {
	n := &nullSink{codes: make(map[string]string)}
	n.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &nullSession{sink: n}, nil }))
	n.srv.Domain = "null-sink.test"
	n.srv.ReadTimeout, n.srv.WriteTimeout = 30*time.Second, 30*time.Second
	n.srv.MaxMessageBytes = 1 << 20
	n.srv.ErrorLog = log0{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = n.srv.Serve(l) }()
	return n, nil
}

type log0 struct{}

func (log0) Printf(string, ...any) {}
func (log0) Println(...any)        {}

func (n *nullSink) close() { _ = n.srv.Close() }

// take returns and forgets the code last mailed to addr.
func (n *nullSink) take(addr string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.codes[addr]
	delete(n.codes, addr)
	return c, ok
}

// keepPrefix starts the recipients whose codes the sink keeps: those of the
// reference-making initiations, so the sink's map does not grow during the
// initiate cells.
const keepPrefix = "ref"

type nullSession struct {
	sink *nullSink
	to   string
}

func (s *nullSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *nullSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}

func (s *nullSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	s.sink.count++
	if strings.HasPrefix(s.to, keepPrefix) {
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			if c := codeRE.Find(b[i:]); c != nil {
				s.sink.codes[s.to] = string(c)
			}
		}
	}
	return nil
}

func (s *nullSession) Reset()        { s.to = "" }
func (s *nullSession) Logout() error { return nil }

// caddyProc is the Caddy under test.
type caddyProc struct {
	*process
	base    string // http://127.0.0.1:port
	admin   string // 127.0.0.1:port
	storage string
}

// caddyfile is the configuration under test. Four email_otp handlers share
// one site and one storage (so one reference key and signing key): two mail
// through mailpit, two through the null sink, each pair once with a new SMTP
// connection per mail (idle_conns 0) and once with the default kept
// connections (4). Logging stays on at INFO, to a file, as in production.
const caddyfileTmpl = `{
	admin {{.Admin}}
	storage file_system {{.Storage}}
	persist_config off
	auto_https off
	log {
		output file {{.Log}}
		format json
		level INFO
	}
}

http://127.0.0.1:{{.Port}} {
	bind 127.0.0.1

	# The bare route: the cost of Caddy itself for a small POST.
	respond /bare "ok" 200

	# The signing route: bare plus the two signatures and the answer.
	route /sign {
		bench_sign {{.Alg}}{{.ATAlg}}
	}

	# The mailing routes: bare plus a raw send on a kept-open connection.
	route /mail-null {
		bench_mail {{.NullPort}}
	}
	route /mail-mp {
		bench_mail {{.MailpitPort}}
	}

{{.Handlers}}}
`

// handlerTmpl is one email_otp handler. The per-address and per-client
// limits are turned off on purpose: the defaults (5 codes per address per 15
// minutes, 1000 per client per minute) would throttle a load test within its
// first second.
const handlerTmpl = `
	email_otp {
		token_path /%s/oauth2/token
		signing_alg %s
		smtp {
			host 127.0.0.1
			port %d
			tls none
			from "Bench <no-reply@example.com>"
			timeout 10s%s
		}
		template {
			subject "Your code"
			body "Your code is {0}"
		}
		client bench bench-secret
		# Off for the load test only: the defaults would throttle it.
		limit address off
		limit client off
	}
`

// Endpoints of the four handlers.
const (
	epMP       = "/mp/oauth2/token"
	epMPPool   = "/mp-pool/oauth2/token"
	epNull     = "/null/oauth2/token"
	epNullPool = "/null-pool/oauth2/token"
)

type caddyfileVars struct {
	Admin, Storage, Log, Alg string
	ATAlg                    string // access_token_alg; written only when it differs from Alg
	Handlers                 string // "": the four handlers of handlers()
	Ledger                   string // "": the plugin's default
	Port, MailpitPort        int
	NullPort                 int
}

// atAlgArg is bench_sign's second argument: none when the access token
// has the id_token's algorithm, so a Caddy built before access_token_alg
// (whose bench_sign takes one) runs the same Caddyfile.
func (v caddyfileVars) atAlgArg() string {
	if v.ATAlg == "" || v.ATAlg == v.Alg {
		return ""
	}
	return " " + v.ATAlg
}

func (v caddyfileVars) handlers() string {
	if v.Handlers != "" {
		return v.Handlers
	}
	var b strings.Builder
	const dial, pool = "\n\t\t\tidle_conns 0", "" // pool: the default
	alg := v.Alg
	if v.ATAlg != "" && v.ATAlg != v.Alg {
		alg += "\n\t\taccess_token_alg " + v.ATAlg
	}
	if v.Ledger != "" {
		alg += "\n\t\tledger " + v.Ledger
	}
	for _, h := range []struct {
		name string
		port int
		pool string
	}{{"mp", v.MailpitPort, dial}, {"mp-pool", v.MailpitPort, pool}, {"null", v.NullPort, dial}, {"null-pool", v.NullPort, pool}} {
		fmt.Fprintf(&b, handlerTmpl, h.name, alg, h.port, h.pool)
	}
	return b.String()
}

func startCaddy(bin, dir string, v caddyfileVars) (*caddyProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	v.Port = port
	v.Admin = fmt.Sprintf("127.0.0.1:%d", adminPort)
	if v.Storage == "" { // else a storage shared with other instances
		v.Storage = filepath.Join(dir, "storage")
	}
	v.Log = filepath.Join(dir, "caddy.log")
	cfg := caddyfileTmpl
	for k, val := range map[string]string{
		"{{.Admin}}": v.Admin, "{{.Storage}}": v.Storage, "{{.Log}}": v.Log, "{{.Alg}}": v.Alg, "{{.ATAlg}}": v.atAlgArg(),
		"{{.Port}}": strconv.Itoa(v.Port), "{{.MailpitPort}}": strconv.Itoa(v.MailpitPort), "{{.NullPort}}": strconv.Itoa(v.NullPort),
		"{{.Handlers}}": v.handlers(),
	} {
		cfg = strings.ReplaceAll(cfg, k, val)
	}
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	p, err := startProcess("caddy", filepath.Join(dir, "caddy.stderr"), cmd)
	if err != nil {
		return nil, err
	}
	c := &caddyProc{process: p, base: fmt.Sprintf("http://127.0.0.1:%d", port), admin: v.Admin, storage: v.Storage}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.alive(); err != nil {
			return nil, err
		}
		if resp, err := http.Post(c.base+"/bare", "text/plain", nil); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("caddy did not answer within 30s; see " + p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// profile saves a CPU profile of Caddy taken over d through its admin API.
func (c *caddyProc) profile(ctx context.Context, d time.Duration, file string) error {
	secs := int(d / time.Second)
	if secs < 1 {
		secs = 1
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.admin, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
