package emailotp

// Resend without a browser (issue 13 item 3): what a press of "send a new
// code" does when no script holds the button back. The browser side (the
// countdown) is in signin_look_test.go.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSignInResendForm(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, `
		limit address 3 15m
		signin {
			client app
			resend_cooldown 2s
		}
`))
	b := newBrowserless(t, tc.Base)
	b.do(http.MethodGet, signinPath, nil, nil)
	csrf := b.cookie(DefaultSessionCookie + "_csrf").Value
	post := func(path string, f url.Values) pageAnswer {
		f.Set("csrf", csrf)
		f.Set("return", "/app/")
		return b.do(http.MethodPost, signinPath+path, f, nil)
	}
	const addr = "resend@example.com"
	first := post("/start", url.Values{"email": {addr}})
	ref0 := first.field("reference")
	if first.Status != 200 || ref0 == "" {
		t.Fatalf("start: %d %s", first.Status, first.Body)
	}
	// The code page carries the resend form, which tells how long to wait.
	for _, want := range []string{`action="` + signinPath + `/resend"`, `id="resend"`, `data-wait="2"`,
		`<script src="` + signinPath + `/page.js" defer></script>`} {
		if !strings.Contains(first.Body, want) {
			t.Errorf("code page lacks %s", want)
		}
	}
	code0 := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)

	// 1. Pressed before the cooldown: refused, the same form and reference
	// again, nothing mailed.
	early := post("/resend", url.Values{"reference": {ref0}})
	if early.Status != http.StatusTooManyRequests || early.field("reference") != ref0 ||
		!strings.Contains(early.Body, pageTexts["en"].ResendEarly) || early.Header.Get("Retry-After") == "" {
		t.Fatalf("early resend: %d %s", early.Status, early.Body)
	}
	if n := mp.Count(t, addr); n != 1 {
		t.Errorf("%d mails after an early resend", n)
	}

	// 2. Two wrong codes, then after the cooldown a new code.
	ref := ref0
	for range 2 {
		a := post("/verify", url.Values{"reference": {ref}, "code": {wrong(code0)}})
		if a.Status != 400 || a.field("reference") == "" {
			t.Fatalf("wrong code: %d %s", a.Status, a.Body)
		}
		ref = a.field("reference")
	}
	time.Sleep(2100 * time.Millisecond)
	again := post("/resend", url.Values{"reference": {ref}})
	ref1 := again.field("reference")
	if again.Status != 200 || ref1 == "" || ref1 == ref || !strings.Contains(again.Body, pageTexts["en"].CodeResent) {
		t.Fatalf("resend: %d %s", again.Status, again.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for mp.Count(t, addr) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	code1 := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)
	if mp.Count(t, addr) != 2 {
		t.Fatalf("mails after resend: %d", mp.Count(t, addr))
	}

	// 3. The old reference is spent: neither resend nor verify takes it.
	if a := post("/resend", url.Values{"reference": {ref}}); a.Status != 400 || !strings.Contains(a.Body, pageTexts["en"].ErrStale) {
		t.Errorf("resend with the old reference: %d", a.Status)
	}
	if a := post("/verify", url.Values{"reference": {ref}, "code": {code0}}); a.Status != 400 || !strings.Contains(a.Body, pageTexts["en"].ErrStale) {
		t.Errorf("old reference with the old code: %d", a.Status)
	}

	// 4. The attempt budget carried over: 2 spent before the resend, so 2
	// more wrong codes leave one, and the third exhausts the chain.
	ref = ref1
	for i := range 3 {
		a := post("/verify", url.Values{"reference": {ref}, "code": {wrong(code1)}})
		ref = a.field("reference")
		if i < 2 && (a.Status != 400 || ref == "" || !strings.Contains(a.Body, pageTexts["en"].ErrCode)) {
			t.Fatalf("wrong code %d after resend: %d %s", i+3, a.Status, a.Body)
		}
		if i == 2 && (ref != "" || !strings.Contains(a.Body, pageTexts["en"].ErrStale)) {
			t.Fatalf("attempt %d (max_attempts %d) did not exhaust the chain: %d %s", i+3, DefaultMaxAttempts, a.Status, a.Body)
		}
	}

	// 5. The per-address limit counts resends: start, resend, then a third
	// code is the limit; the fourth is refused.
	const lim = "limited@example.com"
	a := post("/start", url.Values{"email": {lim}})
	time.Sleep(2100 * time.Millisecond)
	a = post("/resend", url.Values{"reference": {a.field("reference")}})
	time.Sleep(2100 * time.Millisecond)
	a = post("/resend", url.Values{"reference": {a.field("reference")}})
	if a.Status != 200 {
		t.Fatalf("third code: %d %s", a.Status, a.Body)
	}
	time.Sleep(2100 * time.Millisecond)
	last := a.field("reference")
	a = post("/resend", url.Values{"reference": {last}})
	if a.Status != http.StatusTooManyRequests || !strings.Contains(a.Body, pageTexts["en"].ErrRateLimit) || a.field("reference") != last {
		t.Errorf("fourth code: %d, want 429 with the same reference", a.Status)
	}
	deadline = time.Now().Add(5 * time.Second)
	for mp.Count(t, lim) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := mp.Count(t, lim); n != 3 {
		t.Errorf("%d mails to %s, want 3 (limit address 3)", n, lim)
	}
}
