package emailotp

import (
	"net/http"
	"net/url"
	"strings"
)

// The forward-auth endpoint, `<signin path>/auth`: what another server in
// front of an app (Caddy's forward_auth, nginx's auth_request, Traefik's
// ForwardAuth) asks before letting a request through. It answers
//
//   - 200 with the verified address in X-Email-OTP-Email for a valid,
//     unrevoked session cookie (the proxy copies that header to the app);
//   - 302 to the sign-in page for a browser navigation without one (the
//     proxy passes the answer on), with the original URL, rebuilt from the
//     proxy's X-Forwarded-Proto, -Host and -Uri, as the return target when
//     it is on a host the session reaches (cookie_domain);
//   - 401 for anything else.
//
// The session cookie reaches another host only with cookie_domain, and the
// session's issuer must not depend on the Host the proxy sends: set
// `issuer` when the endpoint is called for other hosts.

// forwardAuthHeader carries the verified address in a 200 answer.
const forwardAuthHeader = "X-Email-OTP-Email"

// forwardAuth answers <signin path>/auth, for any method: proxies differ in
// the method they use.
func (si *signIn) forwardAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	secure := secureRequest(r, true)
	name := sessionCookieName(si.cfg.Cookie, si.cfg.CookieDomain, secure)
	if s, ok := si.currentSession(r, name); ok {
		si.slideAs(w, r, name, secure)
		w.Header().Set(forwardAuthHeader, s.addr)
		w.WriteHeader(http.StatusOK)
		return
	}
	orig := forwardedURL(r, secure)
	reason := "no_session"
	if len(r.CookiesNamed(name)) > 0 {
		reason = "invalid_session"
	}
	si.audit.write(auditRefusal, orig.Host+orig.Path, "", reason)
	if !forwardedNavigation(r) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	signin := si.signInURL(r)
	ret := si.safeReturn(orig.String())
	if su, err := url.Parse(signin); ret == "/" && err == nil && strings.EqualFold(su.Host, orig.Host) {
		ret = safeReturn(orig.RequestURI()) // the sign-in page's own host
	}
	loc := signin + "?" + fieldReturn + "=" + url.QueryEscape(ret)
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusFound)
}

// forwardedURL is the URL the browser asked the proxy for, from its
// X-Forwarded-* headers (the request's own when they are absent).
func forwardedURL(r *http.Request, secure bool) *url.URL {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: "/"}
	if secure {
		u.Scheme = "https"
	}
	if h := r.Header.Get("X-Forwarded-Host"); h != "" {
		u.Host = h
	}
	if uri := r.Header.Get("X-Forwarded-Uri"); uri != "" {
		if p, err := url.ParseRequestURI(uri); err == nil {
			u.Path, u.RawPath, u.RawQuery = p.Path, p.RawPath, p.RawQuery
		}
	}
	return u
}

// forwardedNavigation reports whether the original request is a browser
// loading a page: a GET or HEAD (X-Forwarded-Method, else the request's
// own) that accepts text/html.
func forwardedNavigation(r *http.Request) bool {
	m := r.Header.Get("X-Forwarded-Method")
	if m == "" {
		m = r.Method
	}
	nav := r.Clone(r.Context())
	nav.Method = strings.ToUpper(m)
	return isNavigation(nav)
}

// signInURL is the sign-in page's absolute URL: on the issuer's origin
// (the request's own scheme and host by default).
func (si *signIn) signInURL(r *http.Request) string {
	iss, err := url.Parse(si.issuer(r))
	if err != nil || iss.Host == "" {
		return si.cfg.Path
	}
	return iss.Scheme + "://" + iss.Host + si.cfg.Path
}
