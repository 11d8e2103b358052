package emailotp

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"strconv"
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

// ledgers holds the memory ledger (and the storage ledger's sweeper) across
// config reloads, so a reload neither forgets used references nor leaks
// goroutines.
var ledgers = caddy.NewUsagePool()

// openLedger returns the ledger of the given kind and the pool key to release
// in Cleanup.
func openLedger(ctx caddy.Context, kind string) (ledger, string, error) {
	switch kind {
	case "memory":
		const key = "memory"
		v, _, err := ledgers.LoadOrNew(key, func() (caddy.Destructor, error) {
			return newMemoryLedger(time.Minute), nil
		})
		if err != nil {
			return nil, "", err
		}
		return v.(*memoryLedger), key, nil
	case "storage":
		// One ledger per provision, holding this config's storage: a storage
		// module may hold connections that its config's Cleanup closes, so a
		// ledger kept from an earlier config could be left with a dead one.
		// The pool entry only ties the sweeper's life to this handler's.
		l := &storageLedger{storage: ctx.Storage()}
		if err := l.check(); err != nil {
			return nil, "", err
		}
		key := fmt.Sprintf("storage:%p", l)
		if _, _, err := ledgers.LoadOrNew(key, func() (caddy.Destructor, error) {
			l.startSweeper(10 * time.Minute)
			return l, nil
		}); err != nil {
			return nil, "", err
		}
		return l, key, nil
	}
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

// storageLedger keeps consumed references in Caddy's storage, so instances
// sharing a storage (file system, Redis, Consul, S3…) agree on what was used.
// Each key is checked and written under the storage's lock for that key;
// entries sit in buckets named after their expiry time, so the sweep deletes
// whole expired buckets without reading entries.
type storageLedger struct {
	storage certmagic.Storage
	stop    context.CancelFunc
	stopped chan struct{}
	// local queues this process's consumers of one key on a mutex, so they
	// do not poll the storage lock (certmagic's FileStorage and the Redis
	// storages retry a held lock once a second).
	local [64]sync.Mutex
}

const (
	ledgerPrefix = "email_otp/ledger"
	bucketWidth  = 10 * time.Minute
	// sweepGrace is how long past its end a bucket is kept, so that an
	// instance whose clock runs ahead does not sweep entries that another
	// instance still considers live.
	sweepGrace = time.Minute
)

func (l *storageLedger) entryKey(key string, expires time.Time) string {
	bucket := expires.Truncate(bucketWidth).Add(bucketWidth).Unix()
	return path.Join(ledgerPrefix, strconv.FormatInt(bucket, 10), certmagic.StorageKeys.Safe(key))
}

func (l *storageLedger) consume(ctx context.Context, key string, expires time.Time) (bool, error) {
	name := l.entryKey(key, expires)
	h := fnv.New32a()
	h.Write([]byte(key))
	mu := &l.local[h.Sum32()%uint32(len(l.local))]
	mu.Lock()
	defer mu.Unlock()
	// Once written an entry stays until its bucket expires, so a key found
	// here is refused without taking the storage lock.
	if used, err := l.used(ctx, name); used || err != nil {
		return false, err
	}
	lock := "email_otp_ledger_" + certmagic.StorageKeys.Safe(key)
	if err := l.storage.Lock(ctx, lock); err != nil {
		return false, fmt.Errorf("ledger lock: %w", err)
	}
	defer func() { _ = l.storage.Unlock(context.WithoutCancel(ctx), lock) }()
	if used, err := l.used(ctx, name); used || err != nil {
		return false, err
	}
	if err := l.storage.Store(ctx, name, []byte(strconv.FormatInt(expires.Unix(), 10))); err != nil {
		return false, fmt.Errorf("ledger store: %w", err)
	}
	return true, nil
}

// used reports whether the entry exists. Load, not Exists: Exists cannot tell
// a missing key from a failing storage, and either answer would be wrong, so
// an error other than fs.ErrNotExist is returned (the grant answers 503).
func (l *storageLedger) used(ctx context.Context, name string) (bool, error) {
	_, err := l.storage.Load(ctx, name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errNotExist):
		return false, nil
	}
	return false, fmt.Errorf("ledger load: %w", err)
}

// check proves at provision that the storage accepts writes, so a read-only
// storage fails loudly at startup rather than at the first validation.
func (l *storageLedger) check() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probe := path.Join(ledgerPrefix, "probe")
	if err := l.storage.Store(ctx, probe, []byte("ok")); err != nil {
		return fmt.Errorf("ledger storage is not writable: %w", err)
	}
	return l.storage.Delete(ctx, probe)
}

// sweep deletes the buckets whose every entry expired at least sweepGrace ago.
func (l *storageLedger) sweep(ctx context.Context) error {
	buckets, err := l.storage.List(ctx, ledgerPrefix, false)
	if err != nil {
		if errors.Is(err, errNotExist) {
			return nil
		}
		return err
	}
	t := now().Unix()
	for _, b := range buckets {
		end, err := strconv.ParseInt(path.Base(b), 10, 64)
		if err != nil || end+int64(sweepGrace/time.Second) >= t {
			continue
		}
		if err := l.storage.Delete(ctx, b); err != nil && !errors.Is(err, errNotExist) {
			return err
		}
	}
	return nil
}

// startSweeper sweeps at once, then every interval, until Destruct.
func (l *storageLedger) startSweeper(every time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	l.stop, l.stopped = cancel, make(chan struct{})
	go func() {
		defer close(l.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sctx, done := context.WithTimeout(ctx, time.Minute)
			_ = l.sweep(sctx)
			done()
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Destruct stops the sweeper, cancelling a sweep in progress, and waits for
// it to return.
func (l *storageLedger) Destruct() error {
	if l.stop != nil {
		l.stop()
		<-l.stopped
	}
	return nil
}
