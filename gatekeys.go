package emailotp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"

	"github.com/caddy-email-otp/emailotp/internal/keys"
)

// gateRefreshInterval is the least time between two reads of the storage
// keys, so tokens with made-up kids cannot turn into storage traffic.
// Tests shorten it before starting Caddy.
var gateRefreshInterval = time.Minute

// gateStaleAfter is the age after which a lookup of a known kid reads
// storage again in the background, so the gate learns that a rotated key
// expires even if no token of its successor ever reaches it.
var gateStaleAfter = 10 * time.Minute

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

	set        atomic.Pointer[gateKeySet]
	reload     sync.Mutex // one storage read at a time; lookups of known kids never wait
	refreshing atomic.Bool
}

type gateKeySet struct {
	byKID   map[string]jose.JSONWebKey
	expires map[string]time.Time // kid → when a rotated key stops verifying
	loaded  time.Time            // zero until storage was read
}

// get returns the key of kid unless it has expired.
func (s *gateKeySet) get(kid string) (jose.JSONWebKey, bool) {
	key, ok := s.byKID[kid]
	if exp, rotated := s.expires[kid]; ok && rotated && !now().Before(exp) {
		return jose.JSONWebKey{}, false
	}
	return key, ok
}

func (s *gateKeySet) fresh() bool {
	return !s.loaded.IsZero() && now().Sub(s.loaded) < gateRefreshInterval
}

func newGateKeys(ctx context.Context, storage certmagic.Storage, files ...string) (*gateKeys, error) {
	k := &gateKeys{ctx: ctx, storage: storage}
	for _, file := range files {
		if file == "" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		jwk, err := keys.ParseVerificationKey(b)
		if err != nil {
			return nil, fmt.Errorf("key_file %s: %w", file, err)
		}
		k.file = append(k.file, jwk)
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
	if key, ok := s.get(kid); ok {
		if !s.loaded.IsZero() && now().Sub(s.loaded) >= gateStaleAfter && k.refreshing.CompareAndSwap(false, true) {
			go k.refreshStale()
		}
		return key, nil
	}
	if _, ok := s.byKID[kid]; ok {
		return none, errUnknownKey // rotated out: reading storage again cannot bring it back
	}
	if s.fresh() {
		return none, errUnknownKey
	}
	k.reload.Lock()
	defer k.reload.Unlock()
	if s = k.set.Load(); s.fresh() { // another request just read storage
		if key, ok := s.get(kid); ok {
			return key, nil
		}
		return none, errUnknownKey
	}
	found, expires, err := k.load()
	s = &gateKeySet{byKID: indexKeys(found), expires: expires, loaded: now()}
	k.set.Store(s)
	if key, ok := s.get(kid); ok {
		return key, nil
	}
	if err != nil {
		return none, fmt.Errorf("%w: %v", errKeyStorage, err)
	}
	return none, errUnknownKey
}

// refreshStale reads storage again after a lookup found the set older than
// gateStaleAfter; a failed read keeps the set.
func (k *gateKeys) refreshStale() {
	defer k.refreshing.Store(false)
	k.reload.Lock()
	defer k.reload.Unlock()
	if s := k.set.Load(); now().Sub(s.loaded) < gateStaleAfter {
		return
	}
	found, expires, err := k.load()
	if err != nil {
		return
	}
	k.set.Store(&gateKeySet{byKID: indexKeys(found), expires: expires, loaded: now()})
}

// load reads the signing keys of every algorithm present in storage (the
// ring, or the first key; internal/keys) and keeps their public halves, with
// the expiry of rotated ones. Keys that cannot be read are reported, the
// others are still returned.
func (k *gateKeys) load() ([]jose.JSONWebKey, map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	found := slices.Clone(k.file)
	expires := make(map[string]time.Time)
	var errs []error
	for _, alg := range keys.Algs {
		stored, err := keys.ReadStored(ctx, k.storage, alg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, sk := range stored {
			found = append(found, sk.JWK.Public())
			if !sk.Expires.IsZero() {
				expires[sk.JWK.KeyID] = sk.Expires
			}
		}
	}
	return found, expires, errors.Join(errs...)
}

func indexKeys(list []jose.JSONWebKey) map[string]jose.JSONWebKey {
	m := make(map[string]jose.JSONWebKey, len(list))
	for _, k := range list {
		m[k.KeyID] = k
	}
	return m
}
