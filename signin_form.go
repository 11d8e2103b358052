package emailotp

import (
	"net/http"
	"net/url"

	"go.uber.org/zap"
)

// The sign-in page's forms: their field names, reading a post with its
// CSRF check, and where the browser goes afterwards (the sanitized return
// target and the redirect). Every step of the page reads its post here.

// safeReturn keeps a return target if it is a path on this site
// (safeReturn), or, with cookie_domain, an absolute http(s) URL on a host
// under that domain (where the session reaches). Anything else becomes "/".
func (si *signIn) safeReturn(s string) string {
	if p := safeReturn(s); p != "/" || s == "/" {
		return p
	}
	if si.cfg.CookieDomain == "" || len(s) > 2048 {
		return "/"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Opaque != "" ||
		u.Host == "" || !hostUnder(u.Hostname(), si.cfg.CookieDomain) {
		return "/"
	}
	return u.String()
}

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
