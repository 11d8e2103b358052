package emailotp

import (
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// fieldEverywhere is the name of the sign-out form's second button: with
// value "1" the sign-out ends every session and token of the address.
const fieldEverywhere = "everywhere"

// viewSignedOutAll says that every session of the address has ended.
const viewSignedOutAll = "signedoutall"

// endSession answers a sign-out post that passed the CSRF check: it clears
// the session cookie and, for "sign out everywhere", revokes every session
// and access token issued to the session's address up to now, on every
// instance, through the revocation list in storage (at once here, within
// the gates' revocation_refresh elsewhere). It returns the view to show, or
// false when it has already answered because the revocation could not be
// stored (the cookie is then kept, so the person can try again).
func (si *signIn) endSession(w http.ResponseWriter, r *http.Request, form url.Values, p *page) (string, bool) {
	s, has := si.currentSession(r, si.cookieName(r))
	everywhere := first(form, fieldEverywhere) == "1"
	if everywhere && has {
		addr, _ := parseAddress(s.addr)
		e := revocation{address: addr.key(), before: now().Truncate(time.Second)}
		if err := si.revoked.add(r.Context(), e); err != nil {
			si.logger.Error("sign out everywhere: revocation not stored", zap.Error(err))
			w.Header().Set("Retry-After", "5")
			p.View, p.Email, p.Error = viewSignOut, s.addr, p.T.ErrUnavailable
			si.render(w, http.StatusServiceUnavailable, p)
			return "", false
		}
		si.audit.write(auditRevocation, requestRoute(r), s.addr, auditSignOutAll, zap.String("by", "user"))
	}
	http.SetCookie(w, si.sessionCookie(r, "", -1))
	event, view := auditSignOut, viewSignedOut
	if everywhere {
		event, view = auditSignOutAll, viewSignedOutAll
	}
	reason := "button"
	if !has {
		reason = "no_session"
	}
	si.audit.write(event, requestRoute(r), s.addr, reason)
	return view, true
}
