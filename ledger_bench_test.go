package emailotp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// BenchmarkLedgers prices one consume of a new key with each ledger on a
// certmagic.FileStorage in a temp dir (Caddy's default storage), at 1 and 16
// concurrent callers: the memory ledger, the storage ledger's file path with
// without fsync (the default) and with, and the generic path (storage lock, two reads, a write)
// that other storages take and that file storage took before.
func BenchmarkLedgers(b *testing.B) {
	kinds := []struct {
		name  string
		open  func(b *testing.B) ledger
		fsync bool
	}{
		{"memory", func(b *testing.B) ledger { return benchMemLedger(b) }, false},
		{"file-fsync", func(b *testing.B) ledger { return benchStorageLedger(b, true) }, true},
		{"file", func(b *testing.B) ledger { return benchStorageLedger(b, true) }, false},
		{"locked", func(b *testing.B) ledger { return benchStorageLedger(b, false) }, true},
	}
	for _, k := range kinds {
		for _, c := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/c=%d", k.name, c), func(b *testing.B) {
				defer func(v bool) { syncLedgerFiles = v }(syncLedgerFiles)
				syncLedgerFiles = k.fsync
				l := k.open(b)
				exp := time.Now().Add(10 * time.Minute)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range c {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							if ok, err := l.consume(context.Background(), fmt.Sprintf("%032x.0", i), exp); !ok || err != nil {
								b.Errorf("consume %d: %v %v", i, ok, err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

func benchMemLedger(b *testing.B) *memoryLedger {
	l := newMemoryLedger(time.Hour)
	b.Cleanup(func() { _ = l.Destruct() })
	return l
}

// benchStorageLedger is a storage ledger on file storage; files false hides
// the file storage from it, so it takes the generic locked path.
func benchStorageLedger(b *testing.B, files bool) *storageLedger {
	l := newStorageLedger(&certmagic.FileStorage{Path: b.TempDir()}, benchMemLedger(b))
	if !files {
		l.files = nil
	}
	return l
}
