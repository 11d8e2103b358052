package emailotp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// safeReturn keeps a return target only if it is a path on this site:
// it must start with exactly one "/" (not "//", not "/\", which browsers read
// as another host), hold printable ASCII only (browsers drop tabs and newlines
// from URLs, so "/\t/evil.example" would become "//evil.example"), and parse
// without a scheme or host. Anything else becomes "/".
func safeReturn(s string) string {
	if len(s) == 0 || len(s) > 2048 || s[0] != '/' {
		return "/"
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return s
}

// csrfTokenLen is the length of a token: 32 random bytes, base64url.
const csrfTokenLen = 43

func newCSRFToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// csrfCookieName is the double-submit cookie's name. Over TLS it takes the
// __Host- prefix, so the browser only accepts it from this very host with
// Path=/ and Secure: a sibling subdomain cannot plant a token of its choosing.
func (si *signIn) csrfCookieName(r *http.Request) string {
	n := si.cfg.Cookie + "_csrf"
	if r.TLS != nil {
		n = "__Host-" + n
	}
	return n
}

// csrfToken returns the browser's token, setting a new one when the browser
// has none: a random value in a SameSite=Strict, HttpOnly cookie that every
// form repeats in a hidden field.
func (si *signIn) csrfToken(w http.ResponseWriter, r *http.Request) string {
	name := si.csrfCookieName(r)
	if c, err := r.Cookie(name); err == nil && validCSRFToken(c.Value) {
		return c.Value
	}
	tok := newCSRFToken()
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	return tok
}

func validCSRFToken(s string) bool {
	if len(s) != csrfTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// csrfProblem accepts a form post only when it comes from this site's own
// pages: the browser's fetch metadata and Origin, when sent, must say
// same-origin, and the form's token must equal the cookie's (compared in
// constant time). Modern browsers send both headers; the token still guards
// older ones and non-browser clients. It returns "" for an accepted post,
// else a reason fit for a log line (it never holds a token).
func csrfProblem(r *http.Request, cookieName, formToken string) string {
	if v := r.Header.Values("Sec-Fetch-Site"); len(v) > 0 && (len(v) > 1 || v[0] != "same-origin") {
		return "sec_fetch_site"
	}
	if v := r.Header.Values("Origin"); len(v) > 0 {
		if len(v) > 1 {
			return "origin"
		}
		u, err := url.Parse(v[0])
		// "null" (an opaque origin: sandboxed frame, file, some redirects)
		// parses without a host and is refused with every foreign origin.
		if err != nil || u.Host == "" || !strings.EqualFold(stripDefaultPort(u.Host), stripDefaultPort(r.Host)) {
			return "origin"
		}
	}
	c, err := r.Cookie(cookieName)
	switch {
	case err != nil || !validCSRFToken(c.Value):
		return "no_cookie"
	case !validCSRFToken(formToken):
		return "no_token"
	case subtle.ConstantTimeCompare([]byte(c.Value), []byte(formToken)) != 1:
		return "token_mismatch"
	}
	return ""
}

// stripDefaultPort drops :80 and :443, which an Origin never carries but a
// Host header may.
func stripDefaultPort(hostport string) string {
	if h, ok := strings.CutSuffix(hostport, ":443"); ok {
		return h
	}
	if h, ok := strings.CutSuffix(hostport, ":80"); ok {
		return h
	}
	return hostport
}
