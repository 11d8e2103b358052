package emailotp

// Caddyfile.example as shipped, one process on Caddy's default storage: a
// reference and code that got tokens stay refused after kill -9, after
// SIGTERM and after reloads that change the ledger setting.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exampleRun starts Caddyfile.example as `caddy run` does, with the
// environment the README documents pointing it at test ports, and Caddy's
// data directory (its default storage) kept across the processes it starts.
type exampleRun struct {
	file, data, site, admin string
	env                     []string
}

func newExampleRun(t *testing.T, smtpPort int) *exampleRun {
	t.Helper()
	file, err := filepath.Abs("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports := freePorts(t, 2)
	ex := &exampleRun{
		file:  file,
		data:  filepath.Join(dir, "data"),
		site:  fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		admin: fmt.Sprintf("localhost:%d", ports[1]),
	}
	ex.env = append(os.Environ(),
		"EMAIL_OTP_SITE="+ex.site,
		fmt.Sprintf("EMAIL_OTP_ADMIN_PORT=%d", ports[1]),
		"SMTP_HOST=127.0.0.1",
		fmt.Sprintf("SMTP_PORT=%d", smtpPort),
		"EMAIL_OTP_CLIENT_SECRET=demo-secret",
		"HOME="+filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+ex.data,
	)
	return ex
}

// start runs a new Caddy process on the example and waits until it serves.
func (ex *exampleRun) start(t *testing.T) *caddyProc {
	t.Helper()
	p := &caddyProc{
		Base: ex.site, AdminAddr: ex.admin, Config: ex.file,
		bin: caddyBinary(t), dir: t.TempDir(), env: ex.env,
		done: make(chan struct{}), out: &syncBuffer{},
	}
	p.cmd = exec.Command(p.bin, "run", "--config", ex.file, "--adapter", "caddyfile")
	p.cmd.Env, p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = p.env, p.dir, p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("caddy process output:\n%s", p.out.String())
		}
	})
	if err := p.waitReady(); err != nil {
		t.Fatal(err)
	}
	return p
}

// kill ends the process with SIGKILL, as a crash would.
func (p *caddyProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// loadText posts a whole Caddyfile to the admin API's /load.
func (p *caddyProc) loadText(t *testing.T, caddyfile string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+p.AdminAddr+"/load", strings.NewReader(caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	if a := do(t, req); a.Status != http.StatusOK {
		t.Fatalf("admin /load: %s", a)
	}
	dropIdleConns()
}

var exampleCreds = []string{"demo-app", "demo-secret"}

// exampleFlow initiates and validates at p and returns the reference and
// code that got tokens.
func exampleFlow(t *testing.T, p *caddyProc, mp *mailpit, addr string) [2]string {
	t.Helper()
	ref, code := examplePending(t, p, mp, addr)
	if a := post(t, p.Base+tokenPath, validateForm(ref, code), exampleCreds); a.Status != http.StatusOK || a.str("id_token") == "" {
		t.Fatalf("validate at %s: %s", p.Base, a)
	}
	return [2]string{ref, code}
}

// examplePending initiates at p and returns the reference and the mailed code.
func examplePending(t *testing.T, p *caddyProc, mp *mailpit, addr string) (string, string) {
	t.Helper()
	a := post(t, p.Base+tokenPath, initiateForm(addr), exampleCreds)
	if a.Status != http.StatusOK || a.reference() == "" {
		t.Fatalf("initiate at %s: %s", p.Base, a)
	}
	return a.reference(), codeFrom(t, mp.WaitFor(t, addr, 15*time.Second).Text, DefaultCodeLength)
}

// replayAll posts every used (reference, code) to p: each must be refused as
// already used.
func replayAll(t *testing.T, p *caddyProc, when string, used [][2]string) {
	t.Helper()
	for i, u := range used {
		if a := post(t, p.Base+tokenPath, validateForm(u[0], u[1]), exampleCreds); !isReplay(a) {
			t.Errorf("%s: used reference %d of %d: %d %s %q (want 400 invalid_grant, already used)",
				when, i+1, len(used), a.Status, a.str("error"), a.str("error_description"))
		}
	}
}

// exampleLedgerLine is the example's commented ledger line.
var exampleLedgerLine = regexp.MustCompile(`(?m)^\t\t# ledger .*$`)

func TestExampleLedgerDurable(t *testing.T) {
	mp := startMailpit(t)
	ex := newExampleRun(t, mp.SMTPPort)
	shipped := readFile(t, "Caddyfile.example")
	if !exampleLedgerLine.MatchString(shipped) {
		t.Fatal("Caddyfile.example has no commented ledger line to change in a reload")
	}
	withLedger := func(kind string) string {
		return exampleLedgerLine.ReplaceAllString(shipped, "\t\tledger "+kind)
	}

	p := ex.start(t)
	used := [][2]string{exampleFlow(t, p, mp, "durable-1@example.com")}
	pendingRef, pendingCode := examplePending(t, p, mp, "durable-pending@example.com")

	p.kill(t)
	p = ex.start(t)
	replayAll(t, p, "after kill -9", used)
	// the keys survived too: a reference issued before the crash still works
	if a := post(t, p.Base+tokenPath, validateForm(pendingRef, pendingCode), exampleCreds); a.Status != http.StatusOK {
		t.Fatalf("reference issued before kill -9: %s", a)
	}
	used = append(used, [2]string{pendingRef, pendingCode}, exampleFlow(t, p, mp, "durable-2@example.com"))

	p.Stop(t) // SIGTERM
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	p = ex.start(t)
	replayAll(t, p, "after SIGTERM", used)
	used = append(used, exampleFlow(t, p, mp, "durable-3@example.com"))

	for _, kind := range []string{"memory", "storage"} {
		p.loadText(t, withLedger(kind))
		replayAll(t, p, "after a reload to ledger "+kind, used)
		used = append(used, exampleFlow(t, p, mp, "durable-"+kind+"@example.com"))
	}
	p.loadText(t, shipped)
	replayAll(t, p, "after a reload back to the shipped example", used)

	p.kill(t)
	p = ex.start(t)
	// The one reference used under "ledger memory" is that ledger's risk;
	// every other one must still be refused.
	var durable [][2]string
	for i, u := range used {
		if i != len(used)-2 {
			durable = append(durable, u)
		}
	}
	replayAll(t, p, "after a second kill -9", durable)
}
