package emailotp

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// useTestClock replaces the package clock for one test.
func useTestClock(t *testing.T, c *time.Time) {
	t.Helper()
	t.Cleanup(func() { now = time.Now })
	now = func() time.Time { return *c }
}

// ledgerT0 is on a bucket boundary, so bucket ends are easy to read.
var ledgerT0 = time.Unix(1_700_000_400, 0)

func TestMemoryLedgerExpiry(t *testing.T) {
	clock := ledgerT0
	useTestClock(t, &clock)
	l := newMemoryLedger(time.Hour)
	t.Cleanup(func() { _ = l.Destruct() })
	ctx := context.Background()

	consume := func(key string, exp time.Time) bool {
		t.Helper()
		ok, err := l.consume(ctx, key, exp)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !consume("a.0", ledgerT0.Add(time.Minute)) || consume("a.0", ledgerT0.Add(time.Minute)) {
		t.Fatal("a key must be consumed exactly once")
	}
	if !consume("b.0", ledgerT0.Add(10*time.Minute)) || !consume("a.1", ledgerT0.Add(time.Minute)) {
		t.Fatal("distinct keys are independent")
	}

	clock = ledgerT0.Add(time.Minute) // the last second of a's life
	if consume("a.0", ledgerT0.Add(time.Minute)) {
		t.Error("a key was forgotten before its expiry")
	}
	l.sweep()
	if n := l.len(); n != 3 {
		t.Errorf("sweep before expiry left %d entries, want 3", n)
	}

	clock = ledgerT0.Add(2 * time.Minute)
	l.sweep()
	if n := l.len(); n != 1 {
		t.Errorf("sweep after a's expiry left %d entries, want 1 (b)", n)
	}
	if consume("b.0", ledgerT0.Add(10*time.Minute)) {
		t.Error("an unexpired key was swept")
	}
}

func TestStorageLedgerSweep(t *testing.T) {
	clock := ledgerT0
	useTestClock(t, &clock)
	root := t.TempDir()
	st := &certmagic.FileStorage{Path: root}
	l := newStorageLedger(st, newTestMemoryLedger(t))
	ctx := context.Background()

	if err := l.sweep(ctx); err != nil {
		t.Fatalf("sweep of an empty storage: %v", err)
	}
	if err := l.check(); err != nil {
		t.Fatal(err)
	}

	// expiries in three buckets ending at ledgerT0+10m, ledgerT0+20m and ledgerT0+50m
	keys := map[string]time.Time{
		"a.0": ledgerT0.Add(time.Minute),
		"b.0": ledgerT0.Add(15 * time.Minute),
		"c.0": ledgerT0.Add(45 * time.Minute),
	}
	for k, exp := range keys {
		if ok, err := l.consume(ctx, k, exp); !ok || err != nil {
			t.Fatalf("consume %s: %v %v", k, ok, err)
		}
		if ok, err := l.consume(ctx, k, exp); ok || err != nil {
			t.Fatalf("second consume %s: %v %v", k, ok, err)
		}
	}
	// something else under the prefix is not the sweeper's to delete
	if err := st.Store(ctx, path.Join(ledgerPrefix, "README"), []byte("x")); err != nil {
		t.Fatal(err)
	}

	buckets := func() []string {
		t.Helper()
		l, err := st.List(ctx, ledgerPrefix, false)
		if err != nil {
			t.Fatal(err)
		}
		for i := range l {
			l[i] = path.Base(l[i])
		}
		sort.Strings(l)
		return l
	}
	want := func(names ...string) {
		t.Helper()
		got := buckets()
		sort.Strings(names)
		if len(got) != len(names) {
			t.Fatalf("buckets %v, want %v", got, names)
		}
		for i := range got {
			if got[i] != names[i] {
				t.Fatalf("buckets %v, want %v", got, names)
			}
		}
	}
	end := func(d time.Duration) string { return unixString(ledgerT0.Add(d)) }
	want(end(10*time.Minute), end(20*time.Minute), end(50*time.Minute), "README")

	// At a bucket's end its entries may still be live: the sweep waits.
	clock = ledgerT0.Add(10 * time.Minute)
	if err := l.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	want(end(10*time.Minute), end(20*time.Minute), end(50*time.Minute), "README")

	clock = ledgerT0.Add(25*time.Minute + sweepGrace)
	if err := l.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	want(end(50*time.Minute), "README")
	if ok, err := l.consume(ctx, "c.0", keys["c.0"]); ok || err != nil {
		t.Errorf("an unexpired entry was swept: %v %v", ok, err)
	}
	// a fresh process (an empty memory ledger) reads the same from storage
	if ok, err := newStorageLedger(st, newTestMemoryLedger(t)).consume(ctx, "c.0", keys["c.0"]); ok || err != nil {
		t.Errorf("an unexpired entry was swept: %v %v", ok, err)
	}
}

func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func newTestMemoryLedger(t *testing.T) *memoryLedger {
	l := newMemoryLedger(time.Hour)
	t.Cleanup(func() { _ = l.Destruct() })
	return l
}

// testLedgers are the ledgers a consume can go through: the memory ledger,
// and a storage ledger on file storage taking the file path (exclusive
// create) or the generic path (storage lock, read, write) other storages
// take. Storage ledgers built for one root act as instances sharing it.
var testLedgers = []struct {
	name string
	open func(t *testing.T, root string) ledger
}{
	{"memory", func(t *testing.T, _ string) ledger { return newTestMemoryLedger(t) }},
	{"file", func(t *testing.T, root string) ledger {
		return newStorageLedger(&certmagic.FileStorage{Path: root}, newTestMemoryLedger(t))
	}},
	{"locked", func(t *testing.T, root string) ledger {
		l := newStorageLedger(&certmagic.FileStorage{Path: root}, newTestMemoryLedger(t))
		l.files = nil
		return l
	}},
}

// TestLedgerConcurrentConsume: N goroutines consuming one key get exactly
// one true, with every ledger, and storage ledgers on one root (instances)
// agree.
func TestLedgerConcurrentConsume(t *testing.T) {
	const n = 32
	exp := time.Now().Add(10 * time.Minute)
	for _, k := range testLedgers {
		t.Run(k.name, func(t *testing.T) {
			root := t.TempDir()
			ls := []ledger{k.open(t, root)}
			if k.name != "memory" {
				ls = append(ls, k.open(t, root), k.open(t, root)) // three instances
			}
			for key := range 3 {
				var (
					wg    sync.WaitGroup
					first atomic.Int32
					start = make(chan struct{})
				)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						ok, err := ls[i%len(ls)].consume(context.Background(), fmt.Sprintf("%032x.%d", key, 0), exp)
						if err != nil {
							t.Error(err)
						}
						if ok {
							first.Add(1)
						}
					}()
				}
				close(start)
				wg.Wait()
				if got := first.Load(); got != 1 {
					t.Errorf("key %d: %d of %d concurrent consumes answered first, want 1", key, got, n)
				}
			}
		})
	}
}

// TestStorageLedgerDurable: what a storage ledger consumed is refused by a
// new one on the same root (a restart), and by the process's memory ledger
// (a reload that switches to "memory").
func TestStorageLedgerDurable(t *testing.T) {
	ctx := context.Background()
	exp := time.Now().Add(10 * time.Minute)
	for _, files := range []bool{true, false} {
		t.Run(fmt.Sprintf("files=%v", files), func(t *testing.T) {
			root := t.TempDir()
			mem := newTestMemoryLedger(t)
			open := func(mem *memoryLedger) *storageLedger {
				l := newStorageLedger(&certmagic.FileStorage{Path: root}, mem)
				if !files {
					l.files = nil
				}
				return l
			}
			if ok, err := open(mem).consume(ctx, "k.0", exp); !ok || err != nil {
				t.Fatalf("first consume: %v %v", ok, err)
			}
			if ok, err := mem.consume(ctx, "k.0", exp); ok || err != nil {
				t.Errorf("memory ledger after a switch from storage: %v %v", ok, err)
			}
			if ok, err := open(newTestMemoryLedger(t)).consume(ctx, "k.0", exp); ok || err != nil {
				t.Errorf("after a restart: %v %v", ok, err)
			}
		})
	}
}

// TestStorageLedgerFailure: a storage that fails decides nothing: an error,
// nothing recorded, and the same key is consumed once the storage is back.
func TestStorageLedgerFailure(t *testing.T) {
	ctx := context.Background()
	exp := time.Now().Add(10 * time.Minute)
	for _, files := range []bool{true, false} {
		t.Run(fmt.Sprintf("files=%v", files), func(t *testing.T) {
			root := t.TempDir()
			l := newStorageLedger(&certmagic.FileStorage{Path: root}, newTestMemoryLedger(t))
			if !files {
				l.files = nil
			}
			dir := filepath.Join(root, filepath.FromSlash(ledgerPrefix))
			if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, []byte("in the way"), 0o600); err != nil {
				t.Fatal(err)
			}
			if ok, err := l.consume(ctx, "k.0", exp); ok || err == nil {
				t.Fatalf("consume on a broken storage: %v %v, want an error", ok, err)
			}
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			if ok, err := l.consume(ctx, "k.0", exp); !ok || err != nil {
				t.Errorf("consume once the storage is back: %v %v, want the first", ok, err)
			}
		})
	}
}
