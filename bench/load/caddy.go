package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The Caddy under test: its Caddyfile (four email_otp handlers on one
// site and one storage), its start, and its CPU profiles.

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
