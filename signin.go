package emailotp

import (
	"net/http"
	"strings"
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
