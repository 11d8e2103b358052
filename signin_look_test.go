package emailotp

// The sign-in page as people see it, in headless Chromium (issue 13 items 3
// and 4): every state of the default page passes an axe-core audit with 0
// violations and fits 320 CSS pixels without horizontal scrolling; the code
// page counts the resend cooldown down; an operator's logo, accent colour,
// stylesheet and texts show. With EMAIL_OTP_SCREENSHOTS=docs/img each state
// is saved as a PNG there.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeSource is axe.min.js: $AXE_JS, else where scripts/install-axe.sh puts
// it. Missing, the test fails: it never skips.
func axeSource(t *testing.T) string {
	t.Helper()
	p := os.Getenv("AXE_JS")
	if p == "" {
		p = filepath.Join(".bin", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("axe-core is required for the accessibility audit: %v; run scripts/install-axe.sh", err)
	}
	return string(b)
}

// shot takes a PNG of the tab and, when EMAIL_OTP_SCREENSHOTS names a
// directory, saves it there as name.png.
func (b tab) shot(name string) {
	b.t.Helper()
	png := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		b.t.Fatalf("screenshot %s is not a PNG (%d bytes)", name, len(png))
	}
	if dir := os.Getenv("EMAIL_OTP_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// axeViolation is the part of an axe-core result a failure message needs.
type axeViolation struct {
	ID    string `json:"id"`
	Help  string `json:"help"`
	Nodes []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// audit runs axe-core on the page (WCAG 2.x A and AA, best practices) and
// fails on any violation; then, 320 px wide, fails if the page scrolls
// sideways.
func (b tab) audit(axe, state string) {
	b.t.Helper()
	// Runtime.evaluate is not subject to the page's CSP, so axe needs no
	// exception in the policy the page ships with.
	run(b, "injecting axe-core", chromedp.Evaluate[bool](axe+";true"))
	res := run(b, "axe.run on "+state, chromedp.Evaluate[[]byte](
		`axe.run(document).then(r => ({violations: r.violations, passes: r.passes.length}))`, chromedp.EvalAwaitPromise))
	var out struct {
		Violations []axeViolation `json:"violations"`
		Passes     int            `json:"passes"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		b.t.Fatalf("axe result: %v", err)
	}
	if out.Passes < 5 {
		b.t.Errorf("%s: axe passed only %d rules: did it run?", state, out.Passes)
	}
	for _, v := range out.Violations {
		for _, n := range v.Nodes {
			b.t.Errorf("%s: axe %s (%s) at %v: %s", state, v.ID, v.Help, n.Target, n.HTML)
		}
	}
	b.do("320 px viewport", chromedp.EmulateViewport(320, 640, chromedp.EmulateMobile))
	w := run(b, "scroll width at 320", chromedp.Evaluate[int](`document.scrollingElement.scrollWidth`))
	if w > 320 {
		b.t.Errorf("%s: scrollWidth %d at a 320 px viewport: scrolls sideways", state, w)
	}
	b.do("viewport back", resetViewport)
}

func TestSignInPageLookBrowser(t *testing.T) {
	axe := axeSource(t)
	ctx := newChromium(t)
	b := tab{t: t, ctx: ctx}
	mp := startMailpit(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app %s", r.URL.Path)
	}))
	t.Cleanup(app.Close)
	tc := startCaddy(t, otpSite(mp.SMTPPort, `
		signin {
			client app
			resend_cooldown 3s
		}
`)+fmt.Sprintf(`
	handle /app/* {
		email_otp_gate {
			signin %s
		}
		reverse_proxy %s
	}
`, signinPath, strings.TrimPrefix(app.URL, "http://")))

	// Address form.
	b.do("opening the app", chromedp.Navigate(tc.Base+"/app/"), chromedp.WaitVisible(chromedp.CSS("#email")))
	b.audit(axe, "address form")
	b.shot("signin-address")
	b.do("320 px", chromedp.EmulateViewport(320, 640, chromedp.EmulateMobile))
	b.shot("signin-address-320")
	b.do("viewport back", resetViewport)

	// Code form: the resend button waits for its cooldown, counting down.
	const addr = "look@example.com"
	b.do("typing the address", chromedp.SendKeys(chromedp.CSS("#email"), addr),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#code")))
	if !run(b, "resend button", chromedp.Evaluate[bool](`document.getElementById("resend").disabled`)) {
		t.Error("the resend button is usable before the cooldown")
	}
	if s := b.text("#resend-wait"); !strings.Contains(s, "You can ask for a new code in ") {
		t.Errorf("countdown says %q", s)
	}
	b.shot("signin-resend-countdown")
	b.audit(axe, "code form")
	code0 := codeFrom(t, mp.WaitFor(t, addr, 15*time.Second).Text, DefaultCodeLength)
	b.do("wrong code", chromedp.SendKeys(chromedp.CSS("#code"), wrong(code0)),
		chromedp.Click(chromedp.CSS("#verify")), chromedp.WaitVisible(chromedp.CSS("#error")))
	b.audit(axe, "code form with an error")
	b.shot("signin-code-error")
	deadline := time.Now().Add(10 * time.Second)
	for run(b, "resend button", chromedp.Evaluate[bool](`document.getElementById("resend").disabled`)) {
		if time.Now().After(deadline) {
			t.Fatal("the resend button never became usable")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := b.text("#resend-wait"); s != "" {
		t.Errorf("after the cooldown the hint still says %q", s)
	}
	b.shot("signin-resend-ready")
	b.do("send a new code", chromedp.Click(chromedp.CSS("#resend")), chromedp.WaitVisible(chromedp.CSS("#code-sent[role=status]")))
	if s := b.text("#code-sent"); !strings.HasPrefix(s, pageTexts["en"].CodeResent) || !strings.Contains(s, addr) {
		t.Errorf("after resend the page says %q", s)
	}
	b.shot("signin-resent")
	deadline = time.Now().Add(10 * time.Second)
	for mp.Count(t, addr) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	code1 := codeFrom(t, mp.WaitFor(t, addr, 15*time.Second).Text, DefaultCodeLength)
	if code1 == code0 {
		t.Log("the new code equals the old one (1 in 10^6)")
	}
	b.do("the new code", chromedp.SendKeys(chromedp.CSS("#code"), code1), chromedp.Click(chromedp.CSS("#verify")))
	b.waitURL("landing on /app/", func(u *url.URL) bool { return u.Path == "/app/" })

	// Signed in, sign-out question, signed out, and an unknown page.
	b.do("signed-in view", chromedp.Navigate(tc.Base+signinPath+"?return=/app/"), chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	b.audit(axe, "signed in")
	b.do("sign-out question", chromedp.Navigate(tc.Base+signinPath+"/signout"), chromedp.WaitVisible(chromedp.CSS("#signout-ask")))
	b.audit(axe, "sign-out question")
	b.do("signing out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
	b.audit(axe, "signed out")
	b.do("unknown page", chromedp.Navigate(tc.Base+signinPath+"/nope"), chromedp.WaitVisible(chromedp.CSS("#error")))
	b.audit(axe, "not found")
}

func TestSignInCustomLookBrowser(t *testing.T) {
	dir := t.TempDir()
	logo := filepath.Join(dir, "logo.svg")
	css := filepath.Join(dir, "extra.css")
	must0(t, os.WriteFile(logo, []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40" viewBox="0 0 160 40"><rect width="160" height="40" rx="6" fill="#6a1b9a"/><text x="80" y="27" font-family="sans-serif" font-size="18" fill="#fff" text-anchor="middle">ACME</text></svg>`), 0o644))
	must0(t, os.WriteFile(css, []byte("h1 { letter-spacing: 3px; }\n"), 0o644))
	ctx := newChromium(t)
	b := tab{t: t, ctx: ctx}
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, fmt.Sprintf(`
		signin {
			client app
			title "ACME intranet"
			logo %s
			accent_color "#6a1b9a"
			css %s
			texts en {
				send_code "Email me a code"
			}
		}
`, logo, css)))
	b.do("sign-in page", chromedp.Navigate(tc.Base+signinPath), chromedp.WaitVisible(chromedp.CSS("#email")))
	if w := run(b, "logo loaded", chromedp.Evaluate[int](`document.querySelector("img.logo").naturalWidth`)); w != 160 {
		t.Errorf("logo naturalWidth = %d, want 160", w)
	}
	if bg := run(b, "button colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("button")).backgroundColor`)); bg != "rgb(106, 27, 154)" {
		t.Errorf("button background = %s, want the accent rgb(106, 27, 154)", bg)
	}
	if ls := run(b, "extra css", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("h1")).letterSpacing`)); ls != "3px" {
		t.Errorf("h1 letter-spacing = %s, want 3px from the css file", ls)
	}
	if s := b.text("button[type=submit]"); s != "Email me a code" {
		t.Errorf("button says %q", s)
	}
	if s := b.text("h1"); s != "ACME intranet" {
		t.Errorf("title %q", s)
	}
	b.shot("signin-custom")

	// The audit can fail: an image without alt text is a violation it finds.
	run(b, "injecting axe-core", chromedp.Evaluate[bool](axeSource(t)+";true"))
	ids := run(b, "axe.run on a broken page", chromedp.Evaluate[[]string](
		`document.querySelector("main").appendChild(document.createElement("img")),
		 axe.run(document).then(r => r.violations.map(v => v.id))`, chromedp.EvalAwaitPromise))
	if !slices.Contains(ids, "image-alt") {
		t.Errorf("axe found %v on a page with an image without alt, want image-alt", ids)
	}
}

// resetViewport goes back to the window's size (newChromium's 900×760).
// Clearing the override instead leaves full-page screenshots 320 px wide.
var resetViewport = chromedp.EmulateViewport(900, 760)

func must0(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
