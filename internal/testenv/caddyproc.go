package testenv

// The Caddy under test as its own process: the real binary (cmd/caddy, or
// $CADDY_BIN) run as `caddy run`, so tests can kill and restart it, run
// several instances on one storage, and reload it through its admin API or
// `caddy reload`, as operators do. Unlike Caddy loaded in the test process
// (global state), several of these can run at once.
//
// Two ways in: StartCaddy wraps the body of one site block in a Caddyfile
// confined to the test (admin on a free port, file_system storage in a temp
// dir); StartCaddyfile runs an operator's Caddyfile as is, with the
// environment it documents.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// CaddyStartTimeout bounds startup, reloads and one-shot commands: a
	// -race binary on a busy 2-core machine takes seconds.
	CaddyStartTimeout = 60 * time.Second
	// CaddyStopTimeout bounds a graceful stop before the process is killed.
	CaddyStopTimeout = 15 * time.Second
)

// ErrCaddyExited is wrapped by Exited, and by a launch whose process exited
// during startup: a config Caddy refuses ends so, a slow start does not.
var ErrCaddyExited = errors.New("caddy process exited")

// ProcOpts tune a process of StartCaddy.
type ProcOpts struct {
	// Storage is the file_system storage root, shareable between
	// processes. Default: a new temp dir.
	Storage string
	// AnyHost serves the site for any Host (http://:port), not only
	// 127.0.0.1, as a second host name needs. Default: false.
	AnyHost bool
	// Port is the site's port. Default: a free one.
	Port int
}

// CaddyfileRun is an operator's Caddyfile run as is: the file names its
// ports through the environment, so the test says where to wait.
type CaddyfileRun struct {
	// File is the Caddyfile's path, relative to the working directory.
	File string
	// Base is the site's URL, e.g. http://127.0.0.1:port.
	Base string
	// AdminAddr is the admin API's host:port, as the file sets it.
	AdminAddr string
	// Env replaces inherited variables of the same name; an empty value
	// removes one, as the test of an unset secret needs.
	Env map[string]string
}

// CaddyProc is one `caddy run` process owned by a test. It is stopped when
// the test ends, and its output is logged if the test failed.
type CaddyProc struct {
	Base      string // the site's URL: http://127.0.0.1:port
	AdminAddr string // the admin API: host:port
	Storage   string // file_system storage root of StartCaddy; "" for a Caddyfile run as is
	Config    string // path of the Caddyfile the process runs
	// Dir is the process's working directory and HOME, with its
	// XDG_CONFIG_HOME (Dir/config: autosave.json) and XDG_DATA_HOME
	// (Dir/data: Caddy's default storage); a Restart keeps it.
	Dir string

	bin     string
	env     []string
	port    int
	anyHost bool
	wraps   bool // Config wraps a site body: Load and Reload apply
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited
	out     *SyncBuffer   // stdout and stderr: Caddy logs to stderr
	stopped sync.Once
}

// StartCaddy runs Caddy with site (the body of one site block) and waits
// until both its admin API and its site answer; a failed start fails the
// test.
func StartCaddy(t testing.TB, site string, o ...ProcOpts) *CaddyProc {
	t.Helper()
	p, err := LaunchCaddy(t, site, o...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// LaunchCaddy is StartCaddy returning the startup error (with the process
// output) instead of failing, for tests of configs that must not load. The
// process is returned even then, to read its ExitCode and Output; it is nil
// only if it could not be started at all.
func LaunchCaddy(t testing.TB, site string, o ...ProcOpts) (*CaddyProc, error) {
	t.Helper()
	var opt ProcOpts
	if len(o) > 0 {
		opt = o[0]
	}
	dir := t.TempDir()
	ports := FreePorts(t, 2)
	if opt.Port != 0 {
		ports[0] = opt.Port
	}
	p := &CaddyProc{
		Base:      fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		AdminAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		Storage:   opt.Storage,
		Config:    filepath.Join(dir, "Caddyfile"),
		Dir:       dir,
		bin:       CaddyBinary(t),
		port:      ports[0],
		anyHost:   opt.AnyHost,
		wraps:     true,
	}
	if p.Storage == "" {
		p.Storage = filepath.Join(dir, "storage")
	}
	p.env = environ(dir, nil)
	if err := os.WriteFile(p.Config, []byte(p.caddyfile(site)), 0o600); err != nil {
		return nil, err
	}
	return p, p.start(t)
}

// StartCaddyfile runs an operator's Caddyfile as is and waits until the
// admin API and the site answer; a failed start fails the test.
func StartCaddyfile(t testing.TB, run CaddyfileRun) *CaddyProc {
	t.Helper()
	p, err := LaunchCaddyfile(t, run)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// LaunchCaddyfile is StartCaddyfile returning the startup error instead of
// failing, for a file that must not start (errors.Is(err, ErrCaddyExited)):
// the process is returned even then, to read its ExitCode and Output.
func LaunchCaddyfile(t testing.TB, run CaddyfileRun) (*CaddyProc, error) {
	t.Helper()
	file, err := filepath.Abs(run.File)
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	p := &CaddyProc{
		Base:      run.Base,
		AdminAddr: run.AdminAddr,
		Config:    file,
		Dir:       dir,
		bin:       CaddyBinary(t),
		env:       environ(dir, run.Env),
	}
	return p, p.start(t)
}

// environ is the inherited environment with HOME and the XDG directories
// under dir (Caddy keeps its autosave, certificates and default storage
// there, never in the developer's), then env applied.
func environ(dir string, env map[string]string) []string {
	set := map[string]string{
		"HOME":            filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"XDG_CACHE_HOME":  filepath.Join(dir, "cache"),
		"XDG_STATE_HOME":  filepath.Join(dir, "state"),
	}
	for k, v := range env {
		set[k] = v
	}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if set[k] != "" {
			out = append(out, k+"="+set[k])
		}
	}
	return out
}

// Restart starts a new process in place of p, which must have exited: same
// Caddyfile, ports, storage, directory and environment, as a supervisor
// restarts a crashed instance. p keeps the record of the old process.
func (p *CaddyProc) Restart(t testing.TB) *CaddyProc {
	t.Helper()
	if p.Exited() == nil {
		t.Fatal("restart of a running caddy process")
	}
	q := &CaddyProc{
		Base: p.Base, AdminAddr: p.AdminAddr, Storage: p.Storage, Config: p.Config, Dir: p.Dir,
		bin: p.bin, env: p.env, port: p.port, anyHost: p.anyHost, wraps: p.wraps,
	}
	if err := q.start(t); err != nil {
		t.Fatal(err)
	}
	return q
}

// start runs `caddy run` on p.Config and waits until it is ready.
func (p *CaddyProc) start(t testing.TB) error {
	t.Helper()
	p.done = make(chan struct{})
	p.out = &SyncBuffer{}
	p.cmd = exec.Command(p.bin, "run", "--config", p.Config, "--adapter", "caddyfile")
	p.cmd.Env, p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = p.env, p.Dir, p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.bin, err)
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
		return err
	}
	return nil
}

// caddyfile is the whole Caddyfile of a StartCaddy process around site.
func (p *CaddyProc) caddyfile(site string) string {
	host := "127.0.0.1"
	if p.anyHost {
		host = ""
	}
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
`, p.AdminAddr, p.Storage, host, p.port, site)
}

// waitReady polls the admin API and the site until both answer, the process
// exits, or CaddyStartTimeout passes.
func (p *CaddyProc) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(CaddyStartTimeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%w during startup (%v); output:\n%s", ErrCaddyExited, p.cmd.ProcessState, p.out.String())
		default:
		}
		if answers(client, "http://"+p.AdminAddr+"/config/", true) && answers(client, p.Base+"/__ready", false) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caddy not ready after %v; output:\n%s", CaddyStartTimeout, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers reports whether u answers at all, or with 200 if ok is set.
func answers(c *http.Client, u string, ok bool) bool {
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return !ok || resp.StatusCode == http.StatusOK
}

// Output is what the process printed so far (its logs).
func (p *CaddyProc) Output() string { return p.out.String() }

// Exited returns an error wrapping ErrCaddyExited once the process has
// exited, nil while it runs.
func (p *CaddyProc) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%w (%v)", ErrCaddyExited, p.cmd.ProcessState)
	default:
		return nil
	}
}

// ExitCode is the process's exit code once it has exited; -1 while it runs
// or when a signal ended it.
func (p *CaddyProc) ExitCode() int {
	if p.Exited() == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and waits for a graceful exit; a process that ignores
// it for CaddyStopTimeout fails the test and is killed. Safe to call more
// than once.
func (p *CaddyProc) Stop(t testing.TB) {
	p.stopped.Do(func() {
		if p.Exited() != nil {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(CaddyStopTimeout):
			t.Errorf("caddy %s ignored SIGTERM for %v; killing it", p.Base, CaddyStopTimeout)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *CaddyProc) Kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && p.Exited() == nil {
		t.Fatal(err)
	}
	<-p.done
}
