package emailotp

import (
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestMintClaims checks the payloads mint marshals itself: every claim of the
// id_token and the access token, the configured ones included, under a
// signature the published key verifies.
func TestMintClaims(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			h := benchHandler(t, alg, benchSMTP{})
			c := h.clients["bench"]
			c.Claims = map[string]string{"role": "tester", "tier": "<gold & silver>"}
			at := time.Unix(1_800_000_000, 0)
			resp, err := h.mint(grantResult{issuer: "https://sso.example.com/uas", client: c,
				address: "alice@example.com", scope: "openid", nonce: "n-0S6", authTime: at})
			if err != nil {
				t.Fatal(err)
			}
			pub := h.keys.loaded().public.Keys[0]
			var (
				std jwt.Claims
				id  map[string]any
			)
			parse := func(tok, typ string, out ...any) {
				t.Helper()
				parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
				if got := parsed.Headers[0].ExtraHeaders[jose.HeaderType]; got != typ {
					t.Errorf("typ = %v, want %s", got, typ)
				}
				if parsed.Headers[0].KeyID != h.keys.loaded().kid {
					t.Errorf("kid = %q, want %q", parsed.Headers[0].KeyID, h.keys.loaded().kid)
				}
				if err := parsed.Claims(pub.Key, out...); err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
			}
			parse(resp.IDToken, "JWT", &std, &id)
			if std.Issuer != "https://sso.example.com/uas" || std.Subject != "alice@example.com" ||
				len(std.Audience) != 1 || std.Audience[0] != "bench" || std.IssuedAt.Time() != at ||
				std.Expiry.Time() != at.Add(time.Hour) || std.ID != "" {
				t.Errorf("id_token registered claims: %+v", std)
			}
			want := map[string]any{"auth_time": float64(at.Unix()), "azp": "bench", "email": "alice@example.com",
				"email_verified": true, "nonce": "n-0S6", "role": "tester", "tier": "<gold & silver>"}
			for k, v := range want {
				if id[k] != v {
					t.Errorf("id_token %s = %v, want %v", k, id[k], v)
				}
			}
			if amr, _ := id["amr"].([]any); len(amr) != 1 || amr[0] != "https://sso.example.com/uas/saml2/names/ac/smtp.1" {
				t.Errorf("amr = %v", id["amr"])
			}
			if g, _ := id["smtp.1.grant_type"].([]any); len(g) != 1 || g[0] != DefaultGrantType {
				t.Errorf("smtp.1.grant_type = %v", id["smtp.1.grant_type"])
			}
			if s, _ := id["session_index"].(string); len(s) < 16 {
				t.Errorf("session_index = %v", id["session_index"])
			}

			var (
				astd jwt.Claims
				acc  map[string]any
			)
			parse(resp.AccessToken, "at+jwt", &astd, &acc)
			if astd.Subject != "alice@example.com" || len(astd.ID) < 16 || astd.Expiry.Time() != at.Add(time.Hour) {
				t.Errorf("access token registered claims: %+v", astd)
			}
			if acc["client_id"] != "bench" || acc["scope"] != "openid" || acc["role"] != nil || acc["email"] != "alice@example.com" ||
				acc["session_index"] != id["session_index"] {
				t.Errorf("access token claims: %v", acc)
			}
			if strings.Count(resp.IDToken, ".") != 2 || resp.ExpiresIn != 3600 || resp.TokenType != "Bearer" {
				t.Errorf("response: %+v", resp)
			}
		})
	}
}
