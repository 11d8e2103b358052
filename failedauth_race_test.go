package emailotp

// A burst of wrong secrets at one instance: each failure must count at once,
// not only once it has been shared through the storage, or every guess that
// arrives while the first failure is being published gets its secret checked
// (found by TestClusterLimits's concurrent burst: 30 of 30 checked, limit 4).

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// stallingStorage holds every Store until release is closed, and says on
// stored when the first one arrives.
type stallingStorage struct {
	*ioCountingStorage
	stored  chan struct{}
	release chan struct{}
	armed   atomic.Bool // stall only the limit entries, not the heartbeat
}

func (s *stallingStorage) Store(ctx context.Context, k string, v []byte) error {
	if !s.armed.Load() || strings.HasSuffix(k, "/alive") {
		return s.ioCountingStorage.Store(ctx, k, v)
	}
	select {
	case s.stored <- struct{}{}:
	default:
	}
	<-s.release
	return s.ioCountingStorage.Store(ctx, k, v)
}

func TestFailedAuthCountsBeforeSharing(t *testing.T) {
	fixClock(t)
	st := &stallingStorage{ioCountingStorage: &ioCountingStorage{Storage: fileStorage(t)}, stored: make(chan struct{}, 1), release: make(chan struct{})}
	c := instances(t, 1, st)[0]
	st.armed.Store(true)
	l := &limiter{authIP: Limit{Count: 1, Window: caddy.Duration(time.Minute)}, authClient: defaultAuthClient, state: c}

	done := make(chan struct{})
	go func() {
		defer close(done)
		l.authFailed("app", "203.0.113.7")
	}()
	select {
	case <-st.stored:
	case <-time.After(10 * time.Second):
		t.Fatal("the failure was never published")
	}
	// The first failure is on its way to the storage: the limit (1) is
	// reached already for this instance (the check waits for the sharing).
	allowed := make(chan bool, 1)
	go func() {
		_, ok := l.authAllowed("app", "203.0.113.7")
		allowed <- ok
	}()
	time.Sleep(50 * time.Millisecond)
	close(st.release)
	<-done
	if ok := <-allowed; ok {
		t.Error("a second guess was let through while the first failure was being shared")
	}
	if _, ok := l.authAllowed("app", "203.0.113.7"); ok {
		t.Error("a second guess was let through after the first failure was shared")
	}
}
