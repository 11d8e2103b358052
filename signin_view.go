package emailotp

import (
	"embed"
	"html/template"
)

// The pages and their stylesheet are compiled in: the sign-in pages load
// nothing from elsewhere, and the CSP says so.
//
//go:embed signin/page.html signin/style.css signin/page.js
var signinFiles embed.FS

var (
	signinPage   = template.Must(template.ParseFS(signinFiles, "signin/page.html"))
	signinStyle  = must(signinFiles.ReadFile("signin/style.css"))
	signinScript = must(signinFiles.ReadFile("signin/page.js"))
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
	viewLink      = "link"     // a mailed link opened in the browser that asked: the sign-in button
	viewLinkCode  = "linkcode" // a mailed link opened in another browser: the code to type
)

// page is what the template sees; docs/signin.md documents it for
// template_file.
type page struct {
	Lang      string    // BCP 47 tag of the page's language
	T         *pageText // every string, in that language
	Title     string    // the signin title, or T.SignIn
	Base      string    // the sign-in path; forms post to Base/start, /verify, /resend, /link, /signout
	View      string    // address, code, signedin, signout, signedout, failed, link, linkcode
	Error     string    // an error to show (role=alert), or ""
	CSRF      string    // the value of every form's hidden csrf field
	Return    string    // the sanitized return path: every form's hidden return field
	Email     string    // the address typed, signed in, or the reference's
	Reference string    // the code form's hidden reference field
	Code      string    // view link: the hidden code field; view linkcode: the code to type
	CodeValid string    // T.CodeValid with the minutes filled in
	Logo      string    // the logo's URL, or "" without a logo
	// Resend offers the "send a new code" form on the code view;
	// ResendAfter is the seconds left before the server accepts it, and
	// ResendWait T.ResendWait with them filled in.
	Resend      bool
	ResendAfter int
	ResendWait  string
	// Resent tells the code view that the code is a new one.
	Resent bool
	// Redirect asks the sign-out form to send the browser to Return
	// afterwards (the sign-out page was opened with ?return=).
	Redirect bool
}
