package emailotp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-email-otp/emailotp/internal/testenv"
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
			ex := startExample(t, tc.file, freePort(t), secrets) // nothing is mailed
			cfg := httpGet(t, "http://"+ex.AdminAddr+"/config/")
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

			autosave := filepath.Join(ex.Dir, "config", "caddy", "autosave.json")
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
			right := post(t, ex.Base+DefaultTokenPath, form, []string{tc.client, secrets[tc.envVar]})
			if right.Status != http.StatusBadRequest || right.str("error") != "invalid_request" {
				t.Errorf("with the environment's secret: %s", right)
			}
			demo := map[string]string{"EMAIL_OTP_CLIENT_SECRET": "demo-secret", "EMAIL_OTP_API_SECRET": "api-demo-secret"}[tc.envVar]
			wrong := post(t, ex.Base+DefaultTokenPath, form, []string{tc.client, demo})
			if wrong.Status != http.StatusUnauthorized || wrong.str("error") != "invalid_client" {
				t.Errorf("with the demo secret: %s", wrong)
			}
		})
	}
}

// TestExampleRefusesUnsetSecret: without the secret's variable Caddy does
// not start, rather than accept a secret everybody knows or an empty one.
func TestExampleRefusesUnsetSecret(t *testing.T) {
	ex, err := launchExample(t, "Caddyfile.example", freePort(t), map[string]string{"EMAIL_OTP_CLIENT_SECRET": ""})
	if err == nil {
		t.Fatal("Caddy started with EMAIL_OTP_CLIENT_SECRET unset")
	}
	if !errors.Is(err, testenv.ErrCaddyExited) {
		t.Fatal(err)
	}
	if ex.ExitCode() == 0 {
		t.Errorf("exit code 0 with the secret unset")
	}
	if out := ex.Output(); !strings.Contains(out, "secret") || !strings.Contains(out, "demo-app") {
		t.Errorf("the error does not name the client and its secret:\n%s", out)
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
