package emailotp

// The sign-in pages in a real headless Chromium, driven with chromedp: what a
// person sees and does, from the address form to the application behind
// email_otp_gate. Chromium is required: a missing browser fails the test
// (scripts/install-chromium.sh installs it), it never skips.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-email-otp/emailotp/internal/testenv"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const chromiumPath = "/usr/bin/chromium"

// newChromium starts a headless Chromium with a fresh profile and returns a
// tab's context; the browser is stopped when the test ends. extra adds
// flags (a host resolver rule, say).
func newChromium(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is required for the browser tests: %v; run scripts/install-chromium.sh", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("accept-lang", "en-US,en"),
		chromedp.WindowSize(900, 760),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium-profile")),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first action starts the browser and binds it to the context it
	// gets, so it must get ctx itself, not a derived one with a deadline: a
	// timer cancels the start instead.
	start := time.Now()
	timer := time.AfterFunc(60*time.Second, cancelAlloc)
	err := chromedp.Do(ctx, chromedp.Navigate("about:blank"))
	timer.Stop()
	if err != nil {
		t.Fatalf("starting Chromium: %v (run scripts/install-chromium.sh)", err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	return ctx
}

// tab wraps a browser tab with bounded, failing steps.
type tab struct {
	t   *testing.T
	ctx context.Context
}

const stepTimeout = 20 * time.Second

func (b tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.state())
	}
}

// doSettled is do for steps that may meet a page still settling after a
// navigation: Chromium can answer a node lookup with "Could not find node
// with given id" when the DOM it described was replaced meanwhile, or a
// command with "Inspected target navigated or closed" when a navigation of
// the tab's own (a fresh context's about:blank) lands during it (both seen
// on a loaded machine). Such a step is retried, at most three times; the
// actions must be safe to repeat (a node lookup before any key is sent, or
// a GET that changes nothing).
func (b tab) doSettled(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	var err error
	for range 3 {
		ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
		err = chromedp.Do(ctx, actions...)
		cancel()
		if err == nil || !(strings.Contains(err.Error(), "Could not find node with given id") ||
			strings.Contains(err.Error(), "Inspected target navigated or closed")) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.state())
	}
}

// state describes where the tab is, for a failure message.
func (b tab) state() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, err1 := chromedp.Run(ctx, chromedp.Location())
	body, err2 := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("(tab state unavailable: %v %v)", err1, err2)
	}
	return "at " + loc + ":\n" + body
}

func run[T any](b tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.state())
	}
	return v
}

// waitURL polls the tab's location until ok accepts it.
func (b tab) waitURL(what string, ok func(*url.URL) bool) *url.URL {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		loc := run(b, what, chromedp.Location())
		u, err := url.Parse(loc)
		if err == nil && ok(u) {
			return u
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: still at %s", what, loc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b tab) text(sel string) string {
	b.t.Helper()
	return run(b, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func (b tab) attr(sel, name string) string {
	b.t.Helper()
	return run(b, "attributes of "+sel, chromedp.Attributes(chromedp.CSS(sel)))[name]
}

// cookies returns the browser's cookies for the site, by name.
func (b tab) cookies(site string) map[string]*network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{site + "/"}})
	if err != nil {
		b.t.Fatalf("reading cookies: %v", err)
	}
	m := make(map[string]*network.Cookie, len(res.Cookies))
	for _, c := range res.Cookies {
		m[c.Name] = c
	}
	return m
}

// signIn goes through the address and code forms from the current page and
// returns the mailed code.
func (b tab) signIn(mp *mailpit, addr string) string {
	b.t.Helper()
	b.do("typing the address",
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), addr),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#code")))
	code := codeFrom(b.t, mp.WaitFor(b.t, addr, 15*time.Second).Text, DefaultCodeLength)
	b.doSettled("typing the code",
		chromedp.WaitVisible(chromedp.CSS("#code")),
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS("button[type=submit]")))
	return code
}

func TestSignInBrowser(t *testing.T) {
	t0 := time.Now()
	lap := func(what string) {
		t.Logf("%-34s %6v", what, time.Since(t0).Round(time.Millisecond))
		t0 = time.Now()
	}
	ctx := newChromium(t)
	b := tab{t: t, ctx: ctx}
	mp := startMailpit(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "app %s verified=%s", r.URL.Path, r.Header.Get("X-Verified-Email"))
	}))
	t.Cleanup(app.Close)
	protect := fmt.Sprintf("email_otp_gate {\n\t\t\tsignin %s\n\t\t\theader X-Verified-Email\n\t\t}", signinPath)
	tc := startCaddy(t, signinSite(mp.SMTPPort, "")+fmt.Sprintf(`
	handle /app/* {
		%s
		reverse_proxy %s
	}
`, protect, strings.TrimPrefix(app.URL, "http://")))
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(tc.Logs(t), "\n") {
				if strings.Contains(l, "signin") || strings.Contains(l, "otp") || strings.Contains(l, `"error"`) {
					t.Log(l)
				}
			}
		}
	})
	lap("chromium, mailpit and caddy up")

	// 1. The person opens the application; the gate sends them to sign in.
	b.do("opening the app", chromedp.Navigate(tc.Base+"/app/"))
	u := b.waitURL("redirect to sign-in", func(u *url.URL) bool { return u.Path == signinPath })
	if u.Query().Get("return") != "/app/" {
		t.Fatalf("gate redirect: %s", u)
	}
	b.do("address form", chromedp.WaitVisible(chromedp.CSS("#email")))
	if lang := b.attr("html", "lang"); lang != "en" {
		t.Errorf("lang = %q", lang)
	}
	if a := b.attr("#email", "autocomplete"); a != "email" {
		t.Errorf("email autocomplete = %q", a)
	}
	if l := b.text("label[for=email]"); l != "Email address" {
		t.Errorf("label = %q", l)
	}
	shot := run(b, "screenshot", chromedp.FullScreenshot(100))
	if !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) || len(shot) < 2000 {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(shot))
	}
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("docs", "signin.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/signin.png (%d bytes)", len(shot))
	}
	lap("address form shown")

	// 2. Address, then a wrong code: an error tied to the field, and a retry.
	const alice = "alice@example.com"
	b.do("typing the address",
		chromedp.SendKeys(chromedp.CSS("#email"), alice),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#code")))
	if a := b.attr("#code", "autocomplete"); a != "one-time-code" || b.attr("#code", "inputmode") != "numeric" {
		t.Errorf("code field: autocomplete=%q inputmode=%q", a, b.attr("#code", "inputmode"))
	}
	if s := b.text("#code-sent"); !strings.Contains(s, alice) {
		t.Errorf("code page says %q", s)
	}
	code := codeFrom(t, mp.WaitFor(t, alice, 15*time.Second).Text, DefaultCodeLength)
	lap("code mailed and read")
	b.do("typing a wrong code",
		chromedp.SendKeys(chromedp.CSS("#code"), wrong(code)),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if e := b.text("#error"); e != pageTexts["en"].ErrCode {
		t.Errorf("wrong code error = %q", e)
	}
	if d := b.attr("#code", "aria-describedby"); !strings.HasPrefix(d, "error ") || b.attr("#code", "aria-invalid") != "true" {
		t.Errorf("error not tied to the field: aria-describedby=%q", d)
	}
	lap("wrong code refused")

	// 3. The right code lands on the return URL with a session.
	b.do("typing the right code",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS("button[type=submit]")))
	b.waitURL("landing on /app/", func(u *url.URL) bool { return u.Path == "/app/" })
	body := b.text("body")
	if !strings.HasPrefix(body, "app /app/") {
		t.Fatalf("app page = %q", body)
	}
	if !strings.Contains(body, "verified="+alice) {
		t.Errorf("gate did not pass the address: %q", body)
	}
	lap("signed in, on /app/")
	sess := b.cookies(tc.Base)[DefaultSessionCookie]
	if sess == nil {
		t.Fatal("no session cookie")
	}
	if !sess.HTTPOnly || sess.SameSite != network.CookieSameSiteLax || sess.Path != "/" || sess.Secure {
		t.Errorf("cookie attributes: httpOnly=%v sameSite=%s path=%s secure=%v", sess.HTTPOnly, sess.SameSite, sess.Path, sess.Secure)
	}
	if left := time.Until(time.Unix(int64(sess.Expires), 0)); left < 11*time.Hour || left > 12*time.Hour+time.Minute {
		t.Errorf("cookie expires in %v, want 12h", left)
	}
	verifyWithJWKS(t, tc.Base, sess.Value, alice)

	// 4. A forged cookie is no session: the page offers the form again.
	forged := tamper(sess.Value)
	b.do("planting a forged cookie", chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tt, network.SetCookie, network.SetCookieParams{
			Name: DefaultSessionCookie, Value: forged, URL: tc.Base + "/", Path: "/", HTTPOnly: ptrTo(true)})
		return err
	}), chromedp.Navigate(tc.Base+signinPath+"?return=/app/"), chromedp.WaitVisible(chromedp.CSS("#email")))
	b.do("app with the forged cookie", chromedp.Navigate(tc.Base+"/app/"))
	b.waitURL("forged cookie refused by the gate", func(u *url.URL) bool { return u.Path == signinPath })
	lap("forged cookie refused")

	// 5. A sign-out link opens the sign-out button; only the button (a POST
	// with the CSRF token) clears the cookie, then goes to the link's return.
	b.signInAgain(mp, tc.Base, "linkout@example.com")
	b.do("opening the sign-out link", chromedp.Navigate(tc.Base+signinPath+"/signout?return=/bye"),
		chromedp.WaitVisible(chromedp.CSS("#signout-ask")))
	if s := b.text("#signed-in"); !strings.Contains(s, "linkout@example.com") {
		t.Errorf("sign-out page says %q", s)
	}
	if _, still := b.cookies(tc.Base)[DefaultSessionCookie]; !still {
		t.Fatal("opening the sign-out link signed out without the button")
	}
	b.do("clicking sign out", chromedp.Click(chromedp.CSS("#signout")))
	b.waitURL("landing on the link's return", func(u *url.URL) bool { return u.Path == "/bye" })
	if _, still := b.cookies(tc.Base)[DefaultSessionCookie]; still {
		t.Error("session cookie survives sign-out")
	}
	lap("signed out (link, then button)")

	// 6. Open redirects land on "/"; between them, the sign-out button.
	for i, evil := range []string{"//evil.example", "https://evil.example", `/\evil.example`} {
		b.do("sign-in with return="+evil, chromedp.Navigate(tc.Base+signinPath+"?return="+url.QueryEscape(evil)))
		b.signIn(mp, fmt.Sprintf("redirect%d@example.com", i))
		u := b.waitURL("landing after return="+evil, func(u *url.URL) bool { return u.Path == "/" })
		if u.Host != strings.TrimPrefix(tc.Base, "http://") {
			t.Fatalf("return=%s left the site: %s", evil, u)
		}
		b.do("signed-in view", chromedp.Navigate(tc.Base+signinPath+"?return="+url.QueryEscape(evil)),
			chromedp.WaitVisible(chromedp.CSS("#signed-in")))
		if href := b.attr("#continue", "href"); href != "/" {
			t.Errorf("continue link for return=%s: %q", evil, href)
		}
		b.do("sign-out button", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
		if _, still := b.cookies(tc.Base)[DefaultSessionCookie]; still {
			t.Fatalf("session cookie survives the sign-out button")
		}
	}
	lap("3 open redirects → /")
}

// signInAgain signs in from the sign-in page, replacing whatever session
// cookie the browser holds, and waits to land on "/".
func (b tab) signInAgain(mp *mailpit, base, addr string) {
	b.t.Helper()
	b.do("sign-in page", chromedp.Navigate(base+signinPath+"?return=/"))
	b.signIn(mp, addr)
	b.waitURL("back on /", func(u *url.URL) bool { return u.Path == "/" })
}

// verifyWithJWKS checks the session cookie against the published JWKS, as
// the gate (or any other verifier) would.
func verifyWithJWKS(t *testing.T, base, token, addr string) {
	t.Helper()
	doc, err := testenv.FetchJWKS(base + "/uas" + jwksSuffix)
	if err != nil {
		t.Fatal(err)
	}
	// The session is signed with signing_alg (RS256 by default), as the
	// id_token: the gate verifies it on every request.
	var std jwt.Claims
	var extra struct {
		Email string `json:"email"`
	}
	tok, err := testenv.Verify(doc, token, []jose.SignatureAlgorithm{jose.RS256}, &std, &extra)
	if tok == nil {
		t.Fatal(err)
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "session+jwt" || tok.Headers[0].KeyID == "" {
		t.Errorf("session header typ=%v kid=%q", typ, tok.Headers[0].KeyID)
	}
	if err != nil {
		t.Fatalf("session cookie does not verify with the JWKS: %v", err)
	}
	err = std.Validate(jwt.Expected{Issuer: base + "/uas", Subject: addr, AnyAudience: jwt.Audience{sessionAudience}, Time: time.Now()})
	if err != nil || extra.Email != addr || std.ID == "" {
		t.Errorf("session claims: %v %+v email=%q", err, std, extra.Email)
	}
}

// tamper changes one character of the payload, keeping the signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	p := []byte(parts[1])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	return parts[0] + "." + string(p) + "." + parts[2]
}

func ptrTo[T any](v T) *T { return &v }
