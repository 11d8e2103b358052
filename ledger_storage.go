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

	"github.com/caddyserver/certmagic"
)

// storageLedger keeps consumed references in Caddy's storage, so they stay
// refused after a restart or a crash and at every instance sharing the
// storage (file system, Redis, Consul, S3…). Entries sit in buckets named
// after their expiry time, so the sweep deletes whole expired buckets without
// reading entries. On Caddy's file storage an entry is one file created with
// O_EXCL (ledger_file.go): the file system picks the one first consume. On any
// other storage the entry is checked and written under the storage's lock
// for that key.
type storageLedger struct {
	storage certmagic.Storage
	files   *certmagic.FileStorage // storage itself when it is the file storage, else nil
	// mem is the process's memory ledger: what this process consumed or
	// found used is refused there without a storage read, and stays refused
	// if a reload switches the handler to the memory ledger.
	mem     *memoryLedger
	stop    context.CancelFunc
	stopped chan struct{}
	// local queues this process's consumers of one key on a mutex, so they
	// do not poll the storage lock (certmagic's FileStorage and the Redis
	// storages retry a held lock once a second).
	local [64]sync.Mutex
}

func newStorageLedger(st certmagic.Storage, mem *memoryLedger) *storageLedger {
	l := &storageLedger{storage: st, mem: mem}
	l.files, _ = st.(*certmagic.FileStorage)
	return l
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
	if l.mem.seen(key) {
		return false, nil
	}
	name := l.entryKey(key, expires)
	var (
		fresh bool
		err   error
	)
	if l.files != nil {
		fresh, err = createEntryFile(l.files.Filename(name), expires)
	} else {
		fresh, err = l.consumeLocked(ctx, key, name, expires)
	}
	if err != nil {
		return false, err
	}
	l.mem.record(key, expires)
	return fresh, nil
}

// consumeLocked checks and writes the entry under the storage lock of key,
// for storages that have no exclusive create.
func (l *storageLedger) consumeLocked(ctx context.Context, key, name string, expires time.Time) (bool, error) {
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

// Destruct stops the sweeper, cancelling a sweep in progress, waits for it to
// return, and lets go of the memory ledger.
func (l *storageLedger) Destruct() error {
	if l.stop != nil {
		l.stop()
		<-l.stopped
	}
	_, _ = ledgers.Delete(memoryLedgerKey)
	return nil
}
