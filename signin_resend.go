package emailotp

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// signInResend answers the code page's "send a new code" button, a form POST
// that works without script. Before the cooldown the server refuses it and
// shows the same code form again (the reference stays usable), as it does
// when a limit refuses it; after the cooldown the core mails a new code in
// place of the old one (the old reference is spent, the attempt count
// carried over) and the page shows the code form for the new reference.
func (si *signIn) signInResend(w http.ResponseWriter, r *http.Request) {
	form, p, ok := si.readPost(w, r)
	if !ok {
		return
	}
	ref := first(form, fieldReference)
	req := resendRequest{
		sendRequest: sendRequest{client: si.cfg.client, issuer: si.issuer(r), userIP: clientIP(r), uiLocales: uiLocales(r)},
		reference:   ref,
		cooldown:    time.Duration(si.cfg.ResendCooldown),
	}
	if si.cfg.MailLink != "" {
		req.link, req.linkIntro = si.linkBuilder(p), p.T.MailLink
		si.renewLinkBinding(w, r)
	}
	res, err := si.core.resend(r.Context(), req)
	if refusal(err) { // as on signInStart: a refusal looks like a mailed code
		res, err = si.core.decoy(res), nil
	}
	var early *cooldownError
	var lim *limitedError
	switch {
	case err == nil:
		p.Email, p.Resent = res.address, true
		si.codeView(p, res.reference)
		si.render(w, http.StatusOK, p)
	case errors.As(err, &early), errors.As(err, &lim):
		// Nothing was spent: the same code form, with why.
		wait := time.Duration(0)
		p.Error = p.T.ResendEarly
		if early != nil {
			wait = early.Wait
		} else {
			wait, p.Error = lim.RetryAfter, p.T.ErrRateLimit
		}
		w.Header().Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
		p.Email = si.core.addressOf(ref)
		si.codeView(p, ref)
		si.render(w, http.StatusTooManyRequests, p)
	case errors.Is(err, errLedger):
		w.Header().Set("Retry-After", "5")
		p.Email, p.Error = si.core.addressOf(ref), p.T.ErrUnavailable
		si.codeView(p, ref)
		si.render(w, http.StatusServiceUnavailable, p)
	case errors.Is(err, errBadReference), errors.Is(err, errWrongClient), errors.Is(err, errSpent):
		p.Error = p.T.ErrStale
		si.render(w, http.StatusBadRequest, p)
	default: // the old reference is spent and no new code went out
		p.Email = si.core.addressOf(ref)
		si.sendFailed(w, p, err)
	}
}
