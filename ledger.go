package emailotp

import (
	"context"
	"fmt"
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
