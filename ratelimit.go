package emailotp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// RateLimits bound how many codes are sent. The token endpoint is called by
// the application's server, not by the person, so its remote IP says nothing
// about who asks: the grant counts per address and per client, and per end
// user IP only where that IP is known (the sign-in page, or a client that
// passes it in PassUserIPParam).
//
// The defaults stop an email bomb — at most 5 mails to one mailbox per 15
// minutes, whatever the client — while a normal application, whose users ask
// for a code and perhaps a resend or two, never meets them.
type RateLimits struct {
	// PerAddress counts codes sent to one address, case-insensitively, over
	// all clients. Default: 5 per 15m
	PerAddress *Limit `json:"per_address,omitempty"`

	// PerClient counts codes sent for one client: the ceiling if a client
	// secret leaks. Default: 1000 per 1m
	PerClient *Limit `json:"per_client,omitempty"`

	// PerUserIP counts codes asked for from one end-user IP, where known.
	// Default: 20 per 15m
	PerUserIP *Limit `json:"per_user_ip,omitempty"`

	// MaxKeys bounds the number of counters kept in memory. Expired windows
	// are evicted first; when every counter is live, about 1% of them go.
	// A counter costs about 100 bytes (91 measured by TestMemoryPerEntry),
	// so the default bounds the limiter to about 20 MB. Default: 200000
	MaxKeys int `json:"max_keys,omitempty"`
}

// Limit is a count per window. A negative count disables the limit.
type Limit struct {
	// Count of events allowed per window.
	Count int `json:"count"`
	// Window is the length of the window.
	Window caddy.Duration `json:"window"`
}

func (l *Limit) String() string {
	return fmt.Sprintf("%d per %s", l.Count, time.Duration(l.Window))
}

var (
	defaultPerAddress = Limit{Count: 5, Window: caddy.Duration(15 * time.Minute)}
	defaultPerClient  = Limit{Count: 1000, Window: caddy.Duration(time.Minute)}
	defaultPerUserIP  = Limit{Count: 20, Window: caddy.Duration(15 * time.Minute)}
	defaultMaxKeys    = 200000
)

func (rl *RateLimits) validate() error {
	if rl == nil {
		return nil
	}
	for name, l := range map[string]*Limit{"address": rl.PerAddress, "client": rl.PerClient, "user_ip": rl.PerUserIP} {
		if l == nil || l.Count < 0 {
			continue
		}
		if l.Count == 0 || l.Window <= 0 {
			return fmt.Errorf("limit %s: count and window must be positive (use off to disable)", name)
		}
	}
	if rl.MaxKeys < 0 {
		return errors.New("limits: max_keys must be positive")
	}
	return nil
}

// limiter applies one configuration's limits to the shared counters.
type limiter struct {
	address, client, userIP Limit
	state                   *counters
}

// counterPool keeps the counters across config reloads, so a reload does not
// hand an attacker a fresh allowance.
var counterPool = caddy.NewUsagePool()

const counterPoolKey = "counters"

func newLimiter(rl *RateLimits) (*limiter, error) {
	l := &limiter{address: defaultPerAddress, client: defaultPerClient, userIP: defaultPerUserIP}
	maxKeys := defaultMaxKeys
	if rl != nil {
		if rl.PerAddress != nil {
			l.address = *rl.PerAddress
		}
		if rl.PerClient != nil {
			l.client = *rl.PerClient
		}
		if rl.PerUserIP != nil {
			l.userIP = *rl.PerUserIP
		}
		if rl.MaxKeys > 0 {
			maxKeys = rl.MaxKeys
		}
	}
	v, _, err := counterPool.LoadOrNew(counterPoolKey, func() (caddy.Destructor, error) {
		return newCounters(maxKeys), nil
	})
	if err != nil {
		return nil, err
	}
	l.state = v.(*counters)
	l.state.setMax(maxKeys)
	return l, nil
}

func (l *limiter) release() { _, _ = counterPool.Delete(counterPoolKey) }

// allow counts one code for the client, the address and the user IP (if
// known). Either all counters move or none does; a refusal names the scope
// and how long until its window ends. An empty scope allows.
func (l *limiter) allow(client, addrKey, userIP string) (scope string, retryAfter time.Duration) {
	checks := make([]check, 0, 3)
	checks = append(checks, check{"address", "a:" + addrKey, l.address}, check{"client", "c:" + client, l.client})
	if userIP != "" {
		checks = append(checks, check{"user_ip", "i:" + userIP, l.userIP})
	}
	return l.state.take(checks)
}

type check struct {
	scope string
	key   string
	limit Limit
}

// counters are fixed-window counters keyed by scope and key.
type counters struct {
	mu      sync.Mutex
	m       map[string]*window
	max     int
	longest time.Duration // the longest window counted: the sweep's horizon
	sweepAt time.Time
}

// window is opened by its first event and lasts as long as the limit now in
// force says, so a reload that changes a limit's window changes the open
// windows too: an operator who shortens it frees a locked-out address at
// once, and Retry-After never exceeds the configured window.
type window struct {
	start time.Time
	count int
}

func newCounters(max int) *counters { return &counters{m: make(map[string]*window), max: max} }

func (c *counters) setMax(n int) {
	c.mu.Lock()
	c.max = n
	c.mu.Unlock()
}

// take checks every limit, then counts one event on each if all allow it.
// It returns the refusing scope with how long until its window ends.
func (c *counters) take(checks []check) (string, time.Duration) {
	t := now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range checks {
		if ch.limit.Count < 0 {
			continue
		}
		w, ok := c.m[ch.key]
		if !ok {
			continue
		}
		if end := w.start.Add(time.Duration(ch.limit.Window)); t.Before(end) && w.count >= ch.limit.Count {
			return ch.scope, end.Sub(t)
		}
	}
	for _, ch := range checks {
		if ch.limit.Count < 0 {
			continue
		}
		c.longest = max(c.longest, time.Duration(ch.limit.Window))
		w, ok := c.m[ch.key]
		if !ok {
			c.makeRoom(t)
			w = &window{}
			c.m[ch.key] = w
		}
		if !ok || !t.Before(w.start.Add(time.Duration(ch.limit.Window))) {
			w.start, w.count = t, 0
		}
		w.count++
	}
	return "", 0
}

// makeRoom keeps the map under its bound. Windows older than the longest
// window counted are expired whatever their limit; they are swept at most
// once a second, or at once when the map is full; if it is still full, about
// 1% of the live windows go, in map order, so that a flood of distinct keys
// costs amortized O(1) per key instead of a scan per insert.
func (c *counters) makeRoom(t time.Time) {
	if len(c.m) < c.max && t.Before(c.sweepAt) {
		return
	}
	for k, w := range c.m {
		if !t.Before(w.start.Add(c.longest)) {
			delete(c.m, k)
		}
	}
	c.sweepAt = t.Add(time.Second)
	if len(c.m) < c.max {
		return
	}
	drop := c.max/100 + 1
	for k := range c.m {
		if drop == 0 {
			break
		}
		delete(c.m, k)
		drop--
	}
}

func (c *counters) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Destruct has nothing to stop: counters are swept on use.
func (c *counters) Destruct() error { return nil }

// ipKey groups IPv6 addresses by /64, the block one subscriber usually holds.
func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
