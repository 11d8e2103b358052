package emailotp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/coreos/go-oidc/v3/oidc"
)

// readmeSite is the site address the README's curl session talks to, the
// example's default; the test runs the example elsewhere and rewrites it.
const readmeSite = "http://localhost:8080"

// TestExample runs Caddyfile.example as shipped (only the environment points
// it at free ports and a mailpit of the test) and replays the README's curl
// session against it, as parsed from README.md: the two calls with the
// README's credentials and parameters, the code read from the mail. Then the
// discovery document and the JWKS at the paths the README names must verify
// the id_token.
func TestExample(t *testing.T) {
	mp := startMailpit(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	loadExample(t, "Caddyfile.example", site, mp.SMTPPort)

	calls := readmeCurlCalls(t)
	if len(calls) != 2 {
		t.Fatalf("README's curl session has %d calls, want 2", len(calls))
	}
	initiate := calls[0].send(t, site, nil)
	if initiate.Status != http.StatusOK || initiate.reference() == "" {
		t.Fatalf("README's initiate call: %s", initiate)
	}
	to := calls[0].form.Get("username")
	msg := mp.WaitFor(t, to, 10*time.Second)
	if msg.Subject != "Your one-time password" || !strings.Contains(msg.Text, "It expires in 10m.") {
		t.Errorf("mail: subject %q, text without the example's body", msg.Subject)
	}
	code := codeFrom(t, msg.Text, DefaultCodeLength)
	tok := calls[1].send(t, site, map[string]string{
		"x_globalsign_iam_reference_id": initiate.reference(),
		"x_globalsign_iam_otp_code":     code,
	})
	if tok.Status != http.StatusOK {
		t.Fatalf("README's validate call: %s", tok)
	}
	// The README shows this answer; every field must be there.
	if tok.str("token_type") != "Bearer" || tok.str("scope") != "openid" || tok.JSON["expires_in"] != 3600.0 ||
		tok.str("access_token") == "" || tok.str("id_token") == "" {
		t.Fatalf("tokens: %v", tok.JSON)
	}

	// The paths the README gives for discovery and JWKS, on this site.
	readme := readFile(t, "README.md")
	discoveryURL := readmeSite + "/uas/.well-known/openid-configuration"
	for _, p := range []string{discoveryURL, "`/uas/oauth2/metadata.jwks`"} {
		if !strings.Contains(readme, p) {
			t.Fatalf("README no longer names %s", p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, site+"/uas")
	if err != nil {
		t.Fatalf("discovery at %s/uas/.well-known/openid-configuration: %v", site, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURI != site+"/uas/oauth2/metadata.jwks" {
		t.Errorf("jwks_uri = %q (%v), want the README's path", meta.JWKSURI, err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "demo-app"}).Verify(ctx, tok.str("id_token"))
	if err != nil {
		t.Fatalf("id_token does not verify through the example's discovery and JWKS: %v", err)
	}
	var claims struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != to || claims.Email != to || claims.Role != "demo" || idt.Issuer != site+"/uas" {
		t.Errorf("id_token: sub %q iss %q claims %+v", idt.Subject, idt.Issuer, claims)
	}
	if _, err := oidc.NewRemoteKeySet(ctx, site+"/uas/oauth2/metadata.jwks").VerifySignature(ctx, tok.str("access_token")); err != nil {
		t.Errorf("access token does not verify against the JWKS: %v", err)
	}

	// Everything else reaches the app behind, as the example's comment says.
	app := httpGet(t, site+"/")
	if app.Status != 200 || !strings.HasPrefix(string(app.Body), "Hello from the app behind Caddy.") {
		t.Errorf("app behind: %s", app)
	}
}

// loadExample loads a shipped Caddyfile in this process the way `caddy run`
// would, with the environment the README documents pointing it at site and at
// the test's SMTP port; config autosave and logs stay in a temp dir.
func loadExample(t *testing.T, file, site string, smtpPort int) {
	t.Helper()
	src := []byte(readFile(t, file))
	dir := t.TempDir()
	t.Setenv("EMAIL_OTP_SITE", site)
	t.Setenv("EMAIL_OTP_ADMIN_PORT", fmt.Sprint(freePort(t)))
	t.Setenv("SMTP_HOST", "127.0.0.1")
	t.Setenv("SMTP_PORT", fmt.Sprint(smtpPort))
	t.Setenv("EMAIL_OTP_CLIENT_SECRET", "demo-secret") // as scripts/run.sh sets them
	t.Setenv("EMAIL_OTP_API_SECRET", "api-demo-secret")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	cfg, warn, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": file})
	if err != nil {
		t.Fatalf("adapting %s: %v", file, err)
	}
	for _, w := range warn {
		if !strings.Contains(w.Message, "formatted") {
			t.Errorf("%s: %s", file, w.String())
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	admin, _ := doc["admin"].(map[string]any)
	if admin == nil {
		t.Fatalf("%s has no admin block", file)
	}
	admin["config"] = map[string]any{"persist": false}
	// Caddy's default storage is fixed at init (XDG_DATA_HOME above comes too
	// late for this process): the example's limits and ledger live here.
	doc["storage"] = map[string]any{"module": "file_system", "root": filepath.Join(dir, "data")}
	doc["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{
		"writer": map[string]any{"output": "file", "filename": filepath.Join(dir, "caddy.log")}}}}
	if cfg, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// curlCall is one curl command of the README: -u user:password, the -d
// fields in order and the URL.
type curlCall struct {
	user, password string
	fields         []string // "name=value", sent as curl sends -d: raw, joined by &
	form           url.Values
	url            string
}

// readmeCurlCalls parses the curl commands of the README's "A session with
// curl" code block, so the test fails when README and example drift apart.
func readmeCurlCalls(t *testing.T) []curlCall {
	t.Helper()
	readme := readFile(t, "README.md")
	_, rest, ok := strings.Cut(readme, "## A session with curl")
	if !ok {
		t.Fatal("README has no \"A session with curl\" section")
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(rest)
	if block == nil {
		t.Fatal("README's curl section has no sh code block")
	}
	var calls []curlCall
	for _, cmd := range strings.Split(strings.ReplaceAll(block[1], "\\\n", " "), "\n") {
		words := strings.Fields(cmd)
		if len(words) == 0 || words[0] != "curl" {
			continue
		}
		var c curlCall
		for i := 1; i < len(words); i++ {
			switch w := words[i]; {
			case w == "-u" && i+1 < len(words):
				i++
				c.user, c.password, _ = strings.Cut(words[i], ":")
			case w == "-d" && i+1 < len(words):
				i++
				c.fields = append(c.fields, words[i])
			case w == "-s":
			case strings.HasPrefix(w, "http"):
				c.url = w
			default:
				t.Fatalf("README curl: unexpected word %q in %q", w, cmd)
			}
		}
		c.form = url.Values{}
		for _, f := range c.fields {
			k, v, _ := strings.Cut(f, "=")
			c.form.Add(k, v)
		}
		if !strings.HasPrefix(c.url, readmeSite+"/") || c.user == "" {
			t.Fatalf("README curl: URL %q on %s with -u expected", c.url, readmeSite)
		}
		calls = append(calls, c)
	}
	return calls
}

// send performs the call on site as curl would, with the values of the
// fields named in subst (the README's placeholders) replaced.
func (c curlCall) send(t *testing.T, site string, subst map[string]string) answer {
	t.Helper()
	fields := make([]string, len(c.fields))
	for i, f := range c.fields {
		k, _, _ := strings.Cut(f, "=")
		if v, ok := subst[k]; ok {
			f = k + "=" + url.QueryEscape(v)
		}
		fields[i] = f
	}
	req, err := http.NewRequest(http.MethodPost, site+strings.TrimPrefix(c.url, readmeSite), strings.NewReader(strings.Join(fields, "&")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.user, c.password)
	return do(t, req)
}
