package emailotp

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// memoryEntries is how many entries TestMemoryPerEntry inserts: enough that
// the map's growth steps average out.
const memoryEntries = 100_000

// heapAfterGC is the live heap once garbage is collected.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// perEntry measures the heap growth caused by fill, per entry. keep is called
// after the second measurement so the structure is still reachable then.
func perEntry(fill func(), keep func()) float64 {
	before := heapAfterGC()
	fill()
	after := heapAfterGC()
	keep()
	return float64(int64(after)-int64(before)) / memoryEntries
}

// TestMemoryPerEntry measures what the server keeps per consumed reference
// (memory ledger) and per rate-limit key (limiter counters), and holds them to
// the figures the documentation gives (RateLimits.MaxKeys: about 150 bytes a
// counter). bench/load prints the "B/entry" lines.
func TestMemoryPerEntry(t *testing.T) {
	exp := time.Now().Add(10 * time.Minute)

	l := newMemoryLedger(time.Hour)
	defer l.Destruct()
	ledgerBytes := perEntry(func() {
		for range memoryEntries {
			var ch challenge
			_, _ = rand.Read(ch.ID[:])
			if first, _ := l.consume(context.Background(), ch.ledgerKey(), exp); !first {
				t.Fatal("fresh reference refused")
			}
		}
	}, func() {
		if n := l.len(); n != memoryEntries {
			t.Fatalf("ledger holds %d entries, want %d", n, memoryEntries)
		}
	})

	c := newCounters(2 * memoryEntries)
	limit := Limit{Count: 5, Window: 15 * 60 * 1e9}
	const sample = "user000000@example.com" // 22 characters, a typical address
	counterBytes := perEntry(func() {
		for i := range memoryEntries {
			key := fmt.Sprintf("a:user%06d@example.com", i)
			if scope, _ := c.take([]check{{"address", key, limit}}); scope != "" {
				t.Fatalf("first code to %s refused", key)
			}
		}
	}, func() {
		if n := c.len(); n != memoryEntries {
			t.Fatalf("limiter holds %d keys, want %d", n, memoryEntries)
		}
	})

	t.Logf("memory ledger: %.0f B/entry (consumed reference, key %q form, N=%d)", ledgerBytes, "<32 hex>.<attempt>", memoryEntries)
	t.Logf("rate limiter: %.0f B/entry (one address key, %d-character address, N=%d)", counterBytes, len(sample), memoryEntries)
	if ledgerBytes <= 0 || ledgerBytes > 200 {
		t.Errorf("memory ledger costs %.0f B per consumed reference, want 1-200", ledgerBytes)
	}
	if counterBytes <= 0 || counterBytes > 200 {
		t.Errorf("rate limiter costs %.0f B per key, want 1-200 (documented: about 150)", counterBytes)
	}
}
