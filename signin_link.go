package emailotp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The mailed sign-in link (signin mail_link). Asking for a code gives the
// browser a random binding token in a cookie; the reference carries its
// hash (in the nonce, which the page does not otherwise use), and the mail
// carries a link with the reference and the code. Opening the link is a GET
// that consumes nothing, so a mail scanner that fetches it changes nothing:
// in the browser that holds the token it shows a sign-in button (a POST
// with the CSRF token, checked like the code form), in any other browser the
// code to type in the browser that asked. The POST spends the reference like
// a typed code: the same single use and attempt rules.

// Fields of the mailed link's query.
const (
	linkReference = "reference"
	linkCode      = "code"
)

// linkCookieName is the binding cookie's name, __Host- prefixed over TLS as
// the CSRF cookie is.
func (si *signIn) linkCookieName(r *http.Request) string {
	n := si.cfg.Cookie + "_link"
	if r.TLS != nil {
		n = "__Host-" + n
	}
	return n
}

// linkNonce is what a reference carries of a binding token: its hash, so the
// reference (which travels in the mail) never holds the token itself.
func linkNonce(token string) string {
	h := sha256.Sum256([]byte("email_otp link binding\x00" + token))
	return "link:" + base64.RawURLEncoding.EncodeToString(h[:])
}

// bindLink prepares a send for the mailed link, when the page has one: the
// browser's binding token (kept if it has one, else new) goes into the
// reference, and the link builder into the request.
func (si *signIn) bindLink(w http.ResponseWriter, r *http.Request, req *sendRequest, p *page) {
	if si.cfg.MailLink == "" {
		return
	}
	tok := si.renewLinkBinding(w, r)
	req.nonce = linkNonce(tok)
	req.link, req.linkIntro = si.linkBuilder(p), p.T.MailLink
}

// renewLinkBinding sets the binding cookie again (a new one if the browser
// has none) for as long as a new code is valid, and returns its token.
// SameSite=Lax: opening the mailed link is a navigation from elsewhere,
// which must carry it.
func (si *signIn) renewLinkBinding(w http.ResponseWriter, r *http.Request) string {
	tok := ""
	if c, err := r.Cookie(si.linkCookieName(r)); err == nil && validCSRFToken(c.Value) {
		tok = c.Value
	} else {
		tok = newCSRFToken()
	}
	http.SetCookie(w, &http.Cookie{Name: si.linkCookieName(r), Value: tok, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
		MaxAge: int((si.core.ttl + time.Duration(si.cfg.ResendCooldown)) / time.Second)})
	return tok
}

// unbindLink clears the binding cookie once the browser is signed in.
func (si *signIn) unbindLink(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(si.linkCookieName(r)); err == nil {
		http.SetCookie(w, &http.Cookie{Name: si.linkCookieName(r), Value: "", Path: "/", HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
}

// linkBuilder returns the core's link builder: the configured origin (never
// the request's Host header), the page's path, and the reference, code and
// return path in the query.
func (si *signIn) linkBuilder(p *page) func(reference, code string) string {
	base := strings.TrimSuffix(si.cfg.MailLink, "/") + si.cfg.Path + "/link?"
	ret := p.Return
	return func(reference, code string) string {
		return base + url.Values{linkReference: {reference}, linkCode: {code}, fieldReturn: {ret}}.Encode()
	}
}

// boundHere tells whether the browser holds the binding token of ch.
func (si *signIn) boundHere(r *http.Request, ch *challenge) bool {
	c, err := r.Cookie(si.linkCookieName(r))
	if err != nil || !validCSRFToken(c.Value) || !strings.HasPrefix(ch.Nonce, "link:") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(linkNonce(c.Value)), []byte(ch.Nonce)) == 1
}
