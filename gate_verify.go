package emailotp

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/go-jose/go-jose/v4/jwt"
)

// gateClaims are the claims the gate reads besides the registered ones.
type gateClaims struct {
	Email    string `json:"email"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	AuthTime int64  `json:"auth_time"`
}

// verify checks one token of the given kind and returns its user. When
// the token is refused after its signature verified, it also returns the
// subject it names, for the audit line.
func (g *Gate) verify(r *http.Request, raw, kind string) (caddyauth.User, string, error) {
	var extra gateClaims
	std, err := parseVerified(raw, kindTyp[kind], g.keys.lookup, &extra)
	if err != nil {
		return caddyauth.User{}, "", err
	}
	u, err := g.check(r, std, extra, kind)
	return u, std.Subject, err
}

// check applies the gate's rules to the claims of a verified token.
func (g *Gate) check(r *http.Request, std jwt.Claims, extra gateClaims, kind string) (caddyauth.User, error) {
	var none caddyauth.User
	if err := std.ValidateWithLeeway(jwt.Expected{Time: now()}, g.leeway); err != nil {
		return none, errTime
	}
	if std.Issuer != g.issuer(r) {
		return none, errIssuer
	}
	switch kind {
	case kindBearer:
		if extra.ClientID == "" || !std.Audience.Contains(extra.ClientID) ||
			(g.clients != nil && !g.clients[extra.ClientID]) {
			return none, errAudience
		}
	case kindSession:
		if !std.Audience.Contains(sessionAudience) {
			return none, errAudience
		}
	}
	// The address is the email claim, normalized; sub is the username as
	// the client sent it (tokens before the email claim: sub alone), and
	// must be a spelling of the same mailbox (the validation's username may
	// differ from the initiation's in case).
	email := extra.Email
	if email == "" {
		email = std.Subject
	}
	addr, err := parseAddress(email)
	if err != nil || addr.String() != email {
		return none, errSubject
	}
	if std.Subject != email {
		if s, err := parseAddress(std.Subject); err != nil || !strings.EqualFold(s.String(), email) {
			return none, errEmailMismatch
		}
	}
	if !g.allows(addr) {
		return none, errNotAllowed
	}
	if g.revoked.revoked(std.ID, addr, issuedAt(std)) {
		return none, errRevoked
	}
	authTime := ""
	if extra.AuthTime > 0 {
		authTime = strconv.FormatInt(extra.AuthTime, 10)
	}
	return caddyauth.User{
		ID: email,
		Metadata: map[string]string{
			"email":     email,
			"client_id": extra.ClientID,
			"scope":     extra.Scope,
			"auth_time": authTime,
			"jti":       std.ID,
			"kind":      kind,
		},
	}, nil
}

// allows applies allow_domains and allow_addresses: with neither, any
// address passes; otherwise an address passes if either list admits it.
func (g *Gate) allows(a address) bool {
	if g.domains == nil && g.addresses == nil {
		return true
	}
	return g.domains[a.Domain] || g.addresses[a.key()]
}

// issuer is the expected iss for this request, built as the email_otp
// handler builds its default (for the default token path).
func (g *Gate) issuer(r *http.Request) string {
	return resolveIssuer(r, g.Issuer, issuerPath("", DefaultTokenPath))
}
