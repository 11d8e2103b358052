package emailotp

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

const signinPath = DefaultSignInPath

// signinSite is otpSite with the sign-in pages on, for the client "app".
func signinSite(smtpPort int, extra string) string {
	return otpSite(smtpPort, `
		signin {
			client app
			session_lifetime 12h
		}
`+extra)
}

// browserless is an HTTP client that keeps cookies and does not follow
// redirects, so each answer can be inspected.
type browserless struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowserless(t *testing.T, base string) *browserless {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserless{t: t, base: base, c: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type pageAnswer struct {
	Status int
	Header http.Header
	Body   string
}

// field returns the value of the input with this name in the page, or "".
func (p pageAnswer) field(name string) string {
	m := regexp.MustCompile(`<input[^>]*name="` + regexp.QuoteMeta(name) + `"[^>]*value="([^"]*)"`).FindStringSubmatch(p.Body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func (b *browserless) do(method, path string, form url.Values, hdr map[string]string) pageAnswer {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return pageAnswer{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

func (b *browserless) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestSignInPages drives the pages over plain HTTP: headers, languages,
// CSRF refusals, the flow's status codes and the per-user-IP limit.
func TestSignInPages(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, signinSite(mp.SMTPPort, "limit user_ip 3 15m"))
	b := newBrowserless(t, tc.Base)

	form := b.do(http.MethodGet, signinPath+"?return=%2Fapp%2F", nil, nil)
	t.Run("page headers and markup", func(t *testing.T) {
		if form.Status != 200 {
			t.Fatalf("GET form: %d %s", form.Status, form.Body)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": pageCSP,
			"Cache-Control":           "no-store",
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin", // no-referrer would make Chromium send Origin: null
			"Content-Language":        "en",
			"Content-Type":            "text/html; charset=utf-8",
		} {
			if got := form.Header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		for _, want := range []string{`<html lang="en">`, `<label for="email">`, `autocomplete="email"`,
			`aria-describedby="email-hint"`, `action="` + signinPath + `/start"`} {
			if !strings.Contains(form.Body, want) {
				t.Errorf("form lacks %s", want)
			}
		}
		if form.field("return") != "/app/" || len(form.field("csrf")) != csrfTokenLen {
			t.Errorf("hidden fields: return=%q csrf=%q", form.field("return"), form.field("csrf"))
		}
		if strings.Contains(form.Body, "<script") || regexp.MustCompile(`(src|href)="https?:`).MatchString(form.Body) {
			t.Error("page loads a script or an external resource")
		}
		c := b.cookie("email_otp_session_csrf")
		if c == nil || c.Value != form.field("csrf") {
			t.Fatalf("CSRF cookie %v does not match the form", c)
		}
		if sc := form.Header.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
			t.Errorf("CSRF cookie attributes: %s", sc)
		}
		css := b.do(http.MethodGet, signinPath+"/style.css", nil, nil)
		if css.Status != 200 || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || !strings.Contains(css.Body, "font-family") {
			t.Errorf("style.css: %d %s", css.Status, css.Header.Get("Content-Type"))
		}
		if a := b.do(http.MethodGet, signinPath+"/nope", nil, nil); a.Status != 404 || a.Header.Get("Content-Security-Policy") != pageCSP {
			t.Errorf("unknown subpath: %d", a.Status)
		}
		if a := b.do(http.MethodGet, signinPath+"/start", nil, nil); a.Status != 405 || a.Header.Get("Allow") != "POST" {
			t.Errorf("GET start: %d Allow=%q", a.Status, a.Header.Get("Allow"))
		}
	})

	t.Run("language by Accept-Language", func(t *testing.T) {
		for _, c := range []struct{ accept, lang, label string }{
			{"fi-FI,fi;q=0.9", "fi", "Sähköpostiosoite"},
			{"sv", "sv-SE", "E-postadress"},
			{"de", "en", "Email address"},
		} {
			a := b.do(http.MethodGet, signinPath, nil, map[string]string{"Accept-Language": c.accept})
			if !strings.Contains(a.Body, `<html lang="`+c.lang+`">`) || !strings.Contains(a.Body, c.label) || a.Header.Get("Content-Language") != c.lang {
				t.Errorf("Accept-Language %q: want lang %s with %q", c.accept, c.lang, c.label)
			}
		}
	})

	tok := form.field("csrf")
	var secrets []string // references and session cookies, for the log check
	t.Run("no POST without the CSRF token", func(t *testing.T) {
		cases := []struct {
			name string
			path string
			form url.Values
			hdr  map[string]string
		}{
			{"start without token", "/start", url.Values{"email": {"csrf@example.com"}}, nil},
			{"start with a wrong token", "/start", url.Values{"email": {"csrf@example.com"}, "csrf": {newCSRFToken()}}, nil},
			{"start from another origin", "/start", url.Values{"email": {"csrf@example.com"}, "csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}},
			{"start cross-site", "/start", url.Values{"email": {"csrf@example.com"}, "csrf": {tok}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
			{"verify without token", "/verify", url.Values{"reference": {"x"}, "code": {"12345678"}}, nil},
			{"signout without token", "/signout", url.Values{}, nil},
		}
		for _, c := range cases {
			a := b.do(http.MethodPost, signinPath+c.path, c.form, c.hdr)
			if a.Status != http.StatusForbidden || !strings.Contains(a.Body, pageTexts["en"].ErrCSRF) {
				t.Errorf("%s: %d, want 403", c.name, a.Status)
			}
		}
		// Without the cookie, the right field value is no use either.
		nojar := newBrowserless(t, tc.Base)
		if a := nojar.do(http.MethodPost, signinPath+"/start", url.Values{"email": {"csrf@example.com"}, "csrf": {tok}}, nil); a.Status != 403 {
			t.Errorf("token without cookie: %d", a.Status)
		}
		if n := mp.Count(t, "csrf@example.com"); n != 0 {
			t.Errorf("%d mails sent by refused posts", n)
		}
	})

	t.Run("flow status codes", func(t *testing.T) {
		post := func(path string, f url.Values, hdr map[string]string) pageAnswer {
			f.Set("csrf", tok)
			return b.do(http.MethodPost, signinPath+path, f, hdr)
		}
		if a := post("/start", url.Values{"email": {"not an address"}, "return": {"/app/"}}, nil); a.Status != 400 ||
			!strings.Contains(a.Body, `aria-describedby="error email-hint"`) || !strings.Contains(a.Body, `aria-invalid="true"`) {
			t.Errorf("bad address: %d", a.Status)
		}
		a := post("/start", url.Values{"email": {"pia@example.com"}, "return": {"/app/?tab=2"}}, map[string]string{
			"Accept-Language": "fi", "Origin": tc.Base, "Sec-Fetch-Site": "same-origin"})
		if a.Status != 200 || a.field("reference") == "" || !strings.Contains(a.Body, `autocomplete="one-time-code"`) ||
			!strings.Contains(a.Body, `inputmode="numeric"`) || !strings.Contains(a.Body, "pia@example.com") {
			t.Fatalf("start: %d %s", a.Status, a.Body)
		}
		msg := mp.WaitFor(t, "pia@example.com", 10*time.Second)
		if msg.Subject != "Kertakäyttösalasana" {
			t.Errorf("mail subject %q: want the fi template", msg.Subject)
		}
		code := codeFrom(t, msg.Text, DefaultCodeLength)
		ref := a.field("reference")
		secrets = append(secrets, ref)
		if a.field("return") != "/app/?tab=2" {
			t.Errorf("return not carried: %q", a.field("return"))
		}
		if v := post("/verify", url.Values{"reference": {ref}, "code": {"12ab"}}, nil); v.Status != 400 || v.field("reference") != ref {
			t.Errorf("malformed code: %d, reference kept=%v", v.Status, v.field("reference") == ref)
		}
		w := post("/verify", url.Values{"reference": {ref}, "code": {wrong(code)}, "return": {"/app/?tab=2"}}, nil)
		if w.Status != 400 || w.field("reference") == "" || w.field("reference") == ref || !strings.Contains(w.Body, pageTexts["en"].ErrCode) {
			t.Fatalf("wrong code: %d", w.Status)
		}
		if v := post("/verify", url.Values{"reference": {ref}, "code": {code}}, nil); v.Status != 400 || b.cookie(DefaultSessionCookie) != nil {
			t.Errorf("spent reference accepted: %d", v.Status)
		}
		spaced := code[:4] + " " + code[4:]
		ok := post("/verify", url.Values{"reference": {w.field("reference")}, "code": {spaced}, "return": {"/app/?tab=2"}}, nil)
		if ok.Status != http.StatusSeeOther || ok.Header.Get("Location") != "/app/?tab=2" {
			t.Fatalf("right code: %d Location=%q", ok.Status, ok.Header.Get("Location"))
		}
		sc := ok.Header.Get("Set-Cookie")
		if c := b.cookie(DefaultSessionCookie); c != nil {
			secrets = append(secrets, c.Value)
		}
		secrets = append(secrets, w.field("reference"))
		for _, want := range []string{DefaultSessionCookie + "=", "Path=/", "Max-Age=43200", "HttpOnly", "SameSite=Lax"} {
			if !strings.Contains(sc, want) {
				t.Errorf("session cookie lacks %s: %s", want, sc)
			}
		}
		if strings.Contains(sc, "Secure") {
			t.Errorf("Secure cookie over plain HTTP would be dropped: %s", sc)
		}
		if signed := b.do(http.MethodGet, signinPath+"?return=/app/", nil, nil); !strings.Contains(signed.Body, `id="signed-in"`) ||
			!strings.Contains(signed.Body, "pia@example.com") {
			t.Errorf("signed-in view missing: %s", signed.Body)
		}
	})

	t.Run("sign-out only by a same-site POST with the token", func(t *testing.T) {
		if b.cookie(DefaultSessionCookie) == nil {
			t.Fatal("the flow left no session to sign out of")
		}
		stillIn := func(what string, a pageAnswer) {
			t.Helper()
			if strings.Contains(a.Header.Get("Set-Cookie"), DefaultSessionCookie+"=") || b.cookie(DefaultSessionCookie) == nil {
				t.Errorf("%s touched the session cookie: %q", what, a.Header.Get("Set-Cookie"))
			}
			if p := b.do(http.MethodGet, signinPath, nil, nil); !strings.Contains(p.Body, `id="signed-in"`) {
				t.Errorf("%s ended the session", what)
			}
		}
		// What another site can make a browser send: a link or an image
		// (GET), or a form post, which cannot carry the token.
		ask := b.do(http.MethodGet, signinPath+"/signout?return=/bye", nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if ask.Status != 200 || !strings.Contains(ask.Body, `id="signout-ask"`) || !strings.Contains(ask.Body, "pia@example.com") ||
			!strings.Contains(ask.Body, `action="`+signinPath+`/signout"`) || ask.field("csrf") != tok ||
			ask.field("return") != "/bye" || ask.field("redirect") != "1" {
			t.Fatalf("GET signout: %d, want the sign-out button\n%s", ask.Status, ask.Body)
		}
		stillIn("GET signout", ask)
		for _, c := range []struct {
			name string
			form url.Values
			hdr  map[string]string
		}{
			{"cross-site form post", url.Values{"return": {"/bye"}, "redirect": {"1"}},
				map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}},
			{"post without metadata or token (old browser)", url.Values{"redirect": {"1"}}, nil},
			{"post with a guessed token", url.Values{"csrf": {newCSRFToken()}}, nil},
			{"post with the token from another origin", url.Values{"csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}},
		} {
			a := b.do(http.MethodPost, signinPath+"/signout", c.form, c.hdr)
			if a.Status != http.StatusForbidden || !strings.Contains(a.Body, pageTexts["en"].ErrCSRF) {
				t.Errorf("%s: %d, want 403", c.name, a.Status)
			}
			stillIn(c.name, a)
		}
		if a := b.do(http.MethodPut, signinPath+"/signout", nil, nil); a.Status != 405 || a.Header.Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("PUT signout: %d Allow=%q", a.Status, a.Header.Get("Allow"))
		}

		// The button: the form as the page rendered it.
		out := b.do(http.MethodPost, signinPath+"/signout", url.Values{"csrf": {ask.field("csrf")},
			"return": {ask.field("return")}, "redirect": {ask.field("redirect")}}, map[string]string{"Origin": tc.Base, "Sec-Fetch-Site": "same-origin"})
		if out.Status != http.StatusSeeOther || out.Header.Get("Location") != "/bye" || b.cookie(DefaultSessionCookie) != nil ||
			!strings.Contains(out.Header.Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("signout: %d %q cookie=%v", out.Status, out.Header.Get("Location"), b.cookie(DefaultSessionCookie))
		}
		// Signed out, the link has nothing to ask.
		if a := b.do(http.MethodGet, signinPath+"/signout?return=/bye", nil, nil); a.Status != http.StatusSeeOther || a.Header.Get("Location") != "/bye" {
			t.Errorf("GET signout without a session: %d %q", a.Status, a.Header.Get("Location"))
		}
		if a := b.do(http.MethodGet, signinPath+"/signout", nil, map[string]string{"Accept-Language": "sv"}); a.Status != 200 ||
			!strings.Contains(a.Body, `id="signed-out"`) || !strings.Contains(a.Body, pageTexts["sv"].SignedOut) {
			t.Errorf("GET signout without a session: %d, want the signed-out page", a.Status)
		}
	})

	t.Run("per-user-IP limit uses Caddy's client IP", func(t *testing.T) {
		// pia used one of the 3 codes this IP may ask for.
		for i := 2; i <= 4; i++ {
			addr := fmt.Sprintf("ip%d@example.com", i)
			// A forged X-Forwarded-For must not move the count to another
			// IP: no trusted_proxies are configured.
			a := b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {addr}, "csrf": {tok}},
				map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)})
			switch {
			case i <= 3 && a.Status != 200:
				t.Fatalf("code %d: %d", i, a.Status)
			case i == 4 && (a.Status != http.StatusTooManyRequests || a.Header.Get("Retry-After") == "" || !strings.Contains(a.Body, pageTexts["en"].ErrRateLimit)):
				t.Fatalf("code %d past the limit: %d Retry-After=%q", i, a.Status, a.Header.Get("Retry-After"))
			}
		}
		if n := mp.Count(t, "ip4@example.com"); n != 0 {
			t.Errorf("mail sent past the limit")
		}
	})

	t.Run("logs hold no code, reference or cookie", func(t *testing.T) {
		logs := tc.Logs(t)
		if !strings.Contains(logs, "p***@example.com") {
			t.Fatalf("expected masked sign-in log lines")
		}
		if len(secrets) < 3 {
			t.Fatalf("flow did not run far enough to check its secrets")
		}
		for i, s := range append(secrets, tok) {
			if strings.Contains(logs, s) {
				t.Errorf("secret %d (reference, session cookie or CSRF token) logged", i)
			}
		}
		for _, m := range mp.Messages(t) {
			full := mp.Fetch(t, m.ID)
			if code := codeFrom(t, full.Text, DefaultCodeLength); strings.Contains(logs, code) {
				t.Errorf("code of %v logged", m.To)
			}
		}
	})
}

// TestSignInExample runs Caddyfile.signin.example as shipped, on free ports,
// both ways: a browser signs in over HTTP and reaches the app, and an API
// client gets an access token through the grant and calls the API route.
func TestSignInExample(t *testing.T) {
	src, err := os.ReadFile("Caddyfile.signin.example")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(src), "email_otp_gate {") != 2 {
		t.Fatal("the example should have two email_otp_gate blocks: the app's and the API's")
	}
	mp := startMailpit(t)
	dir := t.TempDir()
	site := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	t.Setenv("EMAIL_OTP_SITE", site)
	t.Setenv("EMAIL_OTP_ADMIN_PORT", fmt.Sprint(freePort(t)))
	t.Setenv("SMTP_PORT", fmt.Sprint(mp.SMTPPort))
	t.Setenv("EMAIL_OTP_CLIENT_SECRET", "demo-secret") // as scripts/run.sh sets them
	t.Setenv("EMAIL_OTP_API_SECRET", "api-demo-secret")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile.signin.example"})
	if err != nil {
		t.Fatalf("adapting the example: %v", err)
	}
	// As the harness's persist_config off and log file: no autosave in the
	// real config dir, no log noise on stderr.
	var doc map[string]any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	admin, _ := doc["admin"].(map[string]any)
	admin["config"] = map[string]any{"persist": false}
	// Its own storage: Caddy's default one is the user's, shared with every
	// other run, whose codes would count against demo@example.com's limit.
	doc["storage"] = map[string]any{"module": "file_system", "root": filepath.Join(dir, "storage")}
	doc["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{
		"writer": map[string]any{"output": "file", "filename": filepath.Join(dir, "caddy.log")}}}}
	if cfg, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading the example: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	b := newBrowserless(t, site)
	{
		a := b.do(http.MethodGet, "/app/", nil, map[string]string{"Accept": "text/html"})
		if loc := a.Header.Get("Location"); a.Status/100 != 3 || !strings.HasPrefix(loc, signinPath+"?return=") {
			t.Fatalf("gate: %d Location=%q", a.Status, loc)
		}
	}
	form := b.do(http.MethodGet, signinPath+"?return=/app/", nil, nil)
	if form.Status != 200 || !strings.Contains(form.Body, "Example intranet") {
		t.Fatalf("sign-in page: %d", form.Status)
	}
	start := b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {"demo@example.com"},
		"csrf": {form.field("csrf")}, "return": {"/app/"}}, map[string]string{"Accept-Language": "sv"})
	if start.Status != 200 {
		t.Fatalf("start: %d", start.Status)
	}
	msg := mp.WaitFor(t, "demo@example.com", 10*time.Second)
	if msg.Subject != "Din inloggningskod" {
		t.Errorf("mail subject %q, want the sv template", msg.Subject)
	}
	ok := b.do(http.MethodPost, signinPath+"/verify", url.Values{"reference": {start.field("reference")},
		"code": {codeFrom(t, msg.Text, DefaultCodeLength)}, "csrf": {form.field("csrf")}, "return": {"/app/"}}, nil)
	if ok.Status != http.StatusSeeOther || ok.Header.Get("Location") != "/app/" || b.cookie(DefaultSessionCookie) == nil {
		t.Fatalf("verify: %d Location=%q", ok.Status, ok.Header.Get("Location"))
	}
	app := b.do(http.MethodGet, "/app/", nil, map[string]string{"Accept": "text/html"})
	want := "Hello demo@example.com, this is the app."
	if app.Status != 200 || app.Body != want {
		t.Errorf("app: %d %q, want %q", app.Status, app.Body, want)
	}

	// The API way: a token from the grant, as the example's client "api".
	const apiUser = "api-user@example.com"
	ex := &testCaddy{Base: site}
	ref, code, _ := initiate(t, ex, mp, apiUser, nil, []string{"api", "api-demo-secret"})
	tok := post(t, site+tokenPath, validateForm(ref, code), []string{"api", "api-demo-secret"})
	access, idToken := tok.str("access_token"), tok.str("id_token")
	if tok.Status != 200 || access == "" || idToken == "" {
		t.Fatalf("token: %s", tok)
	}
	// The page's client gets tokens too, but the API admits only "api".
	ref, code, _ = initiate(t, ex, mp, "intranet-user@example.com", nil, []string{"intranet", "demo-secret"})
	other := post(t, site+tokenPath, validateForm(ref, code), []string{"intranet", "demo-secret"}).str("access_token")
	if other == "" {
		t.Fatal("no access token for the intranet client")
	}
	api := func(hdr map[string]string) answer {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, site+"/api/orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}
	for _, hdr := range []map[string]string{
		{"Authorization": "Bearer " + access},
		// A copy sent by the client is replaced by the verified address.
		{"Authorization": "Bearer " + access, "X-Verified-Email": "boss@example.com"},
	} {
		if a := api(hdr); a.Status != 200 || string(a.Body) != "API call by "+apiUser {
			t.Errorf("API with the access token (%d headers): %s, want the verified address", len(hdr), a)
		}
	}
	// No credential: the challenge without an error code (RFC 6750 §3.1),
	// and no redirect to the sign-in page even for a browser, nor does the
	// browser's session cookie count.
	for name, hdr := range map[string]map[string]string{
		"no token":               nil,
		"no token, browser":      {"Accept": "text/html"},
		"session cookie instead": {"Cookie": DefaultSessionCookie + "=" + b.cookie(DefaultSessionCookie).Value},
	} {
		if a := api(hdr); a.Status != http.StatusUnauthorized || a.Header.Get("WWW-Authenticate") != `Bearer realm="email_otp"` {
			t.Errorf("API, %s: %d WWW-Authenticate=%q, want 401 Bearer", name, a.Status, a.Header.Get("WWW-Authenticate"))
		}
	}
	for name, bad := range map[string]string{
		"tampered token":          tamper(access),
		"garbage":                 "not-a-token",
		"id_token":                idToken,
		"another client's token":  other,
		"the session as a bearer": b.cookie(DefaultSessionCookie).Value,
	} {
		a := api(map[string]string{"Authorization": "Bearer " + bad})
		if a.Status != http.StatusUnauthorized || a.Header.Get("WWW-Authenticate") != `Bearer realm="email_otp", error="invalid_token"` {
			t.Errorf("API, %s: %d WWW-Authenticate=%q, want 401 invalid_token", name, a.Status, a.Header.Get("WWW-Authenticate"))
		}
		if strings.Contains(string(a.Body), "API call") {
			t.Errorf("API, %s: reached the upstream", name)
		}
	}
}
