package emailotp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rs"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// revokeSite is otpSite with a gated route answering the verified user.
func revokeSite(extraOTP, gateOpts string) string {
	return otpSite(freePortNoT(), extraOTP) + fmt.Sprintf(`
	handle /who/* {
		email_otp_gate {
%s
		}
		respond "user={http.auth.user.id}" 200
	}`, gateOpts)
}

// freePortNoT is a port nothing listens on, for the unused SMTP server.
func freePortNoT() int { return 1 }

func newRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// revokeCaller is what zitadel's client needs to call a revocation endpoint.
type revokeCaller struct{ endpoint string }

func (c revokeCaller) GetRevokeEndpoint() string { return c.endpoint }
func (c revokeCaller) HttpClient() *http.Client  { return http.DefaultClient }

// zitadelRevoke revokes token as client id with HTTP Basic, through
// zitadel's client package.
func zitadelRevoke(t *testing.T, endpoint, token, id, secret string) {
	t.Helper()
	err := client.CallRevokeEndpoint(context.Background(), client.RevokeRequest{Token: token, TokenTypeHint: "access_token"},
		httphelper.AuthorizeBasic(id, secret), revokeCaller{endpoint})
	if err != nil {
		t.Fatalf("revoke as %s: %v", id, err)
	}
}

// adminRevoke posts body to the admin API's revocation route.
func adminRevoke(t *testing.T, adminAddr, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+adminAddr+"/email-otp/revoke", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// TestRevocationEndpoints drives RFC 7662 introspection and RFC 7009
// revocation through zitadel's resource-server and client packages, the
// admin API, and the gate, in one Caddy.
func TestRevocationEndpoints(t *testing.T) {
	tc := startCaddy(t, revokeSite("", ""))
	issuer := tc.Base + "/uas"
	m := newMinter(t, tc.Storage, "RS256", issuer)
	ctx := context.Background()
	revokeURL, introspectURL := issuer+revokeSuffix, issuer+introspectSuffix

	admitted := func(tok string) bool {
		t.Helper()
		a := tc.gate(t, gateReq{path: "/who/", bearer: tok})
		return a.Status == http.StatusOK
	}
	sessionAdmitted := func(tok string) bool {
		t.Helper()
		a := tc.gate(t, gateReq{path: "/who/", cookies: []string{tok}})
		return a.Status == http.StatusOK
	}
	rsApp, err := rs.NewResourceServerClientCredentials(ctx, issuer, "app", "app-secret")
	if err != nil {
		t.Fatalf("zitadel resource server from discovery: %v", err)
	}
	if rsApp.IntrospectionURL() != introspectURL {
		t.Fatalf("discovered introspection endpoint %q", rsApp.IntrospectionURL())
	}
	introspect := func(tok string) *oidc.IntrospectionResponse {
		t.Helper()
		r, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, rsApp, tok)
		if err != nil {
			t.Fatalf("introspect: %v", err)
		}
		return r
	}
	rawIntrospect := func(tok string) answer {
		t.Helper()
		return post(t, introspectURL, url.Values{"token": {tok}}, appCreds)
	}

	t.Run("discovery lists both endpoints", func(t *testing.T) {
		d := httpGet(t, issuer+"/.well-known/openid-configuration")
		if d.str("revocation_endpoint") != revokeURL || d.str("introspection_endpoint") != introspectURL {
			t.Errorf("discovery: %s", d.Body)
		}
		for _, k := range []string{"revocation_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"} {
			if fmt.Sprint(d.JSON[k]) != "[client_secret_basic client_secret_post]" {
				t.Errorf("%s = %v", k, d.JSON[k])
			}
		}
	})

	t.Run("introspection", func(t *testing.T) {
		tok := m.at(t, "alice@example.com", nil)
		r := introspect(tok)
		if !r.Active || r.Subject != "alice@example.com" || r.ClientID != "app" || r.Issuer != issuer ||
			r.TokenType != "Bearer" || r.JWTID == "" || len(r.Audience) != 1 || r.Audience[0] != "app" ||
			r.Email != "alice@example.com" || len(r.Scope) != 1 || r.Scope[0] != "openid" || r.Expiration.AsTime().IsZero() {
			t.Errorf("active token: %+v", r)
		}
		// A resource server that is another client may introspect too.
		if a := post(t, introspectURL, url.Values{"token": {tok}}, []string{"other", "other-secret"}); a.JSON["active"] != true {
			t.Errorf("as another client: %s", a)
		}
		for name, bad := range map[string]string{
			"garbage":      "not-a-token",
			"session":      m.session(t, "alice@example.com", nil),
			"expired":      m.at(t, "alice@example.com", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Second).Unix() }),
			"other issuer": m.at(t, "alice@example.com", func(c map[string]any) { c["iss"] = "https://elsewhere.example/uas" }),
			"tampered":     tamper(tok),
		} {
			if a := rawIntrospect(bad); a.Status != 200 || string(a.Body) != `{"active":false}` ||
				a.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %s", name, a)
			}
		}
	})

	t.Run("RFC 7009: only the token's client revokes it", func(t *testing.T) {
		tok := m.at(t, "alice@example.com", nil)
		if !admitted(tok) {
			t.Fatal("fresh token refused")
		}
		zitadelRevoke(t, revokeURL, tok, "other", "other-secret")
		if !admitted(tok) || !introspect(tok).Active {
			t.Fatal("another client revoked the token")
		}
		zitadelRevoke(t, revokeURL, tok, "app", "app-secret")
		if admitted(tok) {
			t.Error("gate admits a revoked token")
		}
		if a := rawIntrospect(tok); string(a.Body) != `{"active":false}` {
			t.Errorf("revoked token introspects as %s", a)
		}
		// One audit line for the revocation that took effect, masked, with
		// the client; none for the other client's attempt.
		logs := tc.Logs(t)
		if n := strings.Count(logs, `"reason":"rfc7009"`); n != 1 {
			t.Errorf("%d audit lines for an RFC 7009 revocation, want 1:\n%s", n, logs)
		}
		if !strings.Contains(logs, `"event":"revocation","route":"`+strings.TrimPrefix(tc.Base, "http://")+`/uas/oauth2/revocation","address":"a***@example.com","reason":"rfc7009","client":"app"`) {
			t.Errorf("no RFC 7009 audit line:\n%s", logs)
		}
		if strings.Contains(logs, tok) {
			t.Error("the token is in the log")
		}
		if !admitted(m.at(t, "alice@example.com", nil)) {
			t.Error("revoking one token refused another")
		}
		// Revoking again, or an unknown token, is 200 too (RFC 7009 §2.2).
		for _, tk := range []string{tok, "garbage"} {
			if a := post(t, revokeURL, url.Values{"token": {tk}}, appCreds); a.Status != 200 {
				t.Errorf("revoke: %s", a)
			}
		}
	})

	t.Run("admin API: address, jti and time", func(t *testing.T) {
		bobAT, bobSess := m.at(t, "bob@example.com", nil), m.session(t, "Bob@example.com", nil)
		carolAT := m.at(t, "carol@example.com", nil)
		if !admitted(bobAT) || !sessionAdmitted(bobSess) {
			t.Fatal("bob refused before the revocation")
		}
		if a := adminRevoke(t, tc.AdminAddr, `{"address":"BOB@example.com"}`); a.Status != 200 {
			t.Fatalf("admin revoke: %s", a)
		}
		if admitted(bobAT) || sessionAdmitted(bobSess) {
			t.Error("bob's token or session still admitted")
		}
		if !admitted(carolAT) {
			t.Error("carol refused by bob's revocation")
		}
		sess := m.session(t, "dave@example.com", nil)
		var claims struct {
			JTI string `json:"jti"`
		}
		mustB64JSON(t, segments(t, sess)[1], &claims)
		if a := adminRevoke(t, tc.AdminAddr, fmt.Sprintf(`{"jti":%q}`, claims.JTI)); a.Status != 200 {
			t.Fatalf("admin revoke jti: %s", a)
		}
		if sessionAdmitted(sess) {
			t.Error("session revoked by jti still admitted")
		}
		cut := time.Now().Add(-time.Hour)
		old := m.at(t, "erin@example.com", func(c map[string]any) { c["iat"] = cut.Add(-time.Minute).Unix() })
		if a := adminRevoke(t, tc.AdminAddr, fmt.Sprintf(`{"before":%q}`, cut.Format(time.RFC3339))); a.Status != 200 {
			t.Fatalf("admin revoke before: %s", a)
		}
		if admitted(old) || introspect(old).Active {
			t.Error("token issued before the cut-off still valid")
		}
		if !admitted(carolAT) {
			t.Error("token issued after the cut-off refused")
		}
	})

	t.Run("bad input to the admin API", func(t *testing.T) {
		for _, body := range []string{``, `[]`, `{"address":1}`, `{"who":"x"}`, `{}`, `{"address":"not an address"}`,
			`{"before":"yesterday"}`, `{"before":"2999-01-01T00:00:00Z"}`, `{"jti":"x","address":"a@example.com"}`,
			`{"address":"a@example.com"}{"address":"b@example.com"}`} {
			if a := adminRevoke(t, tc.AdminAddr, body); a.Status != 400 {
				t.Errorf("%s: %s", body, a)
			}
		}
		a := do(t, newRequest(t, http.MethodGet, "http://"+tc.AdminAddr+"/email-otp/revoke", nil))
		if a.Status != 405 {
			t.Errorf("GET: %s", a)
		}
	})

	t.Run("bad input to revocation and introspection", func(t *testing.T) {
		for _, u := range []string{revokeURL, introspectURL} {
			tok := m.at(t, "alice@example.com", nil)
			for name, c := range map[string]struct {
				form   url.Values
				basic  []string
				ctype  string
				status int
				code   string
			}{
				"no client":      {url.Values{"token": {tok}}, nil, "", 401, "invalid_client"},
				"wrong secret":   {url.Values{"token": {tok}}, []string{"app", "nope"}, "", 401, "invalid_client"},
				"unknown client": {url.Values{"token": {tok}}, []string{"who", "nope"}, "", 401, "invalid_client"},
				"no token":       {url.Values{}, appCreds, "", 400, "invalid_request"},
				"repeated":       {url.Values{"token": {tok, tok}}, appCreds, "", 400, "invalid_request"},
				"basic and body": {url.Values{"token": {tok}, "client_secret": {"app-secret"}}, appCreds, "", 400, "invalid_request"},
				"content type":   {url.Values{"token": {tok}}, appCreds, "application/json", 400, "invalid_request"},
				"too large":      {url.Values{"token": {strings.Repeat("a", maxBodyBytes)}}, appCreds, "", 400, "invalid_request"},
				"body secret":    {url.Values{"token": {tok}, "client_id": {"app"}, "client_secret": {"app-secret"}}, nil, "", 200, ""},
			} {
				req := newRequest(t, http.MethodPost, u, strings.NewReader(c.form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if c.ctype != "" {
					req.Header.Set("Content-Type", c.ctype)
				}
				if c.basic != nil {
					req.SetBasicAuth(c.basic[0], c.basic[1])
				}
				a := do(t, req)
				if a.Status != c.status || a.str("error") != c.code {
					t.Errorf("%s %s: %s", u, name, a)
				}
			}
			a := httpGet(t, u)
			if a.Status != 405 || a.str("error") != "invalid_request" || a.Header.Get("Allow") != "POST" {
				t.Errorf("GET %s: %s", u, a)
			}
		}
		if !admitted(m.at(t, "alice@example.com", nil)) {
			t.Error("a body-authenticated revocation of another token refused this one")
		}
	})
}
