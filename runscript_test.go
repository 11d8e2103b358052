package emailotp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunScript runs scripts/run.sh, the README's first command, in a copy of
// the scripts directory with the real mailpit and a stand-in for Caddy: `go
// build` (a wrapper first in PATH; every other go command is the real one)
// writes a stub that records how it was started and asks mailpit's API
// whether it is up. The script must start Caddy only once its own mailpit
// answers, and otherwise exit non-zero naming the port (and the log file once
// mailpit ran) instead of leaving Caddy to answer 503 to every initiate.
func TestRunScript(t *testing.T) {
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not in PATH: %v", err)
	}
	mailpitBin, err := filepath.Abs(mailpitBinary(t))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		taken  string // "ui", "smtp" or ""
		env    []string
		wantOK bool
		want   []string // in stderr; %UI% and %SMTP% are the ports
	}{
		{name: "mailpit up", wantOK: true},
		{name: "ui port taken", taken: "ui", want: []string{"127.0.0.1:%UI%", "already in use", "MAILPIT_UI_PORT"}},
		{name: "smtp port taken", taken: "smtp", want: []string{"127.0.0.1:%SMTP%", "already in use", "SMTP_PORT"}},
		{name: "mailpit exits", env: []string{"MP_UI_TLS_CERT=/nonexistent/cert.pem", "MP_UI_TLS_KEY=/nonexistent/key.pem"},
			want: []string{"mailpit exited", "127.0.0.1:%UI%", ".tmp/mailpit.log", "TLS certificate not found"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := runScriptRoot(t, realGo, mailpitBin)
			ports := freePorts(t, 2)
			ui, smtp := ports[0], ports[1]
			switch c.taken {
			case "ui", "smtp":
				p := map[string]int{"ui": ui, "smtp": smtp}[c.taken]
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
			}

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "run.sh"))
			cmd.Env = append(os.Environ(),
				"PATH="+filepath.Join(root, "fakebin")+string(os.PathListSeparator)+os.Getenv("PATH"),
				fmt.Sprintf("MAILPIT_UI_PORT=%d", ui), fmt.Sprintf("SMTP_PORT=%d", smtp),
				"EMAIL_OTP_SITE=http://127.0.0.1:1")
			cmd.Env = append(cmd.Env, c.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			// The script starts mailpit in the background: on timeout kill
			// the whole group so nothing outlives the test.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			cmd.WaitDelay = 5 * time.Second
			runErr := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("run.sh did not finish in time\nstdout: %s\nstderr: %s", &stdout, &stderr)
			}
			caddyArgs, caddyErr := os.ReadFile(filepath.Join(root, ".tmp", "caddy-args"))

			if !c.wantOK {
				if runErr == nil {
					t.Fatalf("run.sh exited 0; stdout: %s\nstderr: %s", &stdout, &stderr)
				}
				if caddyErr == nil {
					t.Errorf("Caddy was started (%s) although mailpit was not up", bytes.TrimSpace(caddyArgs))
				}
				for _, w := range c.want {
					w = strings.NewReplacer("%UI%", fmt.Sprint(ui), "%SMTP%", fmt.Sprint(smtp)).Replace(w)
					if !strings.Contains(stderr.String(), w) {
						t.Errorf("stderr does not say %q:\n%s", w, &stderr)
					}
				}
				return
			}

			if runErr != nil {
				t.Fatalf("run.sh: %v\nstdout: %s\nstderr: %s", runErr, &stdout, &stderr)
			}
			if caddyErr != nil {
				t.Fatalf("Caddy was not started: %v", caddyErr)
			}
			if got, want := strings.TrimSpace(string(caddyArgs)), "run --config Caddyfile.example --adapter caddyfile"; got != want {
				t.Errorf("caddy started with %q, want %q", got, want)
			}
			goArgs, _ := os.ReadFile(filepath.Join(root, ".tmp", "go-build-args"))
			if got, want := strings.TrimSpace(string(goArgs)), "build -o .bin/caddy ./cmd/caddy"; got != want {
				t.Errorf("go called with %q, want %q", got, want)
			}
			info, _ := os.ReadFile(filepath.Join(root, ".tmp", "mailpit-info"))
			if !bytes.HasPrefix(info, []byte("HTTP/1.0 200")) || !bytes.Contains(info, []byte(`"Version"`)) {
				t.Errorf("when Caddy started, mailpit's API answered %q, want 200 with its version", info)
			}
			if want := fmt.Sprintf("mailpit: http://127.0.0.1:%d", ui); !strings.Contains(stdout.String(), want) {
				t.Errorf("stdout does not say %q:\n%s", want, &stdout)
			}
			// The script's trap stops mailpit when Caddy ends.
			deadline := time.Now().Add(10 * time.Second)
			for {
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ui), time.Second)
				if err != nil {
					break
				}
				c.Close()
				if time.Now().After(deadline) {
					t.Fatal("mailpit still answers after run.sh exited")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// runScriptRoot is a scratch copy of the repo as run.sh sees it: the two
// scripts it runs, the installed mailpit, and fakebin/go, which answers
// `go build` with the Caddy stub and hands every other command to realGo.
func runScriptRoot(t *testing.T, realGo, mailpitBin string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"scripts", ".bin", "fakebin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"run.sh", "install-mailpit.sh"} {
		b, err := os.ReadFile(filepath.Join("scripts", s))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "scripts", s), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(mailpitBin, filepath.Join(root, ".bin", "mailpit")); err != nil {
		t.Fatal(err)
	}
	// The stub asks mailpit's API over bash's /dev/tcp, so the test needs
	// no curl.
	stub := `#!/usr/bin/env bash
echo "$@" > .tmp/caddy-args
exec 3<>"/dev/tcp/127.0.0.1/$MAILPIT_UI_PORT" || exit 0
printf 'GET /api/v1/info HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
timeout 5 cat <&3 > .tmp/mailpit-info
`
	fakeGo := fmt.Sprintf(`#!/usr/bin/env bash
if [ "$1" = build ]; then
	echo "$@" > .tmp/go-build-args
	cat > "$3" <<'STUB'
%sSTUB
	chmod +x "$3"
	exit 0
fi
exec %q "$@"
`, stub, realGo)
	if err := os.WriteFile(filepath.Join(root, "fakebin", "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}
