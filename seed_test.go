package emailotp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// The seed article's example answers (../shared/seed), as golden shapes:
// which keys an answer has, and each value's JSON type. The values are ours.
var (
	seedInitiateShape = map[string]string{"x_globalsign_iam_challenge": "object"}
	seedChallengeKeys = []string{"reference"}
	seedErrorShape    = map[string]string{"x_globalsign_iam_challenge": "object", "error": "string", "error_description": "string"}
	seedSuccessShape  = map[string]string{"access_token": "string", "scope": "string", "id_token": "string", "token_type": "string", "expires_in": "number"}
	// The example id_token's claims; the plugin adds email, email_verified
	// and nonce (OpenID Connect) beside them.
	seedIDTokenShape = map[string]string{"sub": "string", "iss": "string", "aud": "array", "exp": "number", "iat": "number",
		"auth_time": "number", "amr": "array", "azp": "string", "session_index": "string", "smtp.1.grant_type": "array"}
	sessionIndexFormat = regexp.MustCompile(`^_[0-9a-f]{40}$`)
)

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case nil:
		return "null"
	}
	return "?"
}

// checkShape fails unless obj has exactly the keys of shape, each of its type.
func checkShape(t *testing.T, what string, obj map[string]any, shape map[string]string) {
	t.Helper()
	var got, want []string
	for k, v := range obj {
		got = append(got, k+":"+jsonType(v))
	}
	for k, v := range shape {
		want = append(want, k+":"+v)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: keys and types\n got %v\nwant %v", what, got, want)
	}
}

// checkChallenge checks an answer carries exactly {"reference": "<non-empty>"}
// under x_globalsign_iam_challenge.
func checkChallenge(t *testing.T, what string, a answer) string {
	t.Helper()
	ch, _ := a.JSON["x_globalsign_iam_challenge"].(map[string]any)
	if len(ch) != len(seedChallengeKeys) || a.reference() == "" {
		t.Errorf("%s: x_globalsign_iam_challenge = %v, want {reference: <string>}", what, a.JSON["x_globalsign_iam_challenge"])
	}
	return a.reference()
}

// jwtPayload decodes a JWS's claims without verifying (verification is
// go-oidc's, below).
func jwtPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	seg := strings.Split(tok, ".")
	if len(seg) != 3 {
		t.Fatalf("not a JWS: %d segments", len(seg))
	}
	b, err := base64.RawURLEncoding.DecodeString(seg[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSeedAnswers walks the article's flow and holds each answer to the
// article's example: the first answer, an error about a code, the success
// answer and the id_token's claims, with aud an array, sub the username as
// sent, and one session_index in both tokens.
func TestSeedAnswers(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, ""))
	tokenURL := tc.Base + tokenPath

	// The username as a client sends it, not in our normal form: the id_token's
	// sub must be this exactly, email the normalized address.
	const username = "Seed.User@Example.COM"
	const normalized = "Seed.User@example.com"

	first := post(t, tokenURL, initiateForm(username), appCreds)
	if first.Status != http.StatusOK {
		t.Fatalf("initiate: %s", first)
	}
	checkShape(t, "initiate answer", first.JSON, seedInitiateShape)
	ref := checkChallenge(t, "initiate answer", first)
	msg := mp.WaitFor(t, normalized, 10*time.Second)
	code := codeFrom(t, msg.Text, DefaultCodeLength)

	wrong := "00000000"
	if code == wrong {
		wrong = "11111111"
	}
	bad := post(t, tokenURL, validateForm(ref, wrong), appCreds)
	if bad.Status != http.StatusBadRequest || bad.str("error") != "invalid_grant" || bad.str("error_description") != "OTP Invalid" {
		t.Fatalf("wrong code: %s", bad)
	}
	checkShape(t, "wrong-code answer", bad.JSON, seedErrorShape)
	ref = checkChallenge(t, "wrong-code answer", bad)

	ok := post(t, tokenURL, validateForm(ref, code), appCreds)
	if ok.Status != http.StatusOK {
		t.Fatalf("validate: %s", ok)
	}
	checkShape(t, "success answer", ok.JSON, seedSuccessShape)
	if ok.str("token_type") != "Bearer" || ok.JSON["expires_in"] != float64(3600) || ok.str("scope") != "openid" {
		t.Errorf("success answer values: %s", ok)
	}

	id := jwtPayload(t, ok.str("id_token"))
	shape := map[string]string{"email": "string", "email_verified": "boolean"}
	for k, v := range seedIDTokenShape {
		shape[k] = v
	}
	checkShape(t, "id_token claims", id, shape)
	if aud, _ := id["aud"].([]any); len(aud) != 1 || aud[0] != "app" {
		t.Errorf("aud = %v, want [\"app\"]", id["aud"])
	}
	if id["sub"] != username {
		t.Errorf("sub = %v, want the username as sent, %q", id["sub"], username)
	}
	if id["email"] != normalized {
		t.Errorf("email = %v, want the normalized address %q", id["email"], normalized)
	}
	si, _ := id["session_index"].(string)
	if !sessionIndexFormat.MatchString(si) {
		t.Errorf("session_index = %q, want _ and 40 hex digits", si)
	}
	at := jwtPayload(t, ok.str("access_token"))
	if at["session_index"] != si {
		t.Errorf("access token session_index = %v, id_token's %q", at["session_index"], si)
	}

	// A client following the article verifies the id_token and compares it
	// with its request: go-oidc through discovery, aud and sub as sent.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, tc.Base+"/uas")
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(ctx, ok.str("id_token"))
	if err != nil {
		t.Fatalf("go-oidc: %v", err)
	}
	if idt.Subject != username || len(idt.Audience) != 1 || idt.Audience[0] != "app" {
		t.Errorf("go-oidc sees sub %q aud %v", idt.Subject, idt.Audience)
	}
}

// TestSeedErrorsCarryChallenge: every invalid_grant answer about a code
// carries x_globalsign_iam_challenge, as the article's "OTP Expired" example
// does. Where no retry can succeed (expired, attempts used up) the
// reference given answers the same error again and never yields tokens,
// even with the right code.
func TestSeedErrorsCarryChallenge(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, "otp_timeout 1s\n\t\tmax_attempts 2"))
	tokenURL := tc.Base + tokenPath

	t.Run("expired", func(t *testing.T) {
		ref, code, _ := initiate(t, tc, mp, "expired@example.com", nil, appCreds)
		time.Sleep(2100 * time.Millisecond)
		for i := range 3 {
			a := post(t, tokenURL, validateForm(ref, code), appCreds)
			if a.Status != http.StatusBadRequest || a.str("error") != "invalid_grant" || a.str("error_description") != "OTP Expired" {
				t.Fatalf("expired code, try %d: %s", i+1, a)
			}
			checkShape(t, "expired answer", a.JSON, seedErrorShape)
			ref = checkChallenge(t, "expired answer", a)
		}
	})

	t.Run("attempts used up", func(t *testing.T) {
		tc.load(t, otpSite(mp.SMTPPort, "max_attempts 2"))
		ref, code, _ := initiate(t, tc, mp, "exhausted@example.com", nil, appCreds)
		wrong := "00000000"
		if code == wrong {
			wrong = "11111111"
		}
		a := post(t, tokenURL, validateForm(ref, wrong), appCreds)
		ref = checkChallenge(t, "first wrong code", a)
		a = post(t, tokenURL, validateForm(ref, wrong), appCreds)
		if a.Status != http.StatusBadRequest || a.str("error") != "invalid_grant" || a.str("error_description") != "OTP Invalid" {
			t.Fatalf("last attempt: %s", a)
		}
		checkShape(t, "last attempt answer", a.JSON, seedErrorShape)
		ref = checkChallenge(t, "last attempt answer", a)
		for i := range 2 { // the right code, on the dead end: the same error
			a = post(t, tokenURL, validateForm(ref, code), appCreds)
			if a.Status != http.StatusBadRequest || a.str("error") != "invalid_grant" || a.str("error_description") != "OTP Invalid" || a.str("access_token") != "" {
				t.Fatalf("right code after the attempts were used up, try %d: %s", i+1, a)
			}
			checkShape(t, "dead-end answer", a.JSON, seedErrorShape)
			ref = checkChallenge(t, "dead-end answer", a)
		}
	})
}

// TestSeedMetadataJSON: Ubisecure documents <issuer>/oauth2/metadata.json
// as a copy of the discovery document; it is the same document here.
func TestSeedMetadataJSON(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, ""))
	wk := httpGet(t, tc.Base+"/uas/.well-known/openid-configuration")
	md := httpGet(t, tc.Base+"/uas/oauth2/metadata.json")
	if wk.Status != 200 || md.Status != 200 || string(wk.Body) != string(md.Body) {
		t.Fatalf("metadata.json %d differs from the discovery document %d:\n%s\n%s", md.Status, wk.Status, md.Body, wk.Body)
	}
	if !strings.HasPrefix(md.Header.Get("Content-Type"), "application/json") {
		t.Errorf("Content-Type = %q", md.Header.Get("Content-Type"))
	}
}
