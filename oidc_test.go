package emailotp

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestIndependentVerification checks our tokens with libraries we did not
// write: golang.org/x/oauth2 performs the validate call (its clientcredentials
// package lets EndpointParams override grant_type), and coreos/go-oidc checks
// the id_token through our discovery document and JWKS.
func TestIndependentVerification(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			mp := startMailpit(t)
			tc := startCaddy(t, otpSite(mp.SMTPPort, "signing_alg "+alg))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			f := initiateForm("oidc@example.com")
			f.Set("nonce", "n-0S6_WzA2Mj")
			ref, code, _ := initiate(t, tc, mp, "oidc@example.com", f, appCreds)

			cc := clientcredentials.Config{
				ClientID:     "app",
				ClientSecret: "app-secret",
				TokenURL:     tc.Base + tokenPath,
				Scopes:       []string{"openid", "email"},
				AuthStyle:    oauth2.AuthStyleInHeader,
				EndpointParams: url.Values{
					"grant_type":                    {grantURI},
					"x_globalsign_iam_reference_id": {ref},
					"x_globalsign_iam_otp_code":     {code},
				},
			}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("oauth2 validate call: %v", err)
			}
			if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.Expiry.Before(time.Now().Add(50*time.Minute)) {
				t.Errorf("token = %+v", tok)
			}
			rawID, _ := tok.Extra("id_token").(string)
			if rawID == "" {
				t.Fatal("no id_token")
			}

			provider, err := oidc.NewProvider(ctx, tc.Base+"/uas")
			if err != nil {
				t.Fatalf("discovery: %v", err)
			}
			verifier := provider.Verifier(&oidc.Config{ClientID: "app", SupportedSigningAlgs: []string{alg}})
			idt, err := verifier.Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("id_token rejected by go-oidc: %v", err)
			}
			var claims struct {
				Email         string   `json:"email"`
				EmailVerified bool     `json:"email_verified"`
				AMR           []string `json:"amr"`
				AZP           string   `json:"azp"`
				AuthTime      int64    `json:"auth_time"`
				SessionIndex  string   `json:"session_index"`
				GrantType     []string `json:"smtp.1.grant_type"`
				Role          string   `json:"role"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if idt.Subject != "oidc@example.com" || claims.Email != "oidc@example.com" || !claims.EmailVerified {
				t.Errorf("subject/email: %q %+v", idt.Subject, claims)
			}
			if idt.Issuer != tc.Base+"/uas" || idt.Nonce != "n-0S6_WzA2Mj" || claims.AZP != "app" {
				t.Errorf("iss/nonce/azp: %q %q %q", idt.Issuer, idt.Nonce, claims.AZP)
			}
			if len(claims.AMR) != 1 || claims.AMR[0] != tc.Base+"/uas/saml2/names/ac/smtp.1" {
				t.Errorf("amr = %v", claims.AMR)
			}
			if len(claims.GrantType) != 1 || claims.GrantType[0] != grantURI || claims.SessionIndex == "" || claims.AuthTime == 0 {
				t.Errorf("grant claims: %+v", claims)
			}
			if tok.Extra("scope") != "openid email" {
				t.Errorf("scope = %v", tok.Extra("scope"))
			}

			// The same JWKS verifies the access token, whose header says at+jwt.
			keys := oidc.NewRemoteKeySet(ctx, tc.Base+"/uas/oauth2/metadata.jwks")
			payload, err := keys.VerifySignature(ctx, tok.AccessToken)
			if err != nil {
				t.Fatalf("access token signature: %v", err)
			}
			if !strings.Contains(string(payload), `"client_id":"app"`) || !strings.Contains(string(payload), `"jti":`) {
				t.Errorf("access token claims: %s", payload)
			}

			// Another audience is refused by the independent verifier.
			other := provider.Verifier(&oidc.Config{ClientID: "someone-else", SupportedSigningAlgs: []string{alg}})
			if _, err := other.Verify(ctx, rawID); err == nil {
				t.Error("id_token accepted for another audience")
			}
		})
	}
}
