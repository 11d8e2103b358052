package emailotp

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// newPage starts a page in the request's language, with the browser's CSRF
// token (set now if it has none) and the sanitized return path.
func (si *signIn) newPage(w http.ResponseWriter, r *http.Request, ret string) *page {
	tag, txt := si.cfg.pages.pick(r.Header.Get("Accept-Language"))
	title := si.cfg.Title
	if title == "" {
		title = txt.SignIn
	}
	minutes := int((si.core.ttl + time.Minute - 1) / time.Minute)
	logo := ""
	if si.cfg.assets.logo != nil {
		logo = si.cfg.Path + "/logo"
	}
	return &page{
		Logo:      logo,
		Lang:      tag.String(),
		T:         txt,
		Title:     title,
		Base:      si.cfg.Path,
		View:      viewAddress,
		CSRF:      si.csrfToken(w, r),
		Return:    ret,
		CodeValid: fmt.Sprintf(txt.CodeValid, minutes),
	}
}

// render writes the page with the headers every sign-in answer carries.
func (si *signIn) render(w http.ResponseWriter, status int, p *page) {
	var buf bytes.Buffer
	if err := si.cfg.assets.page.Execute(&buf, p); err != nil {
		si.logger.Error("rendering the sign-in page failed", zap.Error(err))
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	setPageHeaders(w, p.Lang)
	si.widenFormAction(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderStatus answers 404 or 405 under the sign-in path with a page that
// leads back to the form.
func (si *signIn) renderStatus(w http.ResponseWriter, r *http.Request, status int) {
	p := si.newPage(w, r, "/")
	p.View, p.Error = viewFailed, p.T.ErrNotFound
	if status == http.StatusMethodNotAllowed {
		p.Error = p.T.ErrMethod
	}
	si.render(w, status, p)
}

// pageCSP allows the page its own stylesheet, script (the resend
// countdown), logo and form targets, and nothing else: no inline script or
// style, no frame, no other origin.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setPageHeaders marks a sign-in answer as private to this browser and this
// moment: never cached, never framed, never sniffed, never referred elsewhere.
func setPageHeaders(w http.ResponseWriter, lang string) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the form posts, which the CSRF check refuses.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Content-Language", lang)
}

// codeView turns p into the code form for reference: the hidden field, and
// the resend form with the seconds left before the server accepts it.
func (si *signIn) codeView(p *page, reference string) {
	p.View, p.Reference = viewCode, reference
	wait, ok := si.core.resendWait(reference, time.Duration(si.cfg.ResendCooldown))
	p.Resend = ok
	p.ResendAfter = int((wait + time.Second - 1) / time.Second)
	p.ResendWait = fmt.Sprintf(p.T.ResendWait, p.ResendAfter)
}

// widenFormAction lets the pages' forms lead to the hosts under
// cookie_domain: browsers apply the CSP's form-action to the redirect that
// follows a post, and the code form's redirects to the return URL, which
// may be on another host under the domain.
func (si *signIn) widenFormAction(w http.ResponseWriter) {
	if d := si.cfg.CookieDomain; d != "" {
		csp := strings.Replace(pageCSP, "form-action 'self'", "form-action 'self' "+d+":* *."+d+":*", 1)
		w.Header().Set("Content-Security-Policy", csp)
	}
}
