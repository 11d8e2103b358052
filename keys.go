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
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path"
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

func parseKeyFor(pemBytes []byte, alg string) (*jose.JSONWebKey, error) {
	k, err := parsePrivateKey(pemBytes)
	if err != nil {
		return nil, err
	}
	if err := keyFitsAlg(k, alg); err != nil {
		return nil, err
	}
	return newJWK(k, alg)
}

// parseVerificationKey reads a PEM public key (PKIX or PKCS#1) or private
// key (as email_otp's signing_key_file) and returns its public JWK, with
// the algorithm its type implies and the RFC 7638 thumbprint as kid, as
// email_otp names it.
func parseVerificationKey(pemBytes []byte) (jose.JSONWebKey, error) {
	var none jose.JSONWebKey
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return none, errors.New("no PEM block found")
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		var priv crypto.Signer
		if priv, err = parsePrivateKey(pemBytes); err == nil {
			pub = priv.Public()
		}
	}
	if err != nil {
		return none, err
	}
	var alg string
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return none, fmt.Errorf("RSA key of %d bits: at least 2048 required", p.N.BitLen())
		}
		alg = "RS256"
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return none, fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is supported", p.Curve.Params().Name)
		}
		alg = "ES256"
	case ed25519.PublicKey:
		alg = "EdDSA"
	default:
		return none, fmt.Errorf("unsupported key type %T", pub)
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return none, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk, nil
}
