package emailotp

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"go.uber.org/zap"
)

// Authenticate admits the request if it carries a valid access token or
// session. It returns an error only when keys could not be read.
func (g *Gate) Authenticate(w http.ResponseWriter, r *http.Request) (caddyauth.User, bool, error) {
	bearer, hasBearer := g.bearerToken(r)
	if g.Header != "" {
		// Before anything else, so no path lets a client-supplied value
		// reach the upstream, whatever the spelling of its name.
		for k := range r.Header {
			if strings.EqualFold(k, g.Header) {
				delete(r.Header, k)
			}
		}
	}
	var (
		u         caddyauth.User
		sub       string
		err       error
		presented bool
	)
	switch {
	case hasBearer:
		presented = true
		u, sub, err = g.verify(r, bearer, kindBearer)
	case g.accepts[kindSession]:
		err = errNoCredential
		// Over TLS only the prefixed name counts (sessioncookie.go). Several
		// cookies of that name are tried: over plain HTTP a sibling
		// subdomain may have planted one of its own in front of ours.
		cookies := r.CookiesNamed(sessionCookieName(g.Cookie, g.CookieDomain, r.TLS != nil))
		for _, c := range cookies[:min(len(cookies), maxSessionCookies)] {
			presented = true
			if u, sub, err = g.verify(r, c.Value, kindSession); err == nil || errors.Is(err, errKeyStorage) {
				break
			}
		}
	default:
		err = errNoCredential
	}
	if err == nil {
		if g.Header != "" {
			r.Header.Set(g.Header, u.ID)
		}
		return u, true, nil
	}
	g.audit.write(auditRefusal, requestRoute(r), sub, err.Error(), zap.Bool("presented", presented))
	g.refuse(w, r, presented, hasBearer)
	if errors.Is(err, errKeyStorage) {
		return caddyauth.User{}, false, err
	}
	return caddyauth.User{}, false, nil
}
