package emailotp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
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

// TestChallengeThroughOAuth2: golang.org/x/oauth2, a client nobody here
// wrote, sees every error about a code as an invalid_grant whose body
// carries the next reference: after a wrong code one that yields tokens,
// after expiry a dead end that answers "OTP Expired" again.
func TestChallengeThroughOAuth2(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, "\t\totp_timeout 2s"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exchange := func(ref, code string) (*oauth2.Token, error) {
		cc := clientcredentials.Config{ClientID: "app", ClientSecret: "app-secret", TokenURL: tc.Base + tokenPath,
			Scopes: []string{"openid"}, AuthStyle: oauth2.AuthStyleInHeader,
			EndpointParams: url.Values{"grant_type": {grantURI}, paramReference: {ref}, paramCode: {code}}}
		return cc.Token(ctx)
	}
	// next reads the reference from an error as the article's client does.
	next := func(err error, desc string) string {
		t.Helper()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.ErrorDescription != desc {
			t.Fatalf("want invalid_grant %q, got %v", desc, err)
		}
		var body struct {
			Challenge struct {
				Reference string `json:"reference"`
			} `json:"x_globalsign_iam_challenge"`
		}
		if err := json.Unmarshal(re.Body, &body); err != nil || body.Challenge.Reference == "" {
			t.Fatalf("no challenge in %s: %v", re.Body, err)
		}
		return body.Challenge.Reference
	}

	ref, code, _ := initiate(t, tc, mp, "retry@example.com", nil, appCreds)
	_, err := exchange(ref, wrong(code))
	if tok, err := exchange(next(err, descOTPInvalid), code); err != nil || tok.AccessToken == "" {
		t.Fatalf("the next reference with the right code: %v", err)
	}

	ref, code, _ = initiate(t, tc, mp, "late@example.com", nil, appCreds)
	time.Sleep(2100 * time.Millisecond)
	_, err = exchange(ref, code)
	_, err = exchange(next(err, descOTPExpired), code)
	next(err, descOTPExpired)
}
