package emailotp

import (
	"context"
	"os"
	"testing"

	"github.com/caddyserver/certmagic"
)

// TestStoreEntryFileStorage: on file storage an entry written without sync
// reads back through the storage, a rewrite replaces it whole, and no
// temporary file is left among the instance's entries or beside them.
func TestStoreEntryFileStorage(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	ctx := context.Background()
	key := limitsPrefix + "/inst/abc"
	for _, v := range []string{`{"count":1}`, `{"count":12}`, `{"n":2}`} {
		if err := storeEntry(ctx, st, key, []byte(v)); err != nil {
			t.Fatal(err)
		}
		got, err := st.Load(ctx, key)
		if err != nil || string(got) != v {
			t.Fatalf("Load = %q, %v; want %q", got, err, v)
		}
	}
	keys, err := st.List(ctx, limitsPrefix+"/inst", false)
	if err != nil || len(keys) != 1 {
		t.Errorf("entries = %v, %v; want just the one", keys, err)
	}
	left, err := os.ReadDir(st.Filename(limitsTmp))
	if err != nil || len(left) != 0 {
		t.Errorf("temporary files left: %v, %v", left, err)
	}
}
