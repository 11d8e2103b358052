package emailotp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"/app/":                         "/app/",
		"/app/page?x=1&y=%2F#frag":      "/app/page?x=1&y=%2F#frag",
		"/":                             "/",
		"/%2F%2Fevil.example":           "/%2F%2Fevil.example", // a path, not a host
		"":                              "/",
		"//evil.example":                "/",
		"///evil.example":               "/",
		`/\evil.example`:                "/",
		`\/evil.example`:                "/",
		`/app\..\x`:                     "/",
		"https://evil.example":          "/",
		"http:/evil.example":            "/",
		"javascript:alert(1)":           "/",
		"evil.example":                  "/",
		"app/":                          "/",
		"/\t/evil.example":              "/",
		"/\n/evil.example":              "/",
		"/ /evil.example":               "/",
		"/app/\x00":                     "/",
		"/caf\u00e9":                    "/",
		"/" + strings.Repeat("a", 3000): "/",
	} {
		if got := safeReturn(in); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeReturn(f *testing.F) {
	for _, s := range []string{"/app/", "//evil.example", `/\evil`, "https://x", "/\t/x", "/a?b=//c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeReturn(s)
		if got == "/" {
			return
		}
		if got != s {
			t.Fatalf("safeReturn(%q) = %q: rewrote instead of refusing", s, got)
		}
		// What a browser would do with it: resolve against this site.
		base, _ := http.NewRequest(http.MethodGet, "https://site.example/now", nil)
		u, err := base.URL.Parse(got)
		if err != nil || u.Host != "site.example" || u.Scheme != "https" {
			t.Fatalf("safeReturn(%q) = %q leaves the site: %v", s, got, u)
		}
		if strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n ") {
			t.Fatalf("safeReturn(%q) = %q", s, got)
		}
	})
}

func TestCheckCSRF(t *testing.T) {
	tok, other := newCSRFToken(), newCSRFToken()
	const name = "email_otp_session_csrf"
	type req struct {
		cookie, form string
		headers      map[string]string
		host         string
	}
	for _, c := range []struct {
		name string
		req  req
		want bool
	}{
		{"token matches, no metadata (old browser, curl)", req{cookie: tok, form: tok}, true},
		{"token matches, same-origin metadata", req{cookie: tok, form: tok, headers: map[string]string{"Origin": "http://site.example", "Sec-Fetch-Site": "same-origin"}}, true},
		{"origin with default port", req{cookie: tok, form: tok, host: "site.example:443", headers: map[string]string{"Origin": "https://site.example"}}, true},
		{"no cookie", req{form: tok}, false},
		{"no form token", req{cookie: tok}, false},
		{"different tokens", req{cookie: tok, form: other}, false},
		{"truncated token", req{cookie: tok[:20], form: tok[:20]}, false},
		{"not base64", req{cookie: strings.Repeat("!", 43), form: strings.Repeat("!", 43)}, false},
		{"cross-site fetch", req{cookie: tok, form: tok, headers: map[string]string{"Sec-Fetch-Site": "cross-site"}}, false},
		{"same-site fetch (sibling subdomain)", req{cookie: tok, form: tok, headers: map[string]string{"Sec-Fetch-Site": "same-site"}}, false},
		{"foreign origin", req{cookie: tok, form: tok, headers: map[string]string{"Origin": "https://evil.example"}}, false},
		{"null origin", req{cookie: tok, form: tok, headers: map[string]string{"Origin": "null"}}, false},
		{"origin with other port", req{cookie: tok, form: tok, headers: map[string]string{"Origin": "http://site.example:8443"}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://site.example/email-otp/signin/start", nil)
			if c.req.host != "" {
				r.Host = c.req.host
			}
			if c.req.cookie != "" {
				r.AddCookie(&http.Cookie{Name: name, Value: c.req.cookie})
			}
			for k, v := range c.req.headers {
				r.Header.Set(k, v)
			}
			if why := csrfProblem(r, name, c.req.form); (why == "") != c.want {
				t.Errorf("csrfProblem = %q, want accepted=%v", why, c.want)
			}
		})
	}
}

func TestPageLocalesPick(t *testing.T) {
	pl, err := newPageLocales([]string{"sv-SE", "fi", "it"}, nil) // no Italian page strings
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ accept, lang, signIn string }{
		{"", "en", "Sign in"},
		{"fi", "fi", "Kirjaudu sisään"},
		{"fi-FI,fi;q=0.9,en;q=0.8", "fi", "Kirjaudu sisään"},
		{"sv", "sv-SE", "Logga in"},
		{"sv-FI", "sv-SE", "Logga in"},
		{"it-IT,it;q=0.9", "en", "Sign in"}, // mail may be Italian; the page has no Italian
		{"it, sv;q=0.5", "sv-SE", "Logga in"},
		{"en-GB, fi;q=0.3", "en", "Sign in"},
		{"!!garbage!!", "en", "Sign in"},
		{strings.Repeat("x-", 2000), "en", "Sign in"},
	} {
		tag, txt := pl.pick(c.accept)
		if tag.String() != c.lang || txt.SignIn != c.signIn {
			t.Errorf("pick(%.30q) = %s %q, want %s %q", c.accept, tag, txt.SignIn, c.lang, c.signIn)
		}
	}
	// Without template locales the pages are English only.
	if pl, _ := newPageLocales(nil, nil); pl.texts[0] != nil {
		if tag, _ := pl.pick("fi"); tag.String() != "en" {
			t.Errorf("no template locales: pick(fi) = %s", tag)
		}
	}
	// Every shipped language fills every string.
	for lang, txt := range pageTexts {
		b, _ := json.Marshal(txt)
		var m map[string]string
		_ = json.Unmarshal(b, &m)
		for k, v := range m {
			if v == "" {
				t.Errorf("%s: %s is empty", lang, k)
			}
		}
		if !strings.Contains(txt.CodeValid, "%d") {
			t.Errorf("%s: CodeValid lacks %%d", lang)
		}
	}
}

// sessionHandler is a Handler with just what minting and verifying a session
// need: keys from a fresh storage and the sign-in defaults.
func sessionHandler(t *testing.T) *Handler {
	t.Helper()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	keys, err := loadSigningKeys(context.Background(), storage, "ES256", "")
	if err != nil {
		t.Fatal(err)
	}
	s := SignInConfig{}.withDefaults(nil)
	h := &Handler{keys: keys, SignIn: &s, TokenPath: DefaultTokenPath, basePath: "/uas", logger: zap.NewNop()}
	h.signIn = &signIn{cfg: h.SignIn, keys: h.keys, logger: h.logger, issuer: h.issuer}
	return h
}

func TestSessionToken(t *testing.T) {
	h := sessionHandler(t)
	r := httptest.NewRequest(http.MethodPost, "http://site.example/email-otp/signin/verify", nil)
	iss := h.issuer(r)
	t0 := time.Now()
	tok, err := h.signIn.mintSession(r, "alice@example.com", t0)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := h.keys.verifySession(tok, iss, t0.Add(time.Minute))
	if err != nil || addr != "alice@example.com" {
		t.Fatalf("verifySession = %q, %v", addr, err)
	}

	// The contract with email_otp_gate: header and claims.
	parts := strings.Split(tok, ".")
	var hdr map[string]any
	var claims map[string]any
	mustB64JSON(t, parts[0], &hdr)
	mustB64JSON(t, parts[1], &claims)
	if hdr["typ"] != "session+jwt" || hdr["kid"] != h.keys.loaded().kid || hdr["alg"] != "ES256" {
		t.Errorf("header = %v", hdr)
	}
	aud, _ := claims["aud"].([]any)
	if claims["iss"] != "http://site.example/uas" || claims["sub"] != "alice@example.com" || claims["email"] != "alice@example.com" ||
		len(aud) != 1 || aud[0] != "email_otp_session" || claims["jti"] == "" ||
		claims["exp"].(float64)-claims["iat"].(float64) != (12*time.Hour).Seconds() {
		t.Errorf("claims = %v", claims)
	}

	forge := func(edit func(map[string]any)) string {
		c := map[string]any{}
		mustB64JSON(t, parts[1], &c)
		edit(c)
		b, _ := json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}
	other := sessionHandler(t) // another server's key
	foreign, _ := other.signIn.mintSession(r, "alice@example.com", t0)
	at, _ := jwt.Signed(h.keys.atSigner).Claims(jwt.Claims{Issuer: iss, Subject: "alice@example.com",
		Audience: jwt.Audience{sessionAudience}, Expiry: jwt.NewNumericDate(t0.Add(time.Hour))}).
		Claims(map[string]any{"email": "alice@example.com"}).Serialize()
	for name, bad := range map[string]string{
		"payload changed (other address)": forge(func(c map[string]any) { c["sub"], c["email"] = "mallory@example.com", "mallory@example.com" }),
		"payload changed (longer life)":   forge(func(c map[string]any) { c["exp"] = c["exp"].(float64) + 3600 }),
		"signature cut":                   parts[0] + "." + parts[1] + ".",
		"signature of another token":      parts[0] + "." + parts[1] + "." + strings.Split(foreign, ".")[2],
		"signed by another server's key":  foreign,
		"access token of the same key":    at,
		"unsigned (alg none)":             base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"session+jwt"}`)) + "." + parts[1] + ".",
		"garbage":                         "not-a-token",
		"empty":                           "",
	} {
		if addr, err := h.keys.verifySession(bad, iss, t0); err == nil {
			t.Errorf("%s: accepted as %q", name, addr)
		}
	}
	if _, err := h.keys.verifySession(tok, "http://other.example/uas", t0); err == nil {
		t.Error("accepted with another issuer")
	}
	if _, err := h.keys.verifySession(tok, iss, t0.Add(12*time.Hour+2*time.Minute)); err == nil {
		t.Error("accepted after expiry")
	}
}

func mustB64JSON(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestSignInCaddyfile: the signin block's syntax and its errors, as golden
// files (testdata/caddyfile/email_otp_signin_*.txt).
func TestSignInCaddyfile(t *testing.T) { runGolden(t, "email_otp_signin_*.txt") }

// TestSignInCaddyfileDefaults: what a signin block leaves out is filled in.
func TestSignInCaddyfileDefaults(t *testing.T) {
	const base = `email_otp {
		smtp 127.0.0.1 {
			tls none
			from no-reply@example.com
		}
		client app app-secret
		%s
	}`
	good := []struct {
		block string
		want  SignInConfig // after withDefaults
	}{
		{"signin", SignInConfig{Path: DefaultSignInPath, Cookie: DefaultSessionCookie, SessionLifetime: caddy.Duration(12 * time.Hour), Client: "app"}},
		{"signin /login", SignInConfig{Path: "/login", Cookie: DefaultSessionCookie, SessionLifetime: caddy.Duration(12 * time.Hour), Client: "app"}},
		{`signin {
			path /auth/signin
			cookie sess
			session_lifetime 1h
			client app
			title "Example intranet"
		}`, SignInConfig{Path: "/auth/signin", Cookie: "sess", SessionLifetime: caddy.Duration(time.Hour), Client: "app", Title: "Example intranet"}},
		{`signin {
			idle_timeout 30m
			cookie_domain example.com
			audit_log_address full
		}`, SignInConfig{Path: DefaultSignInPath, Cookie: DefaultSessionCookie, SessionLifetime: caddy.Duration(12 * time.Hour), Client: "app",
			SessionConfig: SessionConfig{IdleTimeout: caddy.Duration(30 * time.Minute), CookieDomain: "example.com", AuditLogAddress: "full"}}},
	}
	for _, c := range good {
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(strings.Replace(base, "%s", c.block, 1))); err != nil {
			t.Errorf("%q: %v", c.block, err)
			continue
		}
		if h.SignIn == nil {
			t.Errorf("%q: no SignIn", c.block)
			continue
		}
		if got := h.SignIn.withDefaults(h.Clients); got.Path != c.want.Path || got.Cookie != c.want.Cookie ||
			got.SessionLifetime != c.want.SessionLifetime || got.Client != c.want.Client || got.Title != c.want.Title ||
			got.SessionConfig != c.want.SessionConfig {
			t.Errorf("%q: got %+v", c.block, got)
		}
	}
}
