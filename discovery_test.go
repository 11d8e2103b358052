package emailotp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestDiscoveryMetadata fetches the provider metadata at every path it is
// served on (OpenID Connect Discovery's issuer + /.well-known/openid-
// configuration, RFC 8414 §3's /.well-known/oauth-authorization-server
// inserted before the issuer's path, and the same suffixed) and checks that
// the three are one document whose fields say what this server does: the
// smtp-otp grant, the configured algorithm, every claim it issues, and
// token and JWKS endpoints that answer.
func TestDiscoveryMetadata(t *testing.T) {
	for _, c := range []struct {
		name, extra                 string
		base, tokenPath, alg, grant string // base: the issuer's path
		methodClaim                 string
	}{
		{name: "RS256 defaults", base: "/uas", tokenPath: tokenPath, alg: "RS256", grant: grantURI, methodClaim: "smtp.1.grant_type"},
		{name: "ES256", extra: "signing_alg ES256", base: "/uas", tokenPath: tokenPath, alg: "ES256", grant: grantURI, methodClaim: "smtp.1.grant_type"},
		{name: "EdDSA other paths", extra: "signing_alg EdDSA\ntoken_path /sso/token\nmethod mail.2\ngrant_type urn:example:otp",
			base: "/sso", tokenPath: "/sso/token", alg: "EdDSA", grant: "urn:example:otp", methodClaim: "mail.2.grant_type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc := startCaddy(t, otpSite(freePort(t), c.extra))
			iss := tc.Base + c.base
			paths := []string{
				c.base + "/.well-known/openid-configuration",
				"/.well-known/oauth-authorization-server" + c.base,
				c.base + "/.well-known/oauth-authorization-server",
			}
			var first []byte
			for _, p := range paths {
				a := httpGet(t, tc.Base+p)
				if a.Status != http.StatusOK || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/json") {
					t.Fatalf("GET %s: %s", p, a)
				}
				if first == nil {
					first = a.Body
				} else if !bytes.Equal(a.Body, first) {
					t.Errorf("GET %s differs from %s:\n%s\n%s", p, paths[0], a.Body, first)
				}
			}
			var d struct {
				Issuer        string   `json:"issuer"`
				TokenEndpoint string   `json:"token_endpoint"`
				JWKSURI       string   `json:"jwks_uri"`
				GrantTypes    []string `json:"grant_types_supported"`
				IDTokenAlgs   []string `json:"id_token_signing_alg_values_supported"`
				Claims        []string `json:"claims_supported"`
				Scopes        []string `json:"scopes_supported"`
				AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
				ResponseTypes []string `json:"response_types_supported"`
				SubjectTypes  []string `json:"subject_types_supported"`
			}
			if err := json.Unmarshal(first, &d); err != nil {
				t.Fatal(err)
			}
			// RFC 8414 §3.3: the issuer in the document is the one the
			// metadata URL was formed from.
			if d.Issuer != iss {
				t.Errorf("issuer = %q, want %q", d.Issuer, iss)
			}
			if d.TokenEndpoint != tc.Base+c.tokenPath {
				t.Errorf("token_endpoint = %q, want %q", d.TokenEndpoint, tc.Base+c.tokenPath)
			}
			if d.JWKSURI != iss+"/oauth2/metadata.jwks" {
				t.Errorf("jwks_uri = %q", d.JWKSURI)
			}
			if !slices.Contains(d.GrantTypes, c.grant) {
				t.Errorf("grant_types_supported = %v, want %s in it", d.GrantTypes, c.grant)
			}
			if !slices.Equal(d.IDTokenAlgs, []string{c.alg}) {
				t.Errorf("id_token_signing_alg_values_supported = %v, want [%s]", d.IDTokenAlgs, c.alg)
			}
			for _, claim := range []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "amr", "azp",
				"session_index", "email", "email_verified", "nonce", c.methodClaim} {
				if !slices.Contains(d.Claims, claim) {
					t.Errorf("claims_supported = %v lacks %q", d.Claims, claim)
				}
			}
			if !slices.Contains(d.Scopes, "openid") || !slices.Equal(d.AuthMethods, []string{"client_secret_basic", "client_secret_post"}) ||
				len(d.ResponseTypes) == 0 || len(d.SubjectTypes) == 0 {
				t.Errorf("scopes %v, auth methods %v, response types %v, subject types %v",
					d.Scopes, d.AuthMethods, d.ResponseTypes, d.SubjectTypes)
			}

			// jwks_uri answers with the current key first, of the
			// advertised algorithm.
			j := httpGet(t, d.JWKSURI)
			if j.Status != http.StatusOK || j.Header.Get("Content-Type") != "application/jwk-set+json" {
				t.Fatalf("GET jwks_uri: %d %q", j.Status, j.Header.Get("Content-Type"))
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(j.Body, &set); err != nil || len(set.Keys) == 0 {
				t.Fatalf("JWKS %s: %v", j.Body, err)
			}
			if k := set.Keys[0]; k.Algorithm != c.alg || k.KeyID == "" || !k.IsPublic() || k.Use != "sig" {
				t.Errorf("first JWKS key: alg %q kid %q public %v use %q", k.Algorithm, k.KeyID, k.IsPublic(), k.Use)
			}

			// token_endpoint is where the grant is answered: an initiate
			// without client credentials gets the OAuth error, not the
			// app behind.
			form := initiateForm("x@example.com")
			form.Set("grant_type", c.grant)
			a := post(t, d.TokenEndpoint, form, nil)
			if a.Status != http.StatusUnauthorized || a.str("error") != "invalid_client" {
				t.Errorf("POST token_endpoint: %s", a)
			}

			// Only GET and HEAD are the metadata; other methods reach the app.
			head, err := http.NewRequest(http.MethodHead, tc.Base+paths[1], nil)
			if err != nil {
				t.Fatal(err)
			}
			hr, err := http.DefaultClient.Do(head)
			if err != nil {
				t.Fatal(err)
			}
			hr.Body.Close()
			if hr.StatusCode != http.StatusOK {
				t.Errorf("HEAD %s: %d", paths[1], hr.StatusCode)
			}
			if p := post(t, tc.Base+paths[1], nil, nil); p.Status != 299 {
				t.Errorf("POST %s: %s, want the app behind", paths[1], p)
			}
		})
	}
}
