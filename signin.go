package emailotp

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
func (h *Handler) serveSignIn(w http.ResponseWriter, r *http.Request) bool {
	s := h.SignIn
	rest, ok := strings.CutPrefix(r.URL.Path, s.Path)
	if !ok || (rest != "" && rest[0] != '/') {
		return false
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	post := r.Method == http.MethodPost
	switch {
	case (rest == "" || rest == "/") && get:
		h.signInForm(w, r)
	case rest == "/start" && post:
		h.signInStart(w, r)
	case rest == "/verify" && post:
		h.signInVerify(w, r)
	case rest == "/signout" && (get || post):
		h.signOut(w, r)
	case rest == "/style.css" && get:
		serveStyle(w)
	case rest == "" || rest == "/" || rest == "/style.css":
		w.Header().Set("Allow", "GET, HEAD")
		h.renderStatus(w, r, http.StatusMethodNotAllowed)
	case rest == "/signout":
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.renderStatus(w, r, http.StatusMethodNotAllowed)
	case rest == "/start" || rest == "/verify":
		w.Header().Set("Allow", "POST")
		h.renderStatus(w, r, http.StatusMethodNotAllowed)
	default:
		h.renderStatus(w, r, http.StatusNotFound)
	}
	return true
}

// signInForm shows the address form, or who is signed in when the browser
// already holds a valid session.
func (h *Handler) signInForm(w http.ResponseWriter, r *http.Request) {
	p := h.newPage(w, r, safeReturn(r.URL.Query().Get(fieldReturn)))
	if addr, ok := h.signedIn(r); ok {
		p.View, p.Email = viewSignedIn, addr
	}
	h.render(w, http.StatusOK, p)
}

// signedIn returns the address of the browser's session, if it holds a
// valid one.
func (h *Handler) signedIn(r *http.Request) (string, bool) {
	c, err := r.Cookie(h.SignIn.Cookie)
	if err != nil {
		return "", false
	}
	addr, err := h.keys.verifySession(c.Value, h.issuer(r), now())
	return addr, err == nil
}

// signInStart mails a code to the address typed and shows the code form,
// which carries the sealed reference in a hidden field.
func (h *Handler) signInStart(w http.ResponseWriter, r *http.Request) {
	form, p, ok := h.readPost(w, r)
	if !ok {
		return
	}
	s := h.SignIn
	email := strings.TrimSpace(first(form, fieldEmail))
	p.Email = email
	addr, err := parseAddress(email)
	if err != nil {
		p.Error = p.T.ErrAddress
		h.render(w, http.StatusBadRequest, p)
		return
	}
	if !s.client.allows(addr.Domain) {
		h.logChallenge(s.client.ID, addr, "", "domain_refused", nil)
		p.Error = p.T.ErrDomain
		h.render(w, http.StatusForbidden, p)
		return
	}
	if scope, oerr := h.limiter.allow(s.client.ID, addr.key(), clientIP(r)); oerr != nil {
		h.metrics.rateLimited(s.client.ID, scope)
		h.logChallenge(s.client.ID, addr, "", "rate_limited", nil)
		w.Header().Set("Retry-After", fmt.Sprint(int((oerr.retryAfter+time.Second-1)/time.Second)))
		p.Error = p.T.ErrRateLimit
		h.render(w, http.StatusTooManyRequests, p)
		return
	}

	code := newCode(h.CodeLength)
	ch := h.refs.newChallenge(s.client.ID, addr.String(), "", code, now(), time.Duration(h.OTPTimeout))
	out, err := h.tmpl.pick(uiLocales(r)).render(addr.String(), code, "", "")
	if err == nil {
		start := time.Now()
		err = h.mailer.send(r.Context(), out)
		h.metrics.sent(s.client.ID, time.Since(start), err)
		if err != nil {
			h.logChallenge(s.client.ID, addr, ch.logID(), "smtp_failed", err)
			status, msg := http.StatusServiceUnavailable, p.T.ErrMail
			if oerr := classifySendError(err); oerr.status == http.StatusBadRequest {
				status, msg = http.StatusBadRequest, p.T.ErrRefused
			} else {
				w.Header().Set("Retry-After", "30")
			}
			p.Error = msg
			h.render(w, status, p)
			return
		}
	} else {
		h.logChallenge(s.client.ID, addr, ch.logID(), "template_error", err)
		p.Error = p.T.ErrMail
		h.render(w, http.StatusServiceUnavailable, p)
		return
	}
	h.metrics.challenge(s.client.ID)
	h.logChallenge(s.client.ID, addr, ch.logID(), "sent", nil)
	p.View, p.Email, p.Reference = viewCode, addr.String(), h.refs.seal(ch)
	h.render(w, http.StatusOK, p)
}

// signInVerify checks the code against the reference, as the grant's
// validation does: every attempt consumes its reference, a wrong code gets a
// fresh one until max_attempts, and a right code sets the session cookie and
// redirects to the return path.
func (h *Handler) signInVerify(w http.ResponseWriter, r *http.Request) {
	form, p, ok := h.readPost(w, r)
	if !ok {
		return
	}
	s := h.SignIn
	ref := first(form, fieldReference)
	code := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, first(form, fieldCode))

	ch, err := h.refs.open(ref)
	if err != nil || ch.ClientID != s.client.ID {
		h.logValidation(s.client.ID, nil, "bad_reference")
		h.metrics.validated(s.client.ID, "bad_reference")
		p.Error = p.T.ErrStale
		h.render(w, http.StatusBadRequest, p)
		return
	}
	p.Email = ch.Address
	if !isDigits(code) || len(code) < 6 || len(code) > 12 {
		// Not an attempt: the same reference stays usable.
		p.View, p.Reference, p.Error = viewCode, ref, p.T.ErrCodeFormat
		h.render(w, http.StatusBadRequest, p)
		return
	}
	t := now()
	outcome, next, err := h.attempt(r.Context(), s.client.ID, ch, code, t)
	switch {
	case err != nil:
		w.Header().Set("Retry-After", "5")
		p.View, p.Reference, p.Error = viewCode, ref, p.T.ErrUnavailable
		h.render(w, http.StatusServiceUnavailable, p)
		return
	case outcome == outcomeInvalid:
		p.View, p.Reference, p.Error = viewCode, next, p.T.ErrCode
		h.render(w, http.StatusBadRequest, p)
		return
	case outcome != outcomeOK: // expired, exhausted, replayed: only a new code helps
		p.Error = p.T.ErrStale
		h.render(w, http.StatusBadRequest, p)
		return
	}

	token, err := h.mintSession(r, ch.Address, t)
	if err != nil {
		h.logger.Error("signing the session failed", zap.String("client", s.client.ID), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		p.Error = p.T.ErrUnavailable
		h.render(w, http.StatusServiceUnavailable, p)
		return
	}
	http.SetCookie(w, h.sessionCookie(r, token, int(time.Duration(s.SessionLifetime)/time.Second)))
	h.redirect(w, p)
}

// signOut ends the session. Only a POST with the CSRF token does: a GET,
// which a link or an image on any other site can make the browser send,
// shows the sign-out button instead (signOutForm), so no cross-site
// request can sign a person out. After the POST the browser goes to the
// return path if the sign-out page was opened with one, else it sees that
// the session ended.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.signOutForm(w, r)
		return
	}
	form, p, ok := h.readPost(w, r)
	if !ok {
		return
	}
	http.SetCookie(w, h.sessionCookie(r, "", -1))
	if ce := h.logger.Check(zap.InfoLevel, "signin session"); ce != nil {
		ce.Write(zap.String("client", h.SignIn.client.ID), zap.String("outcome", "signed_out"))
	}
	if first(form, fieldRedirect) == "1" {
		h.redirect(w, p)
		return
	}
	p.View = viewSignedOut
	h.render(w, http.StatusOK, p)
}

// signOutForm answers GET <path>/signout, the target of an application's
// sign-out link: with a valid session, who is signed in and the sign-out
// button (a form that carries the CSRF token and the return path); without
// one there is nothing to end, so it goes straight to the return path, or
// says the browser is signed out. It never changes a cookie but the CSRF one.
func (h *Handler) signOutForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := h.newPage(w, r, safeReturn(q.Get(fieldReturn)))
	p.Redirect = q.Has(fieldReturn)
	if addr, ok := h.signedIn(r); ok {
		p.View, p.Email = viewSignOut, addr
	} else if p.Redirect {
		h.redirect(w, p)
		return
	} else {
		p.View = viewSignedOut
	}
	h.render(w, http.StatusOK, p)
}

// redirect sends the browser to the page's (sanitized) return path.
func (h *Handler) redirect(w http.ResponseWriter, p *page) {
	setPageHeaders(w, p.Lang)
	w.Header().Set("Location", p.Return)
	w.WriteHeader(http.StatusSeeOther)
}

// readPost reads a sign-in form post and checks its CSRF token. When it
// reports false it has already answered.
func (h *Handler) readPost(w http.ResponseWriter, r *http.Request) (url.Values, *page, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	err := r.ParseForm()
	p := h.newPage(w, r, safeReturn(first(r.PostForm, fieldReturn)))
	if err != nil {
		p.View, p.Error = viewFailed, p.T.ErrForm
		h.render(w, http.StatusBadRequest, p)
		return nil, nil, false
	}
	if why := csrfProblem(r, h.csrfCookieName(r), first(r.PostForm, fieldCSRF)); why != "" {
		if ce := h.logger.Check(zap.InfoLevel, "signin refused"); ce != nil {
			ce.Write(zap.String("client", h.SignIn.client.ID), zap.String("outcome", "csrf"),
				zap.String("reason", why), zap.String("path", r.URL.Path))
		}
		p.View, p.Error = viewFailed, p.T.ErrCSRF
		h.render(w, http.StatusForbidden, p)
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

// clientIP is the person's IP as Caddy determined it: the connection's peer,
// or the forwarded address when the peer is one of the server's
// trusted_proxies. A request header is never read directly, so a client
// cannot choose the IP it is counted under.
func clientIP(r *http.Request) string {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if s == "" {
		s = r.RemoteAddr
		if ap, err := netip.ParseAddrPort(s); err == nil {
			s = ap.Addr().String()
		}
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	return ipKey(ip)
}
