package emailotp

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// signingKeys holds the handler's signers and the public keys the JWKS
// publishes. The signers are live: each signs with the current key of the
// ring, so they outlast rotations. kid, public and jwksJSON describe the
// keys as loaded; jwks() and lookup (keyring.go) give the current ones.
// The JWKS lists the current key first, then the other published keys of
// the algorithm (replaced ones until their tokens have expired, a new one
// before it signs), then the keys of the other algorithms still in storage,
// so tokens signed before an algorithm change keep verifying.
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

	ring *keyRing
}

// keyRefreshInterval is how often each handler re-reads the stored keys and
// rotates when due. Tests shorten it before starting Caddy.
var keyRefreshInterval = time.Minute

// keyView is the immutable state of the keys at one moment: what signs and
// what is published, until the next moment a key starts signing or expires.
type keyView struct {
	kid      string
	signers  map[string]jose.Signer // by typ
	public   jose.JSONWebKeySet
	jwksJSON []byte
	until    time.Time // zero: no change ahead
}

// buildView picks the signing key of alg at t: the newest published key
// whose signFrom has come. The JWKS lists it first, then alg's other
// published keys newest first, then the published keys of the other
// algorithms in sorted order, so every instance serves the same bytes.
func buildView(alg string, keys map[string][]ringKey, t time.Time) (*keyView, error) {
	v := &keyView{signers: make(map[string]jose.Signer, 3)}
	own := slices.DeleteFunc(slices.Clone(keys[alg]), func(k ringKey) bool { return !k.publishedAt(t) })
	if len(own) == 0 {
		return nil, fmt.Errorf("no %s signing key published at %s", alg, t.UTC().Format(time.RFC3339))
	}
	cur := 0
	for i, k := range own {
		if !k.signFrom.After(t) {
			cur = i
		}
	}
	v.kid = own[cur].jwk.KeyID
	v.public.Keys = append(v.public.Keys, own[cur].jwk.Public())
	for i := len(own) - 1; i >= 0; i-- {
		if i != cur {
			v.public.Keys = append(v.public.Keys, own[i].jwk.Public())
		}
	}
	for _, other := range slices.Sorted(maps.Keys(keys)) {
		if other == alg {
			continue
		}
		for _, k := range slices.Backward(keys[other]) {
			if k.publishedAt(t) {
				v.public.Keys = append(v.public.Keys, k.jwk.Public())
			}
		}
	}
	for _, ks := range keys {
		for _, k := range ks {
			for _, at := range []time.Time{k.signFrom, k.expires} {
				if at.After(t) && (v.until.IsZero() || at.Before(v.until)) {
					v.until = at
				}
			}
		}
	}
	var err error
	if v.jwksJSON, err = json.Marshal(v.public); err != nil {
		return nil, err
	}
	signingKey := jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: own[cur].jwk}
	for _, typ := range []string{"JWT", "at+jwt", "session+jwt"} {
		s, err := jose.NewSigner(signingKey, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			return nil, err
		}
		v.signers[typ] = s
	}
	return v, nil
}

// keyRing is the live set of signing keys of a handler: a view swapped
// atomically, rebuilt when the clock passes its until and when a refresh
// reads storage. Requests only load the view.
type keyRing struct {
	alg     string
	storage certmagic.Storage // nil: keys from files only
	period  time.Duration     // 0: this instance never rotates
	retain  time.Duration
	now     func() time.Time
	logger  *zap.Logger

	mu   sync.Mutex           // one refresh or rebuild at a time
	keys map[string][]ringKey // by alg; guarded by mu
	view atomic.Pointer[keyView]

	cancel context.CancelFunc
	done   chan struct{}
}

// keyOptions configure openKeys.
type keyOptions struct {
	alg      string
	file     string // signing_key_file
	prevFile string // previous_signing_key_file
	period   time.Duration
	retain   time.Duration
	now      func() time.Time
	logger   *zap.Logger
	follow   bool // re-read storage every keyRefreshInterval until stop
}

// openKeys loads the keys (creating the first in storage if there is none,
// and rotating if due) and, with follow, starts the refresh loop.
func openKeys(ctx context.Context, storage certmagic.Storage, o keyOptions) (*signingKeys, error) {
	if o.now == nil {
		o.now = now
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	r := &keyRing{alg: o.alg, period: o.period, retain: o.retain, now: o.now, logger: o.logger, storage: storage}
	var fileKeys []ringKey
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
			jwk, err := parseKeyFor(b, o.alg)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", option, f, err)
			}
			fileKeys = append(fileKeys, ringKey{jwk: jwk})
		}
		r.period = 0
	} else if _, err := loadOrCreate(ctx, storage, signingKeyName(o.alg), func() ([]byte, error) {
		k, err := supportedAlgs[o.alg]()
		if err != nil {
			return nil, err
		}
		return marshalPrivateKey(k)
	}, parsePrivateKey); err != nil {
		return nil, err
	}
	// Provision reads but never rotates: `caddy validate` and a reload that
	// fails provision too and must not change the keys. A due rotation is
	// the refresh loop's, within keyRefreshInterval.
	if err := r.read(ctx, fileKeys, false); err != nil {
		return nil, err
	}
	v := r.view.Load()
	sk := &signingKeys{
		alg:        jose.SignatureAlgorithm(o.alg),
		kid:        v.kid,
		public:     v.public,
		jwksJSON:   v.jwksJSON,
		idSigner:   liveSigner{r, "JWT"},
		atSigner:   liveSigner{r, "at+jwt"},
		sessSigner: liveSigner{r, "session+jwt"},
		ring:       r,
	}
	if o.follow && o.file == "" {
		var loopCtx context.Context
		loopCtx, r.cancel = context.WithCancel(ctx)
		r.done = make(chan struct{})
		go r.loop(loopCtx)
	}
	return sk, nil
}

// refresh reads every algorithm's keys from storage, rotates alg's first
// if due, and rebuilds the view. fileKeys, when given, are alg's keys.
func (r *keyRing) refresh(ctx context.Context, fileKeys []ringKey) error {
	return r.read(ctx, fileKeys, true)
}

// read is refresh, rotating only when asked. A failure to read alg's keys
// is returned and the view kept; another algorithm that cannot be read
// keeps the keys last read for it.
func (r *keyRing) read(ctx context.Context, fileKeys []ringKey, mayRotate bool) error {
	t := r.now()
	keys := make(map[string][]ringKey, len(supportedAlgs))
	failed := map[string]error{}
	for alg := range supportedAlgs {
		if alg == r.alg && fileKeys != nil {
			keys[alg] = fileKeys
			continue
		}
		if r.storage == nil {
			continue
		}
		ks, err := readStoredKeys(ctx, r.storage, alg)
		if err == nil && alg == r.alg && mayRotate && rotationDue(ks, t, r.period) {
			var rotated bool
			if rotated, err = rotate(ctx, r.storage, alg, t, r.period, r.retain); err == nil {
				if rotated {
					r.logger.Info("signing key rotated", zap.String("alg", alg),
						zap.Time("signs_from", t.Add(keyPrepublish)))
				}
				ks, err = readStoredKeys(ctx, r.storage, alg)
			}
		}
		if err != nil {
			if alg == r.alg {
				return err
			}
			failed[alg] = err
			continue
		}
		if len(ks) > 0 {
			keys[alg] = ks
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for alg, err := range failed {
		if old, ok := r.keys[alg]; ok {
			keys[alg] = old
		}
		r.logger.Warn("reading signing keys of another algorithm", zap.String("alg", alg), zap.Error(err))
	}
	v, err := buildView(r.alg, keys, t)
	if err != nil {
		return err
	}
	r.keys = keys
	r.view.Store(v)
	return nil
}

// current returns the view at the ring's clock, rebuilt from the keys
// already read when a key has started signing or expired since.
func (r *keyRing) current() *keyView {
	v := r.view.Load()
	t := r.now()
	if v.until.IsZero() || t.Before(v.until) {
		return v
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v = r.view.Load(); v.until.IsZero() || t.Before(v.until) {
		return v
	}
	nv, err := buildView(r.alg, r.keys, t)
	if err != nil {
		// every key of alg has expired: only when storage has been
		// unreadable for longer than a token lifetime. Keep signing, and
		// try again in a minute rather than on every request (one log
		// line a minute, not one a request).
		r.logger.Error("signing keys", zap.Error(err))
		retry := *v
		retry.until = t.Add(keyRefreshInterval)
		r.view.Store(&retry)
		return &retry
	}
	r.view.Store(nv)
	return nv
}

// loop refreshes every keyRefreshInterval until ctx ends (Cleanup, or the
// config being unloaded).
func (r *keyRing) loop(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(keyRefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := r.refresh(rctx, nil)
			cancel()
			if err != nil && ctx.Err() == nil {
				r.logger.Warn("reading signing keys from storage", zap.Error(err))
			}
		}
	}
}

// stop ends the refresh loop and waits for it.
func (r *keyRing) stop() {
	if r == nil || r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

// liveSigner signs with the ring's current key, so a handler keeps one
// jose.Signer per typ across rotations.
type liveSigner struct {
	ring *keyRing
	typ  string
}

func (s liveSigner) Sign(payload []byte) (*jose.JSONWebSignature, error) {
	return s.ring.current().signers[s.typ].Sign(payload)
}

func (s liveSigner) Options() jose.SignerOptions { return s.ring.current().signers[s.typ].Options() }

// jwks is the JWKS document served now.
func (k *signingKeys) jwks() []byte { return k.ring.current().jwksJSON }

// lookup finds a key published now by kid, for parseVerified.
func (k *signingKeys) lookup(kid string) (jose.JSONWebKey, error) {
	if keys := k.ring.current().public.Key(kid); len(keys) > 0 {
		return keys[0], nil
	}
	return jose.JSONWebKey{}, errUnknownKey
}

// close stops the refresh loop; nil-safe, for Cleanup after a failed Provision.
func (k *signingKeys) close() {
	if k != nil {
		k.ring.stop()
	}
}
