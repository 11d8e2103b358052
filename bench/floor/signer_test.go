package floor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	emailotp "github.com/caddy-email-otp/emailotp"
)

// TestSigner checks the floor signs what the plugin signs: two tokens of
// the right type that verify with the key's public half.
func TestSigner(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	id, at, err := s.Sign("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tok, typ string }{{id, "JWT"}, {at, "at+jwt"}} {
		tok, err := jwt.ParseSigned(c.tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if h := tok.Headers[0]; h.KeyID == "" || h.ExtraHeaders["typ"] != c.typ {
			t.Errorf("header %+v, want a kid and typ %s", h, c.typ)
		}
		var claims jwt.Claims
		if err := tok.Claims(&k.PublicKey, &claims); err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		if claims.Subject != "alice@example.com" {
			t.Errorf("%s: sub %q", c.typ, claims.Subject)
		}
		if c.typ != "JWT" {
			continue
		}
		// The grant-type claim's name is a struct tag: hold it to the
		// plugin's default method and grant type.
		var extra map[string]any
		if err := tok.Claims(&k.PublicKey, &extra); err != nil {
			t.Fatal(err)
		}
		g, _ := extra[emailotp.DefaultMethod+".grant_type"].([]any)
		if len(g) != 1 || g[0] != emailotp.DefaultGrantType {
			t.Errorf("id_token %s.grant_type = %v, want [%s]", emailotp.DefaultMethod, extra[emailotp.DefaultMethod+".grant_type"], emailotp.DefaultGrantType)
		}
	}
	if _, err := NewSigner([]byte("not a key"), "ES256"); err == nil {
		t.Error("a non-PEM key was accepted")
	}
}
