package emailotp

// Whole-server tests of the rate limits at the token endpoint: the per-client
// and per-end-user-IP limits, how a client passes the end user's IP, and the
// counters across config reloads. The per-address limit's own answer is
// tested in TestGrantRateLimits.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// relaySite is otpSite with a client that passes the end user's IP in the
// parameter end_user_ip, plus extra inside the email_otp block.
func relaySite(smtpPort int, extra string) string {
	return otpSite(smtpPort, `
		client relay {
			secret relay-secret
			user_ip_param end_user_ip
		}
`+extra)
}

var relayCreds = []string{"relay", "relay-secret"}

// withUserIP is an initiate form for addr carrying ip in end_user_ip.
func withUserIP(addr, ip string) url.Values {
	f := initiateForm(addr)
	f.Set("end_user_ip", ip)
	return f
}

// checkSlowDown asserts a is the refusal of a limit of the given scope whose
// window is window: 429 slow_down in JSON, not cacheable, and a Retry-After
// of whole seconds within the window.
func checkSlowDown(t *testing.T, a answer, scope string, window time.Duration) {
	t.Helper()
	if a.Status != http.StatusTooManyRequests || a.str("error") != "slow_down" {
		t.Fatalf("want 429 slow_down, got %s", a)
	}
	if d := a.str("error_description"); !strings.Contains(d, "per "+scope) {
		t.Errorf("error_description %q does not name the %s limit", d, scope)
	}
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := a.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	if a.reference() != "" {
		t.Errorf("a reference in a refusal: %s", a)
	}
	ra := a.Header.Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil || n < 1 || time.Duration(n)*time.Second > window {
		t.Errorf("Retry-After = %q, want whole seconds in [1, %v]", ra, window)
	}
}

// wantStatus posts form as basic and fails unless the status is want.
func wantStatus(t *testing.T, tc *testCaddy, form url.Values, basic []string, want int) answer {
	t.Helper()
	a := post(t, tc.Base+tokenPath, form, basic)
	if a.Status != want {
		t.Fatalf("%s (user IP %q): want %d, got %s", form.Get("username"), form.Get("end_user_ip"), want, a)
	}
	return a
}

// noMail asserts that nothing was mailed to any of addrs.
func noMail(t *testing.T, mp *mailpit, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		if n := mp.Count(t, addr); n != 0 {
			t.Errorf("%d mails sent to %s, whose request was refused", n, addr)
		}
	}
}

// TestRateLimitUserIP: a client configured with user_ip_param has codes
// counted per end-user IP (IPv6 per /64); a malformed IP is refused before
// any mail; other clients' parameter of that name is ignored, and no request
// header stands in for the parameter.
func TestRateLimitUserIP(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, relaySite(mp.SMTPPort, "\t\tlimit user_ip 2 10m"))
	const window = 10 * time.Minute

	t.Run("counted per user IP", func(t *testing.T) {
		for i := range 2 {
			wantStatus(t, tc, withUserIP(fmt.Sprintf("ip1-%d@example.com", i), "198.51.100.7"), relayCreds, http.StatusOK)
		}
		a := wantStatus(t, tc, withUserIP("ip1-2@example.com", "198.51.100.7"), relayCreds, http.StatusTooManyRequests)
		checkSlowDown(t, a, "user_ip", window)
		// The same IPv4 address written as IPv4-mapped IPv6 is the same person.
		a = wantStatus(t, tc, withUserIP("ip1-3@example.com", "::ffff:198.51.100.7"), relayCreds, http.StatusTooManyRequests)
		checkSlowDown(t, a, "user_ip", window)
		noMail(t, mp, "ip1-2@example.com", "ip1-3@example.com")
		// Another user of the same application still gets codes.
		wantStatus(t, tc, withUserIP("ip2-0@example.com", "198.51.100.8"), relayCreds, http.StatusOK)
		// The refused requests did not count against their addresses.
		wantStatus(t, tc, withUserIP("ip1-2@example.com", "198.51.100.8"), relayCreds, http.StatusOK)
		if n := mp.Count(t, "ip1-0@example.com") + mp.Count(t, "ip1-1@example.com") + mp.Count(t, "ip2-0@example.com"); n != 3 {
			t.Errorf("%d mails for 3 accepted requests", n)
		}
	})

	t.Run("IPv6 counted per /64", func(t *testing.T) {
		wantStatus(t, tc, withUserIP("v6-0@example.com", "2001:db8:1:2::1"), relayCreds, http.StatusOK)
		wantStatus(t, tc, withUserIP("v6-1@example.com", "2001:db8:1:2:ffff:ffff:ffff:ffff"), relayCreds, http.StatusOK)
		a := wantStatus(t, tc, withUserIP("v6-2@example.com", "2001:db8:1:2:abcd::5"), relayCreds, http.StatusTooManyRequests)
		checkSlowDown(t, a, "user_ip", window)
		wantStatus(t, tc, withUserIP("v6-3@example.com", "2001:db8:1:3::1"), relayCreds, http.StatusOK)
		noMail(t, mp, "v6-2@example.com")
	})

	t.Run("malformed user IP", func(t *testing.T) {
		for i, ip := range []string{
			"", "not-an-ip", "198.51.100.9:443", "[2001:db8::1]", "256.1.1.1", "198.51.100.009",
			"198.51.100.9, 10.0.0.1", "198.51.100.0/24", " 198.51.100.9", "198.51.100.9\n",
		} {
			addr := fmt.Sprintf("bad-ip-%d@example.com", i)
			a := wantStatus(t, tc, withUserIP(addr, ip), relayCreds, http.StatusBadRequest)
			if a.str("error") != "invalid_request" || !strings.Contains(a.str("error_description"), "end_user_ip") {
				t.Errorf("user IP %q: %s", ip, a)
			}
			noMail(t, mp, addr)
		}
		// Two values, as a client dodging the limit might send: refused.
		f := withUserIP("bad-ip-dup@example.com", "198.51.100.10")
		f.Add("end_user_ip", "198.51.100.11")
		if a := wantStatus(t, tc, f, relayCreds, http.StatusBadRequest); a.str("error") != "invalid_request" {
			t.Errorf("repeated user IP: %s", a)
		}
		noMail(t, mp, "bad-ip-dup@example.com")
	})

	t.Run("ignored for a client not configured to pass it", func(t *testing.T) {
		// 198.51.100.7 is at its limit; app's parameter of that name is
		// plain text to the grant: neither counted nor checked.
		for i := range 3 {
			wantStatus(t, tc, withUserIP(fmt.Sprintf("app-ip-%d@example.com", i), "198.51.100.7"), appCreds, http.StatusOK)
		}
		wantStatus(t, tc, withUserIP("app-ip-bad@example.com", "not-an-ip"), appCreds, http.StatusOK)
		if n := mp.Count(t, "app-ip-2@example.com") + mp.Count(t, "app-ip-bad@example.com"); n != 2 {
			t.Errorf("%d mails for 2 accepted requests", n)
		}
	})

	t.Run("no header stands in for the parameter", func(t *testing.T) {
		// The token endpoint is called by the application's server: its
		// remote IP (here 127.0.0.1, three requests) is not the user's,
		// and forwarding headers naming an IP at its limit are not read.
		for i := range 3 {
			f := initiateForm(fmt.Sprintf("hdr-%d@example.com", i))
			req, err := http.NewRequest(http.MethodPost, tc.Base+tokenPath, strings.NewReader(f.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(relayCreds[0], relayCreds[1])
			req.Header.Set("X-Forwarded-For", "198.51.100.7")
			req.Header.Set("X-Real-IP", "198.51.100.7")
			req.Header.Set("Forwarded", "for=198.51.100.7")
			if a := do(t, req); a.Status != http.StatusOK {
				t.Fatalf("request %d with forwarding headers: %s", i, a)
			}
		}
	})
}

// TestRateLimitPerClient: past its count a client is refused with 429 and
// no mail, while other clients and the refused client's addresses are not
// affected.
func TestRateLimitPerClient(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, "\t\tlimit client 3 1m"))
	for i := range 3 {
		wantStatus(t, tc, initiateForm(fmt.Sprintf("client-%d@example.com", i)), appCreds, http.StatusOK)
	}
	for _, addr := range []string{"client-3@example.com", "client-4@example.com"} {
		a := wantStatus(t, tc, initiateForm(addr), appCreds, http.StatusTooManyRequests)
		checkSlowDown(t, a, "client", time.Minute)
	}
	noMail(t, mp, "client-3@example.com", "client-4@example.com")
	// Another client has its own count, and the address app was refused
	// for was not charged.
	initiate(t, tc, mp, "client-3@example.com", nil, []string{"strict", "strict-secret"})
	if n := mp.Count(t, "client-0@example.com") + mp.Count(t, "client-1@example.com") + mp.Count(t, "client-2@example.com"); n != 3 {
		t.Errorf("%d mails for 3 accepted requests", n)
	}
}

// adminLoad posts a whole Caddyfile around site to the admin /load endpoint,
// as an operator reloading the config does, and waits until the new config
// answers. Caddy stops the old server once the new one runs, but on a busy
// machine the old one may still accept a connection or two just after /load
// returns, so the new config is marked with gen and polled for.
func (tc *testCaddy) adminLoad(t *testing.T, site string, gen int) {
	t.Helper()
	mark := strconv.Itoa(gen)
	body := tc.caddyfile(site + "\n\trespond /__generation " + mark + " 200\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+tc.AdminAddr+"/load", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin /load: %s: %s", resp.Status, msg)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dropIdleConns()
		if resp, err := http.Get(tc.Base + "/__generation"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == mark {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("config %d not in force 10s after /load", gen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRateLimitReload: the counters outlive a config reload, and a reload
// that changes a limit applies the new count and window to the windows
// already open: a window is anchored at its first code and lasts as long as
// the limit now in force says.
func TestRateLimitReload(t *testing.T) {
	mp := startMailpit(t)
	const addr = "reload-limit@example.com"
	withLimit := func(limit string) string { return otpSite(mp.SMTPPort, "\t\tlimit address "+limit) }
	tc := startCaddy(t, withLimit("2 1h"))
	mails := 0
	send := func(want int) answer {
		t.Helper()
		a := wantStatus(t, tc, initiateForm(addr), appCreds, want)
		if want == http.StatusOK {
			mails++
		}
		return a
	}
	send(http.StatusOK)
	send(http.StatusOK)
	checkSlowDown(t, send(http.StatusTooManyRequests), "address", time.Hour)

	// A compatible change (a client added): the counter is still full.
	tc.adminLoad(t, otpSite(mp.SMTPPort, "\t\tlimit address 2 1h\n\t\tclient added added-secret"), 1)
	initiate(t, tc, mp, "reload-added@example.com", nil, []string{"added", "added-secret"})
	checkSlowDown(t, send(http.StatusTooManyRequests), "address", time.Hour)

	// A higher count applies to the open window: one more, then refused.
	tc.adminLoad(t, withLimit("3 1h"), 2)
	send(http.StatusOK)
	checkSlowDown(t, send(http.StatusTooManyRequests), "address", time.Hour)

	// A lower count refuses at once.
	tc.adminLoad(t, withLimit("1 1h"), 3)
	checkSlowDown(t, send(http.StatusTooManyRequests), "address", time.Hour)

	// A shorter window shortens the open one: the operator who relaxes a
	// limit frees the locked-out address at once, and Retry-After never
	// exceeds the window in force.
	tc.adminLoad(t, withLimit("1 2s"), 4)
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := post(t, tc.Base+tokenPath, initiateForm(addr), appCreds)
		if a.Status == http.StatusOK {
			mails++
			break
		}
		checkSlowDown(t, a, "address", 2*time.Second)
		if t.Failed() || time.Now().After(deadline) {
			t.Fatalf("address still refused after the window was shortened to 2s: %s", a)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// A longer window lengthens the open one: the code just sent counts
	// for the next hour, not for 2s.
	tc.adminLoad(t, withLimit("1 1h"), 5)
	time.Sleep(2100 * time.Millisecond)
	a := send(http.StatusTooManyRequests)
	checkSlowDown(t, a, "address", time.Hour)
	if n, _ := strconv.Atoi(a.Header.Get("Retry-After")); n < 3500 {
		t.Errorf("Retry-After %d after the window was lengthened to 1h", n)
	}

	if n := mp.Count(t, addr); n != mails {
		t.Errorf("%d mails to %s, %d requests accepted", n, addr, mails)
	}
}
