package keys

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
)

// Signing key rotation.
//
// The first key of an algorithm is Prefix/signing-<alg>.pem, written once
// (EnsureSigningKey). The first rotation writes signing-<alg>.ring.json,
// which from then on is the only record of that algorithm's keys: every key
// still published, with the time it starts signing and, once it has a
// successor, the time it is dropped. One storage item, so a reader never
// sees half a rotation. Without key_rotation nothing new is written and the
// layout is the one older versions read.
//
// A rotation is one instance, under the storage lock, re-reading the ring
// and, if the newest key is still older than the period, appending a key
// that signs from Prepublish later. Every instance reads the ring every
// minute, so all of them publish the new key before any signs with it, and
// all switch at the same moment (the stored sign_from, on their own clocks)
// without talking to each other. The id_token's and the access token's
// algorithms each have their ring and rotate together.
const (
	// Prepublish is how long a new key is in the JWKS before it signs:
	// longer than the refresh interval (every instance has read it) plus
	// the JWKS's max-age of 5 minutes (every verifier caching the document
	// has fetched it again).
	Prepublish = 10 * time.Minute

	// RetireLeeway is how long, beyond the token lifetime, a replaced key
	// stays published: verifiers allow some clock skew past exp (the gate
	// up to its leeway, at most 10m; most libraries a minute or so).
	RetireLeeway = 10 * time.Minute

	// MinRotation is the shortest key_rotation accepted.
	MinRotation = time.Hour
)

// RingName is the rotation ring of alg under Prefix.
func RingName(alg string) string { return "signing-" + strings.ToLower(alg) + ".ring.json" }

// ringFile is the stored ring, oldest key first.
type ringFile struct {
	Keys []ringEntry `json:"keys"`
}

type ringEntry struct {
	PEM      string    `json:"pem"` // PKCS#8
	SignFrom time.Time `json:"sign_from"`
	Expires  time.Time `json:"expires,omitzero"` // zero while it has no successor
}

// RingKey is one parsed key. A zero SignFrom means "since ever" (a key
// file, or a first key whose age storage cannot tell).
type RingKey struct {
	JWK      *jose.JSONWebKey // private, kid set
	SignFrom time.Time
	Expires  time.Time
}

// PublishedAt tells whether the key is in the JWKS at t.
func (k RingKey) PublishedAt(t time.Time) bool { return k.Expires.IsZero() || t.Before(k.Expires) }

// ReadStored returns the keys of alg in storage, oldest first: the ring if
// there is one, else the first key alone, its SignFrom the item's
// modification time when storage knows it. No key at all is (nil, nil).
func ReadStored(ctx context.Context, storage certmagic.Storage, alg string) ([]RingKey, error) {
	b, err := storage.Load(ctx, path.Join(Prefix, RingName(alg)))
	if err == nil {
		return parseRing(b, alg)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", RingName(alg), err)
	}
	name := path.Join(Prefix, SigningKeyName(alg))
	b, err = storage.Load(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SigningKeyName(alg), err)
	}
	jwk, err := ParseKeyFor(b, alg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SigningKeyName(alg), err)
	}
	k := RingKey{JWK: jwk}
	if info, err := storage.Stat(ctx, name); err == nil {
		k.SignFrom = info.Modified
	}
	return []RingKey{k}, nil
}

func parseRing(b []byte, alg string) ([]RingKey, error) {
	var rf ringFile
	if err := json.Unmarshal(b, &rf); err != nil {
		return nil, fmt.Errorf("%s: %w", RingName(alg), err)
	}
	if len(rf.Keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", RingName(alg))
	}
	keys := make([]RingKey, 0, len(rf.Keys))
	for i, e := range rf.Keys {
		jwk, err := ParseKeyFor([]byte(e.PEM), alg)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d: %w", RingName(alg), i, err)
		}
		keys = append(keys, RingKey{JWK: jwk, SignFrom: e.SignFrom, Expires: e.Expires})
	}
	return keys, nil
}

// RotationDue tells whether the newest key has signed for a whole period.
func RotationDue(keys []RingKey, t time.Time, period time.Duration) bool {
	return period > 0 && len(keys) > 0 && !t.Before(keys[len(keys)-1].SignFrom.Add(period))
}

// Rotate adds a key to alg's ring if one is due, under the storage lock and
// deciding on what it reads after taking it, so instances that find the
// key due together make one key. The replaced key stays published for a
// whole period after its successor starts signing (until the next
// rotation), or for retain if that is longer: every email_otp handler on
// this storage signs with the shared key, and this one knows only its own
// lifetimes, so a period at least as long as every handler's tokens and
// sessions (the documented rule) covers theirs too. Expired keys are left
// out of the ring written.
func Rotate(ctx context.Context, storage certmagic.Storage, alg string, t time.Time, period, retain time.Duration) (bool, error) {
	lock := "email_otp_" + certmagic.StorageKeys.Safe(RingName(alg))
	if err := storage.Lock(ctx, lock); err != nil {
		return false, fmt.Errorf("locking %s: %w", RingName(alg), err)
	}
	defer func() { _ = storage.Unlock(context.WithoutCancel(ctx), lock) }()
	keys, err := ReadStored(ctx, storage, alg)
	if err != nil {
		return false, err
	}
	if len(keys) == 0 {
		return false, fmt.Errorf("%s: no key to rotate", SigningKeyName(alg))
	}
	if !RotationDue(keys, t, period) {
		return false, nil // another instance rotated first
	}
	priv, err := Generate(alg)
	if err != nil {
		return false, err
	}
	newPEM, err := MarshalPrivate(priv)
	if err != nil {
		return false, err
	}
	signFrom := t.Add(Prepublish)
	keys[len(keys)-1].Expires = signFrom.Add(max(retain, period))
	var rf ringFile
	for _, k := range keys {
		if !k.PublishedAt(t) {
			continue
		}
		p, err := MarshalPrivate(k.JWK.Key.(crypto.Signer))
		if err != nil {
			return false, err
		}
		rf.Keys = append(rf.Keys, ringEntry{PEM: string(p), SignFrom: k.SignFrom.UTC(), Expires: k.Expires.UTC()})
	}
	rf.Keys = append(rf.Keys, ringEntry{PEM: string(newPEM), SignFrom: signFrom.UTC()})
	b, err := json.Marshal(rf)
	if err != nil {
		return false, err
	}
	if err := storage.Store(ctx, path.Join(Prefix, RingName(alg)), b); err != nil {
		return false, fmt.Errorf("storing %s: %w", RingName(alg), err)
	}
	return true, nil
}

// EnsurePrepublished creates the first key of alg, unless alg has a key,
// as a ring whose one key signs from signFrom: published now, signing only
// once every verifier caching the JWKS has fetched it again. It is how an
// algorithm that starts signing on an existing deployment (an upgrade that
// brings access_token_alg) is introduced, as a rotation would introduce it.
func EnsurePrepublished(ctx context.Context, storage certmagic.Storage, alg string, signFrom time.Time) error {
	lock := "email_otp_" + certmagic.StorageKeys.Safe(RingName(alg))
	if err := storage.Lock(ctx, lock); err != nil {
		return fmt.Errorf("locking %s: %w", RingName(alg), err)
	}
	defer func() { _ = storage.Unlock(context.WithoutCancel(ctx), lock) }()
	ks, err := ReadStored(ctx, storage, alg)
	if err != nil || len(ks) > 0 {
		return err
	}
	priv, err := Generate(alg)
	if err != nil {
		return err
	}
	p, err := MarshalPrivate(priv)
	if err != nil {
		return err
	}
	b, err := json.Marshal(ringFile{Keys: []ringEntry{{PEM: string(p), SignFrom: signFrom.UTC()}}})
	if err != nil {
		return err
	}
	if err := storage.Store(ctx, path.Join(Prefix, RingName(alg)), b); err != nil {
		return fmt.Errorf("storing %s: %w", RingName(alg), err)
	}
	return nil
}
