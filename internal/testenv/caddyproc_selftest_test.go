package testenv

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain removes the Caddy binary built for this run, if one was built.
func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBuiltCaddy()
	os.Exit(code)
}

// body is the answer to GET u, failing the test on a transport error.
func body(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCaddyProcHarness proves the launcher itself: the process serves, both
// reload paths apply a new config, a refused config leaves the running one,
// SIGTERM stops it with exit code 0, and a restart serves the same config
// on the same address.
func TestCaddyProcHarness(t *testing.T) {
	p := StartCaddy(t, `	respond "one"`)
	if got := body(t, p.Base+"/"); got != "one" {
		t.Fatalf("first config: %q", got)
	}
	if err := p.Load(`	respond "two"`); err != nil {
		t.Fatal(err)
	}
	if got := body(t, p.Base+"/"); got != "two" {
		t.Fatalf("after admin /load: %q", got)
	}
	if err := p.Reload(`	respond "three"`); err != nil {
		t.Fatal(err)
	}
	if got := body(t, p.Base+"/"); got != "three" {
		t.Fatalf("after caddy reload: %q", got)
	}
	if err := p.Load(`	no_such_directive`); err == nil || !strings.Contains(err.Error(), "no_such_directive") {
		t.Fatalf("bad config: err = %v", err)
	}
	if got := body(t, p.Base+"/"); got != "three" {
		t.Fatalf("a refused config replaced the running one: %q", got)
	}
	if p.ExitCode() != -1 {
		t.Errorf("ExitCode %d while running", p.ExitCode())
	}
	p.Stop(t)
	if err := p.Exited(); !errors.Is(err, ErrCaddyExited) {
		t.Fatalf("still running after Stop: %v", err)
	}
	if p.ExitCode() != 0 {
		t.Errorf("exit code %d after SIGTERM", p.ExitCode())
	}

	// Reload wrote the file: the restarted process serves "three" where
	// the old one did, and dies by SIGKILL.
	q := p.Restart(t)
	if q.Base != p.Base || q.AdminAddr != p.AdminAddr || q.Storage != p.Storage {
		t.Errorf("restart moved: %s %s %s, was %s %s %s", q.Base, q.AdminAddr, q.Storage, p.Base, p.AdminAddr, p.Storage)
	}
	if got := body(t, q.Base+"/"); got != "three" {
		t.Fatalf("after restart: %q", got)
	}
	q.Kill(t)
	if q.Exited() == nil || q.ExitCode() != -1 {
		t.Errorf("after SIGKILL: exited %v, exit code %d", q.Exited(), q.ExitCode())
	}
}

// TestCaddyfileRunAsIs runs a whole Caddyfile with its ports and a value
// from the environment, and one that must not start: the launch says it
// exited, with its exit code and output.
func TestCaddyfileRunAsIs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "Caddyfile")
	src := `{
	admin localhost:{$TEST_ADMIN_PORT}
	persist_config off
}

{$TEST_SITE} {
	respond "{env.TEST_GREETING}"
}
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := FreePorts(t, 2)
	run := CaddyfileRun{
		File:      file,
		Base:      fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		AdminAddr: fmt.Sprintf("localhost:%d", ports[1]),
	}
	run.Env = map[string]string{
		"TEST_SITE":       run.Base,
		"TEST_ADMIN_PORT": fmt.Sprint(ports[1]),
		"TEST_GREETING":   "hello from the environment",
	}
	p := StartCaddyfile(t, run)
	if got := body(t, p.Base+"/"); got != "hello from the environment" {
		t.Errorf("site answers %q", got)
	}
	if err := p.Load(`	respond "x"`); err == nil {
		t.Error("Load of a site body on a whole-file run was accepted")
	}
	if err := p.LoadCaddyfile(strings.Replace(src, `"{env.TEST_GREETING}"`, `"loaded"`, 1)); err != nil {
		t.Fatal(err)
	}
	if got := body(t, p.Base+"/"); got != "loaded" {
		t.Errorf("after LoadCaddyfile: %q", got)
	}
	p.Kill(t)
	q := p.Restart(t)
	if got := body(t, q.Base+"/"); got != "hello from the environment" {
		t.Errorf("after restart: %q", got)
	}

	// An empty value removes the variable: {$TEST_SITE} then adapts to no
	// site address, which Caddy refuses.
	broken := run
	broken.Base = fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	broken.Env = map[string]string{"TEST_SITE": "", "TEST_ADMIN_PORT": fmt.Sprint(FreePort(t))}
	t.Setenv("TEST_SITE", run.Base) // inherited, and removed by the empty value
	b, err := LaunchCaddyfile(t, broken)
	if err == nil {
		t.Fatal("a Caddyfile without a site address started")
	}
	if !errors.Is(err, ErrCaddyExited) {
		t.Fatalf("not an exit during startup: %v", err)
	}
	if b.ExitCode() == 0 {
		t.Error("exit code 0 for a refused Caddyfile")
	}
	if out := b.Output(); !strings.Contains(out, "server block without any key") {
		t.Errorf("the output does not say why:\n%s", out)
	}
}

// TestRunCaddyCommand: a one-shot subcommand says what it finds, and fails
// for a bad file.
func TestRunCaddyCommand(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	for f, src := range map[string]string{
		good: "{\n\tadmin off\n}\n\nhttp://127.0.0.1:1 {\n\trespond ok\n}\n",
		bad:  "http://127.0.0.1:1 {\n\tno_such_directive\n}\n",
	} {
		if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := RunCaddyCommand(t, "validate", "--config", good, "--adapter", "caddyfile"); err != nil || !strings.Contains(string(out), "Valid configuration") {
		t.Errorf("validate of a good file: %v\n%s", err, out)
	}
	if out, err := RunCaddyCommand(t, "validate", "--config", bad, "--adapter", "caddyfile"); err == nil || !strings.Contains(string(out), "no_such_directive") {
		t.Errorf("validate of a bad file: %v\n%s", err, out)
	}
}
