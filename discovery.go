package emailotp

import (
	"net/http"
	"path"
	"strings"
)

const (
	jwksSuffix     = "/oauth2/metadata.jwks"
	metadataSuffix = "/oauth2/metadata.json" // Ubisecure's copy of the discovery document
)

// servePublished answers the documents and endpoints published under the
// issuer: discovery (OpenID Connect, RFC 8414 and Ubisecure's
// metadata.json, one document), the JWKS, revocation and introspection.
// It reports whether the request was one of them.
func (h *Handler) servePublished(w http.ResponseWriter, r *http.Request) bool {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch r.URL.Path {
	case h.basePath + "/.well-known/openid-configuration",
		h.basePath + "/.well-known/oauth-authorization-server",
		"/.well-known/oauth-authorization-server" + h.basePath,
		h.basePath + metadataSuffix:
		if get {
			h.serveDiscovery(w, r)
			return true
		}
	case h.basePath + jwksSuffix:
		if get {
			h.serveJWKS(w, r)
			return true
		}
	case h.basePath + revokeSuffix:
		h.serveRevoke(w, r)
		return true
	case h.basePath + introspectSuffix:
		h.serveIntrospect(w, r)
		return true
	}
	return false
}

// discovery is the OpenID Provider metadata (OpenID Connect Discovery 1.0,
// and RFC 8414 for the same document under oauth-authorization-server).
type discovery struct {
	Issuer                 string   `json:"issuer"`
	TokenEndpoint          string   `json:"token_endpoint"`
	JWKSURI                string   `json:"jwks_uri"`
	GrantTypes             []string `json:"grant_types_supported"`
	ResponseTypes          []string `json:"response_types_supported"`
	SubjectTypes           []string `json:"subject_types_supported"`
	TokenAuthMethods       []string `json:"token_endpoint_auth_methods_supported"`
	TokenAuthAlgs          []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IDTokenAlgs            []string `json:"id_token_signing_alg_values_supported"`
	Scopes                 []string `json:"scopes_supported"`
	Claims                 []string `json:"claims_supported"`
	UILocales              []string `json:"ui_locales_supported,omitempty"`
	ClaimsParameterSupport bool     `json:"claims_parameter_supported"`
	RevocationEndpoint     string   `json:"revocation_endpoint"`
	RevocationAuthMethods  []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpoint  string   `json:"introspection_endpoint"`
	IntrospectAuthMethods  []string `json:"introspection_endpoint_auth_methods_supported"`
}

func (h *Handler) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := h.issuer(r)
	origin := iss
	if h.basePath != "" {
		origin = strings.TrimSuffix(iss, h.basePath)
	}
	d := discovery{
		Issuer:           iss,
		TokenEndpoint:    origin + h.TokenPath,
		JWKSURI:          iss + jwksSuffix,
		GrantTypes:       []string{h.GrantType},
		ResponseTypes:    []string{"none"},
		SubjectTypes:     []string{"public"},
		TokenAuthMethods: h.tokenAuthMethods(),
		TokenAuthAlgs:    h.tokenAuthAlgs(),
		IDTokenAlgs:      []string{string(h.keys.alg)},
		Scopes:           h.scopes,
		Claims: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "amr", "azp",
			"session_index", "email", "email_verified", "nonce", h.Method + ".grant_type"},
		UILocales: h.core.tmpl.locales(),
	}
	d.RevocationEndpoint, d.RevocationAuthMethods = iss+revokeSuffix, d.TokenAuthMethods
	d.IntrospectionEndpoint, d.IntrospectAuthMethods = iss+introspectSuffix, d.TokenAuthMethods
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, d)
}

func (h *Handler) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(h.keys.jwks())
}

// issuerPath is the path part of the issuer, under which the discovery
// document and the JWKS are served.
func issuerPath(issuer, tokenPath string) string {
	if issuer != "" {
		if i := strings.Index(issuer, "://"); i >= 0 {
			rest := issuer[i+3:]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				return strings.TrimSuffix(rest[j:], "/")
			}
			return ""
		}
	}
	if p, ok := strings.CutSuffix(tokenPath, "/oauth2/token"); ok {
		return p
	}
	return strings.TrimSuffix(path.Dir(tokenPath), "/")
}
