package emailotp

import (
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func testLimiter(t *testing.T, rl *RateLimits) *limiter {
	t.Helper()
	l, err := newLimiter(rl, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.release)
	return l
}

func TestLimiterWindows(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	clock := base
	now = func() time.Time { return clock }
	defer func() { now = time.Now }()
	l := testLimiter(t, &RateLimits{
		PerAddress: &Limit{Count: 2, Window: caddy.Duration(time.Minute)},
		PerClient:  &Limit{Count: 3, Window: caddy.Duration(time.Minute)},
		PerUserIP:  &Limit{Count: 1, Window: caddy.Duration(time.Minute)},
	})
	l.state.m = make(map[string]*window) // isolated from other tests

	if s, _ := l.allow("c", "a@x.com", ""); s != "" {
		t.Fatalf("first: %s", s)
	}
	if s, _ := l.allow("c", "a@x.com", ""); s != "" {
		t.Fatalf("second: %s", s)
	}
	s, e := l.allow("c", "a@x.com", "")
	if s != "address" || e != time.Minute || sendError(&limitedError{Scope: s, RetryAfter: e}).status != http.StatusTooManyRequests {
		t.Fatalf("third to one address: %q %+v", s, e)
	}
	// The refused request did not count against the client.
	if s, _ := l.allow("c", "b@x.com", ""); s != "" {
		t.Fatal("client counted a refused request")
	}
	if s, _ := l.allow("c", "d@x.com", ""); s != "client" {
		t.Fatalf("client limit: %q", s)
	}
	// Per user IP: IPv6 addresses of one /64 count together.
	if s, _ := l.allow("c2", "e@x.com", ipKey(mustAddr("2001:db8::1"))); s != "" {
		t.Fatal("first from an IP")
	}
	if s, _ := l.allow("c2", "f@x.com", ipKey(mustAddr("2001:db8::ffff"))); s != "user_ip" {
		t.Fatalf("same /64: %q", s)
	}
	// A window ends.
	clock = base.Add(61 * time.Second)
	if s, _ := l.allow("c", "a@x.com", ""); s != "" {
		t.Fatal("window did not end")
	}
}

func TestLimiterOff(t *testing.T) {
	l := testLimiter(t, &RateLimits{PerAddress: &Limit{Count: -1}, PerClient: &Limit{Count: -1}})
	for i := range 50 {
		if s, _ := l.allow("off-client", "same@x.com", ""); s != "" {
			t.Fatalf("request %d refused by %s", i, s)
		}
	}
}

// TestLimiterMemoryBound floods the counters with distinct keys and checks
// the map never exceeds max_keys; it reports the bytes per key.
func TestLimiterMemoryBound(t *testing.T) {
	const maxKeys = 20000
	c := newCounters(maxKeys)
	lim := Limit{Count: 5, Window: caddy.Duration(time.Hour)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 3 * maxKeys {
		c.take([]check{{"address", "a:user" + strconv.Itoa(i) + "@example.com", lim}})
		if n := c.len(); n > maxKeys {
			t.Fatalf("%d keys after %d inserts, bound %d", n, i+1, maxKeys)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := c.len()
	if n < maxKeys*9/10 {
		t.Errorf("only %d keys kept: eviction too eager", n)
	}
	t.Logf("%d live keys, about %d bytes per key", n, int(after.HeapAlloc-before.HeapAlloc)/n)
	runtime.KeepAlive(c)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestGrantRateLimits(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, "limit address 2 1h\nlimit client 100 1m"))
	u := tc.Base + tokenPath
	for range 2 {
		initiate(t, tc, mp, "Flood@Example.com", nil, appCreds)
	}
	// Counted case-insensitively, whatever the client.
	a := post(t, u, initiateForm("flood@example.COM"), []string{"strict", "strict-secret"})
	if a.Status != 429 || a.str("error") != "slow_down" || a.Header.Get("Retry-After") == "" || a.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("third mail to one address: %s %v", a, a.Header)
	}
	if n := mp.Count(t, "flood@example.com"); n != 2 {
		t.Errorf("%d mails sent, limit 2", n)
	}
	// Another address is not affected.
	initiate(t, tc, mp, "calm@example.com", nil, appCreds)
}
