package emailotp

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSignInLimits checks that the sign-in page counts its codes on the
// grant's counters (signInStart calls the same limiter with the page's
// client, the address and Caddy's client IP): the per-address and the
// per-client limit trip on <path>/start with a 429 page that says so, keeps
// the form usable and sends no mail, and codes asked for through the token
// endpoint and through the page count together.
func TestSignInLimits(t *testing.T) {
	mp := startMailpit(t)
	// handle, since the site's catch-all respond comes before metrics in
	// Caddy's directive order. The per-IP limit (20 per 15m) stays far away.
	tc := startCaddy(t, "\thandle /metrics {\n\t\tmetrics\n\t}\n"+
		signinSite(mp.SMTPPort, "\t\tlimit address 2 15m\n\t\tlimit client 4 15m\n"))
	metricsURL := tc.Base + "/metrics"
	before, _ := scrape(t, metricsURL)
	b := newBrowserless(t, tc.Base)
	form := b.do(http.MethodGet, signinPath+"?return=%2Fapp%2F", nil, nil)
	tok := form.field("csrf")
	if form.Status != 200 || tok == "" {
		t.Fatalf("sign-in page: %d", form.Status)
	}
	start := func(addr, csrf string) pageAnswer {
		t.Helper()
		return b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {addr}, "csrf": {csrf}, "return": {"/app/"}}, nil)
	}
	sent := func(addr string) {
		t.Helper()
		mp.WaitFor(t, addr, 10*time.Second)
	}
	// refused checks a 429 page: the error, announced and tied to the
	// address field, a Retry-After within the window, and the address form
	// again with the typed address, the return path and a usable CSRF token.
	refused := func(what string, a pageAnswer, addr string) {
		t.Helper()
		if a.Status != http.StatusTooManyRequests {
			t.Fatalf("%s: %d, want 429\n%s", what, a.Status, a.Body)
		}
		if ra, err := strconv.Atoi(a.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 15*60 {
			t.Errorf("%s: Retry-After = %q", what, a.Header.Get("Retry-After"))
		}
		for _, want := range []string{
			`role="alert">` + pageTexts["en"].ErrRateLimit + `<`,
			`action="` + signinPath + `/start"`,
			`aria-describedby="error email-hint"`,
			`aria-invalid="true"`,
		} {
			if !strings.Contains(a.Body, want) {
				t.Errorf("%s: page lacks %s", what, want)
			}
		}
		if a.field("email") != addr || a.field("return") != "/app/" || a.field("csrf") != tok || a.field("reference") != "" {
			t.Errorf("%s: form fields email=%q return=%q csrf ok=%v reference=%q", what,
				a.field("email"), a.field("return"), a.field("csrf") == tok, a.field("reference"))
		}
		if a.Header.Get("Content-Security-Policy") != pageCSP || a.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: page headers missing", what)
		}
	}

	t.Run("per address, shared with the token endpoint", func(t *testing.T) {
		const addr = "limited@example.com"
		initiate(t, tc, mp, addr, nil, appCreds) // 1st code: through the grant
		if a := start(addr, tok); a.Status != 200 || a.field("reference") == "" {
			t.Fatalf("2nd code through the page: %d", a.Status)
		}
		waitCount(t, mp, addr, 2)
		a := start(addr, tok)
		refused("3rd code to one address", a, addr)
		// Localized like the rest of the page.
		fi := b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {addr}, "csrf": {tok}},
			map[string]string{"Accept-Language": "fi"})
		if fi.Status != http.StatusTooManyRequests || !strings.Contains(fi.Body, pageTexts["fi"].ErrRateLimit) {
			t.Errorf("fi: %d, want the Finnish limit error", fi.Status)
		}
		// The form on the 429 page still works, for another address.
		next := start("limited-other@example.com", a.field("csrf"))
		if next.Status != 200 || next.field("reference") == "" {
			t.Fatalf("another address from the 429 page's form: %d", next.Status)
		}
		sent("limited-other@example.com")
		if n := mp.Count(t, addr); n != 2 {
			t.Errorf("%d mails to %s, want 2: a refused code was mailed", n, addr)
		}
	})

	t.Run("per client", func(t *testing.T) {
		// Three codes counted for client app so far (one by the grant, two
		// by the page; refusals count nothing); the limit is 4.
		if a := start("client4@example.com", tok); a.Status != 200 {
			t.Fatalf("4th code of the client: %d", a.Status)
		}
		sent("client4@example.com")
		refused("5th code of the client", start("client5@example.com", tok), "client5@example.com")
		// The grant meets the same counter.
		if a := post(t, tc.Base+tokenPath, initiateForm("client6@example.com"), appCreds); a.Status != http.StatusTooManyRequests || a.str("error") != "slow_down" {
			t.Errorf("grant past the client limit: %s", a)
		}
		for _, addr := range []string{"client5@example.com", "client6@example.com"} {
			if n := mp.Count(t, addr); n != 0 {
				t.Errorf("%d mails to %s past the client limit", n, addr)
			}
		}
	})

	t.Run("counted in metrics and logs", func(t *testing.T) {
		after, _ := scrape(t, metricsURL)
		for scope, want := range map[string]float64{"address": 2, "client": 2, "user_ip": 0} {
			key := fmt.Sprintf(`caddy_email_otp_rate_limited_total{client="app",scope=%q}`, scope)
			if got := after[key] - before[key]; got != want {
				t.Errorf("%s: +%v, want +%v", key, got, want)
			}
		}
		logs := tc.Logs(t)
		if n := strings.Count(logs, `"rate_limited"`); n < 3 {
			t.Errorf("%d rate_limited log lines, want at least the page's 3", n)
		}
		if strings.Contains(logs, "limited@example.com") {
			t.Error("an address was logged unmasked")
		}
	})
}

// waitCount polls mailpit until n messages to addr are stored.
func waitCount(t *testing.T, mp *mailpit, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for mp.Count(t, addr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: %d messages to %s, want %d", mp.Count(t, addr), addr, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
