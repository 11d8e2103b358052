package emailotp

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// minIdleTimeout is the shortest idle_timeout: JWT times count in whole
// seconds, and a renewal is due after half of it.
const minIdleTimeout = 5 * time.Second

// SessionConfig holds the sign-in page's session options besides its
// lifetime: sliding expiry, a cookie shared by subdomains, and how the
// audit trail shows addresses. It is part of the signin block.
type SessionConfig struct {
	// IdleTimeout ends a session after this long without a request through
	// the email_otp handler that signed it: the cookie is renewed once more
	// than half of the period is used, and never beyond session_lifetime.
	// Default: none (a session lasts session_lifetime).
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// CookieDomain sends the session cookie to every host under this domain
	// (one sign-in for several subdomains): the cookie is then
	// `__Secure-<cookie>` with this Domain over TLS instead of the host-only
	// `__Host-<cookie>`, and every host under the domain is trusted with
	// sessions. Default: none (host-only).
	CookieDomain string `json:"cookie_domain,omitempty"`

	// AuditLogAddress is how the address appears in the audit lines of
	// sign-ins, sign-outs, revocations and refusals: masked
	// (a***@example.com) or full. Default: masked
	AuditLogAddress string `json:"audit_log_address,omitempty"`
}

// validate checks the options against the session lifetime (defaults
// applied).
func (s SessionConfig) validate(lifetime caddy.Duration) error {
	if s.IdleTimeout != 0 && (s.IdleTimeout < caddy.Duration(minIdleTimeout) || s.IdleTimeout > lifetime) {
		return fmt.Errorf("signin: idle_timeout %s out of range %s-session_lifetime (%s)",
			time.Duration(s.IdleTimeout), minIdleTimeout, time.Duration(lifetime))
	}
	if err := validateCookieDomain(s.CookieDomain); err != nil {
		return fmt.Errorf("signin: %v", err)
	}
	if err := validateAuditAddress(s.AuditLogAddress); err != nil {
		return fmt.Errorf("signin: %v", err)
	}
	return nil
}

// unmarshalOption reads one of the session subdirectives of the signin
// block, and reports whether the current token was one.
func (s *SessionConfig) unmarshalOption(d *caddyfile.Dispenser) (bool, error) {
	switch d.Val() {
	case "idle_timeout":
		return true, durationArg(d, &s.IdleTimeout)
	case "cookie_domain":
		return true, oneArg(d, &s.CookieDomain)
	case "audit_log_address":
		return true, oneArg(d, &s.AuditLogAddress)
	}
	return false, nil
}
