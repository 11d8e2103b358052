package emailotp

// The Caddy-under-test launcher (the real binary in its own process) lives
// in internal/testenv (caddyproc.go, with its self-test); these are its
// names in this package's tests, and the shipped examples run as an
// operator runs them.

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/caddy-email-otp/emailotp/internal/testenv"
)

type (
	caddyProc = testenv.CaddyProc
	procOpts  = testenv.ProcOpts
)

// TestMain removes the Caddy binary built for this run, if one was built.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuiltCaddy()
	os.Exit(code)
}

func dropIdleConns() { testenv.DropIdleConns() }

func runCaddyCommand(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	return testenv.RunCaddyCommand(t, args...)
}

func startCaddyProc(t testing.TB, site string, o ...procOpts) *caddyProc {
	t.Helper()
	return testenv.StartCaddy(t, site, o...)
}

func launchCaddyProc(t testing.TB, site string, o ...procOpts) (*caddyProc, error) {
	t.Helper()
	return testenv.LaunchCaddy(t, site, o...)
}

// launchExample runs a shipped Caddyfile (`caddy run --config file`) with
// the environment the README documents pointing it at free loopback ports
// and SMTP at smtpPort, then env; inherited EMAIL_OTP_* variables are
// dropped so that a developer's shell cannot change what is tested.
func launchExample(t *testing.T, file string, smtpPort int, env map[string]string) (*caddyProc, error) {
	t.Helper()
	ports := freePorts(t, 2)
	run := testenv.CaddyfileRun{
		File:      file,
		Base:      fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		AdminAddr: fmt.Sprintf("localhost:%d", ports[1]),
		Env:       map[string]string{},
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "EMAIL_OTP_") {
			run.Env[k] = ""
		}
	}
	run.Env["EMAIL_OTP_SITE"] = run.Base
	run.Env["EMAIL_OTP_ADMIN_PORT"] = fmt.Sprint(ports[1])
	run.Env["SMTP_HOST"] = "127.0.0.1"
	run.Env["SMTP_PORT"] = fmt.Sprint(smtpPort)
	for k, v := range env {
		run.Env[k] = v
	}
	return testenv.LaunchCaddyfile(t, run)
}

// startExample is launchExample failing the test if Caddy does not start.
func startExample(t *testing.T, file string, smtpPort int, env map[string]string) *caddyProc {
	t.Helper()
	p, err := launchExample(t, file, smtpPort, env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
