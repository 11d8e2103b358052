// The algorithms a client assertion may be signed with, shared by the
// assertion check and the validation of configured client keys.

package emailotp

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// assertionAlgs are the algorithms an assertion may be signed with; none and
// the HMAC algorithms never are (a public key is no secret).
var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

func assertionAlgAllowed(alg string) bool {
	return slices.Contains(assertionAlgs, jose.SignatureAlgorithm(alg))
}

func assertionAlgNames() []string {
	out := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		out[i] = string(a)
	}
	return out
}

// decoyKeys are public keys no client holds, one per algorithm, generated
// once per process; a verification against them always fails.
var decoyKeys = sync.OnceValue(func() map[string]any {
	m := make(map[string]any, 4)
	if k, err := rsa.GenerateKey(rand.Reader, 2048); err == nil {
		m[string(jose.RS256)], m[string(jose.PS256)] = &k.PublicKey, &k.PublicKey
	}
	if k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err == nil {
		m[string(jose.ES256)] = &k.PublicKey
	}
	if pub, _, err := ed25519.GenerateKey(rand.Reader); err == nil {
		m[string(jose.EdDSA)] = pub
	}
	return m
})

func decoyKey(alg string) any { return decoyKeys()[alg] }
