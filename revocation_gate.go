package emailotp

import (
	"errors"

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

// Cleanup releases the gate's hold on the revocation list; it works after a
// failed Provision.
func (g *Gate) Cleanup() error {
	if g.revKey != "" {
		_, _ = revocationLists.Delete(g.revKey)
		g.revKey = ""
	}
	return nil
}
