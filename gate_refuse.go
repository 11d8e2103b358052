package emailotp

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// bearerToken returns the token of an `Authorization: Bearer` header when
// the gate accepts bearer tokens. Several Authorization headers, or a
// malformed Bearer one, count as a presented, invalid token.
func (g *Gate) bearerToken(r *http.Request) (string, bool) {
	if !g.accepts[kindBearer] {
		return "", false
	}
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", false
	}
	scheme, tok, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if len(vals) > 1 {
			return "", true
		}
		return "", false // Basic and others belong to someone else
	}
	tok = strings.TrimLeft(tok, " ")
	if len(vals) > 1 || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", true
	}
	return tok, true
}

// refuse writes the answer to a request that is not admitted: a redirect to
// the sign-in page for a browser navigation, else the RFC 6750 challenge
// (the authentication handler then answers 401).
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, presented, bearer bool) {
	if g.SignInPath != "" && !bearer && isNavigation(r) && r.URL.Path != g.SignInPath {
		orig := r
		if o, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
			orig = &o
		}
		sep := "?"
		if strings.Contains(g.SignInPath, "?") {
			sep = "&"
		}
		w.Header().Set("Location", g.SignInPath+sep+"return="+url.QueryEscape(orig.URL.RequestURI()))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Add("Vary", "Accept")
		w.WriteHeader(http.StatusFound)
		return
	}
	challenge := `Bearer realm="email_otp"`
	if presented {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
}

// isNavigation reports whether the request looks like a browser loading a
// page: a GET or HEAD that accepts text/html.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}
