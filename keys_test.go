package emailotp

import (
	"bytes"
	"context"
	"testing"

	"github.com/caddyserver/certmagic"
)

// TestJWKSDeterministic: with keys of several algorithms in storage (the
// algorithm was changed), every instance and every restart publishes the same
// JWKS, byte for byte: the current key first, the others in a fixed order.
func TestJWKSDeterministic(t *testing.T) {
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		if _, err := loadSigningKeys(ctx, st, alg, ""); err != nil {
			t.Fatal(err)
		}
	}
	first, err := loadSigningKeys(ctx, st, "RS256", "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(first.public.Keys); n != 3 {
		t.Fatalf("JWKS has %d keys, want 3", n)
	}
	if first.public.Keys[0].KeyID != first.kid {
		t.Errorf("first JWKS key %q is not the current key %q", first.public.Keys[0].KeyID, first.kid)
	}
	for i := range 20 {
		again, err := loadSigningKeys(ctx, st, "RS256", "")
		if err != nil {
			t.Fatal(err)
		}
		if again.kid != first.kid || !bytes.Equal(again.jwksJSON, first.jwksJSON) {
			t.Fatalf("load %d: JWKS differs:\n%s\n%s", i, first.jwksJSON, again.jwksJSON)
		}
	}
}
