// The issuer of a request, one rule for the handler and the gate.

package emailotp

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// issuer is the configured issuer with placeholders replaced, or the
// request's origin followed by the issuer path.
func (h *Handler) issuer(r *http.Request) string { return resolveIssuer(r, h.Issuer, h.basePath) }

// resolveIssuer is the one rule, shared by the handler and the gate, that
// turns a configured issuer (placeholders allowed) or, when there is none,
// the request's scheme and host plus basePath into the `iss` of this request.
func resolveIssuer(r *http.Request, configured, basePath string) string {
	if configured != "" {
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			return strings.TrimSuffix(repl.ReplaceAll(configured, ""), "/")
		}
		return strings.TrimSuffix(configured, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + basePath
}
