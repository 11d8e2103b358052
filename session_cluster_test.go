package emailotp

// Sessions across two Caddy processes sharing one storage: "sign out
// everywhere" in a real browser ends every session and token of the address
// on both instances, and an idle_timeout session renewed at one instance is
// accepted at the other.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// clusterIssuer is the issuer both instances sign with, so a session of one
// is a session of the other.
const clusterIssuer = "http://sessions.example/uas"

// sessionSite is a site with the sign-in page (signinOpts inside its block)
// and an app behind the gate on /app/*, both with a fixed issuer, and the
// revocation list read every second.
func sessionSite(smtpPort int, signinOpts, gateOpts string) string {
	return otpSite(smtpPort, fmt.Sprintf(`
		issuer %s
		signin {
			client app
			session_lifetime 12h
%s
		}
`, clusterIssuer, signinOpts)) + fmt.Sprintf(`
	handle /app/* {
		email_otp_gate {
			issuer %s
			signin
			revocation_refresh 1s
			header X-Verified-Email
			leeway 1s
%s
		}
		respond "app verified={http.request.header.X-Verified-Email}" 200
	}
`, clusterIssuer, gateOpts)
}

// sessionShot takes a PNG of the tab and, when EMAIL_OTP_SCREENSHOTS names a
// directory (docs/img), writes it there as name.
func sessionShot(b tab, name string) {
	b.t.Helper()
	shot := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
	if !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) || len(shot) < 2000 {
		b.t.Fatalf("screenshot %s is not a PNG (%d bytes)", name, len(shot))
	}
	if dir := os.Getenv("EMAIL_OTP_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("wrote %s (%d bytes)", filepath.Join(dir, name), len(shot))
	}
}

// signInClient signs addr in through the forms with a cookie-keeping
// client (another device) and returns it.
func signInClient(t *testing.T, mp *mailpit, base, addr string) *browserless {
	t.Helper()
	c := newBrowserless(t, base)
	form := c.do(http.MethodGet, signinPath, nil, nil)
	start := c.do(http.MethodPost, signinPath+"/start", url.Values{"email": {addr}, "csrf": {form.field("csrf")}}, nil)
	if start.Status != 200 || start.field("reference") == "" {
		t.Fatalf("start for %s at %s: %d", addr, base, start.Status)
	}
	code := codeFrom(t, mp.WaitFor(t, addr, 15*time.Second).Text, DefaultCodeLength)
	ok := c.do(http.MethodPost, signinPath+"/verify", url.Values{"reference": {start.field("reference")},
		"code": {code}, "csrf": {form.field("csrf")}, "return": {"/app/"}}, nil)
	if ok.Status != http.StatusSeeOther {
		t.Fatalf("verify for %s at %s: %d", addr, base, ok.Status)
	}
	return c
}

// appStatus is what the gated app answers the client at base: 200 with
// the address, or the gate's refusal.
func appStatus(c *browserless, base string) (int, string) {
	saved := c.base
	c.base = base
	defer func() { c.base = saved }()
	a := c.do(http.MethodGet, "/app/", nil, map[string]string{"Accept": "text/html"})
	return a.Status, a.Body
}

// signedInPage reports whether the sign-in page at base greets the client
// as signed in.
func signedInPage(c *browserless, base string) bool {
	saved := c.base
	c.base = base
	defer func() { c.base = saved }()
	return strings.Contains(c.do(http.MethodGet, signinPath, nil, nil).Body, `id="signed-in"`)
}

// TestSignOutEverywhere: ann signs in on two devices (a Chromium at A, a
// client at B) and has an access token; Chromium's "sign out everywhere" on
// A ends all three at once on A and within the refresh on B, the sign-in
// page no longer takes the session, bob is untouched, and ann can sign in
// again a second later. A post without the CSRF token revokes nothing.
func TestSignOutEverywhere(t *testing.T) {
	mp := startMailpit(t)
	site := sessionSite(mp.SMTPPort, "", "")
	a := startCaddyProc(t, site)
	bp := startCaddyProc(t, site, procOpts{Storage: a.Storage})
	m := newMinter(t, a.Storage, "RS256", clusterIssuer)
	const ann, bob = "ann@example.com", "bob@example.com"

	ctx := newChromium(t)
	br := tab{t: t, ctx: ctx}
	br.do("app at A", chromedp.Navigate(a.Base+"/app/"))
	br.waitURL("sent to sign in", func(u *url.URL) bool { return u.Path == signinPath })
	br.signIn(mp, ann)
	br.waitURL("back on the app", func(u *url.URL) bool { return u.Path == "/app/" })
	if body := br.text("body"); body != "app verified="+ann {
		t.Fatalf("app at A says %q", body)
	}
	phone := signInClient(t, mp, bp.Base, ann)
	bobs := signInClient(t, mp, bp.Base, bob)
	token := m.at(t, ann, nil)
	bearer := func(p *caddyProc) int {
		req := newRequest(t, http.MethodGet, p.Base+"/app/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return do(t, req).Status
	}
	for _, p := range []*caddyProc{a, bp} {
		if s, body := appStatus(phone, p.Base); s != 200 || body != "app verified="+ann {
			t.Fatalf("ann's second session at %s: %d %q", p.Base, s, body)
		}
		if s := bearer(p); s != 200 {
			t.Fatalf("ann's token at %s: %d", p.Base, s)
		}
	}

	// A forged post (no CSRF token) revokes nothing.
	if f := phone.do(http.MethodPost, signinPath+"/signout", url.Values{"everywhere": {"1"}}, nil); f.Status != http.StatusForbidden {
		t.Fatalf("sign out everywhere without the CSRF token: %d", f.Status)
	}
	if s, _ := appStatus(phone, a.Base); s != 200 {
		t.Fatalf("a refused forged post ended the session: %d", s)
	}

	// The person opens the sign-out page and presses "Sign out everywhere".
	br.do("sign-out page", chromedp.Navigate(a.Base+signinPath+"/signout"), chromedp.WaitVisible(chromedp.CSS("#signout-everywhere")))
	if s := br.text("#signout-everywhere"); s != pageTexts["en"].SignOutAll {
		t.Errorf("button says %q", s)
	}
	sessionShot(br, "signout-everywhere.png")
	br.do("sign out everywhere", chromedp.Click(chromedp.CSS("#signout-everywhere")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
	if s := br.text("#signed-out"); s != pageTexts["en"].SignedOutAll {
		t.Errorf("after sign out everywhere the page says %q", s)
	}
	sessionShot(br, "signed-out-everywhere.png")
	if _, still := br.cookies(a.Base)[DefaultSessionCookie]; still {
		t.Error("the browser's session cookie survives")
	}

	// At once on A: the other device's session and the token.
	if s, _ := appStatus(phone, a.Base); s != http.StatusFound {
		t.Errorf("A admits ann's other session after sign out everywhere: %d", s)
	}
	if s := bearer(a); s != http.StatusUnauthorized {
		t.Errorf("A admits ann's token after sign out everywhere: %d", s)
	}
	if signedInPage(phone, a.Base) {
		t.Error("A's sign-in page takes ann's revoked session")
	}
	// Within the refresh on B.
	start := time.Now()
	for {
		s, _ := appStatus(phone, bp.Base)
		if s == http.StatusFound && bearer(bp) == http.StatusUnauthorized {
			break
		}
		if time.Since(start) > clusterWait {
			t.Fatalf("B still admits ann after %v (session %d, token %d)", clusterWait, s, bearer(bp))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("B refused ann's session and token after %v", time.Since(start).Round(time.Millisecond))
	if signedInPage(phone, bp.Base) {
		t.Error("B's sign-in page takes ann's revoked session")
	}
	for _, p := range []*caddyProc{a, bp} {
		if s, body := appStatus(bobs, p.Base); s != 200 || body != "app verified="+bob {
			t.Errorf("bob's session at %s after ann signed out everywhere: %d %q", p.Base, s, body)
		}
	}

	// The audit trail of A: one line per sign-in, sign-out, revocation and
	// refusal, the address masked, never a session.
	out := a.Output()
	for _, want := range []string{
		`"msg":"signin","event":"signin","route":"` + strings.TrimPrefix(a.Base, "http://") + signinPath + `/verify","address":"a***@example.com","reason":"code"`,
		`"event":"revocation","route":"` + strings.TrimPrefix(a.Base, "http://") + signinPath + `/signout","address":"a***@example.com","reason":"signout_everywhere","by":"user"`,
		`"event":"signout_everywhere","route":"` + strings.TrimPrefix(a.Base, "http://") + signinPath + `/signout","address":"a***@example.com","reason":"button"`,
		`"event":"refusal","route":"` + strings.TrimPrefix(a.Base, "http://") + `/app/","address":"a***@example.com","reason":"revoked"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("A's log lacks %s", want)
		}
	}
	if strings.Contains(out, ann) || strings.Contains(out, token) || strings.Contains(out, strings.Split(phone.cookie(DefaultSessionCookie).Value, ".")[2]) {
		t.Error("A's log holds ann's address whole, her token or her session")
	}

	// A new sign-in, after the cut-off's second, is a new session.
	time.Sleep(1100 * time.Millisecond)
	again := signInClient(t, mp, bp.Base, ann)
	for _, p := range []*caddyProc{a, bp} {
		if s, _ := appStatus(again, p.Base); s != 200 {
			t.Errorf("ann's new session at %s: %d", p.Base, s)
		}
	}
}

// TestIdleTimeoutTwoInstances: with idle_timeout 6s a session signed in at
// A is renewed by a request at B once more than 3s are used, the renewed
// cookie is accepted at A after the first one expired, the old cookie is
// not, and a session left alone for longer than the idle period ends. The
// renewal keeps the session's id and sign-in time.
func TestIdleTimeoutTwoInstances(t *testing.T) {
	mp := startMailpit(t)
	site := sessionSite(mp.SMTPPort, "\t\t\tidle_timeout 6s\n\t\t\taudit_log_address full", "")
	a := startCaddyProc(t, site)
	bp := startCaddyProc(t, site, procOpts{Storage: a.Storage})
	const addr = "idle@example.com"

	c := signInClient(t, mp, a.Base, addr)
	first := c.cookie(DefaultSessionCookie)
	if first == nil {
		t.Fatal("no session cookie")
	}
	firstClaims := claimsOf(t, first.Value)
	if life := firstClaims["exp"].(float64) - firstClaims["iat"].(float64); life != 6 {
		t.Fatalf("a new session lives %vs, want the idle period (6s)", life)
	}
	signedIn := time.Unix(int64(firstClaims["iat"].(float64)), 0)

	// Before half the period: no renewal.
	ans := c.do(http.MethodGet, "/app/", nil, nil)
	if ans.Status != 200 || len(ans.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("early request: %d, Set-Cookie %q", ans.Status, ans.Header.Values("Set-Cookie"))
	}
	// More than half used: B renews.
	time.Sleep(time.Until(signedIn.Add(4 * time.Second)))
	c.base = bp.Base
	ans = c.do(http.MethodGet, "/app/", nil, nil)
	if ans.Status != 200 || ans.Body != "app verified="+addr {
		t.Fatalf("request at B after 4s: %d %q", ans.Status, ans.Body)
	}
	renewed := c.cookie(DefaultSessionCookie)
	if renewed == nil || renewed.Value == first.Value {
		t.Fatalf("B did not renew the session; Set-Cookie %q", ans.Header.Values("Set-Cookie"))
	}
	rc := claimsOf(t, renewed.Value)
	if rc["jti"] != firstClaims["jti"] || rc["iat"] != firstClaims["iat"] || rc["exp"].(float64) <= firstClaims["exp"].(float64) {
		t.Errorf("renewed claims %v, first %v", rc, firstClaims)
	}

	// After the first cookie's expiry: the renewed one passes at A, the
	// first one does not.
	time.Sleep(time.Until(signedIn.Add(8500 * time.Millisecond))) // exp + the gate's 1s leeway
	c.base = a.Base
	if s, body := appStatus(c, a.Base); s != 200 {
		t.Fatalf("renewed session at A after the first expired: %d %q", s, body)
	}
	old := newBrowserless(t, a.Base)
	u, _ := url.Parse(a.Base)
	old.c.Jar.SetCookies(u, []*http.Cookie{{Name: DefaultSessionCookie, Value: first.Value, Path: "/"}})
	if s, _ := appStatus(old, a.Base); s != http.StatusFound {
		t.Errorf("the first cookie after its idle expiry: %d, want 302", s)
	}

	// A wrong code is a refusal in the audit trail, the address whole here.
	w := newBrowserless(t, a.Base)
	form := w.do(http.MethodGet, signinPath, nil, nil)
	start := w.do(http.MethodPost, signinPath+"/start", url.Values{"email": {"wrong@example.com"}, "csrf": {form.field("csrf")}}, nil)
	code := codeFrom(t, mp.WaitFor(t, "wrong@example.com", 15*time.Second).Text, DefaultCodeLength)
	if v := w.do(http.MethodPost, signinPath+"/verify", url.Values{"reference": {start.field("reference")},
		"code": {wrong(code)}, "csrf": {form.field("csrf")}}, nil); v.Status != http.StatusBadRequest {
		t.Fatalf("wrong code: %d", v.Status)
	}
	route := strings.TrimPrefix(a.Base, "http://") + signinPath + "/verify"
	out := a.Output()
	for _, want := range []string{
		`"event":"signin","route":"` + route + `","address":"` + addr + `","reason":"code"`,
		`"event":"refusal","route":"` + route + `","address":"wrong@example.com","reason":"invalid_code"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("audit_log_address full: the log lacks %s", want)
		}
	}

	// Left alone past the idle period, the session ends on both (the jar
	// drops the cookie at its Max-Age: it is replayed by hand).
	lastTok := c.cookie(DefaultSessionCookie).Value
	lastExp := time.Unix(int64(claimsOf(t, lastTok)["exp"].(float64)), 0)
	time.Sleep(time.Until(lastExp.Add(2500 * time.Millisecond)))
	replay := newBrowserless(t, a.Base)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: DefaultSessionCookie, Value: lastTok, Path: "/"}})
	for _, p := range []*caddyProc{a, bp} {
		if s, _ := appStatus(replay, p.Base); s != http.StatusFound {
			t.Errorf("idle session at %s: %d, want 302", p.Base, s)
		}
	}
}

// claimsOf decodes a JWS payload without verifying it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	c := map[string]any{}
	mustB64JSON(t, strings.Split(tok, ".")[1], &c)
	return c
}
