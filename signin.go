package emailotp

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Form fields of the sign-in pages.
const (
	fieldEmail     = "email"
	fieldCode      = "code"
	fieldReference = "reference"
	fieldReturn    = "return"
	fieldCSRF      = "csrf"
	// fieldRedirect marks a sign-out form opened with ?return=: after
	// signing out, the browser goes there rather than to the signed-out page.
	fieldRedirect = "redirect"
)

// serveSignIn answers every request under the sign-in path and reports
// whether the request was one.
func (si *signIn) serveSignIn(w http.ResponseWriter, r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, si.cfg.Path)
	if !ok || (rest != "" && rest[0] != '/') {
		return false
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	post := r.Method == http.MethodPost
	switch {
	case (rest == "" || rest == "/") && get:
		si.signInForm(w, r)
	case rest == "/start" && post:
		si.signInStart(w, r)
	case rest == "/verify" && post:
		si.signInVerify(w, r)
	case rest == "/signout" && (get || post):
		si.signOut(w, r)
	case rest == "/auth":
		si.forwardAuth(w, r)
	case rest == "/resend" && post:
		si.signInResend(w, r)
	case rest == "/link" && get:
		si.linkForm(w, r)
	case rest == "/link" && post:
		si.linkSignIn(w, r)
	case rest == "/style.css" && get:
		serveAsset(w, "text/css; charset=utf-8", si.cfg.assets.style)
	case rest == "/page.js" && get:
		serveAsset(w, "text/javascript; charset=utf-8", signinScript)
	case rest == "/logo" && get && si.cfg.assets.logo != nil:
		serveAsset(w, si.cfg.assets.logoType, si.cfg.assets.logo)
	case rest == "" || rest == "/" || rest == "/style.css" || rest == "/page.js":
		w.Header().Set("Allow", "GET, HEAD")
		si.renderStatus(w, r, http.StatusMethodNotAllowed)
	case rest == "/signout" || rest == "/link":
		w.Header().Set("Allow", "GET, HEAD, POST")
		si.renderStatus(w, r, http.StatusMethodNotAllowed)
	case rest == "/start" || rest == "/verify" || rest == "/resend":
		w.Header().Set("Allow", "POST")
		si.renderStatus(w, r, http.StatusMethodNotAllowed)
	default:
		si.renderStatus(w, r, http.StatusNotFound)
	}
	return true
}

// signInForm shows the address form, or who is signed in when the browser
// already holds a valid session.
func (si *signIn) signInForm(w http.ResponseWriter, r *http.Request) {
	p := si.newPage(w, r, si.safeReturn(r.URL.Query().Get(fieldReturn)))
	if addr, ok := si.signedIn(r); ok {
		p.View, p.Email = viewSignedIn, addr
	}
	si.render(w, http.StatusOK, p)
}

// signInStart mails a code to the address typed and shows the code form,
// which carries the sealed reference in a hidden field.
func (si *signIn) signInStart(w http.ResponseWriter, r *http.Request) {
	form, p, ok := si.readPost(w, r)
	if !ok {
		return
	}
	email := strings.TrimSpace(first(form, fieldEmail))
	p.Email = email
	addr, err := parseAddress(email)
	if err != nil {
		p.Error = p.T.ErrAddress
		si.render(w, http.StatusBadRequest, p)
		return
	}
	req := sendRequest{client: si.cfg.client, issuer: si.issuer(r), addr: addr, userIP: clientIP(r), uiLocales: uiLocales(r)}
	si.bindLink(w, r, &req, p)
	res, err := si.core.send(r.Context(), req)
	if refusal(err) {
		// A public page must not tell which mailboxes exist: a refused
		// domain or recipient gets the answer a mailed code gets, with a
		// reference no code opens. The core logged and counted the refusal.
		res, err = si.core.decoy(res), nil
	}
	if si.sendFailed(w, p, err) {
		return
	}
	p.Email = addr.String()
	si.codeView(p, res.reference)
	si.render(w, http.StatusOK, p)
}

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

// signInVerify checks the code against the reference, as the grant's
// validation does: every attempt consumes its reference, a wrong code gets a
// fresh one until max_attempts, and a right code sets the session cookie and
// redirects to the return path.
func (si *signIn) signInVerify(w http.ResponseWriter, r *http.Request) {
	form, p, ok := si.readPost(w, r)
	if !ok {
		return
	}
	ref := first(form, fieldReference)
	code := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, first(form, fieldCode))

	si.verifyCode(w, r, p, ref, code)
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

// signOut ends the session. Only a POST with the CSRF token does: a GET,
// which a link or an image on any other site can make the browser send,
// shows the sign-out button instead (signOutForm), so no cross-site
// request can sign a person out. After the POST the browser goes to the
// return path if the sign-out page was opened with one, else it sees that
// the session ended.
func (si *signIn) signOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		si.signOutForm(w, r)
		return
	}
	form, p, ok := si.readPost(w, r)
	if !ok {
		return
	}
	view, ok := si.endSession(w, r, form, p)
	if !ok {
		return
	}
	if first(form, fieldRedirect) == "1" {
		si.redirect(w, p)
		return
	}
	p.View = view
	si.render(w, http.StatusOK, p)
}

// signOutForm answers GET <path>/signout, the target of an application's
// sign-out link: with a valid session, who is signed in and the sign-out
// button (a form that carries the CSRF token and the return path); without
// one there is nothing to end, so it goes straight to the return path, or
// says the browser is signed out. It never changes a cookie but the CSRF one.
func (si *signIn) signOutForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := si.newPage(w, r, si.safeReturn(q.Get(fieldReturn)))
	p.Redirect = q.Has(fieldReturn)
	if addr, ok := si.signedIn(r); ok {
		p.View, p.Email = viewSignOut, addr
	} else if p.Redirect {
		si.redirect(w, p)
		return
	} else {
		p.View = viewSignedOut
	}
	si.render(w, http.StatusOK, p)
}

// redirect sends the browser to the page's (sanitized) return path.
func (si *signIn) redirect(w http.ResponseWriter, p *page) {
	setPageHeaders(w, p.Lang)
	w.Header().Set("Location", p.Return)
	w.WriteHeader(http.StatusSeeOther)
}

// readPost reads a sign-in form post and checks its CSRF token. When it
// reports false it has already answered.
func (si *signIn) readPost(w http.ResponseWriter, r *http.Request) (url.Values, *page, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	err := r.ParseForm()
	p := si.newPage(w, r, si.safeReturn(first(r.PostForm, fieldReturn)))
	if err != nil {
		p.View, p.Error = viewFailed, p.T.ErrForm
		si.render(w, http.StatusBadRequest, p)
		return nil, nil, false
	}
	if why := csrfProblem(r, si.csrfCookieName(r), first(r.PostForm, fieldCSRF)); why != "" {
		if ce := si.logger.Check(zap.InfoLevel, "signin refused"); ce != nil {
			ce.Write(zap.String("client", si.cfg.client.ID), zap.String("outcome", "csrf"),
				zap.String("reason", why), zap.String("path", r.URL.Path))
		}
		p.View, p.Error = viewFailed, p.T.ErrCSRF
		si.render(w, http.StatusForbidden, p)
		return nil, nil, false
	}
	return r.PostForm, p, true
}

// first returns the first value of a form field ("" if absent).
func first(form url.Values, name string) string {
	if v := form[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
