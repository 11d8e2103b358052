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
	"github.com/caddy-email-otp/emailotp/internal/claims"
	"github.com/caddy-email-otp/emailotp/internal/keys"
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
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	s, err := NewSigner(p, "ES256", p, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	want, err := keys.NewJWK(k, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	id, at, err := s.Sign("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tok, typ string }{{id, claims.TypID}, {at, claims.TypAccess}} {
		tok, err := jwt.ParseSigned(c.tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if h := tok.Headers[0]; h.KeyID != want.KeyID || h.ExtraHeaders["typ"] != c.typ {
			t.Errorf("header %+v, want the plugin's kid %s and typ %s", h, want.KeyID, c.typ)
		}
		var std jwt.Claims
		if err := tok.Claims(&k.PublicKey, &std); err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		if std.Subject != "alice@example.com" {
			t.Errorf("%s: sub %q", c.typ, std.Subject)
		}
		if c.typ != claims.TypID {
			continue
		}
		// The grant-type claim's name is a struct tag: hold it to the
		// plugin's rule for the default method.
		var extra map[string]any
		if err := tok.Claims(&k.PublicKey, &extra); err != nil {
			t.Fatal(err)
		}
		name := claims.GrantTypeClaim(emailotp.DefaultMethod)
		g, _ := extra[name].([]any)
		if len(g) != 1 || g[0] != emailotp.DefaultGrantType {
			t.Errorf("id_token %s = %v, want [%s]", name, extra[name], emailotp.DefaultGrantType)
		}
	}
	if _, err := NewSigner([]byte("not a key"), "ES256", p, "ES256"); err == nil {
		t.Error("a non-PEM id_token key was accepted")
	}
	if _, err := NewSigner(p, "ES256", p, "EdDSA"); err == nil {
		t.Error("an access token key that does not fit its algorithm was accepted")
	}
}
