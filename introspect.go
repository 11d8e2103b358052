package emailotp

import (
	"errors"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// introspectLeeway is the clock skew allowed on iat and nbf between the
// instances that sign and the one that introspects; exp gets none, so an
// expired token is never reported active.
const introspectLeeway = time.Minute

// accessToken is an access token of this issuer whose signature, type,
// issuer, audience and times were checked.
type accessToken struct {
	std    jwt.Claims
	claims map[string]any // every claim, as signed
	addr   address
}

var errNotOurs = errors.New("not an access token of this issuer")

// verifyAccessToken checks raw as the gate checks a bearer token, against
// this handler's published keys and issuer. Revocation is the caller's.
func (h *Handler) verifyAccessToken(r *http.Request, raw string) (*accessToken, error) {
	at := &accessToken{}
	std, err := parseVerified(raw, kindTyp[kindBearer], h.keys.lookup, &at.claims)
	if err != nil {
		return nil, err
	}
	t := now()
	switch {
	case !t.Before(std.Expiry.Time()):
		return nil, errTime
	case std.IssuedAt != nil && std.IssuedAt.Time().After(t.Add(introspectLeeway)),
		std.NotBefore != nil && std.NotBefore.Time().After(t.Add(introspectLeeway)):
		return nil, errTime
	case std.Issuer != h.issuer(r):
		return nil, errIssuer
	}
	clientID, _ := at.claims["client_id"].(string)
	if clientID == "" || !std.Audience.Contains(clientID) {
		return nil, errAudience
	}
	email, _ := at.claims["email"].(string)
	if email == "" {
		email = std.Subject
	}
	if at.addr, err = parseAddress(email); err != nil {
		return nil, errNotOurs
	}
	at.std = std
	return at, nil
}

// serveIntrospect answers RFC 7662 introspection: the token's claims with
// "active": true for a valid, unrevoked access token of this issuer, and
// exactly {"active":false} for anything else. Any authenticated client may
// ask: a resource server is usually not the client the token was issued to.
func (h *Handler) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	form, c, oerr := h.readClientRequest(w, r)
	if oerr != nil {
		writeError(w, oerr)
		return
	}
	at, err := h.verifyAccessToken(r, form.Get("token"))
	if err == nil && h.revoked.revoked(at.std.ID, at.addr, issuedAt(at.std)) {
		err = errRevoked
	}
	h.logTokenCall("introspection", c.ID, err)
	if err != nil {
		writeNoStore(w, map[string]bool{"active": false})
		return
	}
	out := at.claims
	out["active"] = true
	out["token_type"] = "Bearer"
	if _, ok := out["email"]; !ok {
		out["email"] = at.addr.String()
	}
	writeNoStore(w, out)
}

// logTokenCall writes the one line of a revocation or introspection
// request: the client and whether the token was taken, with the reason when
// not; never the token.
func (h *Handler) logTokenCall(what, client string, err error) {
	if ce := h.logger.Check(zapcore.InfoLevel, what); ce != nil {
		outcome, reason := "ok", ""
		if err != nil {
			outcome, reason = "ignored", err.Error()
		}
		ce.Write(zap.String("client", client), zap.String("outcome", outcome), zap.String("reason", reason))
	}
}
