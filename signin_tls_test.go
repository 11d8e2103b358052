package emailotp

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestSignInCookiesTLS signs in on one Caddy that serves the same site over
// plain HTTP and over TLS (a test CA's certificate) and reads the cookies
// each sets: over TLS the session cookie and the CSRF cookie are Secure and
// both take the __Host- prefix; over HTTP neither is Secure (a browser
// would drop it) and neither has a prefix. The gate admits the Secure
// session over TLS, and signing out clears it with a Secure cookie too.
// Over TLS the gate and the page read only the __Host- name: a valid
// session planted without the prefix (as a sibling subdomain can, with
// Domain=<parent>) is no session there (login CSRF, issue 10 item 7).
func TestSignInCookiesTLS(t *testing.T) {
	mp := startMailpit(t)
	_, caPEM, certFile, keyFile := testCert(t)
	httpBase, httpsBase := startTLSCaddy(t, certFile, keyFile, signinSite(mp.SMTPPort, "")+`
	handle /app/* {
		email_otp_gate {
			signin
			header X-Verified-Email
		}
		respond "app verified={http.request.header.X-Verified-Email}" 200
	}
`)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("test CA")
	}

	for _, c := range []struct {
		base, csrfName, sessName string
		secure                   bool
	}{
		{httpsBase, "__Host-" + DefaultSessionCookie + "_csrf", "__Host-" + DefaultSessionCookie, true},
		{httpBase, DefaultSessionCookie + "_csrf", DefaultSessionCookie, false},
	} {
		t.Run(strings.SplitN(c.base, ":", 2)[0], func(t *testing.T) {
			b := newBrowserless(t, c.base)
			b.c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
			t.Cleanup(b.c.CloseIdleConnections)
			setCookie := func(what string, a pageAnswer, name string) *http.Cookie {
				t.Helper()
				for _, ck := range (&http.Response{Header: a.Header}).Cookies() {
					if ck.Name == name {
						return ck
					}
				}
				t.Fatalf("%s: no %s cookie set; Set-Cookie: %q", what, name, a.Header.Values("Set-Cookie"))
				return nil
			}

			form := b.do(http.MethodGet, signinPath+"?return=%2Fapp%2F", nil, nil)
			if form.Status != 200 {
				t.Fatalf("sign-in page: %d", form.Status)
			}
			csrf := setCookie("sign-in page", form, c.csrfName)
			if csrf.Secure != c.secure || !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || csrf.Path != "/" || csrf.Domain != "" {
				t.Errorf("CSRF cookie %s: Secure=%v HttpOnly=%v SameSite=%v Path=%q Domain=%q", csrf.Name,
					csrf.Secure, csrf.HttpOnly, csrf.SameSite, csrf.Path, csrf.Domain)
			}
			if csrf.Value != form.field("csrf") {
				t.Error("CSRF cookie and form token differ")
			}
			if c.secure {
				// Over TLS only the __Host- cookie counts: one without the
				// prefix may have been planted by a sibling host.
				plain := newBrowserless(t, c.base)
				plain.c.Transport = b.c.Transport
				u, _ := url.Parse(c.base)
				plain.c.Jar.SetCookies(u, []*http.Cookie{{Name: DefaultSessionCookie + "_csrf", Value: csrf.Value, Path: "/"}})
				if a := plain.do(http.MethodPost, signinPath+"/start", url.Values{"email": {"planted@example.com"}, "csrf": {csrf.Value}}, nil); a.Status != http.StatusForbidden {
					t.Errorf("unprefixed CSRF cookie over TLS: %d, want 403", a.Status)
				}
			}

			addr := "tls-" + strings.SplitN(c.base, ":", 2)[0] + "@example.com"
			start := b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {addr}, "csrf": {form.field("csrf")}, "return": {"/app/"}}, nil)
			if start.Status != 200 || start.field("reference") == "" {
				t.Fatalf("start: %d", start.Status)
			}
			code := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)
			ok := b.do(http.MethodPost, signinPath+"/verify", url.Values{"reference": {start.field("reference")},
				"code": {code}, "csrf": {form.field("csrf")}, "return": {"/app/"}}, nil)
			if ok.Status != http.StatusSeeOther || ok.Header.Get("Location") != "/app/" {
				t.Fatalf("verify: %d Location=%q", ok.Status, ok.Header.Get("Location"))
			}
			sess := setCookie("verify", ok, c.sessName)
			if sess.Secure != c.secure || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.MaxAge != 43200 || sess.Domain != "" {
				t.Errorf("session cookie: Secure=%v HttpOnly=%v SameSite=%v Path=%q Max-Age=%d Domain=%q",
					sess.Secure, sess.HttpOnly, sess.SameSite, sess.Path, sess.MaxAge, sess.Domain)
			}
			if c.secure {
				// The same valid session, planted under the bare name, as a
				// sibling subdomain could: neither the gate nor the page
				// takes it over TLS.
				planted := newBrowserless(t, c.base)
				planted.c.Transport = b.c.Transport
				u, _ := url.Parse(c.base)
				planted.c.Jar.SetCookies(u, []*http.Cookie{{Name: DefaultSessionCookie, Value: sess.Value, Path: "/"}})
				if a := planted.do(http.MethodGet, "/app/", nil, map[string]string{"Accept": "text/html"}); a.Status != http.StatusFound {
					t.Errorf("gate over TLS with a planted unprefixed session: %d %q, want 302 to sign in", a.Status, a.Body)
				}
				if a := planted.do(http.MethodGet, signinPath, nil, nil); strings.Contains(a.Body, `id="signed-in"`) {
					t.Error("sign-in page over TLS takes a planted unprefixed session")
				}
			}

			if app := b.do(http.MethodGet, "/app/", nil, map[string]string{"Accept": "text/html"}); app.Status != 200 || app.Body != "app verified="+addr {
				t.Errorf("app behind the gate: %d %q", app.Status, app.Body)
			}

			ask := b.do(http.MethodGet, signinPath+"/signout", nil, nil)
			out := b.do(http.MethodPost, signinPath+"/signout", url.Values{"csrf": {ask.field("csrf")}}, nil)
			if out.Status != 200 || !strings.Contains(out.Body, `id="signed-out"`) {
				t.Fatalf("sign-out: %d", out.Status)
			}
			if gone := setCookie("sign-out", out, c.sessName); gone.MaxAge >= 0 || gone.Value != "" || gone.Secure != c.secure {
				t.Errorf("sign-out cookie: Max-Age=%d Secure=%v", gone.MaxAge, gone.Secure)
			}
			if b.cookie(c.sessName) != nil {
				t.Error("session cookie survives sign-out")
			}
		})
	}
}

// startTLSCaddy runs site on two ports of one Caddy, plain HTTP and TLS with
// the given certificate, and returns both base URLs.
func startTLSCaddy(t *testing.T, certFile, keyFile, site string) (httpBase, httpsBase string) {
	t.Helper()
	dir := t.TempDir()
	httpBase = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	httpsBase = fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	src := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	storage file_system %s
	persist_config off
	auto_https off
	log {
		output file %s
		format json
		level DEBUG
	}
}

(site) {
	bind 127.0.0.1
%s
}

%s {
	import site
}

%s {
	tls %s %s
	import site
}
`, freePort(t), filepath.Join(dir, "storage"), filepath.Join(dir, "caddy.log"), site, httpBase, httpsBase, certFile, keyFile)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return httpBase, httpsBase
}
