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

// session is what a session cookie says: the address, its id, when the
// person signed in (iat, kept when the cookie is renewed, so the revocation
// list's cut-offs and the absolute session_lifetime count from it) and
// when the cookie expires.
type session struct {
	addr     string
	jti      string
	iat, exp time.Time
}

// mintSession signs the session of a verified address: a compact JWS with
// `typ: session+jwt` and the signing key's kid.
func (si *signIn) mintSession(r *http.Request, address string, t time.Time) (string, error) {
	return si.signSession(r, session{addr: address, jti: randomID(), iat: t, exp: si.firstExpiry(t)})
}

// signSession signs s: a new session, or a renewed one with the same id
// and sign-in time and a later expiry.
func (si *signIn) signSession(r *http.Request, s session) (string, error) {
	return jwt.Signed(si.keys.sessSigner).Claims(jwt.Claims{
		Issuer:   si.issuer(r),
		Subject:  s.addr,
		IssuedAt: jwt.NewNumericDate(s.iat),
		Expiry:   jwt.NewNumericDate(s.exp),
		ID:       s.jti,
	}).Claims(sessionClaims{Audience: []string{sessionAudience}, Email: s.addr}).Serialize()
}

// firstExpiry is the expiry of a session that starts at t: idle_timeout
// later when one is set, session_lifetime later otherwise.
func (si *signIn) firstExpiry(t time.Time) time.Time {
	life := time.Duration(si.cfg.SessionLifetime)
	if idle := time.Duration(si.cfg.IdleTimeout); idle > 0 && idle < life {
		return t.Add(idle)
	}
	return t.Add(life)
}

// cookieName is the session cookie's name for this request (sessioncookie.go).
func (si *signIn) cookieName(r *http.Request) string {
	return sessionCookieName(si.cfg.Cookie, si.cfg.CookieDomain, r.TLS != nil)
}

// sessionCookie is the session cookie with its fixed attributes; an empty
// value with maxAge < 0 deletes it.
func (si *signIn) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return si.sessionCookieAs(si.cookieName(r), r.TLS != nil, value, maxAge)
}

// sessionCookieAs is sessionCookie for a browser that reached us over TLS
// (secure) or not, under that cookie name.
func (si *signIn) sessionCookieAs(name string, secure bool, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Domain:   si.cfg.CookieDomain,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// signedIn returns the address of the browser's session, if it holds a
// valid one that the revocation list does not name.
func (si *signIn) signedIn(r *http.Request) (string, bool) {
	s, ok := si.currentSession(r, si.cookieName(r))
	return s.addr, ok
}

// currentSession returns the first valid, unrevoked session among the
// request's cookies of that name.
func (si *signIn) currentSession(r *http.Request, name string) (session, bool) {
	cookies := r.CookiesNamed(name)
	for _, c := range cookies[:min(len(cookies), maxSessionCookies)] {
		std, err := si.keys.verifySessionClaims(c.Value, si.issuer(r), now())
		if err != nil {
			continue
		}
		addr, err := parseAddress(std.Subject)
		if err != nil || si.revoked.revoked(std.ID, addr, issuedAt(std)) {
			continue
		}
		return session{addr: std.Subject, jti: std.ID, iat: std.IssuedAt.Time(), exp: std.Expiry.Time()}, true
	}
	return session{}, false
}

var errSessionClaims = errors.New("session: sub and email differ or are empty")

// sessionLeeway is the clock skew allowed on a session's exp, nbf and iat:
// the gate's default, so the page and the gate end a session together.
const sessionLeeway = DefaultGateLeeway

// verifySessionClaims verifies a session cookie: signed by one of the
// published keys (found by kid), typ session+jwt, the expected issuer, the
// session audience, and not expired; it returns the session's claims.
func (k *signingKeys) verifySessionClaims(token, issuer string, t time.Time) (jwt.Claims, error) {
	var extra sessionClaims
	std, err := parseVerified(token, "session+jwt", k.lookup, &extra)
	if err != nil {
		return jwt.Claims{}, err
	}
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      issuer,
		AnyAudience: jwt.Audience{sessionAudience},
		Time:        t,
	}, sessionLeeway)
	if err != nil {
		return jwt.Claims{}, err
	}
	if std.Subject == "" || extra.Email != std.Subject || std.IssuedAt == nil {
		return jwt.Claims{}, errSessionClaims
	}
	return std, nil
}
