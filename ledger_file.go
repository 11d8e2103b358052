package emailotp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// createEntryFile records a ledger entry on Caddy's file storage as a file
// created with O_EXCL, and reports whether this call created it. Exclusive
// creation is atomic across goroutines and processes on one file system (it
// is what certmagic's own file locks rest on), so it replaces the storage
// lock, the two reads and the write of the generic path with one system call,
// and a crash can leave no stale lock behind. Once created, the entry is in
// the kernel: it outlives the process (SIGTERM, kill -9). It is not synced
// to disk, as fsync per entry cut validate throughput at 16 concurrent to a
// third (BENCHMARKS.md); the file system writes it within seconds, so only a
// power loss or kernel crash in that time can lose it. A failure leaves
// nothing decided: a file created but not written is removed again.
func createEntryFile(name string, expires time.Time) (bool, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		// the first entry of its bucket
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			return false, fmt.Errorf("ledger bucket: %w", err)
		}
		f, err = os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("ledger create: %w", err)
	}
	_, err = f.WriteString(strconv.FormatInt(expires.Unix(), 10))
	if err == nil && syncLedgerFiles {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return false, fmt.Errorf("ledger write: %w", err)
	}
	return true, nil
}

// syncLedgerFiles: see createEntryFile; a variable so the benchmark can price it.
var syncLedgerFiles = false
