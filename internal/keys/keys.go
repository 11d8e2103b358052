// Package keys is the one home of email_otp's keys: where they live in
// Caddy's storage, the algorithms and their key types, the PEM parser, the
// kid rule (RFC 7638 thumbprint), the rotation ring (ring.go) and the
// verification of a compact JWS that the issuer, the sign-in page and the
// gate share (verify.go). The issuer's live signing view and the gate's key
// cache are in the plugin (signingkeys.go, gatekeys.go) and use only this.
package keys

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
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
)

// Prefix is the storage folder of the keys. Every instance sharing a
// storage shares what is under it.
const Prefix = "email_otp/keys"

// ReferenceKeyName is the secret that seals references, under Prefix.
const ReferenceKeyName = "reference.key"

// generators maps the JWS algorithms email_otp signs with to a key generator.
var generators = map[string]func() (crypto.Signer, error){
	"RS256": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	"ES256": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
	"EdDSA": func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	},
}

// Algs are the JWS algorithms email_otp signs and verifies with, sorted.
var Algs = slices.Sorted(maps.Keys(generators))

// Supported tells whether alg is one of Algs.
func Supported(alg string) bool { _, ok := generators[alg]; return ok }

// Generate makes a new private key for alg.
func Generate(alg string) (crypto.Signer, error) {
	g, ok := generators[alg]
	if !ok {
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	return g()
}

// SigningKeyName is the first key of alg under Prefix.
func SigningKeyName(alg string) string { return "signing-" + strings.ToLower(alg) + ".pem" }

// NewJWK wraps a key (private or public) with its RFC 7638 thumbprint as kid.
func NewJWK(key any, alg string) (*jose.JSONWebKey, error) {
	jwk := &jose.JSONWebKey{Key: key, Algorithm: alg, Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk, nil
}

// AlgOf is the algorithm a public key implies, or an error for key types
// and sizes email_otp does not accept (RSA under 2048 bits, curves other
// than P-256).
func AlgOf(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits: at least 2048 required", p.N.BitLen())
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is supported", p.Curve.Params().Name)
		}
		return "ES256", nil
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// MarshalPrivate encodes a private key as PKCS#8 PEM, as storage keeps it.
func MarshalPrivate(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePEM is the one PEM key parser: the first key block of pemBytes, a
// private key (PKCS#8, PKCS#1 or SEC 1; an EC PARAMETERS block before it,
// as `openssl ecparam -genkey` writes, is skipped) or, with public, also a
// public key (PKIX or PKCS#1). It returns a crypto.Signer for a private key
// and the public key otherwise.
func ParsePEM(pemBytes []byte, public bool) (any, error) {
	block, rest := pem.Decode(pemBytes)
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
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		if !public {
			return nil, fmt.Errorf("PEM block %q is a public key: a private key is needed to sign", block.Type)
		}
		if block.Type == "PUBLIC KEY" {
			return x509.ParsePKIXPublicKey(block.Bytes)
		}
		return x509.ParsePKCS1PublicKey(block.Bytes)
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

// ParseKeyFor parses a PEM private key, checks that it fits alg, and
// returns it with its kid.
func ParseKeyFor(pemBytes []byte, alg string) (*jose.JSONWebKey, error) {
	k, err := ParsePEM(pemBytes, false)
	if err != nil {
		return nil, err
	}
	s := k.(crypto.Signer)
	if err := fits(s, alg); err != nil {
		return nil, err
	}
	return NewJWK(s, alg)
}

// fits checks that a private key is of alg's type (and curve), and an RSA
// key at least 2048 bits.
func fits(key crypto.Signer, alg string) error {
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

// ParseVerificationKey reads a PEM public key or private key (as email_otp's
// signing_key_file) and returns its public JWK with the algorithm its type
// implies and its kid, as email_otp names it.
func ParseVerificationKey(pemBytes []byte) (jose.JSONWebKey, error) {
	k, err := ParsePEM(pemBytes, true)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	if s, ok := k.(crypto.Signer); ok {
		k = s.Public()
	}
	alg, err := AlgOf(k)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	jwk, err := NewJWK(k, alg)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return *jwk, nil
}

// LoadSecret loads or creates a 256-bit random secret under Prefix.
func LoadSecret(ctx context.Context, storage certmagic.Storage, name string) ([]byte, error) {
	return LoadOrCreate(ctx, storage, name, func() ([]byte, error) {
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

// EnsureSigningKey creates the first key of alg in storage unless there is
// one, so instances starting together on one storage end up with one key.
func EnsureSigningKey(ctx context.Context, storage certmagic.Storage, alg string) error {
	_, err := LoadOrCreate(ctx, storage, SigningKeyName(alg), func() ([]byte, error) {
		k, err := Generate(alg)
		if err != nil {
			return nil, err
		}
		return MarshalPrivate(k)
	}, func(b []byte) (any, error) { return ParsePEM(b, false) })
	return err
}

// LoadOrCreate is the lock → load or generate → store → unlock sequence, so
// that instances starting together on one storage end up with one value.
func LoadOrCreate[T any](ctx context.Context, storage certmagic.Storage, name string, generate func() ([]byte, error), parse func([]byte) (T, error)) (T, error) {
	var zero T
	key := path.Join(Prefix, name)
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
