package emailotp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
)

// gateRefreshInterval is the least time between two reads of the storage
// keys, so tokens with made-up kids cannot turn into storage traffic.
// Tests shorten it before starting Caddy.
var gateRefreshInterval = time.Minute

// errKeyStorage wraps a failure to read the signing keys from storage: a
// technical error, which the authentication handler logs.
var errKeyStorage = errors.New("reading signing keys from storage")

// gateKeys are the public keys the gate verifies with, by kid: the key
// file's, and those of the signing keys email_otp keeps in storage, read
// on first use and again when a token names a kid not seen yet.
type gateKeys struct {
	ctx     context.Context // the config's: canceled when it is unloaded
	storage certmagic.Storage
	file    []jose.JSONWebKey

	set    atomic.Pointer[gateKeySet]
	reload sync.Mutex // one storage read at a time; lookups of known kids never wait
}

type gateKeySet struct {
	byKID  map[string]jose.JSONWebKey
	loaded time.Time // zero until storage was read
}

func (s *gateKeySet) fresh() bool {
	return !s.loaded.IsZero() && now().Sub(s.loaded) < gateRefreshInterval
}

func newGateKeys(ctx context.Context, storage certmagic.Storage, file string) (*gateKeys, error) {
	k := &gateKeys{ctx: ctx, storage: storage}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		jwk, err := parseVerificationKey(b)
		if err != nil {
			return nil, fmt.Errorf("key_file %s: %w", file, err)
		}
		k.file = []jose.JSONWebKey{jwk}
	}
	k.set.Store(&gateKeySet{byKID: indexKeys(k.file)})
	return k, nil
}

// lookup returns the key of kid, reading storage again if kid is unknown
// and the last read is older than gateRefreshInterval.
func (k *gateKeys) lookup(kid string) (jose.JSONWebKey, error) {
	var none jose.JSONWebKey
	if kid == "" {
		return none, errUnknownKey
	}
	s := k.set.Load()
	if key, ok := s.byKID[kid]; ok {
		return key, nil
	}
	if s.fresh() {
		return none, errUnknownKey
	}
	k.reload.Lock()
	defer k.reload.Unlock()
	if s = k.set.Load(); s.fresh() { // another request just read storage
		if key, ok := s.byKID[kid]; ok {
			return key, nil
		}
		return none, errUnknownKey
	}
	keys, err := k.load()
	byKID := indexKeys(keys)
	k.set.Store(&gateKeySet{byKID: byKID, loaded: now()})
	if key, ok := byKID[kid]; ok {
		return key, nil
	}
	if err != nil {
		return none, fmt.Errorf("%w: %v", errKeyStorage, err)
	}
	return none, errUnknownKey
}

// load reads the signing key of every algorithm present in storage and
// keeps its public half. A key that cannot be read is reported, the others
// are still returned.
func (k *gateKeys) load() ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	keys := slices.Clone(k.file)
	var errs []error
	for alg := range supportedAlgs {
		name := signingKeyName(alg)
		b, err := k.storage.Load(ctx, path.Join(keysPrefix, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		priv, err := parsePrivateKey(b)
		if err == nil {
			err = keyFitsAlg(priv, alg)
		}
		var jwk *jose.JSONWebKey
		if err == nil {
			jwk, err = newJWK(priv, alg)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		keys = append(keys, jwk.Public())
	}
	return keys, errors.Join(errs...)
}

func indexKeys(keys []jose.JSONWebKey) map[string]jose.JSONWebKey {
	m := make(map[string]jose.JSONWebKey, len(keys))
	for _, k := range keys {
		m[k.KeyID] = k
	}
	return m
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
