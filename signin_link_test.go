package emailotp

// Code and link in one mail (issue 13 item 5), in headless Chromium: the
// link signs in only in the browser that asked for the code, only after a
// button press; a mail scanner's GET consumes nothing; another browser sees
// the code to type instead; the link is single-use like the code.

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// mailedLink returns the sign-in link of a mail's text.
func mailedLink(t *testing.T, text string) string {
	t.Helper()
	m := regexp.MustCompile(`https?://\S+/link\?\S+`).FindString(text)
	if m == "" {
		t.Fatalf("no link in the mail:\n%s", text)
	}
	return m
}

func TestSignInMailLinkBrowser(t *testing.T) {
	axe := axeSource(t)
	ctx := newChromium(t)
	b := tab{t: t, ctx: ctx}
	mp := startMailpit(t)
	tc := startCaddy(t, "") // for its address: the link's origin is configured
	tc.load(t, otpSite(mp.SMTPPort, fmt.Sprintf(`
		signin {
			client app
			mail_link %s
		}
`, tc.Base)))
	ax := audits{b: b, axe: axe}

	// 1. The browser asks for a code; the mail has the code and the link.
	const alice = "linked@example.com"
	b.do("sign-in page", chromedp.Navigate(tc.Base+signinPath+"?return=/app/"),
		chromedp.WaitVisible(chromedp.CSS("#email")), chromedp.SendKeys(chromedp.CSS("#email"), alice),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#code")))
	msg := mp.WaitFor(t, alice, 15*time.Second)
	code := codeFrom(t, msg.Text, DefaultCodeLength)
	link := mailedLink(t, msg.Text)
	if !strings.HasPrefix(link, tc.Base+signinPath+"/link?") || !strings.Contains(msg.Text, pageTexts["en"].MailLink) {
		t.Fatalf("mail: %q", msg.Text)
	}
	lu, _ := url.Parse(link)
	if lu.Query().Get("code") != code || lu.Query().Get("return") != "/app/" {
		t.Errorf("link query %v", lu.Query())
	}

	// 2. A mail scanner fetches the link: a page with a button, nothing spent.
	for range 3 {
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `id="link-code"`) || strings.Contains(string(body), `id="link-signin"`) {
			t.Fatalf("scanner GET: %d %s", resp.StatusCode, body)
		}
	}

	// 3. Another browser (a fresh browser context: no cookies) sees the
	// code to type, and no button.
	other, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancel()
	// As in newChromium: the first action binds the target to its context,
	// so it gets other itself, not one with a deadline.
	if err := chromedp.Do(other, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("second browser context: %v", err)
	}
	o := tab{t: t, ctx: other}
	// A GET of the link spends nothing (step 2), so it is safe to retry.
	o.doSettled("the link in another browser", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#link-code")))
	if s := o.text("#link-code"); s != code {
		t.Errorf("other browser shows %q, want the code %s", s, code)
	}
	if s := o.text("#link-other"); s != pageTexts["en"].LinkOther {
		t.Errorf("other browser says %q", s)
	}
	audits{b: o, axe: axe}.check("link in another browser")
	o.shot("signin-link-other-browser")
	// Its POST (with its own valid CSRF token) is refused and spends nothing.
	if v := postLinkFromOther(t, o, link); v != "linkcode" {
		t.Errorf("link POST from another browser shows %q, want the code to type", v)
	}
	if _, in := o.cookies(tc.Base)[DefaultSessionCookie]; in {
		t.Error("the other browser got a session")
	}

	// 4. In the browser that asked: a button; pressing it signs in.
	b.doSettled("the link in the browser that asked", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#link-signin")))
	if s := b.text("#link-ask"); !strings.Contains(s, alice) {
		t.Errorf("link page says %q", s)
	}
	ax.check("link button")
	b.shot("signin-link-button")
	b.do("pressing the button", chromedp.Click(chromedp.CSS("#link-signin")))
	b.waitURL("landing on /app/", func(u *url.URL) bool { return u.Path == "/app/" })
	if c := b.cookies(tc.Base)[DefaultSessionCookie]; c == nil {
		t.Fatal("no session after the link")
	}
	if _, still := b.cookies(tc.Base)[DefaultSessionCookie+"_link"]; still {
		t.Error("the binding cookie survives the sign-in")
	}

	// 5. Single use: the same link again asks for a new code.
	b.do("sign out", chromedp.Navigate(tc.Base+signinPath+"/signout"), chromedp.WaitVisible(chromedp.CSS("#signout")),
		chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
	b.do("ask again", chromedp.Navigate(tc.Base+signinPath), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), "second@example.com"),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#code")))
	msg2 := mp.WaitFor(t, "second@example.com", 15*time.Second)
	link2 := mailedLink(t, msg2.Text)
	// A wrong code typed first spends the link's reference, as it would a
	// typed one: the link then asks for a new code.
	b.do("wrong code", chromedp.SendKeys(chromedp.CSS("#code"), wrong(codeFrom(t, msg2.Text, DefaultCodeLength))),
		chromedp.Click(chromedp.CSS("#verify")), chromedp.WaitVisible(chromedp.CSS("#error")))
	b.do("the spent link", chromedp.Navigate(link2), chromedp.WaitVisible(chromedp.CSS("#link-signin")),
		chromedp.Click(chromedp.CSS("#link-signin")), chromedp.WaitVisible(chromedp.CSS("#error")))
	if s := b.text("#error"); s != pageTexts["en"].ErrStale {
		t.Errorf("spent link: %q", s)
	}
	// The first link, used, in a browser whose binding is now another
	// code's: no button, only the code (which no longer works either).
	b.do("the first link again", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#link-code")))
}

// postLinkFromOther submits the link's form from a browser that did not ask
// for the code: the form it would post, built in its own sign-in page (so
// with its own CSRF cookie and token), with the link's reference and code.
// It returns the view the answer shows.
func postLinkFromOther(t *testing.T, o tab, link string) string {
	t.Helper()
	u, _ := url.Parse(link)
	q := u.Query()
	o.do("sign-in page in the other browser", chromedp.Navigate(u.Scheme+"://"+u.Host+signinPath), chromedp.WaitVisible(chromedp.CSS("#email")))
	js := fmt.Sprintf(`(() => {
		const f = document.querySelector("form");
		f.action = %q;
		f.querySelector("input[name=email]").remove();
		for (const [k, v] of [["reference", %q], ["code", %q]]) {
			const i = document.createElement("input");
			i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
		}
		f.submit();
		return true;
	})()`, u.Path, q.Get("reference"), q.Get("code"))
	run(o, "posting the link form", chromedp.Evaluate[bool](js))
	o.waitURL("the link answer", func(x *url.URL) bool { return x.Path == u.Path })
	o.do("answer", chromedp.WaitVisible(chromedp.CSS("main")))
	if run(o, "view", chromedp.Evaluate[bool](`!!document.getElementById("link-code")`)) {
		return "linkcode"
	}
	return o.text("main")
}

// audits runs axe-core on a tab (see tab.audit).
type audits struct {
	b   tab
	axe string
}

func (a audits) check(state string) { a.b.t.Helper(); a.b.audit(a.axe, state) }
