package emailotp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
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
	if n := len(first.loaded().public.Keys); n != 3 {
		t.Fatalf("JWKS has %d keys, want 3", n)
	}
	if first.loaded().public.Keys[0].KeyID != first.loaded().kid {
		t.Errorf("first JWKS key %q is not the current key %q", first.loaded().public.Keys[0].KeyID, first.loaded().kid)
	}
	for i := range 20 {
		again, err := loadSigningKeys(ctx, st, "RS256", "")
		if err != nil {
			t.Fatal(err)
		}
		if again.loaded().kid != first.loaded().kid || !bytes.Equal(again.loaded().jwksJSON, first.loaded().jwksJSON) {
			t.Fatalf("load %d: JWKS differs:\n%s\n%s", i, first.loaded().jwksJSON, again.loaded().jwksJSON)
		}
	}
}

// keyPEM is a private key written the way a user's tool writes it.
type keyPEM struct {
	name string
	alg  string
	key  crypto.Signer
	pem  []byte
}

// keyFiles returns one PEM per format signing_key_file accepts: PKCS#8 for
// each algorithm, PKCS#1 for RSA, SEC 1 for P-256 both bare and as `openssl
// ecparam -genkey` writes it (an EC PARAMETERS block before the key).
func keyFiles(t testing.TB) []keyPEM {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	sec1PEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	// the DER of OID prime256v1, as openssl writes it in EC PARAMETERS
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	return []keyPEM{
		{"RSA PKCS#8", "RS256", rsaKey, pkcs8(rsaKey)},
		{"RSA PKCS#1", "RS256", rsaKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
		{"P-256 PKCS#8", "ES256", ecKey, pkcs8(ecKey)},
		{"P-256 SEC 1", "ES256", ecKey, sec1PEM},
		{"P-256 SEC 1 after EC PARAMETERS", "ES256", ecKey, append(params, sec1PEM...)},
		{"Ed25519 PKCS#8", "EdDSA", edKey, pkcs8(edKey)},
	}
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// thumbprint is the RFC 7638 kid of a public key.
func thumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// TestKeyFileFormats: each PEM format is loaded, the key signs, and the JWKS
// publishes exactly its public part under its thumbprint, nothing private.
func TestKeyFileFormats(t *testing.T) {
	ctx := context.Background()
	for _, k := range keyFiles(t) {
		t.Run(k.name, func(t *testing.T) {
			st := &certmagic.FileStorage{Path: t.TempDir()}
			sk, err := loadSigningKeys(ctx, st, k.alg, writeTemp(t, "key.pem", k.pem))
			if err != nil {
				t.Fatalf("loading %s: %v", k.name, err)
			}
			want := thumbprint(t, k.key.Public())
			if sk.loaded().kid != want {
				t.Errorf("kid %q, want the file key's thumbprint %q", sk.loaded().kid, want)
			}
			if len(sk.loaded().public.Keys) != 1 || sk.loaded().public.Keys[0].KeyID != want || !sk.loaded().public.Keys[0].IsPublic() {
				t.Fatalf("JWKS %s, want the file key alone", sk.loaded().jwksJSON)
			}
			if !bytes.Contains(sk.loaded().jwksJSON, []byte(`"alg":"`+k.alg+`"`)) || bytes.Contains(sk.loaded().jwksJSON, []byte(`"d":`)) {
				t.Errorf("JWKS %s: want alg %s and no private part", sk.loaded().jwksJSON, k.alg)
			}
			jws, err := sk.idSigner.Sign([]byte(`{"sub":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(k.key.Public()); err != nil {
				t.Errorf("a signature of the loaded key does not verify with the file's public key: %v", err)
			}
		})
	}
}

// TestKeyFileWrongAlg: a key that does not fit signing_alg is refused, and
// the error says which algorithm it does not fit.
func TestKeyFileWrongAlg(t *testing.T) {
	ctx := context.Background()
	files := keyFiles(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, alg string
		pem       []byte
		want      string
	}{
		{"RSA for ES256", "ES256", files[0].pem, "does not fit signing_alg ES256"},
		{"RSA for EdDSA", "EdDSA", files[1].pem, "does not fit signing_alg EdDSA"},
		{"P-256 for RS256", "RS256", files[3].pem, "does not fit signing_alg RS256"},
		{"Ed25519 for ES256", "ES256", files[5].pem, "does not fit signing_alg ES256"},
		{"P-384 for ES256", "ES256", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}), "does not fit signing_alg ES256"},
		{"RSA 1024", "RS256", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsa1024)}), "RSA key of 1024 bits: at least 2048 required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &certmagic.FileStorage{Path: t.TempDir()}
			_, err := loadSigningKeys(ctx, st, c.alg, writeTemp(t, "key.pem", c.pem))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestKeyFileProvision: through a real config load, an unusable key file
// fails provisioning with an error naming signing_key_file, the file and
// the problem.
func TestKeyFileProvision(t *testing.T) {
	files := keyFiles(t)
	cert := func() []byte {
		_, caPEM, _, _ := testCert(t)
		return caPEM
	}()
	for _, c := range []struct {
		name, alg string
		body      []byte // nil: the file does not exist
		want      string
	}{
		{"missing", "RS256", nil, "no such file or directory"},
		{"garbage", "RS256", []byte("not a key\n"), "no PEM block found"},
		{"a certificate", "RS256", cert, `PEM block "CERTIFICATE" is not a private key`},
		{"wrong type", "ES256", files[0].pem, "does not fit signing_alg ES256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "signing.pem")
			if c.body != nil {
				file = writeTemp(t, "signing.pem", c.body)
			}
			err := provisionErr(t, provisionSite("", "", "signing_alg "+c.alg+"\n\t\tsigning_key_file "+file))
			if err == nil {
				t.Fatal("config loaded")
			}
			if want := "signing_key_file " + file + ": "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want %q and %q", err, want, c.want)
			}
		})
	}
}

// TestKeyFileEndToEnd: with signing_key_file, the tokens a real grant
// returns carry the file key's kid, and the JWKS the server publishes holds
// that key's public part, which verifies both tokens.
func TestKeyFileEndToEnd(t *testing.T) {
	mp := startMailpit(t)
	for _, k := range keyFiles(t) {
		if k.name != "RSA PKCS#1" && k.name != "P-256 SEC 1" && k.name != "Ed25519 PKCS#8" {
			continue
		}
		t.Run(k.name, func(t *testing.T) {
			file := writeTemp(t, "signing.pem", k.pem)
			tc := startCaddy(t, otpSite(mp.SMTPPort, "signing_alg "+k.alg+"\n\t\tsigning_key_file "+file))
			addr := "keyfile-" + k.alg + "@example.com"
			ref, code, _ := initiate(t, tc, mp, addr, nil, appCreds)
			tok := post(t, tc.Base+tokenPath, validateForm(ref, code), appCreds)
			if tok.Status != 200 {
				t.Fatalf("validate: %s", tok)
			}

			j := httpGet(t, tc.Base+"/uas/oauth2/metadata.jwks")
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(j.Body, &set); err != nil {
				t.Fatalf("JWKS %s: %v", j.Body, err)
			}
			kid := thumbprint(t, k.key.Public())
			published := set.Key(kid)
			if len(published) != 1 || !published[0].IsPublic() {
				t.Fatalf("JWKS %s does not publish the file key (kid %s)", j.Body, kid)
			}
			if got := thumbprint(t, published[0].Key); got != kid {
				t.Fatalf("published key under kid %s has thumbprint %s", kid, got)
			}
			for _, name := range []string{"id_token", "access_token"} {
				jws, err := jose.ParseSigned(tok.str(name), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(k.alg)})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if h := jws.Signatures[0].Header; h.KeyID != kid {
					t.Errorf("%s kid %q, want %q", name, h.KeyID, kid)
				}
				if _, err := jws.Verify(published[0].Key); err != nil {
					t.Errorf("%s does not verify with the published key: %v", name, err)
				}
				if _, err := jws.Verify(k.key.Public()); err != nil {
					t.Errorf("%s was not signed by the file's key: %v", name, err)
				}
			}
		})
	}
}

// loadSigningKeys reads the key from file, or loads or creates it in storage,
// with no rotation and no refresh: the keys as a test needs them.
func loadSigningKeys(ctx context.Context, storage certmagic.Storage, alg, file string) (*signingKeys, error) {
	return openKeys(ctx, storage, keyOptions{alg: alg, file: file})
}
