package emailotp

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Sliding sessions (idle_timeout). A session cookie expires idle_timeout
// after it was signed. Every request that passes through the email_otp
// handler of the site (it runs before the gate) with a session cookie of
// which more than half the idle period is used gets a renewed cookie: the
// same id and sign-in time (iat), a new expiry of now + idle_timeout, never
// beyond iat + session_lifetime. The renewed cookie is signed with the
// handler's key, so every instance sharing the storage accepts it, and it
// stays subject to the revocation list (its iat is the sign-in's).

// slide renews the request's session cookie when it is due. It costs a
// base64 and JSON decode of the payload on requests that carry a session;
// only a due renewal verifies the signature and signs anew.
func (si *signIn) slide(w http.ResponseWriter, r *http.Request) {
	if si.cfg.IdleTimeout != 0 {
		si.slideAs(w, r, si.cookieName(r), r.TLS != nil)
	}
}

// slideAs is slide for the cookie of that name, for a browser that reached
// us over TLS (secure) or not: the forward-auth endpoint learns that from
// the proxy.
func (si *signIn) slideAs(w http.ResponseWriter, r *http.Request, name string, secure bool) {
	idle := time.Duration(si.cfg.IdleTimeout)
	if idle == 0 {
		return
	}
	c, err := r.Cookie(name)
	if err != nil {
		return
	}
	t := now()
	if exp, ok := unverifiedExpiry(c.Value); !ok || !renewalDue(t, exp, idle) || !t.Before(exp) {
		return
	}
	s, ok := si.currentSession(r, name)
	if !ok || !renewalDue(t, s.exp, idle) || !t.Before(s.exp) {
		return // an expired session is never revived, whatever the leeway
	}
	next := t.Add(idle)
	if end := s.iat.Add(time.Duration(si.cfg.SessionLifetime)); end.Before(next) {
		next = end
	}
	next = next.Truncate(time.Second)
	if !next.After(s.exp) {
		return // at the absolute end: the session ends with its lifetime
	}
	s.exp = next
	tok, err := si.signSession(r, s)
	if err != nil {
		si.logger.Warn("renewing a session failed", zap.Error(err))
		return
	}
	http.SetCookie(w, si.sessionCookieAs(name, secure, tok, max(1, int(time.Until(s.exp)/time.Second))))
	// The app's answer now carries a person's cookie: no shared cache may
	// keep it (an app that sets Cache-Control itself replaces this).
	w.Header().Add("Cache-Control", "private")
}

// renewalDue reports whether more than half of the idle period before exp
// is used at t.
func renewalDue(t, exp time.Time, idle time.Duration) bool {
	return t.After(exp.Add(-idle / 2))
}

// unverifiedExpiry reads the exp claim of a compact JWS without checking
// it, only to decide whether verifying is worth it: the payload is decoded
// into a stack buffer and scanned for `"exp":`, as the signer writes it. A
// crafted payload can at worst make its own request verify, or not renew.
func unverifiedExpiry(token string) (time.Time, bool) {
	_, rest, ok := strings.Cut(token, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	var buf [1024]byte
	if !ok || !ok2 || base64.RawURLEncoding.DecodedLen(len(payload)) > len(buf) {
		return time.Time{}, false
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(payload))
	if err != nil {
		return time.Time{}, false
	}
	b := buf[:n]
	i := bytes.Index(b, []byte(`"exp":`))
	if i < 0 {
		return time.Time{}, false
	}
	var exp int64
	digits := 0
	for _, c := range b[i+len(`"exp":`):] {
		if c < '0' || c > '9' || digits == 18 {
			break
		}
		exp = exp*10 + int64(c-'0')
		digits++
	}
	if digits == 0 {
		return time.Time{}, false
	}
	return time.Unix(exp, 0), true
}
