package emailotp

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
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
	l := &storageLedger{storage: st}
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
	if _, err := os.Stat(filepath.Join(root, "locks")); err != nil {
		t.Errorf("lock directory: %v", err)
	}
}

func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
