package keys

import (
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestCompactSigner: the compact JWS is byte for byte what go-jose makes
// with the same key, typ and payload where signatures are deterministic
// (RS256, EdDSA), and verifies with go-jose for every algorithm, with the
// header go-jose would write.
func TestCompactSigner(t *testing.T) {
	payload := []byte(`{"iss":"https://idp.example/uas","sub":"a@example.com","exp":2000000000}`)
	for _, alg := range Algs {
		k, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		jwk, err := NewJWK(k, alg)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := NewCompactSigner(jwk, alg, "at+jwt")
		if err != nil {
			t.Fatal(err)
		}
		got, err := cs.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jwk},
			(&jose.SignerOptions{}).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := js.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		want, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		if alg != "ES256" && got != want {
			t.Errorf("%s: compact signer\n%s\ngo-jose\n%s", alg, got, want)
		}
		parsed, err := jose.ParseSigned(got, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		out, err := parsed.Verify(jwk.Public())
		if err != nil || string(out) != string(payload) {
			t.Errorf("%s: verify: %v %s", alg, err, out)
		}
		if h := parsed.Signatures[0].Protected; h.KeyID != jwk.KeyID || h.Algorithm != alg || h.ExtraHeaders[jose.HeaderType] != "at+jwt" {
			t.Errorf("%s: header %+v", alg, h)
		}
	}
	// A key that does not fit the algorithm is refused.
	k, _ := Generate("EdDSA")
	jwk, _ := NewJWK(k, "EdDSA")
	if _, err := NewCompactSigner(jwk, "ES256", "JWT"); err == nil {
		t.Error("an Ed25519 key was accepted for ES256")
	}
}
