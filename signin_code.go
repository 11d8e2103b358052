package emailotp

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// The two answers every code step shares: a send or resend that mailed
// nothing, and a code spent on its reference (the code form and the mailed
// link's button both end here).

// sendFailed answers a send or resend that mailed nothing and reports
// whether it did; refusals are not failures here (see signInStart).
func (si *signIn) sendFailed(w http.ResponseWriter, p *page, err error) bool {
	var lim *limitedError
	switch {
	case err == nil:
		return false
	case errors.As(err, &lim):
		w.Header().Set("Retry-After", fmt.Sprint(int((lim.RetryAfter+time.Second-1)/time.Second)))
		p.Error = p.T.ErrRateLimit
		si.render(w, http.StatusTooManyRequests, p)
	case errors.Is(err, errMailUnavailable):
		w.Header().Set("Retry-After", "30")
		p.Error = p.T.ErrMail
		si.render(w, http.StatusServiceUnavailable, p)
	default: // the template could not be rendered
		p.Error = p.T.ErrMail
		si.render(w, http.StatusServiceUnavailable, p)
	}
	return true
}

// verifyCode spends the reference on the code, for the code form and the
// mailed link alike, and answers: the session and a redirect, or why not.
func (si *signIn) verifyCode(w http.ResponseWriter, r *http.Request, p *page, ref, code string) {
	res, err := si.core.check(r.Context(), checkRequest{client: si.cfg.client, issuer: si.issuer(r), reference: ref, code: code})
	switch {
	case errors.Is(err, errBadReference) || errors.Is(err, errWrongClient):
		p.Error = p.T.ErrStale
		si.render(w, http.StatusBadRequest, p)
		return
	case errors.Is(err, errDomainRefused): // allow_domains changed since the code was sent
		si.audit.write(auditRefusal, requestRoute(r), res.address, outcomeDomainRefused)
		p.Error = p.T.ErrStale
		si.render(w, http.StatusForbidden, p)
		return
	case errors.Is(err, errCodeFormat):
		// Not an attempt: the same reference stays usable.
		p.Email = res.address
		si.codeView(p, ref)
		p.Error = p.T.ErrCodeFormat
		si.render(w, http.StatusBadRequest, p)
		return
	case err != nil:
		p.Email = res.address
		w.Header().Set("Retry-After", "5")
		si.codeView(p, ref)
		p.Error = p.T.ErrUnavailable
		si.render(w, http.StatusServiceUnavailable, p)
		return
	}
	p.Email = res.address
	if res.outcome != outcomeOK {
		si.audit.write(auditRefusal, requestRoute(r), res.address, res.outcome)
	}
	switch res.outcome {
	case outcomeOK:
	case outcomeInvalid:
		si.codeView(p, res.next)
		p.Error = p.T.ErrCode
		si.render(w, http.StatusBadRequest, p)
		return
	default: // expired, exhausted, replayed: only a new code helps
		p.Error = p.T.ErrStale
		si.render(w, http.StatusBadRequest, p)
		return
	}

	token, err := si.mintSession(r, res.address, res.authTime)
	if err != nil {
		si.logger.Error("signing the session failed", zap.String("client", si.cfg.client.ID), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		p.Error = p.T.ErrUnavailable
		si.render(w, http.StatusServiceUnavailable, p)
		return
	}
	http.SetCookie(w, si.sessionCookie(r, token, int(si.firstExpiry(res.authTime).Sub(res.authTime)/time.Second)))
	si.audit.write(auditSignIn, requestRoute(r), res.address, "code")
	si.unbindLink(w, r)
	si.redirect(w, p)
}
