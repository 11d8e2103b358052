package emailotp

import (
	"errors"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// sessionClaims are the claims of a session cookie besides the registered
// ones. aud is set here, not in jwt.Claims, so that it is always a JSON array
// (go-jose writes a one-element jwt.Audience as a string).
type sessionClaims struct {
	Audience []string `json:"aud"`
	Email    string   `json:"email"`
}

// mintSession signs the session of a verified address: a compact JWS with
// `typ: session+jwt` and the signing key's kid.
func (si *signIn) mintSession(r *http.Request, address string, t time.Time) (string, error) {
	life := time.Duration(si.cfg.SessionLifetime)
	return jwt.Signed(si.keys.sessSigner).Claims(jwt.Claims{
		Issuer:   si.issuer(r),
		Subject:  address,
		IssuedAt: jwt.NewNumericDate(t),
		Expiry:   jwt.NewNumericDate(t.Add(life)),
		ID:       randomID(),
	}).Claims(sessionClaims{Audience: []string{sessionAudience}, Email: address}).Serialize()
}

// sessionCookie is the session cookie with its fixed attributes; an empty
// value with maxAge < 0 deletes it.
func (si *signIn) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     si.cfg.Cookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
}

var errSessionClaims = errors.New("session: sub and email differ or are empty")

// verifySession returns the address a session cookie proves: signed by one
// of the published keys (found by kid), typ session+jwt, the expected issuer,
// the session audience, and not expired.
func (k *signingKeys) verifySession(token, issuer string, t time.Time) (string, error) {
	var extra sessionClaims
	std, err := parseVerified(token, "session+jwt", k.lookup, &extra)
	if err != nil {
		return "", err
	}
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      issuer,
		AnyAudience: jwt.Audience{sessionAudience},
		Time:        t,
	}, time.Minute)
	if err != nil {
		return "", err
	}
	if std.Subject == "" || extra.Email != std.Subject {
		return "", errSessionClaims
	}
	return std.Subject, nil
}
