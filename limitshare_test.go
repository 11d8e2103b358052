package emailotp

// Unit tests of the limits shared through storage (counters.go,
// limitstore.go), the failed-authentication throttle, +tag folding and the
// full limiter, on a controlled clock.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-email-otp/emailotp/internal/testenv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// fixClock sets the package clock to a fixed instant for the test and
// returns a function that moves it.
func fixClock(t *testing.T) func(time.Duration) {
	t.Helper()
	clock := testenv.NewClock(time.Unix(1_800_000_000, 0))
	now = clock.Now
	t.Cleanup(func() { now = time.Now })
	return clock.Advance
}

// ioCountingStorage counts the storage calls, to show the hot path makes none.
type ioCountingStorage struct {
	certmagic.Storage
	stores, loads, lists atomic.Int64
}

func (s *ioCountingStorage) Store(ctx context.Context, k string, v []byte) error {
	s.stores.Add(1)
	return s.Storage.Store(ctx, k, v)
}

func (s *ioCountingStorage) Load(ctx context.Context, k string) ([]byte, error) {
	s.loads.Add(1)
	return s.Storage.Load(ctx, k)
}

func (s *ioCountingStorage) List(ctx context.Context, p string, r bool) ([]string, error) {
	s.lists.Add(1)
	return s.Storage.List(ctx, p, r)
}

// instances are n counters sharing one file storage, as n Caddy processes
// sharing `storage file_system` are.
func instances(t *testing.T, n int, st certmagic.Storage) []*counters {
	t.Helper()
	out := make([]*counters, n)
	for i := range out {
		out[i] = newCounters(1000)
		out[i].useStorage(st, zap.NewNop())
		c := out[i]
		t.Cleanup(func() { _ = c.Destruct() })
	}
	return out
}

func fileStorage(t *testing.T) certmagic.Storage {
	return &certmagic.FileStorage{Path: t.TempDir()}
}

var (
	limit5  = Limit{Count: 5, Window: caddy.Duration(15 * time.Minute)}
	limit1k = Limit{Count: 1000, Window: caddy.Duration(time.Minute)}
)

// TestSharedLimitRoundRobin: three instances taking turns on one address
// admit exactly its limit, not three times it.
func TestSharedLimitRoundRobin(t *testing.T) {
	fixClock(t)
	cs := instances(t, 3, fileStorage(t))
	admitted := 0
	for i := range 30 {
		if s, _ := cs[i%3].take([]check{{"address", "a:victim@example.com", limit5}}); s == "" {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("%d codes admitted over 3 instances, limit 5", admitted)
	}
}

// TestSharedLimitConcurrent: three instances hammered at once stay within
// the stated bound, limit + (instances - 1).
func TestSharedLimitConcurrent(t *testing.T) {
	fixClock(t)
	cs := instances(t, 3, fileStorage(t))
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			for range 10 {
				if s, _ := cs[g%3].take([]check{{"address", "a:race@example.com", limit5}}); s == "" {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n < 1 || n > 5+2 {
		t.Fatalf("%d codes admitted by 12 racing requesters on 3 instances, bound 5+2", n)
	}
}

// TestSharedLimitReservation: a key far from its limit is counted without
// storage I/O most of the time, and still holds across instances.
func TestSharedLimitReservation(t *testing.T) {
	fixClock(t)
	st := &ioCountingStorage{Storage: fileStorage(t)}
	cs := instances(t, 3, st)
	admitted := 0
	const requests = 1500
	for i := range requests {
		if s, _ := cs[i%3].take([]check{{"client", "c:app", limit1k}}); s == "" {
			admitted++
		}
	}
	if admitted > 1000+2 || admitted < 1000-3*reserveShare {
		t.Errorf("%d admitted over 3 instances, limit 1000", admitted)
	}
	if n := st.stores.Load(); n > requests/5 {
		t.Errorf("%d storage writes for %d requests: the reservation does not spare the hot path", n, requests)
	}
	t.Logf("%d admitted; %d writes, %d reads, %d lists for %d requests", admitted, st.stores.Load(), st.loads.Load(), st.lists.Load(), requests)
}

// TestSharedLimitSurvivesRestart: a new process on the same storage reads
// the counts of the one before it.
func TestSharedLimitSurvivesRestart(t *testing.T) {
	fixClock(t)
	st := fileStorage(t)
	first := newCounters(1000)
	first.useStorage(st, zap.NewNop())
	for range 5 {
		if s, _ := first.take([]check{{"address", "a:kept@example.com", limit5}}); s != "" {
			t.Fatal("refused below the limit")
		}
	}
	_ = first.Destruct()
	second := instances(t, 1, st)[0]
	if s, wait := second.take([]check{{"address", "a:kept@example.com", limit5}}); s != "address" || wait <= 0 || wait > 15*time.Minute {
		t.Fatalf("after a restart: %q, Retry-After %v", s, wait)
	}
}

// TestSharedLimitWindowEnds: the window ends for every instance, and ended
// windows are swept from storage.
func TestSharedLimitWindowEnds(t *testing.T) {
	advance := fixClock(t)
	st := fileStorage(t)
	cs := instances(t, 2, st)
	for i := range 5 {
		cs[i%2].take([]check{{"address", "a:w@example.com", limit5}})
	}
	if s, _ := cs[0].take([]check{{"address", "a:w@example.com", limit5}}); s == "" {
		t.Fatal("admitted past the limit")
	}
	advance(15*time.Minute + time.Second)
	if s, _ := cs[1].take([]check{{"address", "a:w@example.com", limit5}}); s != "" {
		t.Fatal("window did not end")
	}
	advance(15*time.Minute + time.Second)
	for _, c := range cs {
		c.store.sweepOwn()
	}
	keys, _ := st.List(context.Background(), limitsPrefix, true)
	for _, k := range keys {
		if !strings.HasSuffix(k, "/"+aliveName) && strings.Count(k, "/") == 3 {
			t.Errorf("ended window still in storage: %s", k)
		}
	}
}

// TestFailedAuthThrottle: an IP past failed_auth_ip is refused before its
// secret is checked; the client's own limit refuses only IPs that failed;
// windows end.
func TestFailedAuthThrottle(t *testing.T) {
	advance := fixClock(t)
	l := testLimiter(t, &RateLimits{
		FailedAuthIP:     &Limit{Count: 3, Window: caddy.Duration(time.Minute)},
		FailedAuthClient: &Limit{Count: 5, Window: caddy.Duration(time.Minute)},
	})
	l.state.m = make(map[string]*window)
	for i := range 3 {
		if _, ok := l.authAllowed("app", "198.51.100.1"); !ok {
			t.Fatalf("attempt %d refused", i)
		}
		l.authFailed("app", "198.51.100.1")
	}
	wait, ok := l.authAllowed("app", "198.51.100.1")
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("fourth attempt: ok=%v wait=%v", ok, wait)
	}
	// Other IPs fail too: the client's count passes 5.
	l.authFailed("app", "198.51.100.2")
	l.authFailed("app", "198.51.100.3")
	if _, ok := l.authAllowed("app", "198.51.100.2"); ok {
		t.Error("an IP that failed was let through past the client's limit")
	}
	if _, ok := l.authAllowed("app", "192.0.2.50"); !ok {
		t.Error("the application's IP, which never failed, was locked out")
	}
	if _, ok := l.authAllowed("other", "198.51.100.2"); !ok {
		t.Error("another client refused for an IP below failed_auth_ip")
	}
	advance(time.Minute)
	if _, ok := l.authAllowed("app", "198.51.100.1"); !ok {
		t.Error("still refused after the window")
	}
}

// TestFailedAuthShared: failures spread over three instances are counted
// together: at most the limit plus one attempt per extra instance gets its
// secret checked.
func TestFailedAuthShared(t *testing.T) {
	fixClock(t)
	cs := instances(t, 3, fileStorage(t))
	ls := make([]*limiter, 3)
	for i, c := range cs {
		ls[i] = &limiter{authIP: Limit{Count: 4, Window: caddy.Duration(time.Minute)}, authClient: defaultAuthClient, state: c}
	}
	checked := 0
	for i := range 30 {
		l := ls[i%3]
		if _, ok := l.authAllowed("app", "203.0.113.9"); ok {
			checked++
			l.authFailed("app", "203.0.113.9")
		}
	}
	if checked > 4+2 {
		t.Fatalf("%d secrets checked over 3 instances, limit 4", checked)
	}
}

// TestFullLimiterKeepsExhausted: codes to many other addresses do not make
// a full limiter forget an exhausted address.
func TestFullLimiterKeepsExhausted(t *testing.T) {
	fixClock(t)
	c := newCounters(40)
	victim := check{"address", "a:victim@example.com", limit5}
	for range 5 {
		c.take([]check{victim})
	}
	for i := range 200 {
		c.take([]check{{"address", fmt.Sprintf("a:other%d@example.com", i), limit5}})
	}
	if s, _ := c.take([]check{victim}); s != "address" {
		t.Fatal("a full limiter forgot an exhausted address")
	}
	if n := c.len(); n > 40 {
		t.Errorf("%d keys, bound 40", n)
	}
	// Full of exhausted windows: a new key is refused, not counted over one.
	d := newCounters(3)
	for i := range 3 {
		for range 5 {
			d.take([]check{{"address", fmt.Sprintf("a:x%d@example.com", i), limit5}})
		}
	}
	if s, wait := d.take([]check{{"address", "a:new@example.com", limit5}}); s != "address" || wait <= 0 {
		t.Fatalf("new key in a limiter full of exhausted windows: %q %v", s, wait)
	}
	for i := range 3 {
		if s, _ := d.take([]check{{"address", fmt.Sprintf("a:x%d@example.com", i), limit5}}); s != "address" {
			t.Errorf("exhausted key %d forgotten", i)
		}
	}
}

// TestPlusTagsCountAsOneMailbox: the address limit folds +tags.
func TestPlusTagsCountAsOneMailbox(t *testing.T) {
	fixClock(t)
	l := testLimiter(t, &RateLimits{PerAddress: &Limit{Count: 3, Window: caddy.Duration(time.Hour)}})
	l.state.m = make(map[string]*window)
	admitted := 0
	for i := range 12 {
		a, err := parseAddress(fmt.Sprintf("G+%d@Example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := l.allow("app", a.key(), ""); s == "" {
			admitted++
		}
	}
	if admitted != 3 {
		t.Errorf("%d codes to +tags of one mailbox, limit 3", admitted)
	}
	for in, want := range map[string]string{
		"g+1@example.com": "g@example.com", "g+a+b@example.com": "g@example.com",
		"g@example.com": "g@example.com", "+g@example.com": "+g@example.com", "g+@example.com": "g@example.com",
	} {
		if got := foldTag(in); got != want {
			t.Errorf("foldTag(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCaddyfileFailedAuthLimits: the new scopes parse into the fields of
// the same names.
func TestCaddyfileFailedAuthLimits(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser("limit failed_auth_ip 7 2m\nlimit failed_auth_client off")
	for d.Next() {
		if err := h.unmarshalLimit(d); err != nil {
			t.Fatal(err)
		}
	}
	if l := h.Limits.FailedAuthIP; l == nil || l.Count != 7 || time.Duration(l.Window) != 2*time.Minute {
		t.Errorf("failed_auth_ip = %+v", l)
	}
	if l := h.Limits.FailedAuthClient; l == nil || l.Count != -1 {
		t.Errorf("failed_auth_client = %+v", l)
	}
	d = caddyfile.NewTestDispenser("limit failed_auth_ip 0 1m")
	d.Next()
	if err := h.unmarshalLimit(d); err == nil {
		t.Error("count 0 accepted")
	}
}

// TestShortSecretWarned: a client secret under 22 characters is warned
// about at provision, by client id, without the secret.
func TestShortSecretWarned(t *testing.T) {
	tc := startCaddy(t, otpSite(freePort(t), "\t\tclient long-enough abcdefghijklmnopqrstuvwxyz0123"))
	logs := tc.Logs(t)
	var warned []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "client secret shorter than 22 characters") {
			warned = append(warned, line)
		}
	}
	if len(warned) == 0 || !strings.Contains(strings.Join(warned, "\n"), `"client":"app"`) {
		t.Fatalf("no warning for app's 10-character secret: %q", warned)
	}
	for _, w := range warned {
		if strings.Contains(w, "long-enough") || strings.Contains(w, "app-secret") || strings.Contains(w, "strict-secret") {
			t.Errorf("warning names a long secret's client or holds a secret: %s", w)
		}
	}
}
