package emailotp

// Multi-process harness: the real Caddy binary (cmd/caddy, or $CADDY_BIN) in
// its own process, so tests can restart it, run two instances on one storage
// and reload it through its admin API or `caddy reload`, as operators do.
// Unlike startCaddy (in-process, global state), several of these can run at
// once.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	procStartTimeout = 60 * time.Second // a -race binary on a busy 2-core machine
	procStopTimeout  = 15 * time.Second
)

// TestMain removes the Caddy binary built for this run, if one was built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtCaddyDir != "" {
		_ = os.RemoveAll(builtCaddyDir)
	}
	os.Exit(code)
}

var (
	buildCaddyOnce sync.Once
	builtCaddy     string
	builtCaddyDir  string
	buildCaddyErr  error
)

// caddyBinary is $CADDY_BIN, or ./cmd/caddy built once per test run. A
// failed build fails the test: the multi-process tests never skip.
func caddyBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CADDY_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CADDY_BIN=%q: %v", p, err)
		}
		return p
	}
	buildCaddyOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildCaddyErr = fmt.Errorf("go not in PATH: %w", err)
			return
		}
		if builtCaddyDir, err = os.MkdirTemp("", "emailotp-caddy-"); err != nil {
			buildCaddyErr = err
			return
		}
		out := filepath.Join(builtCaddyDir, "caddy")
		cmd := exec.Command(goBin, "build", "-o", out, "./cmd/caddy")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildCaddyErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, b)
			return
		}
		builtCaddy = out
	})
	if buildCaddyErr != nil {
		t.Fatal(buildCaddyErr)
	}
	return builtCaddy
}

// caddyProc is one `caddy run` process owned by a test.
type caddyProc struct {
	Base      string // http://127.0.0.1:port
	AdminAddr string // 127.0.0.1:port
	Storage   string // file_system storage root, shareable between processes
	Config    string // path of the Caddyfile last written

	bin, dir string
	port     int
	anyHost  bool
	env      []string
	cmd      *exec.Cmd
	done     chan struct{}
	out      *syncBuffer // stdout and stderr: Caddy logs to stderr
	stopOnce sync.Once
}

// procOpts tune a process.
type procOpts struct {
	storage string // storage directory; default: a new temp dir
	anyHost bool   // serve the site for any Host (http://:port), not only 127.0.0.1
	port    int    // the site's port; default: a free one
}

// startCaddyProc runs Caddy with site (the body of one site block) and waits
// until both its admin API and its site answer. It is stopped when the test
// ends; its output is dumped if the test failed.
func startCaddyProc(t testing.TB, site string, o ...procOpts) *caddyProc {
	t.Helper()
	p, err := launchCaddyProc(t, site, o...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launchCaddyProc is startCaddyProc returning the startup error (with the
// process output) instead of failing, for tests of configs that must not load.
func launchCaddyProc(t testing.TB, site string, o ...procOpts) (*caddyProc, error) {
	t.Helper()
	var opt procOpts
	if len(o) > 0 {
		opt = o[0]
	}
	dir := t.TempDir()
	ports := freePorts(t, 2)
	if opt.port != 0 {
		ports[0] = opt.port
	}
	p := &caddyProc{
		bin:       caddyBinary(t),
		dir:       dir,
		port:      ports[0],
		Base:      fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		AdminAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		Storage:   opt.storage,
		anyHost:   opt.anyHost,
		Config:    filepath.Join(dir, "Caddyfile"),
		done:      make(chan struct{}),
		out:       &syncBuffer{},
	}
	if p.Storage == "" {
		p.Storage = filepath.Join(dir, "storage")
	}
	p.env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"XDG_STATE_HOME="+filepath.Join(dir, "state"),
	)
	if err := os.WriteFile(p.Config, []byte(p.caddyfile(site)), 0o600); err != nil {
		return nil, err
	}
	p.cmd = exec.Command(p.bin, "run", "--config", p.Config, "--adapter", "caddyfile")
	p.cmd.Env = p.env
	p.cmd.Dir = dir
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", p.bin, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("caddy process %s output:\n%s", p.Base, p.out.String())
		}
	})
	if err := p.waitReady(); err != nil {
		p.Stop(t)
		return nil, err
	}
	return p, nil
}

// caddyfile is the whole Caddyfile of the process around site.
func (p *caddyProc) caddyfile(site string) string {
	return fmt.Sprintf(`{
	admin %s
	storage file_system %s
	persist_config off
	auto_https off
	grace_period 2s
}

http://%s:%d {
	bind 127.0.0.1
%s
}
`, p.AdminAddr, p.Storage, p.siteHost(), p.port, site)
}

// siteHost is the host of the site address: none (any Host) or 127.0.0.1.
func (p *caddyProc) siteHost() string {
	if p.anyHost {
		return ""
	}
	return "127.0.0.1"
}

// waitReady polls the admin API and the site until both answer, the process
// exits, or procStartTimeout passes.
func (p *caddyProc) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(procStartTimeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("caddy exited during startup (%v); output:\n%s", p.cmd.ProcessState, p.out.String())
		default:
		}
		if get200(client, "http://"+p.AdminAddr+"/config/") && getAny(client, p.Base+"/__ready") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caddy not ready after %v; output:\n%s", procStartTimeout, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get200(c *http.Client, u string) bool {
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func getAny(c *http.Client, u string) bool {
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}

// Output is what the process printed so far (its logs).
func (p *caddyProc) Output() string { return p.out.String() }

// Stop sends SIGTERM, waits for a graceful exit, then kills. Safe to call
// more than once.
func (p *caddyProc) Stop(t testing.TB) {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(procStopTimeout):
			t.Errorf("caddy %s ignored SIGTERM for %v; killing it", p.Base, procStopTimeout)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Load replaces the running config through the admin API (POST /load with
// the Caddyfile adapter) and returns the admin API's error, if any.
func (p *caddyProc) Load(site string) error {
	ctx, cancel := context.WithTimeout(context.Background(), procStartTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.AdminAddr+"/load",
		strings.NewReader(p.caddyfile(site)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin /load: %s: %s", resp.Status, body)
	}
	dropIdleConns()
	return nil
}

// dropIdleConns forgets kept-alive connections after a reload: the old
// server closes them as it shuts down, and a POST sent on one that is being
// closed fails with EOF (the client retries only idempotent requests).
func dropIdleConns() { http.DefaultClient.CloseIdleConnections() }

// Reload rewrites the Caddyfile and runs `caddy reload` against it, as an
// operator does; the admin address comes from the Caddyfile.
func (p *caddyProc) Reload(site string) error {
	if err := os.WriteFile(p.Config, []byte(p.caddyfile(site)), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), procStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "reload", "--config", p.Config, "--adapter", "caddyfile")
	cmd.Env = p.env
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("caddy reload: %w\n%s", err, out)
	}
	dropIdleConns()
	return nil
}

// errProcExited is returned by Exited when the process is gone.
var errProcExited = errors.New("caddy process exited")

// Exited reports whether the process has exited.
func (p *caddyProc) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%w (%v)", errProcExited, p.cmd.ProcessState)
	default:
		return nil
	}
}

// TestCaddyProcHarness proves the harness itself: the process serves, both
// reload paths apply a new config, and SIGTERM stops it.
func TestCaddyProcHarness(t *testing.T) {
	p := startCaddyProc(t, `	respond "one"`)
	if a := httpGet(t, p.Base+"/"); string(a.Body) != "one" {
		t.Fatalf("first config: %s", a)
	}
	if err := p.Load(`	respond "two"`); err != nil {
		t.Fatal(err)
	}
	if a := httpGet(t, p.Base+"/"); string(a.Body) != "two" {
		t.Fatalf("after admin /load: %s", a)
	}
	if err := p.Reload(`	respond "three"`); err != nil {
		t.Fatal(err)
	}
	if a := httpGet(t, p.Base+"/"); string(a.Body) != "three" {
		t.Fatalf("after caddy reload: %s", a)
	}
	if err := p.Load(`	no_such_directive`); err == nil || !strings.Contains(err.Error(), "no_such_directive") {
		t.Fatalf("bad config: err = %v", err)
	}
	if a := httpGet(t, p.Base+"/"); string(a.Body) != "three" {
		t.Fatalf("a refused config replaced the running one: %s", a)
	}
	p.Stop(t)
	if err := p.Exited(); !errors.Is(err, errProcExited) {
		t.Fatalf("still running after Stop: %v", err)
	}
	if p.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("exit code %d after SIGTERM", p.cmd.ProcessState.ExitCode())
	}
}

// httpGet fetches a URL.
func httpGet(t testing.TB, u string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}
