package emailotp

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// TestUbisecurePaths: a client that hard-codes the paths Ubisecure SSO
// documents ("OAuth 2.0 provider implementation reference") finds every
// endpoint there, and discovery names the same ones.
func TestUbisecurePaths(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, ""))
	iss := tc.Base + "/uas"

	var d map[string]any
	if err := json.Unmarshal(httpGet(t, iss+"/oauth2/metadata.json").Body, &d); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"issuer":                 iss,
		"token_endpoint":         iss + "/oauth2/token",
		"jwks_uri":               iss + "/oauth2/metadata.jwks",
		"introspection_endpoint": iss + "/oauth2/introspection",
		"revocation_endpoint":    iss + "/oauth2/revocation",
	} {
		if d[k] != want {
			t.Errorf("%s = %v, want %s", k, d[k], want)
		}
	}

	const sent = "Compat.User@Example.COM"
	ref, code, _ := initiate(t, tc, mp, "Compat.User@example.com", initiateForm(sent), appCreds)
	ok := post(t, iss+"/oauth2/token", validateForm(ref, code), appCreds)
	at := ok.str("access_token")
	if ok.Status != http.StatusOK || at == "" {
		t.Fatalf("validate: %s", ok)
	}
	in := post(t, iss+"/oauth2/introspection", url.Values{"token": {at}}, appCreds)
	if in.Status != http.StatusOK || in.JSON["active"] != true || in.str("sub") != sent || in.str("client_id") != "app" {
		t.Fatalf("introspection: %s", in)
	}
	if r := post(t, iss+"/oauth2/revocation", url.Values{"token": {at}}, appCreds); r.Status != http.StatusOK {
		t.Fatalf("revocation: %s", r)
	}
	if in := post(t, iss+"/oauth2/introspection", url.Values{"token": {at}}, appCreds); string(in.Body) != `{"active":false}` {
		t.Errorf("introspection after revocation: %s", in)
	}
}
