package emailotp

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// publishedPaths are what the handler serves under the default issuer
// besides the grant, each with the method that asks for it.
var publishedPaths = []struct{ method, path string }{
	{http.MethodGet, "/uas/.well-known/openid-configuration"},
	{http.MethodGet, "/uas/.well-known/oauth-authorization-server"},
	{http.MethodGet, "/.well-known/oauth-authorization-server/uas"},
	{http.MethodGet, "/uas" + metadataSuffix},
	{http.MethodGet, "/uas" + jwksSuffix},
	{http.MethodPost, "/uas" + introspectSuffix},
	{http.MethodPost, "/uas" + revokeSuffix},
}

// TestGrantOnly fronts a stand-in for Ubisecure SSO (the site's respond):
// with grant_only the plugin answers the smtp-otp grant and nothing else,
// so the real server's discovery, metadata.json, JWKS, introspection and
// revocation reach it; with another issuer path they are served there; by
// default the plugin answers them at /uas.
func TestGrantOnly(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, "\t\tgrant_only"))

	ask := func(method, path string) answer {
		t.Helper()
		if method == http.MethodGet {
			return httpGet(t, tc.Base+path)
		}
		return post(t, tc.Base+path, url.Values{"token": {"x"}}, appCreds)
	}
	for _, p := range publishedPaths {
		if a := ask(p.method, p.path); a.Status != 299 || !strings.HasPrefix(string(a.Body), "upstream saw "+p.method+" "+p.path) {
			t.Errorf("grant_only: %s %s answered by the plugin: %s", p.method, p.path, a)
		}
	}
	if a := post(t, tc.Base+tokenPath, url.Values{"grant_type": {"client_credentials"}}, appCreds); a.Status != 299 {
		t.Errorf("grant_only: another grant not passed on: %s", a)
	}
	ref, code, _ := initiate(t, tc, mp, "fronted@example.com", nil, appCreds)
	if a := post(t, tc.Base+tokenPath, validateForm(ref, code), appCreds); a.Status != http.StatusOK || a.str("id_token") == "" {
		t.Fatalf("grant_only: the grant: %s", a)
	}

	// Elsewhere: another issuer path moves the plugin's documents off /uas;
	// the grant stays at /uas/oauth2/token.
	tc.load(t, otpSite(mp.SMTPPort, "\t\tissuer "+tc.Base+"/email-otp"))
	for _, p := range publishedPaths {
		if a := ask(p.method, p.path); a.Status != 299 {
			t.Errorf("issuer elsewhere: %s %s answered by the plugin: %s", p.method, p.path, a)
		}
		moved := strings.Replace(p.path, "/uas", "/email-otp", 1)
		if a := ask(p.method, moved); a.Status != http.StatusOK || strings.HasPrefix(string(a.Body), "upstream saw") {
			t.Errorf("issuer elsewhere: %s %s not answered by the plugin: %s", p.method, moved, a)
		}
	}
	d := httpGet(t, tc.Base+"/email-otp/.well-known/openid-configuration")
	var doc map[string]any
	if err := json.Unmarshal(d.Body, &doc); err != nil || doc["token_endpoint"] != tc.Base+tokenPath {
		t.Errorf("issuer elsewhere: token_endpoint %v (%v)", doc["token_endpoint"], err)
	}

	tc.load(t, otpSite(mp.SMTPPort, ""))
	for _, p := range publishedPaths {
		if a := ask(p.method, p.path); a.Status != http.StatusOK || strings.HasPrefix(string(a.Body), "upstream saw") {
			t.Errorf("default: %s %s not answered by the plugin: %s", p.method, p.path, a)
		}
	}
}

// TestGrantOnlyConfig: the Caddyfile and JSON spell the option alike.
func TestGrantOnlyConfig(t *testing.T) {
	const rest = "\tsmtp 127.0.0.1 {\n\t\tfrom a@example.com\n\t}\n\tclient app app-secret\n}"
	var h Handler
	d := caddyfile.NewTestDispenser("email_otp {\n\tgrant_only\n" + rest)
	if err := h.UnmarshalCaddyfile(d); err != nil || !h.GrantOnly {
		t.Fatalf("grant_only: %v, GrantOnly=%v", err, h.GrantOnly)
	}
	b, err := json.Marshal(Handler{GrantOnly: true})
	if err != nil || !strings.Contains(string(b), `"grant_only":true`) {
		t.Errorf("JSON: %s %v", b, err)
	}
	if err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser("email_otp {\n\tgrant_only on\n" + rest)); err == nil {
		t.Error("grant_only with an argument accepted")
	}
}
