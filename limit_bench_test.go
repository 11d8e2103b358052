package emailotp

import (
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// benchLimits: a client limit far out of reach, so every call is admitted.
func benchLimits(address bool) *RateLimits {
	rl := &RateLimits{PerClient: &Limit{Count: 1 << 30, Window: caddy.Duration(time.Hour)}, MaxKeys: 1 << 22}
	if !address {
		rl.PerAddress = &Limit{Count: -1}
	}
	return rl
}

// BenchmarkLimiterFar is the hot path: one client key far from its limit.
func BenchmarkLimiterFar(b *testing.B) {
	l := benchLimiter(b, benchLimits(false))
	b.ReportAllocs()
	for b.Loop() {
		if s, _ := l.allow("bench", "user@example.com", ""); s != "" {
			b.Fatal(s)
		}
	}
}

// BenchmarkLimiterNewAddress counts a code to a new address each time: the
// address key (limit 5) is near its limit from its first code.
// On file storage an entry is written unsynced (limitfile.go); "synced"
// prices certmagic's Store with its fsync.
func BenchmarkLimiterNewAddress(b *testing.B) {
	for _, synced := range []bool{false, true} {
		b.Run(map[bool]string{false: "unsynced", true: "synced"}[synced], func(b *testing.B) {
			defer func(old bool) { syncLimitEntries = old }(syncLimitEntries)
			syncLimitEntries = synced
			l := benchLimiter(b, benchLimits(true))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if s, _ := l.allow("bench", "user"+strconv.Itoa(i)+"@example.com", ""); s != "" {
					b.Fatal(s)
				}
			}
		})
	}
}

func benchLimiter(b *testing.B, rl *RateLimits) *limiter {
	l, err := newLimiter(rl, certmagic.Storage(&certmagic.FileStorage{Path: b.TempDir()}), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.release)
	l.state.m = make(map[string]*window)
	return l
}
