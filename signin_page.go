package emailotp

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// The pages and their stylesheet are compiled in: the sign-in pages load
// nothing from elsewhere, and the CSP says so.
//
//go:embed signin/page.html signin/style.css
var signinFiles embed.FS

var (
	signinPage  = template.Must(template.ParseFS(signinFiles, "signin/page.html"))
	signinStyle = must(signinFiles.ReadFile("signin/style.css"))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Views of the sign-in page.
const (
	viewAddress   = "address"
	viewCode      = "code"
	viewSignedIn  = "signedin"
	viewSignOut   = "signout"
	viewSignedOut = "signedout"
	viewFailed    = "failed"
)

// page is what the template sees.
type page struct {
	Lang      string
	T         *pageText
	Title     string
	Base      string
	View      string
	Error     string
	CSRF      string
	Return    string
	Email     string
	Reference string
	CodeValid string
	// Redirect asks the sign-out form to send the browser to Return
	// afterwards (the sign-out page was opened with ?return=).
	Redirect bool
}

// newPage starts a page in the request's language, with the browser's CSRF
// token (set now if it has none) and the sanitized return path.
func (si *signIn) newPage(w http.ResponseWriter, r *http.Request, ret string) *page {
	tag, txt := si.cfg.pages.pick(r.Header.Get("Accept-Language"))
	title := si.cfg.Title
	if title == "" {
		title = txt.SignIn
	}
	minutes := int((si.core.ttl + time.Minute - 1) / time.Minute)
	return &page{
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
	if err := signinPage.Execute(&buf, p); err != nil {
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

// pageCSP allows the page its own stylesheet and its own form targets, and
// nothing else: no script, no frame, no image, no other origin.
const pageCSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

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

// serveStyle serves the stylesheet; it holds nothing personal, so it may be
// cached for a while.
func serveStyle(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", "text/css; charset=utf-8")
	hd.Set("Cache-Control", "public, max-age=3600")
	hd.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(signinStyle)
}
