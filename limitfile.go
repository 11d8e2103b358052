package emailotp

import (
	"context"
	"os"
	"path/filepath"

	"github.com/caddyserver/certmagic"
)

// storeEntry writes one of this instance's limit entries. On Caddy's file
// storage it writes a temporary file and renames it over the entry, without
// certmagic's fsync: an entry is rewritten at each event near a limit, and a
// synced write per new address cost 10–14 ms of initiate p50 on a busy disk
// (BENCHMARKS.md). The rename keeps readers from seeing half an entry; what
// is lost is only what the kernel had not written when the machine itself
// went down, as with the ledger's files (ledger_file.go). A process crash,
// kill -9 included, loses nothing. Other storages get Store.
func storeEntry(ctx context.Context, st certmagic.Storage, key string, b []byte) error {
	fs, ok := st.(*certmagic.FileStorage)
	if !ok || syncLimitEntries {
		return st.Store(ctx, key, b)
	}
	name := fs.Filename(key)
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	// The temporary file sits beside the limits, not among an instance's
	// entries, so a reader listing them never meets it.
	tmpDir := fs.Filename(limitsTmp)
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, "entry-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), name)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
	}
	return werr
}

// limitsTmp holds entries being written (storeEntry); it is not under
// limitsPrefix, whose every directory is an instance.
const limitsTmp = "email_otp/tmp"

// syncLimitEntries makes storeEntry use certmagic's synced Store on file
// storage too; a variable so the benchmark can price the sync.
var syncLimitEntries = false
