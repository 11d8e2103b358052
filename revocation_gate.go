package emailotp

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4/jwt"
)

// errRevoked refuses a credential named by the revocation list.
var errRevoked = errors.New("revoked")

// issuedAt is a credential's iat in Unix seconds; a credential without one
// counts as issued at the epoch, so every time cut-off revokes it.
func issuedAt(c jwt.Claims) int64 {
	if c.IssuedAt == nil {
		return 0
	}
	return c.IssuedAt.Time().Unix()
}

// validateRevocationRefresh keeps the stated delay of a revocation: at most
// a minute, and not so short that every instance hammers the storage.
func validateRevocationRefresh(d caddy.Duration) error {
	if d != 0 && (d < caddy.Duration(100*time.Millisecond) || d > caddy.Duration(time.Minute)) {
		return fmt.Errorf("revocation_refresh %s out of range 100ms-60s", time.Duration(d))
	}
	return nil
}

// Cleanup releases the gate's hold on the revocation list; it works after a
// failed Provision.
func (g *Gate) Cleanup() error {
	if g.revKey != "" {
		_, _ = revocationLists.Delete(g.revKey)
		g.revKey = ""
	}
	return nil
}
