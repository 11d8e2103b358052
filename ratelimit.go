package emailotp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// RateLimits bound how many codes are sent. The token endpoint is called by
// the application's server, not by the person, so its remote IP says nothing
// about who asks: the grant counts per address and per client, and per end
// user IP only where that IP is known (the sign-in page, or a client that
// passes it in UserIPParam).
//
// The defaults stop an email bomb — at most 5 mails to one mailbox per 15
// minutes, whatever the client — while a normal application, whose users ask
// for a code and perhaps a resend or two, never meets them.
type RateLimits struct {
	// PerAddress counts codes sent to one mailbox (case and +tags folded),
	// over all clients. Default: 5 per 15m
	PerAddress *Limit `json:"address,omitempty"`

	// PerClient counts codes sent for one client, the ceiling if its secret
	// leaks. Default: 1000 per 1m
	PerClient *Limit `json:"client,omitempty"`

	// PerUserIP counts codes asked for from one end-user IP, where known.
	// Default: 20 per 15m
	PerUserIP *Limit `json:"user_ip,omitempty"`

	// FailedAuthIP counts failed client authentications from one caller IP,
	// past which it is answered 429 before its secret is checked.
	// Default: 10 per 1m
	FailedAuthIP *Limit `json:"failed_auth_ip,omitempty"`

	// FailedAuthClient counts failed authentications of one client id from
	// every IP, past which only the IPs that failed themselves are refused.
	// Default: 100 per 1m
	FailedAuthClient *Limit `json:"failed_auth_client,omitempty"`

	// MaxKeys bounds the number of counters kept in memory (an exhausted one
	// is never evicted before its window ends). Default: 200000
	MaxKeys int `json:"max_keys,omitempty"`
}

var (
	defaultPerAddress = Limit{Count: 5, Window: caddy.Duration(15 * time.Minute)}
	defaultPerClient  = Limit{Count: 1000, Window: caddy.Duration(time.Minute)}
	defaultPerUserIP  = Limit{Count: 20, Window: caddy.Duration(15 * time.Minute)}
	defaultAuthIP     = Limit{Count: 10, Window: caddy.Duration(time.Minute)}
	defaultAuthClient = Limit{Count: 100, Window: caddy.Duration(time.Minute)}
	defaultMaxKeys    = 200000
)

// fillDefaults sets every limit left out to its default; it is the only
// place that knows them, and running it twice changes nothing.
func (rl *RateLimits) fillDefaults() {
	for _, o := range []struct {
		dst **Limit
		def Limit
	}{{&rl.PerAddress, defaultPerAddress}, {&rl.PerClient, defaultPerClient}, {&rl.PerUserIP, defaultPerUserIP},
		{&rl.FailedAuthIP, defaultAuthIP}, {&rl.FailedAuthClient, defaultAuthClient}} {
		if *o.dst == nil {
			l := o.def
			*o.dst = &l
		}
	}
	if rl.MaxKeys == 0 {
		rl.MaxKeys = defaultMaxKeys
	}
}

func (rl *RateLimits) validate() error {
	if rl == nil {
		return nil
	}
	for name, l := range map[string]*Limit{"address": rl.PerAddress, "client": rl.PerClient, "user_ip": rl.PerUserIP,
		"failed_auth_ip": rl.FailedAuthIP, "failed_auth_client": rl.FailedAuthClient} {
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
	authIP, authClient      Limit
	state                   *counters
}

// counterPool keeps the counters across config reloads, so a reload does not
// hand an attacker a fresh allowance.
var counterPool = caddy.NewUsagePool()

const counterPoolKey = "counters"

// newLimiter applies rl to the process's counters. With a storage, the
// counts are shared with every instance that uses it (limitstore.go).
// The limits left out of rl (nil for all) take their defaults; rl itself is
// not changed.
func newLimiter(rl *RateLimits, storage certmagic.Storage, logger *zap.Logger) (*limiter, error) {
	var cfg RateLimits
	if rl != nil {
		cfg = *rl
	}
	cfg.fillDefaults()
	l := &limiter{address: *cfg.PerAddress, client: *cfg.PerClient, userIP: *cfg.PerUserIP,
		authIP: *cfg.FailedAuthIP, authClient: *cfg.FailedAuthClient}
	maxKeys := cfg.MaxKeys
	v, _, err := counterPool.LoadOrNew(counterPoolKey, func() (caddy.Destructor, error) {
		return newCounters(maxKeys), nil
	})
	if err != nil {
		return nil, err
	}
	l.state = v.(*counters)
	l.state.setMax(maxKeys)
	if storage != nil {
		l.state.useStorage(storage, logger)
	}
	return l, nil
}

func (l *limiter) release() { _, _ = counterPool.Delete(counterPoolKey) }

// allow counts one code for the client, the address and the user IP (if
// known). Either all counters move or none does; a refusal names the scope
// and how long until its window ends. An empty scope allows.
func (l *limiter) allow(client, addrKey, userIP string) (scope string, retryAfter time.Duration) {
	checks := make([]check, 0, 3)
	checks = append(checks, check{"address", "a:" + foldTag(addrKey), l.address}, check{"client", "c:" + client, l.client})
	if userIP != "" {
		checks = append(checks, check{"user_ip", "i:" + userIP, l.userIP})
	}
	return l.state.take(checks)
}

// foldTag counts one mailbox however its local part is +tagged: the key of
// local+tag@domain is local@domain. The key is already lower-cased: the
// local part is case-sensitive by RFC 5321 but not at any mail provider in
// use, and folding it errs on the side of fewer mails. Dots are left alone:
// only some providers ignore them.
func foldTag(key string) string {
	at := strings.LastIndexByte(key, '@')
	if at < 0 {
		return key
	}
	if plus := strings.IndexByte(key[:at], '+'); plus > 0 {
		return key[:plus] + key[at:]
	}
	return key
}

// Scopes of the failed-authentication limits, as metrics and logs name them.
const (
	scopeAuthIP     = "failed_auth_ip"
	scopeAuthClient = "failed_auth_client"
)

// authAllowed reports whether a caller at ip may have its secret for
// clientID checked, and if not, for how long to wait. It reads the counts
// this instance knows (its own, and the others' as read at its last failure
// for the key) and touches no storage, so a request with the right secret
// pays nothing; only while a failure of the same IP is being shared does it
// wait for that to finish. An IP past failed_auth_ip is refused; past
// failed_auth_client, the client is refused only to IPs that failed
// themselves, so an attacker cannot lock the application out.
func (l *limiter) authAllowed(clientID, ip string) (time.Duration, bool) {
	if l == nil { // a Handler parsing requests without Provision (fuzzing)
		return 0, true
	}
	ipKey, clientKey := "f:"+ip, "g:"+clientID
	t := now()
	c := l.state
	c.mu.Lock()
	defer c.mu.Unlock()
	if ip != "" {
		// A failure from this IP is being shared: wait for what the other
		// instances had counted, or a burst gets the limit at each instance.
		c.waitShared(ipKey)
	}
	ipSeen, ipWait := c.seen(ipKey, l.authIP, t)
	if ip != "" && l.authIP.Count >= 0 && ipSeen >= l.authIP.Count {
		return ipWait, false
	}
	if l.authClient.Count >= 0 && (ipSeen > 0 || ip == "") {
		if n, wait := c.seen(clientKey, l.authClient, t); n >= l.authClient.Count {
			return wait, false
		}
	}
	return 0, true
}

// authFailed counts a failed authentication for the caller's IP and the
// client id, and shares it with the other instances before it returns.
func (l *limiter) authFailed(clientID, ip string) {
	if l == nil {
		return
	}
	checks := make([]check, 0, 2)
	if ip != "" {
		checks = append(checks, check{scopeAuthIP, "f:" + ip, l.authIP})
	}
	checks = append(checks, check{scopeAuthClient, "g:" + clientID, l.authClient})
	l.state.record(checks)
}

// minSecretLength is the length under which a client secret is warned
// about: 22 characters of base64 carry 128 bits.
const minSecretLength = 22

// warnShortSecret warns at provision about a client secret short enough to
// be guessed, naming the client but never the secret.
func warnShortSecret(clientID, secret string) {
	if len(secret) < minSecretLength {
		caddy.Log().Named("http.handlers.email_otp").Warn("client secret shorter than 22 characters: use at least 128 random bits",
			zap.String("client", clientID), zap.Int("length", len(secret)))
	}
}

// ipKey groups IPv6 addresses by /64, the block one subscriber usually holds.
func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
