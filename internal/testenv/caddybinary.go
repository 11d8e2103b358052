package testenv

// The Caddy binary the multi-process tests run: $CADDY_BIN, or cmd/caddy
// built once per test binary; and its one-shot subcommands.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// caddyImport is cmd/caddy's import path: built by it, the binary builds
// from any directory of the module, a test package's included.
const caddyImport = "github.com/caddy-email-otp/emailotp/cmd/caddy"

var (
	buildCaddyOnce sync.Once
	builtCaddy     string
	builtCaddyDir  string
	buildCaddyErr  error
)

// CaddyBinary is $CADDY_BIN, or cmd/caddy built once per test binary. A
// failed build fails the test: the multi-process tests never skip.
func CaddyBinary(t testing.TB) string {
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
		if b, err := exec.Command(goBin, "build", "-o", out, caddyImport).CombinedOutput(); err != nil {
			buildCaddyErr = fmt.Errorf("go build %s: %v\n%s", caddyImport, err, b)
			return
		}
		builtCaddy = out
	})
	if buildCaddyErr != nil {
		t.Fatal(buildCaddyErr)
	}
	return builtCaddy
}

// RemoveBuiltCaddy deletes the binary CaddyBinary built, if it built one.
// TestMain calls it after m.Run: t.Cleanup cannot, the binary outlives
// every test.
func RemoveBuiltCaddy() {
	if builtCaddyDir != "" {
		_ = os.RemoveAll(builtCaddyDir)
	}
}

// RunCaddyCommand runs a one-shot Caddy subcommand (validate, adapt, …)
// with HOME and the XDG directories under a new temp dir, as an operator
// runs it before `caddy run`, and returns its combined output and error.
func RunCaddyCommand(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), CaddyStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, CaddyBinary(t), args...)
	cmd.Env, cmd.Dir = environ(dir, nil), dir
	return cmd.CombinedOutput()
}
