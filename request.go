// Facts read from an HTTP request, shared by the token endpoint, the
// client endpoints and the sign-in pages.

package emailotp

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// basicAuth reads RFC 6749 §2.3.1 credentials: Basic, each part
// form-urlencoded before base64. bad is set when a Basic header is present
// but unusable.
func basicAuth(r *http.Request) (id, secret string, ok, bad bool) {
	hdr := r.Header.Values("Authorization")
	if len(hdr) == 0 {
		return "", "", false, false
	}
	if len(hdr) > 1 {
		return "", "", false, true
	}
	scheme, _, _ := strings.Cut(hdr[0], " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false, false
	}
	u, p, ok := r.BasicAuth()
	if !ok {
		return "", "", false, true
	}
	var err1, err2 error
	id, err1 = url.QueryUnescape(u)
	secret, err2 = url.QueryUnescape(p)
	if err1 != nil || err2 != nil || id == "" {
		return "", "", false, true
	}
	return id, secret, true, false
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

// maxBodyBytes bounds every form body read, so a client cannot make the
// server buffer more than a form needs.
const maxBodyBytes = 16 << 10
