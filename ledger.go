package emailotp

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// ledger records consumed references until they expire. It is the only
// server-side state of the grant: a reference is accepted at most once because
// consume answers true for a key exactly once, even under concurrent calls.
type ledger interface {
	// consume marks key as used until expires and reports whether this call
	// was the first to do so.
	consume(ctx context.Context, key string, expires time.Time) (bool, error)
}

// ledgers holds, across config reloads, the process's memory ledger and each
// storage ledger's sweeper, so a reload neither forgets used references nor
// leaks goroutines.
var ledgers = caddy.NewUsagePool()

// memoryLedgerKey is the pool key of the process's one memory ledger. Every
// ledger of either kind holds it: the storage ledger records there what it
// consumed, so a reload that switches a handler to "memory" still refuses
// everything this process consumed under "storage", and the reverse.
const memoryLedgerKey = "memory"

// openLedger returns the ledger of the given kind and the pool key to release
// in Cleanup.
func openLedger(storage certmagic.Storage, kind string) (ledger, string, error) {
	v, _, err := ledgers.LoadOrNew(memoryLedgerKey, func() (caddy.Destructor, error) {
		return newMemoryLedger(time.Minute), nil
	})
	if err != nil {
		return nil, "", err
	}
	mem := v.(*memoryLedger)
	switch kind {
	case "memory":
		return mem, memoryLedgerKey, nil
	case "storage":
		// One ledger per provision, holding this config's storage: a storage
		// module may hold connections that its config's Cleanup closes, so a
		// ledger kept from an earlier config could be left with a dead one.
		// The pool entry ties the sweeper's life, and the hold on the memory
		// ledger, to this handler's.
		l := newStorageLedger(storage, mem)
		if err := l.check(); err != nil {
			_, _ = ledgers.Delete(memoryLedgerKey)
			return nil, "", err
		}
		key := fmt.Sprintf("storage:%p", l)
		if _, _, err := ledgers.LoadOrNew(key, func() (caddy.Destructor, error) {
			l.startSweeper(10 * time.Minute)
			return l, nil
		}); err != nil {
			_, _ = ledgers.Delete(memoryLedgerKey)
			return nil, "", err
		}
		return l, key, nil
	}
	_, _ = ledgers.Delete(memoryLedgerKey)
	return nil, "", fmt.Errorf("unknown ledger %q", kind)
}

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

func (l *memoryLedger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.used)
}

// Destruct stops the sweeper when the last config using the ledger is gone,
// and waits for it, so nothing of the ledger runs after its config's Cleanup.
func (l *memoryLedger) Destruct() error {
	close(l.done)
	<-l.stopped
	return nil
}
