package emailotp

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
)

func init() { caddy.RegisterModule(closingStorageModule{}) }

// closingStorageModule is a file system storage that behaves like the
// storage modules holding a connection (Redis, Consul…): its config's Cleanup
// closes it, and a closed storage refuses every operation. Caddy provisions a
// new one for each config, so whatever outlives a config must not keep the
// old one.
type closingStorageModule struct {
	Path   string `json:"path"`
	closed *atomic.Bool
}

func (closingStorageModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.storage.emailotp_closing_test", New: func() caddy.Module { return new(closingStorageModule) }}
}

func (m *closingStorageModule) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.NextArg() {
		return d.ArgErr()
	}
	m.Path = d.Val()
	return nil
}

func (m *closingStorageModule) Provision(caddy.Context) error {
	m.closed = new(atomic.Bool)
	return nil
}

func (m *closingStorageModule) Cleanup() error {
	m.closed.Store(true)
	return nil
}

func (m *closingStorageModule) CertMagicStorage() (certmagic.Storage, error) {
	return &closingStorage{FileStorage: &certmagic.FileStorage{Path: m.Path}, closed: m.closed}, nil
}

// closingStorage embeds FileStorage, String included, as real modules name
// their backend the same way across configs.
type closingStorage struct {
	*certmagic.FileStorage
	closed *atomic.Bool
}

var errStorageClosed = errors.New("storage closed by its config's cleanup")

func (s *closingStorage) Lock(ctx context.Context, name string) error {
	if s.closed.Load() {
		return errStorageClosed
	}
	return s.FileStorage.Lock(ctx, name)
}

func (s *closingStorage) Store(ctx context.Context, key string, value []byte) error {
	if s.closed.Load() {
		return errStorageClosed
	}
	return s.FileStorage.Store(ctx, key, value)
}

func (s *closingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if s.closed.Load() {
		return nil, errStorageClosed
	}
	return s.FileStorage.Load(ctx, key)
}

func (s *closingStorage) Exists(ctx context.Context, key string) bool {
	if s.closed.Load() {
		return false
	}
	return s.FileStorage.Exists(ctx, key)
}

// TestStateReloadStorageModule: after a reload the storage ledger works on
// the new config's storage, not on the one the old config's Cleanup closed.
func TestStateReloadStorageModule(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, `	respond "boot"`)
	load := func(site string) {
		t.Helper()
		cf := strings.Replace(tc.caddyfile(site), "storage file_system ", "storage emailotp_closing_test ", 1)
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := caddy.Load(cfg, true); err != nil {
			t.Fatal(err)
		}
		tc.waitReady(t)
		dropIdleConns()
	}
	load(otpSite(mp.SMTPPort, "\t\tledger storage"))
	used, usedCode := initiateAt(t, tc.Base, mp, "module-used@example.com")
	pending, pendingCode := initiateAt(t, tc.Base, mp, "module-pending@example.com")
	if a := validateAt(t, tc.Base, used, usedCode); a.Status != http.StatusOK {
		t.Fatalf("before reload: %s", a)
	}

	load(otpSite(mp.SMTPPort, "\t\tledger storage\n\t\tclient added added-secret"))
	if a := validateAt(t, tc.Base, used, usedCode); !isReplay(a) {
		t.Errorf("replay after reload: %s", a)
	}
	if a := validateAt(t, tc.Base, pending, pendingCode); a.Status != http.StatusOK {
		t.Errorf("pending reference after reload: %s", a)
	}
}

var (
	_ caddy.StorageConverter = (*closingStorageModule)(nil)
	_ caddy.Provisioner      = (*closingStorageModule)(nil)
	_ caddy.CleanerUpper     = (*closingStorageModule)(nil)
	_ caddyfile.Unmarshaler  = (*closingStorageModule)(nil)
)
