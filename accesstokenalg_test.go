package emailotp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-email-otp/emailotp/internal/keys"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
)

// TestAccessTokenAlgOption: access_token_alg has the same name in the
// Caddyfile and JSON, defaults to ES256 (to signing_alg with a
// signing_key_file, which then signs both tokens), and refuses what it
// cannot sign with.
func TestAccessTokenAlgOption(t *testing.T) {
	parse := func(t *testing.T, opts string) *Handler {
		t.Helper()
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("email_otp {\n" + opts + "\n" + minimalSMTP + "\n}")); err != nil {
			t.Fatal(err)
		}
		h.fillDefaults()
		return &h
	}
	if h := parse(t, "access_token_alg EdDSA"); h.AccessTokenAlg != "EdDSA" || h.SigningAlg != "RS256" || h.checkConfig() != nil {
		t.Errorf("access_token_alg EdDSA: %s / %s, %v", h.SigningAlg, h.AccessTokenAlg, h.checkConfig())
	}
	if h := parse(t, ""); h.AccessTokenAlg != "ES256" || h.SigningAlg != "RS256" {
		t.Errorf("defaults: signing_alg %s, access_token_alg %s; want RS256, ES256", h.SigningAlg, h.AccessTokenAlg)
	}
	if h := parse(t, "signing_alg EdDSA\nsigning_key_file /k.pem"); h.AccessTokenAlg != "EdDSA" || h.checkConfig() != nil {
		t.Errorf("with a key file: access_token_alg %s (%v), want signing_alg's", h.AccessTokenAlg, h.checkConfig())
	}
	for opts, want := range map[string]string{
		"access_token_alg HS256":                          `access_token_alg "HS256": want RS256, ES256 or EdDSA`,
		"access_token_alg none":                           `access_token_alg "none"`,
		"access_token_alg ES256\nsigning_key_file /k.pem": "a signing_key_file signs both tokens",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("email_otp {\n" + opts + "\n" + minimalSMTP + "\n}"))
		if err == nil {
			h.fillDefaults()
			err = h.checkConfig()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", opts, err, want)
		}
	}
	b, err := caddyfileToJSON(t, "access_token_alg EdDSA")
	if err != nil || !strings.Contains(b, `"access_token_alg":"EdDSA"`) {
		t.Errorf("JSON of access_token_alg: %s %v", b, err)
	}
}

// caddyfileToJSON is the handler's JSON after a Caddyfile with opts.
func caddyfileToJSON(t *testing.T, opts string) (string, error) {
	t.Helper()
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("email_otp {\n" + opts + "\n" + minimalSMTP + "\n}")); err != nil {
		return "", err
	}
	b, err := json.Marshal(h)
	return string(b), err
}

// TestAccessTokenAlgOtherProcess: a gate in another Caddy process sharing
// the storage, started before the issuer created its keys, admits the
// issuer's ES256 access tokens (it reads the new key from storage when it
// meets its kid) and still refuses the id_token as a bearer token; the
// issuer's introspection finds the access token active.
func TestAccessTokenAlgOtherProcess(t *testing.T) {
	const iss = "https://idp.example/uas"
	gate := startCaddyProc(t, `
	handle /who/* {
		email_otp_gate {
			issuer `+iss+`
		}
		respond "user={http.auth.user.id}" 200
	}`)
	mp := startMailpit(t)
	issuer := startCaddyProc(t, otpSite(mp.SMTPPort, "\t\tissuer "+iss), procOpts{Storage: gate.Storage})

	ref, code := initiateAt(t, issuer.Base, mp, "far@example.com")
	a := post(t, issuer.Base+tokenPath, validateForm(ref, code), appCreds)
	at, id := a.str("access_token"), a.str("id_token")
	if a.Status != http.StatusOK || at == "" {
		t.Fatalf("validate: %s", a)
	}
	if algOf(t, at) != "ES256" || algOf(t, id) != "RS256" {
		t.Fatalf("access token %s, id_token %s: want ES256 and RS256", algOf(t, at), algOf(t, id))
	}
	bearer := func(tok string) answer {
		t.Helper()
		req := newRequest(t, http.MethodGet, gate.Base+"/who/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return do(t, req)
	}
	if r := bearer(at); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "user=far@example.com") {
		t.Errorf("the other process's gate: %d %s", r.Status, r.Body)
	}
	if r := bearer(id); r.Status != http.StatusUnauthorized {
		t.Errorf("the other process's gate admits the id_token as a bearer token: %d", r.Status)
	}
	if in := post(t, issuer.Base+"/uas"+introspectSuffix, url.Values{"token": {at}}, appCreds); in.JSON["active"] != true {
		t.Errorf("introspection of the ES256 access token: %s", in)
	}
}

// TestAccessTokenZitadel: zitadel/oidc's access-token verifier, with its
// default algorithms (RS256, ES256, PS256: no EdDSA unless configured, one
// reason ES256 is the default), verifies the default access token through
// the JWKS, as a resource server built on it would.
func TestAccessTokenZitadel(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, ""))
	ref, code, _ := initiate(t, tc, mp, "zrs@example.com", nil, appCreds)
	a := post(t, tc.Base+tokenPath, validateForm(ref, code), appCreds)
	at := a.str("access_token")
	if a.Status != http.StatusOK || at == "" {
		t.Fatalf("validate: %s", a)
	}
	ctx := context.Background()
	keySet := rp.NewRemoteKeySet(http.DefaultClient, tc.Base+"/uas"+jwksSuffix)
	var claims zoidc.AccessTokenClaims
	payload, err := zoidc.ParseToken(at, &claims)
	if err != nil {
		t.Fatal(err)
	}
	// What op.VerifyAccessToken does, with its default algorithms (nil).
	if err := zoidc.CheckSignature(ctx, at, payload, &claims, nil, keySet); err != nil {
		t.Fatalf("zitadel refuses the access token: %v", err)
	}
	if err := zoidc.CheckIssuer(&claims, tc.Base+"/uas"); err != nil {
		t.Error(err)
	}
	if claims.Subject != "zrs@example.com" || claims.GetSignatureAlgorithm() != "ES256" {
		t.Errorf("zitadel read sub %q alg %s", claims.Subject, claims.GetSignatureAlgorithm())
	}
	// A token signed by another deployment's key is refused: the check can fail.
	other := newMinter(t, t.TempDir(), "ES256", tc.Base+"/uas")
	forged := other.at(t, "zrs@example.com", nil)
	var fc zoidc.AccessTokenClaims
	fp, err := zoidc.ParseToken(forged, &fc)
	if err != nil {
		t.Fatal(err)
	}
	if err := zoidc.CheckSignature(ctx, forged, fp, &fc, nil, keySet); err == nil {
		t.Error("zitadel accepts an access token of another deployment's key")
	}
}

// TestAccessTokenAlgUpgrade: on storage that already holds the id_token's
// key (an upgrade), the access token's new key is pre-published like a
// rotation's: in the JWKS at once, signing only after keys.Prepublish, the
// id_token's key signing the access token until then. On new storage it
// signs at once.
func TestAccessTokenAlgUpgrade(t *testing.T) {
	ctx := context.Background()
	// A minute ahead: a first key file's modification time, which storage
	// reports as when it started signing, is then in the clock's past.
	clk := newRotClock(time.Now().Add(time.Minute))
	st := &certmagic.FileStorage{Path: t.TempDir()}
	old, err := openKeys(ctx, st, keyOptions{alg: "RS256", now: clk.Now}) // the version before
	if err != nil {
		t.Fatal(err)
	}
	sk, err := openKeys(ctx, st, keyOptions{alg: "RS256", atAlg: "ES256", now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	kids := jwksKIDs(t, sk.jwks())
	if len(kids) != 2 || kids[0] != old.loaded().kid {
		t.Fatalf("JWKS %v: want the RS256 key %s, then the new ES256 key", kids, old.loaded().kid)
	}
	atHeader := func() map[string]any {
		t.Helper()
		tok, err := sk.signAT([]byte(`{"sub":"a@example.com"}`))
		if err != nil {
			t.Fatal(err)
		}
		return jwtHeader(t, tok)
	}
	if h := atHeader(); h["kid"] != old.loaded().kid || h["alg"] != "RS256" {
		t.Errorf("access token during pre-publication: %v, want the RS256 key", h)
	}
	clk.Advance(keys.Prepublish)
	if h := atHeader(); h["kid"] != kids[1] || h["alg"] != "ES256" {
		t.Errorf("access token after pre-publication: %v, want the ES256 key %s", h, kids[1])
	}

	fresh, err := openKeys(ctx, &certmagic.FileStorage{Path: t.TempDir()}, keyOptions{alg: "RS256", atAlg: "ES256", now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := fresh.signAT([]byte(`{"sub":"a@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := jwtHeader(t, tok); h["alg"] != "ES256" || h["kid"] != fresh.loaded().atKid || fresh.loaded().atKid == fresh.loaded().kid {
		t.Errorf("new storage: access token %v, want its own ES256 key at once", h)
	}
}
