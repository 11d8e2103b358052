package emailotp

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/caddy-email-otp/emailotp/internal/claims"
	"github.com/caddy-email-otp/emailotp/internal/keys"
)

// signingKeys holds the handler's signers and the public keys the JWKS
// publishes. The id_token and the sign-in session are signed with a key of
// alg (signing_alg, what OpenID clients expect), the access token with a
// key of atAlg (access_token_alg: read by resource servers and the gate,
// through the JWKS); both come from the same storage ring and rotate
// together. The session stays on alg because the gate verifies it on every
// request of a signed-in browser while it is signed once per sign-in, and an
// RS256 verification costs less than an ES256 one (72 against 115 µs of CPU,
// BENCHMARKS.md). The signers are live: each signs with the current key of its
// algorithm, so they outlast rotations; jwks() and lookup give the current
// keys.
// The JWKS lists the current keys first (the id_token's, then the access
// token's), then the other published keys of those algorithms (replaced
// ones until their tokens have expired, new ones before they sign), then
// the keys of the other algorithms still in storage, so tokens signed
// before an algorithm change keep verifying.
type signingKeys struct {
	alg, atAlg jose.SignatureAlgorithm
	idSigner   jose.Signer // typ JWT, alg
	atSigner   jose.Signer // typ at+jwt (RFC 9068), atAlg

	// sessSigner signs the sign-in page's session cookie (typ session+jwt,
	// alg): its own typ keeps a session from passing as an access token,
	// and the reverse, at the gate.
	sessSigner jose.Signer

	ring *keyRing

	// parallel: both tokens are signed with RSA, so signing them at once
	// on two CPUs can shorten a validation by a signature (see signBoth).
	parallel bool
	signing  atomic.Int32 // validations signing now
}

// signInParallel turns signBoth's concurrency on; a variable so the
// benchmark can measure both ways (BenchmarkMintParallel).
var signInParallel = true

// signBoth runs the two signatures of a validation: at once, on two CPUs,
// only when that shortens the answer. Both must be slow (RSA-2048, 0.9 ms
// here; an ES256 or Ed25519 signature, 0.03 ms, costs little more than
// handing it to another goroutine), and a second CPU must be free of
// other validations' signatures: with as many validations signing as
// there are CPUs, a second goroutine only queues behind them and adds the
// hand-over. So with the default algorithms (RS256 + ES256) the two are
// signed one after the other; BENCHMARKS.md has the measurements.
func (k *signingKeys) signBoth(first, second func() error) error {
	n := k.signing.Add(1)
	defer k.signing.Add(-1)
	if !k.parallel || !signInParallel || 2*int(n) > runtime.GOMAXPROCS(0) {
		if err := first(); err != nil {
			return err
		}
		return second()
	}
	done := make(chan error, 1)
	go func() { done <- second() }()
	err := first()
	if err2 := <-done; err == nil {
		err = err2
	}
	return err
}

// errNotExist is what Caddy's storages return for a missing item; the
// ledger and the revocation list test for it too.
var errNotExist = fs.ErrNotExist

type keyOptions struct {
	alg      string // signing_alg: the id_token's
	atAlg    string // access_token_alg; "": alg
	file     string // signing_key_file, of alg (and atAlg, which must then be alg)
	prevFile string // previous_signing_key_file
	period   time.Duration
	retain   time.Duration
	now      func() time.Time
	logger   *zap.Logger
	follow   bool // re-read storage every keyRefreshInterval until stop
}

// openKeys loads the keys (creating the first of each algorithm in storage
// if there is none) and, with follow, starts the refresh loop.
func openKeys(ctx context.Context, storage certmagic.Storage, o keyOptions) (*signingKeys, error) {
	if o.now == nil {
		o.now = now
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	if o.atAlg == "" {
		o.atAlg = o.alg
	}
	if o.file != "" && o.atAlg != o.alg {
		return nil, fmt.Errorf("access_token_alg %s: a signing_key_file signs both tokens, with signing_alg %s", o.atAlg, o.alg)
	}
	r := &keyRing{own: [2]string{o.alg, o.atAlg}, period: o.period, retain: o.retain, now: o.now, logger: o.logger, storage: storage}
	var fileKeys []keys.RingKey
	if o.file != "" {
		for _, f := range []string{o.prevFile, o.file} {
			if f == "" {
				continue
			}
			option := "signing_key_file"
			if f == o.prevFile {
				option = "previous_signing_key_file"
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", option, f, err)
			}
			jwk, err := keys.ParseKeyFor(b, o.alg)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", option, f, err)
			}
			fileKeys = append(fileKeys, keys.RingKey{JWK: jwk})
		}
		r.period = 0
	} else {
		// The id_token's first key signs at once, as it always did. On a
		// deployment that already has keys (an upgrade that brings
		// access_token_alg), the access token's first key is pre-published
		// like a rotation's: in the JWKS now, signing after keys.Prepublish;
		// until then the access token is signed with the id_token's key.
		existing, err := keys.ReadStored(ctx, storage, o.alg)
		if err != nil {
			return nil, err
		}
		if err := keys.EnsureSigningKey(ctx, storage, o.alg); err != nil {
			return nil, err
		}
		if o.atAlg != o.alg {
			if len(existing) > 0 {
				err = keys.EnsurePrepublished(ctx, storage, o.atAlg, o.now().Add(keys.Prepublish))
			} else {
				err = keys.EnsureSigningKey(ctx, storage, o.atAlg)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	// Provision reads but never rotates: `caddy validate` and a reload that
	// fails provision too and must not change the keys. A due rotation is
	// the refresh loop's, within keyRefreshInterval.
	if err := r.read(ctx, fileKeys, false); err != nil {
		return nil, err
	}
	sk := &signingKeys{
		alg:        jose.SignatureAlgorithm(o.alg),
		atAlg:      jose.SignatureAlgorithm(o.atAlg),
		idSigner:   liveSigner{r, claims.TypID},
		atSigner:   liveSigner{r, claims.TypAccess},
		sessSigner: liveSigner{r, claims.TypSession},
		ring:       r,
		parallel:   o.alg == "RS256" && o.atAlg == "RS256",
	}
	if o.follow && o.file == "" {
		var loopCtx context.Context
		loopCtx, r.cancel = context.WithCancel(ctx)
		r.done = make(chan struct{})
		go r.loop(loopCtx)
	}
	return sk, nil
}

// liveSigner signs with the ring's current key for its typ, so a handler
// keeps one jose.Signer per typ across rotations.
type liveSigner struct {
	ring *keyRing
	typ  string
}

func (s liveSigner) Sign(payload []byte) (*jose.JSONWebSignature, error) {
	return s.ring.current().signers[s.typ].Sign(payload)
}

func (s liveSigner) Options() jose.SignerOptions { return s.ring.current().signers[s.typ].Options() }

// signID and signAT sign a marshalled id_token or access token payload
// into a compact JWS with the current key of its algorithm.
func (k *signingKeys) signID(payload []byte) (string, error) {
	return k.ring.current().compact[claims.TypID].Sign(payload)
}

func (k *signingKeys) signAT(payload []byte) (string, error) {
	return k.ring.current().compact[claims.TypAccess].Sign(payload)
}

// jwks is the JWKS document served now.
func (k *signingKeys) jwks() []byte { return k.ring.current().jwksJSON }

// lookup finds a key published now by kid, for keys.Verify.
func (k *signingKeys) lookup(kid string) (jose.JSONWebKey, error) {
	if found := k.ring.current().public.Key(kid); len(found) > 0 {
		return found[0], nil
	}
	return jose.JSONWebKey{}, errUnknownKey
}

// close stops the refresh loop; nil-safe, for Cleanup after a failed Provision.
func (k *signingKeys) close() {
	if k != nil {
		k.ring.stop()
	}
}

// validateKeys checks key_rotation and previous_signing_key_file.
//
// Rotation is off by default because a new kid breaks verifiers that copied
// the public key instead of fetching the JWKS (README: key rotation); a
// signing_key_file is rotated by its operator through
// previous_signing_key_file.
func (h *Handler) validateKeys() error {
	if h.PreviousSigningKeyFile != "" && h.SigningKeyFile == "" {
		return fmt.Errorf("previous_signing_key_file needs signing_key_file")
	}
	if h.KeyRotation == 0 {
		return nil
	}
	if h.SigningKeyFile != "" {
		return fmt.Errorf("key_rotation: a signing_key_file is rotated by its operator (move it to previous_signing_key_file)")
	}
	least := max(keys.MinRotation, h.longestLifetime())
	if time.Duration(h.KeyRotation) < least {
		return fmt.Errorf("key_rotation %s: at least %s (1h, and the longest token or session lifetime)",
			time.Duration(h.KeyRotation), least)
	}
	return nil
}

// openKeys loads the handler's keys and starts following storage.
func (h *Handler) openKeys(ctx context.Context, storage certmagic.Storage) (*signingKeys, error) {
	return openKeys(ctx, storage, keyOptions{
		alg:      h.SigningAlg,
		atAlg:    h.AccessTokenAlg,
		file:     h.SigningKeyFile,
		prevFile: h.PreviousSigningKeyFile,
		period:   time.Duration(h.KeyRotation),
		retain:   h.longestLifetime() + keys.RetireLeeway,
		logger:   h.logger,
		follow:   true,
	})
}
