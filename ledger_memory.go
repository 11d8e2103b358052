package emailotp

import (
	"context"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The process's memory ledger: the volatile kind, and the cache every
// storage ledger records into (see memoryLedgerKey).

// ledgers holds, across config reloads, the process's memory ledger and each
// storage ledger's sweeper, so a reload neither forgets used references nor
// leaks goroutines.
var ledgers = caddy.NewUsagePool()

// memoryLedgerKey is the pool key of the process's one memory ledger. Every
// ledger of either kind holds it: the storage ledger records there what it
// consumed, so a reload that switches a handler to "memory" still refuses
// everything this process consumed under "storage", and the reverse.
const memoryLedgerKey = "memory"

// memoryLedger is a map of key → expiry behind a mutex, swept periodically.
// Its size is bounded by the rate of consumed references times their lifetime.
type memoryLedger struct {
	mu      sync.Mutex
	used    map[string]int64 // unix seconds of expiry
	done    chan struct{}
	stopped chan struct{}
}

func newMemoryLedger(sweep time.Duration) *memoryLedger {
	l := &memoryLedger{used: make(map[string]int64), done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(l.stopped)
		t := time.NewTicker(sweep)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.sweep()
			case <-l.done:
				return
			}
		}
	}()
	return l
}

func (l *memoryLedger) consume(_ context.Context, key string, expires time.Time) (bool, error) {
	exp := expires.Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.used[key]; ok && e >= now().Unix() {
		return false, nil
	}
	l.used[key] = exp
	return true, nil
}

// seen reports whether key is recorded and unexpired.
func (l *memoryLedger) seen(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.used[key]
	return ok && e >= now().Unix()
}

// record notes key as used until expires, for a ledger that decided so
// elsewhere (the storage ledger).
func (l *memoryLedger) record(key string, expires time.Time) {
	l.mu.Lock()
	if e, ok := l.used[key]; !ok || e < expires.Unix() {
		l.used[key] = expires.Unix()
	}
	l.mu.Unlock()
}

func (l *memoryLedger) sweep() {
	t := now().Unix()
	l.mu.Lock()
	for k, e := range l.used {
		if e < t {
			delete(l.used, k)
		}
	}
	l.mu.Unlock()
}

// Destruct stops the sweeper when the last config using the ledger is gone,
// and waits for it, so nothing of the ledger runs after its config's Cleanup.
func (l *memoryLedger) Destruct() error {
	close(l.done)
	<-l.stopped
	return nil
}
