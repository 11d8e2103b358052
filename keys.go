package emailotp

import (
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
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
)

var errNotExist = fs.ErrNotExist

// Storage keys. Every instance sharing a storage shares these secrets.
const (
	keysPrefix       = "email_otp/keys"
	referenceKeyName = "reference.key"
)

// supportedAlgs maps the configurable JWS algorithms to a key generator.
var supportedAlgs = map[string]func() (crypto.Signer, error){
	"RS256": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	"ES256": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
	"EdDSA": func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	},
}

// signingKeys holds the signers, made once at provision, and the public keys
// the JWKS publishes: the current one first, then the keys of the other
// algorithms still in storage, so tokens signed before an algorithm change
// keep verifying until they expire.
type signingKeys struct {
	alg      jose.SignatureAlgorithm
	kid      string
	idSigner jose.Signer // typ JWT
	atSigner jose.Signer // typ at+jwt (RFC 9068)
	public   jose.JSONWebKeySet
	jwksJSON []byte

	// sessSigner signs the sign-in page's session cookie (typ session+jwt):
	// its own typ keeps a session from passing as an access token, and the
	// reverse, at the gate.
	sessSigner jose.Signer
}

// loadSigningKeys reads the key from file, or loads or creates it in storage
// under the storage lock, as Caddy's distributed STEK does.
func loadSigningKeys(ctx context.Context, storage certmagic.Storage, alg, file string) (*signingKeys, error) {
	var (
		key crypto.Signer
		err error
	)
	if file != "" {
		pemBytes, rerr := os.ReadFile(file)
		if rerr != nil {
			return nil, rerr
		}
		key, err = parsePrivateKey(pemBytes)
	} else {
		key, err = loadOrCreate(ctx, storage, signingKeyName(alg), func() ([]byte, error) {
			k, err := supportedAlgs[alg]()
			if err != nil {
				return nil, err
			}
			return marshalPrivateKey(k)
		}, parsePrivateKey)
	}
	if err != nil {
		return nil, err
	}
	if err := keyFitsAlg(key, alg); err != nil {
		return nil, err
	}
	sk := &signingKeys{alg: jose.SignatureAlgorithm(alg)}
	cur, err := newJWK(key, alg)
	if err != nil {
		return nil, err
	}
	sk.kid = cur.KeyID
	sk.public.Keys = append(sk.public.Keys, cur.Public())
	// sorted, so every instance and restart publishes the same document
	for _, other := range slices.Sorted(maps.Keys(supportedAlgs)) {
		if other == alg {
			continue
		}
		b, err := storage.Load(ctx, path.Join(keysPrefix, signingKeyName(other)))
		if err != nil {
			continue
		}
		if k, err := parsePrivateKey(b); err == nil {
			if prev, err := newJWK(k, other); err == nil {
				sk.public.Keys = append(sk.public.Keys, prev.Public())
			}
		}
	}
	if sk.jwksJSON, err = json.Marshal(sk.public); err != nil {
		return nil, err
	}
	signingKey := jose.SigningKey{Algorithm: sk.alg, Key: cur}
	if sk.idSigner, err = jose.NewSigner(signingKey, (&jose.SignerOptions{}).WithType("JWT")); err != nil {
		return nil, err
	}
	if sk.atSigner, err = jose.NewSigner(signingKey, (&jose.SignerOptions{}).WithType("at+jwt")); err != nil {
		return nil, err
	}
	if sk.sessSigner, err = jose.NewSigner(signingKey, (&jose.SignerOptions{}).WithType("session+jwt")); err != nil {
		return nil, err
	}
	return sk, nil
}

func signingKeyName(alg string) string { return "signing-" + strings.ToLower(alg) + ".pem" }

// newJWK wraps a private key with its RFC 7638 thumbprint as kid.
func newJWK(key crypto.Signer, alg string) (*jose.JSONWebKey, error) {
	jwk := &jose.JSONWebKey{Key: key, Algorithm: alg, Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk, nil
}

func keyFitsAlg(key crypto.Signer, alg string) error {
	ok := false
	switch k := key.(type) {
	case *rsa.PrivateKey:
		ok = alg == "RS256"
		if ok && k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits: at least 2048 required", k.N.BitLen())
		}
	case *ecdsa.PrivateKey:
		ok = alg == "ES256" && k.Curve == elliptic.P256()
	case ed25519.PrivateKey:
		ok = alg == "EdDSA"
	}
	if !ok {
		return fmt.Errorf("a %T key does not fit signing_alg %s", key, alg)
	}
	return nil
}

func marshalPrivateKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(pemBytes)
	// `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
	for block != nil && block.Type == "EC PARAMETERS" {
		block, rest = pem.Decode(rest)
	}
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key: want PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1) or EC PRIVATE KEY (SEC 1)", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s, nil
}

// loadSecret loads or creates a 256-bit random secret in storage.
func loadSecret(ctx context.Context, storage certmagic.Storage, name string) ([]byte, error) {
	return loadOrCreate(ctx, storage, name, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}, func(b []byte) ([]byte, error) {
		if len(b) != 32 {
			return nil, fmt.Errorf("stored secret %s has %d bytes, want 32", name, len(b))
		}
		return b, nil
	})
}

// loadOrCreate is the lock → load or generate → store → unlock sequence, so
// that instances starting together on one storage end up with one value.
func loadOrCreate[T any](ctx context.Context, storage certmagic.Storage, name string, generate func() ([]byte, error), parse func([]byte) (T, error)) (T, error) {
	var zero T
	key := path.Join(keysPrefix, name)
	lock := "email_otp_" + certmagic.StorageKeys.Safe(name)
	if err := storage.Lock(ctx, lock); err != nil {
		return zero, fmt.Errorf("locking %s: %w", key, err)
	}
	defer func() { _ = storage.Unlock(context.WithoutCancel(ctx), lock) }()
	b, err := storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		if b, err = generate(); err != nil {
			return zero, err
		}
		if err = storage.Store(ctx, key, b); err != nil {
			return zero, fmt.Errorf("storing %s: %w", key, err)
		}
	} else if err != nil {
		return zero, fmt.Errorf("loading %s: %w", key, err)
	}
	v, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", key, err)
	}
	return v, nil
}
