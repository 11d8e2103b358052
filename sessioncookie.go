package emailotp

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/idna"
)

// The session cookie's name and scope, shared by the sign-in page that sets
// it and by the gate and the forward-auth endpoint that read it.
//
// Over TLS the cookie is `__Host-<name>`: the browser takes it only from this
// very host, Secure, with Path=/ and no Domain, so a sibling subdomain cannot
// plant a session of its own in front of ours (a login CSRF), and readers
// take no other name. With cookie_domain it is `__Secure-<name>` with that
// Domain instead: every host under the domain then receives it, and every
// host under the domain can set it — that is what sharing a session across
// subdomains means. Over plain HTTP no prefix can hold (both need Secure), so
// the bare name is used, as before.

// sessionCookieName is the name of the session cookie for a request that
// came over TLS (secure) or not.
func sessionCookieName(name, domain string, secure bool) string {
	switch {
	case !secure:
		return name
	case domain != "":
		return "__Secure-" + name
	default:
		return "__Host-" + name
	}
}

// secureRequest reports whether the browser's request came over TLS: the
// connection's own TLS, or, for the forward-auth endpoint that a proxy
// calls, the proxy's X-Forwarded-Proto when forwarded is true.
func secureRequest(r *http.Request, forwarded bool) bool {
	if r.TLS != nil {
		return true
	}
	return forwarded && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// validateCookieDomain checks a cookie_domain: a DNS name with at least one
// dot (a browser refuses a Domain that is a public suffix such as "com"),
// no leading dot, no port.
func validateCookieDomain(d string) error {
	if d == "" {
		return nil
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil || !strings.Contains(a, ".") || strings.HasPrefix(a, ".") || strings.ContainsAny(a, ":/ ") {
		return fmt.Errorf("cookie_domain %q: want a domain name such as example.com", d)
	}
	return nil
}

// hostUnder reports whether host (without port) is domain or a subdomain
// of it, case-insensitively.
func hostUnder(host, domain string) bool {
	host, domain = strings.ToLower(strings.TrimSuffix(host, ".")), strings.ToLower(domain)
	return domain != "" && (host == domain || strings.HasSuffix(host, "."+domain))
}
