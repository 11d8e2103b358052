package emailotp

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Client authentication by a signed assertion: private_key_jwt (RFC 7523
// §2.2, OpenID Connect Core §9), for clients configured with public keys.

const (
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionMaxLife is how far in the future an assertion's exp may be:
	// an assertion is made for one request.
	assertionMaxLife = 5 * time.Minute
	// assertionSkew is the clock difference allowed with the client.
	assertionSkew = 30 * time.Second
	// maxAssertionBytes bounds what is parsed before any key is looked up.
	maxAssertionBytes = 8 << 10
	maxJTIBytes       = 256
)

// hasClientAssertion reports whether the request authenticates by assertion.
func hasClientAssertion(form url.Values) bool {
	return form.Has("client_assertion") || form.Has("client_assertion_type")
}

// authenticateAssertionThrottled puts the failed-authentication throttle of
// secrets in front of assertions too: an assertion naming a client it
// cannot sign for counts as a failure of that client id from that IP.
func (h *Handler) authenticateAssertionThrottled(r *http.Request, form url.Values) (*Client, *oauthError) {
	id, ip := form.Get("client_id"), clientIP(r)
	if wait, ok := h.core.limiter.authAllowed(id, ip); !ok {
		return nil, &oauthError{status: http.StatusTooManyRequests, Code: "slow_down", Description: "too many failed client authentications", retryAfter: wait}
	}
	c, oerr := h.authenticateAssertion(r, form)
	if oerr != nil && oerr.Code == "invalid_client" {
		h.core.limiter.authFailed(id, ip)
	}
	return c, oerr
}

// authenticateAssertion returns the client a valid assertion names. One
// method per request (RFC 6749 §2.3): an assertion with Basic or a
// client_secret is invalid_request; a bad assertion is invalid_client
// (RFC 7521 §4.2.1).
func (h *Handler) authenticateAssertion(r *http.Request, form url.Values) (*Client, *oauthError) {
	_, _, basic, bad := basicAuth(r)
	assertion := form.Get("client_assertion")
	switch {
	case basic || bad:
		return nil, errInvalidRequest("client authenticated both by HTTP Basic and by client_assertion")
	case form.Has("client_secret"):
		return nil, errInvalidRequest("client authenticated both by client_secret and by client_assertion")
	case assertion == "":
		return nil, errInvalidRequest("client_assertion is required with client_assertion_type")
	case !form.Has("client_assertion_type"):
		return nil, errInvalidRequest("client_assertion_type is required with client_assertion")
	case form.Get("client_assertion_type") != clientAssertionType:
		return nil, errAssertionClient("client_assertion_type is not " + clientAssertionType)
	case len(assertion) > maxAssertionBytes:
		return nil, errAssertionClient("client_assertion is too large")
	}
	c, reason, err := h.verifyAssertion(r, assertion, form.Get("client_id"))
	switch {
	case errors.Is(err, errJWKSUnavailable):
		h.logger.Error("client keys unavailable", zap.String("client", c.ID), zap.Error(err))
		return nil, errUnavailable("the client's keys could not be fetched", 30*time.Second)
	case err != nil:
		h.logger.Error("ledger unavailable", zap.String("client", c.ID), zap.Error(err))
		return nil, errUnavailable("the assertion could not be checked", 5*time.Second)
	case reason != "":
		// The client id only if it is configured; never the assertion.
		if ce := h.logger.Check(zapcore.InfoLevel, "client authentication failed"); ce != nil {
			id := "unknown"
			if c != nil {
				id = c.ID
			}
			ce.Write(zap.String("client", id), zap.String("method", "private_key_jwt"), zap.String("reason", reason))
		}
		return nil, errAssertionClient("client authentication failed")
	}
	return c, nil
}

func errAssertionClient(desc string) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Description: desc}
}

// assertionClaims are the claims RFC 7523 §3 requires of an assertion.
type assertionClaims struct {
	jwt.Claims
}

// verifyAssertion checks the assertion's signature with the keys of the
// client it names, then its claims, then records its jti. reason says why
// it was refused (for the log); err is a failure to decide. c is the
// configured client the assertion names, or nil.
func (h *Handler) verifyAssertion(r *http.Request, assertion, formClientID string) (c *Client, reason string, err error) {
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, "not a JWS of an allowed algorithm", nil
	}
	hdr := tok.Headers[0]
	var cl assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&cl); err != nil {
		return nil, "claims are not JSON", nil
	}
	c, known := h.clients[cl.Subject]
	if !known || c.keys == nil {
		// Verify against a key of the same algorithm anyway, so an unknown
		// client costs the time of a known one (as for secrets).
		_ = tok.Claims(decoyKey(hdr.Algorithm), &cl)
		if !known {
			return nil, "unknown client", nil
		}
		return c, "client does not use private_key_jwt", nil
	}
	keys, kerr := c.keys.candidates(r.Context(), hdr.KeyID, hdr.Algorithm)
	if errors.Is(kerr, errJWKSUnavailable) {
		return c, "", kerr
	}
	if kerr != nil {
		h.logger.Warn("client jwks_uri fetch failed; using the last copy", zap.String("client", c.ID), zap.Error(kerr))
	}
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Key, &cl) == nil {
			verified = true
			break
		}
	}
	if !verified {
		if len(keys) == 0 {
			_ = tok.Claims(decoyKey(hdr.Algorithm), &cl)
			return c, "no key of the client fits the kid and alg", nil
		}
		return c, "bad signature", nil
	}
	if reason := h.checkAssertionClaims(r, c, &cl.Claims, formClientID); reason != "" {
		return c, reason, nil
	}
	// Last, so refused assertions never fill the ledger. Kept until the
	// assertion can no longer be accepted. The jti is hashed: any text, one
	// bounded storage key.
	sum := sha256.Sum256([]byte(cl.ID))
	key := "jti:" + c.ID + ":" + base64.RawURLEncoding.EncodeToString(sum[:])
	fresh, err := h.core.ledger.consume(r.Context(), key, cl.Expiry.Time().Add(assertionSkew))
	if err != nil {
		return c, "", err
	}
	if !fresh {
		return c, "jti already used", nil
	}
	return c, "", nil
}

// checkAssertionClaims applies RFC 7523 §3 and OpenID Connect Core §9: iss
// and sub are the client, aud names this server, exp is near, jti is set.
func (h *Handler) checkAssertionClaims(r *http.Request, c *Client, cl *jwt.Claims, formClientID string) string {
	t := now()
	switch {
	case cl.Issuer != c.ID || cl.Subject != c.ID:
		return "iss and sub must be the client id"
	case formClientID != "" && formClientID != c.ID:
		return "client_id differs from the assertion's sub"
	case !h.assertionAudience(r, cl.Audience):
		return "aud names neither the token endpoint nor the issuer"
	case cl.Expiry == nil:
		return "exp is missing"
	case !t.Before(cl.Expiry.Time().Add(assertionSkew)):
		return "expired"
	case cl.Expiry.Time().After(t.Add(assertionMaxLife + assertionSkew)):
		return "exp is more than 5 minutes ahead"
	case cl.NotBefore != nil && cl.NotBefore.Time().After(t.Add(assertionSkew)):
		return "nbf is in the future"
	case cl.IssuedAt != nil && cl.IssuedAt.Time().After(t.Add(assertionSkew)):
		return "iat is in the future"
	case cl.ID == "" || len(cl.ID) > maxJTIBytes:
		return "jti is missing or too long"
	}
	return ""
}

// assertionAudience accepts the token endpoint's URL (OpenID Connect Core
// §9) or the issuer (RFC 7523 §3).
func (h *Handler) assertionAudience(r *http.Request, aud jwt.Audience) bool {
	iss := h.issuer(r)
	origin := iss
	if h.basePath != "" {
		origin = strings.TrimSuffix(iss, h.basePath)
	}
	return aud.Contains(iss) || aud.Contains(origin+h.TokenPath)
}

// tokenAuthMethods are the token_endpoint_auth_methods_supported of
// discovery: those some configured client may use.
func (h *Handler) tokenAuthMethods() []string {
	var secret, keys bool
	for _, c := range h.Clients {
		if c.usesKeys() {
			keys = true
		} else {
			secret = true
		}
	}
	var out []string
	if secret {
		out = append(out, "client_secret_basic", "client_secret_post")
	}
	if keys {
		out = append(out, "private_key_jwt")
	}
	return out
}

// tokenAuthAlgs are the token_endpoint_auth_signing_alg_values_supported of
// discovery, when some client may send an assertion.
func (h *Handler) tokenAuthAlgs() []string {
	for _, c := range h.Clients {
		if c.usesKeys() {
			return assertionAlgNames()
		}
	}
	return nil
}
