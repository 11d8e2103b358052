package emailotp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExampleSecretsStayOutOfConfig runs each shipped Caddyfile as an
// operator would (`caddy run --config …`, config persistence on) with the
// client secrets in the environment, and checks that they work but stand
// neither in the admin API's GET /config/ nor in autosave.json: the examples
// read them as {env.…} placeholders at provision, where {$VAR} would paste
// them into the adapted config.
func TestExampleSecretsStayOutOfConfig(t *testing.T) {
	for _, tc := range []struct {
		file   string
		client string // a client of the file whose secret is tested
		envVar string // the variable its secret comes from
	}{
		{"Caddyfile.example", "demo-app", "EMAIL_OTP_CLIENT_SECRET"},
		{"Caddyfile.signin.example", "api", "EMAIL_OTP_API_SECRET"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			secrets := map[string]string{
				"EMAIL_OTP_CLIENT_SECRET": randomHex(t),
				"EMAIL_OTP_API_SECRET":    randomHex(t),
			}
			ex := runExampleProc(t, tc.file, secrets)
			if err := ex.wait(); err != nil {
				t.Fatal(err)
			}
			cfg := httpGet(t, "http://"+ex.admin+"/config/")
			if cfg.Status != http.StatusOK {
				t.Fatalf("GET /config/: %s", cfg)
			}
			for name, s := range secrets {
				if strings.Contains(string(cfg.Body), s) {
					t.Errorf("GET /config/ holds the value of %s", name)
				}
			}
			for _, known := range []string{"demo-secret", "api-demo-secret"} {
				if strings.Contains(string(cfg.Body), `"`+known+`"`) {
					t.Errorf("GET /config/ holds the demo secret %q", known)
				}
			}
			if !strings.Contains(string(cfg.Body), "{env."+tc.envVar+"}") {
				t.Errorf("GET /config/ lacks the placeholder {env.%s}", tc.envVar)
			}

			autosave := filepath.Join(ex.dir, "config", "caddy", "autosave.json")
			b, err := waitForFile(autosave, 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for name, s := range secrets {
				if strings.Contains(string(b), s) {
					t.Errorf("autosave.json holds the value of %s", name)
				}
			}

			// The placeholder did resolve: the environment's secret
			// authenticates (the bad address is refused after that), the
			// demo secret no longer does.
			form := url.Values{"grant_type": {DefaultGrantType}, "scope": {"openid"}, "username": {"not an address"}}
			right := post(t, ex.site+DefaultTokenPath, form, []string{tc.client, secrets[tc.envVar]})
			if right.Status != http.StatusBadRequest || right.str("error") != "invalid_request" {
				t.Errorf("with the environment's secret: %s", right)
			}
			demo := map[string]string{"EMAIL_OTP_CLIENT_SECRET": "demo-secret", "EMAIL_OTP_API_SECRET": "api-demo-secret"}[tc.envVar]
			wrong := post(t, ex.site+DefaultTokenPath, form, []string{tc.client, demo})
			if wrong.Status != http.StatusUnauthorized || wrong.str("error") != "invalid_client" {
				t.Errorf("with the demo secret: %s", wrong)
			}
		})
	}
}

// TestExampleRefusesUnsetSecret: without the secret's variable Caddy does
// not start, rather than accept a secret everybody knows or an empty one.
func TestExampleRefusesUnsetSecret(t *testing.T) {
	ex := runExampleProc(t, "Caddyfile.example", map[string]string{"EMAIL_OTP_CLIENT_SECRET": ""})
	select {
	case <-ex.done:
	case <-time.After(procStartTimeout):
		t.Fatal("Caddy started with EMAIL_OTP_CLIENT_SECRET unset")
	}
	if ex.cmd.ProcessState.ExitCode() == 0 {
		t.Errorf("exit code 0 with the secret unset")
	}
	if out := ex.out.String(); !strings.Contains(out, "secret") || !strings.Contains(out, "demo-app") {
		t.Errorf("the error does not name the client and its secret:\n%s", out)
	}
}

// exampleProc is `caddy run` on a shipped Caddyfile, pointed at free
// loopback ports, with its config and data dirs in a temp dir.
type exampleProc struct {
	site, admin, dir string
	cmd              *exec.Cmd
	done             chan struct{}
	out              *syncBuffer
}

func runExampleProc(t *testing.T, file string, env map[string]string) *exampleProc {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	ex := &exampleProc{
		site:  fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		admin: fmt.Sprintf("localhost:%d", ports[1]),
		dir:   t.TempDir(),
		done:  make(chan struct{}),
		out:   &syncBuffer{},
	}
	ex.cmd = exec.Command(caddyBinary(t), "run", "--config", abs, "--adapter", "caddyfile")
	ex.cmd.Dir = ex.dir
	ex.cmd.Stdout, ex.cmd.Stderr = ex.out, ex.out
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EMAIL_OTP_") {
			environ = append(environ, kv)
		}
	}
	environ = append(environ,
		"EMAIL_OTP_SITE="+ex.site,
		fmt.Sprintf("EMAIL_OTP_ADMIN_PORT=%d", ports[1]),
		"SMTP_HOST=127.0.0.1",
		fmt.Sprintf("SMTP_PORT=%d", ports[2]), // nothing is mailed
		"HOME="+filepath.Join(ex.dir, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(ex.dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(ex.dir, "data"),
	)
	for k, v := range env {
		if v != "" {
			environ = append(environ, k+"="+v)
		}
	}
	ex.cmd.Env = environ
	if err := ex.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ex.cmd.Wait(); close(ex.done) }()
	t.Cleanup(func() {
		select {
		case <-ex.done:
		default:
			_ = ex.cmd.Process.Signal(os.Interrupt)
			select {
			case <-ex.done:
			case <-time.After(procStopTimeout):
				_ = ex.cmd.Process.Kill()
				<-ex.done
			}
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", ex.out.String())
		}
	})
	return ex
}

// wait returns once the admin API and the site answer.
func (ex *exampleProc) wait() error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(procStartTimeout)
	for {
		select {
		case <-ex.done:
			return fmt.Errorf("caddy exited during startup (%v)", ex.cmd.ProcessState)
		default:
		}
		if get200(c, "http://"+ex.admin+"/config/") && getAny(c, ex.site+"/") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caddy not ready after %v", procStartTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitForFile(name string, d time.Duration) ([]byte, error) {
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile(name)
		if err == nil && len(b) > 0 {
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not written within %v: %v", name, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
