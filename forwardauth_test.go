package emailotp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
)

// TestForwardAuth: the sign-in page and its forward-auth endpoint on one
// Caddy process (auth.example.test), an app on a second Caddy process that
// asks it through forward_auth (app.example.test and wiki.example.test), in
// Chromium with *.example.test resolving to 127.0.0.1. The app sends the
// browser to sign in, gets it back on the URL it asked for with the
// verified address, the cookie (Domain=example.test) serves the second host
// without a new sign-in, a client's own X-Email-OTP-Email never reaches the
// app, a non-browser request gets 401, and a forwarded host outside the
// cookie domain is no return target.
func TestForwardAuth(t *testing.T) {
	mp := startMailpit(t)
	ports := freePorts(t, 2)
	authPort, appPort := ports[0], ports[1]
	authBase := fmt.Sprintf("http://auth.example.test:%d", authPort)
	authSite := otpSite(mp.SMTPPort, fmt.Sprintf(`
		issuer %s/uas
		signin {
			client app
			cookie_domain example.test
		}
`, authBase))
	auth := startCaddyProc(t, authSite, procOpts{AnyHost: true, Port: authPort})
	startCaddyProc(t, fmt.Sprintf(`
	forward_auth 127.0.0.1:%d {
		uri %s/auth
		copy_headers %s
	}
	respond "app {host} {path} verified={http.request.header.X-Email-OTP-Email}" 200
`, authPort, signinPath, forwardAuthHeader), procOpts{AnyHost: true, Port: appPort})
	app := func(host string) string { return fmt.Sprintf("http://%s.example.test:%d", host, appPort) }

	ctx := newChromium(t, chromedp.Flag("host-resolver-rules", "MAP *.example.test 127.0.0.1"))
	b := tab{t: t, ctx: ctx}
	b.do("opening the app", chromedp.Navigate(app("app")+"/private?x=1"))
	u := b.waitURL("sent to the sign-in host", func(u *url.URL) bool { return u.Path == signinPath })
	if u.Host != strings.TrimPrefix(authBase, "http://") || u.Query().Get("return") != app("app")+"/private?x=1" {
		t.Fatalf("forward auth sent the browser to %s", u)
	}
	b.do("address form", chromedp.WaitVisible(chromedp.CSS("#email")))
	sessionShot(b, "forward-auth-signin.png")
	const fa = "fa@example.com"
	b.signIn(mp, fa)
	b.waitURL("back on the app", func(u *url.URL) bool {
		return u.Host == strings.TrimPrefix(app("app"), "http://") && u.Path == "/private"
	})
	want := "app app.example.test /private verified=" + fa
	if body := b.text("body"); body != want {
		t.Fatalf("app says %q, want %q", body, want)
	}
	sessionShot(b, "forward-auth-app.png")
	sess := b.cookies(app("app"))[DefaultSessionCookie]
	if sess == nil || sess.Domain != ".example.test" || !sess.HTTPOnly {
		t.Fatalf("session cookie %+v, want Domain .example.test", sess)
	}
	b.do("the second host", chromedp.Navigate(app("wiki")+"/"))
	b.waitURL("on the wiki", func(u *url.URL) bool { return strings.HasPrefix(u.Host, "wiki.") })
	if body := b.text("body"); !strings.HasSuffix(body, "verified="+fa) {
		t.Errorf("second host says %q", body)
	}

	// Clients that are not this browser.
	dial := &net.Dialer{Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return dial.DialContext(ctx, network, "127.0.0.1:"+port)
		}}}
	get := func(u string, hdr map[string]string) *http.Response {
		t.Helper()
		req := newRequest(t, http.MethodGet, u, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(app("app")+"/api", map[string]string{"Accept": "application/json", forwardAuthHeader: "evil@example.com"}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("API call without a session: %d, want 401", r.StatusCode)
	}
	req := newRequest(t, http.MethodGet, app("app")+"/who", nil)
	req.Header.Set(forwardAuthHeader, "evil@example.com")
	req.AddCookie(&http.Cookie{Name: DefaultSessionCookie, Value: sess.Value})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "verified="+fa) {
		t.Errorf("a client's own %s with a session: %d %q", forwardAuthHeader, resp.StatusCode, body)
	}
	evil := get(authBase+signinPath+"/auth", map[string]string{"Accept": "text/html", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": "evil.example", "X-Forwarded-Uri": "/x", "X-Forwarded-Method": "GET"})
	if loc := evil.Header.Get("Location"); evil.StatusCode != http.StatusFound || strings.Contains(loc, "evil") ||
		!strings.HasPrefix(loc, authBase+signinPath+"?return=%2F") {
		t.Errorf("forwarded host outside the cookie domain: %d Location %q", evil.StatusCode, loc)
	}
	if logs := auth.Output(); !strings.Contains(logs, `"event":"refusal"`) || strings.Contains(logs, sess.Value) {
		t.Error("no refusal in the audit trail, or a session in the log")
	}
}

// TestCookieDomainTLS: with cookie_domain over TLS the page sets
// `__Secure-<cookie>` with that Domain, the gate configured with the same
// cookie_domain admits it and takes no `__Host-` or bare cookie instead,
// and a gate without cookie_domain takes only `__Host-`.
func TestCookieDomainTLS(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	keys, err := loadSigningKeys(context.Background(), storage, "ES256", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := SignInConfig{SessionConfig: SessionConfig{CookieDomain: "example.test"}}.withDefaults(nil)
	h := &Handler{keys: keys, SignIn: &cfg, TokenPath: DefaultTokenPath, basePath: "/uas", logger: zap.NewNop()}
	h.signIn = &signIn{cfg: h.SignIn, keys: h.keys, logger: h.logger, issuer: h.issuer}
	r := httptest.NewRequest(http.MethodPost, "https://auth.example.test/email-otp/signin/verify", nil)
	tok, err := h.signIn.mintSession(r, "ann@example.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ck := h.signIn.sessionCookie(r, tok, 60)
	if ck.Name != "__Secure-"+DefaultSessionCookie || ck.Domain != "example.test" || !ck.Secure || ck.Path != "/" {
		t.Fatalf("cookie_domain over TLS: %+v", ck)
	}
	if plain := h.signIn.sessionCookie(httptest.NewRequest(http.MethodGet, "http://auth.example.test/", nil), tok, 60); plain.Name != DefaultSessionCookie || plain.Secure {
		t.Errorf("cookie_domain over HTTP: %+v", plain)
	}

	gate := func(domain string) *Gate {
		g := &Gate{Issuer: "https://auth.example.test/uas", CookieDomain: domain}
		if err := g.provision(context.Background(), storage, zap.NewNop()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Cleanup() })
		return g
	}
	shared, hostOnly := gate("example.test"), gate("")
	try := func(g *Gate, name string) bool {
		req := httptest.NewRequest(http.MethodGet, "https://wiki.example.test/", nil)
		req.AddCookie(&http.Cookie{Name: name, Value: tok})
		_, ok, _ := g.Authenticate(httptest.NewRecorder(), req)
		return ok
	}
	for _, c := range []struct {
		g    *Gate
		name string
		want bool
	}{
		{shared, "__Secure-" + DefaultSessionCookie, true},
		{shared, "__Host-" + DefaultSessionCookie, false},
		{shared, DefaultSessionCookie, false},
		{hostOnly, "__Host-" + DefaultSessionCookie, true},
		{hostOnly, "__Secure-" + DefaultSessionCookie, false},
		{hostOnly, DefaultSessionCookie, false},
	} {
		if got := try(c.g, c.name); got != c.want {
			t.Errorf("gate cookie_domain=%q over TLS with %s: admitted=%v, want %v", c.g.CookieDomain, c.name, got, c.want)
		}
	}
}

// TestSafeReturnCookieDomain: an absolute return target passes only with
// cookie_domain, over http(s), on a host under the domain.
func TestSafeReturnCookieDomain(t *testing.T) {
	si := &signIn{cfg: &SignInConfig{SessionConfig: SessionConfig{CookieDomain: "example.test"}}}
	for in, want := range map[string]string{
		"/app/?x=1":                          "/app/?x=1",
		"https://app.example.test/x?y=1":     "https://app.example.test/x?y=1",
		"http://example.test:8080/":          "http://example.test:8080/",
		"https://evil.example/":              "/",
		"https://example.test.evil.example/": "/",
		"https://evilexample.test/":          "/",
		"javascript://app.example.test/%0a":  "/",
		"https://user@app.example.test/":     "/",
		"//app.example.test/":                "/",
		"https://app.example.test/\\x":       "/",
	} {
		if got := si.safeReturn(in); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
	none := &signIn{cfg: &SignInConfig{}}
	if got := none.safeReturn("https://app.example.test/"); got != "/" {
		t.Errorf("without cookie_domain: %q", got)
	}
}

// TestForwardAuthAnswers: the endpoint's three answers, read as a proxy
// sends them: over TLS (X-Forwarded-Proto https) only the __Host- cookie
// counts, a session due for renewal comes back with a renewed Secure cookie
// on the 200, and a refusal is a 302 for a navigation and a 401 otherwise.
func TestForwardAuthAnswers(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	keys, err := loadSigningKeys(context.Background(), storage, "ES256", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := SignInConfig{SessionConfig: SessionConfig{IdleTimeout: caddy.Duration(10 * time.Minute)}}.withDefaults(nil)
	si := &signIn{cfg: &cfg, keys: keys, logger: zap.NewNop(),
		issuer: func(*http.Request) string { return "https://auth.example.test/uas" }}
	t0 := time.Now().Add(-8 * time.Minute) // more than half of the idle period used
	tok, err := si.signSession(httptest.NewRequest(http.MethodGet, "/", nil),
		session{addr: "ann@example.com", jti: randomID(), iat: t0, exp: t0.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(cookie string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "http://auth.example.test"+signinPath+"/auth", nil)
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", "auth.example.test")
		r.Header.Set("X-Forwarded-Uri", "/private?x=1")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: cookie, Value: tok})
		}
		w := httptest.NewRecorder()
		si.forwardAuth(w, r)
		return w
	}
	ok := ask("__Host-"+DefaultSessionCookie, nil)
	if ok.Code != 200 || ok.Header().Get(forwardAuthHeader) != "ann@example.com" {
		t.Fatalf("valid session: %d %q", ok.Code, ok.Header().Get(forwardAuthHeader))
	}
	renewed := (&http.Response{Header: ok.Header()}).Cookies()
	if len(renewed) != 1 || renewed[0].Name != "__Host-"+DefaultSessionCookie || !renewed[0].Secure || renewed[0].MaxAge < 9*60 {
		t.Errorf("renewal on the 200: %+v", renewed)
	}
	if w := ask(DefaultSessionCookie, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("bare cookie name behind TLS: %d, want 401", w.Code)
	}
	nav := ask("", map[string]string{"Accept": "text/html", "X-Forwarded-Method": "GET"})
	if loc := nav.Header().Get("Location"); nav.Code != http.StatusFound ||
		loc != "https://auth.example.test"+signinPath+"?return="+url.QueryEscape("/private?x=1") {
		t.Errorf("navigation without a session: %d Location %q", nav.Code, loc)
	}
	if w := ask("", map[string]string{"Accept": "text/html", "X-Forwarded-Method": "POST"}); w.Code != http.StatusUnauthorized {
		t.Errorf("a POST without a session: %d, want 401", w.Code)
	}
}
