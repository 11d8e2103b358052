package emailotp

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// Signing key rotation.
//
// The first key of an algorithm is email_otp/keys/signing-<alg>.pem, written
// once (keys.go). The first rotation writes signing-<alg>.ring.json, which
// from then on is the only record of that algorithm's keys: every key still
// published, with the time it starts signing and, once it has a successor,
// the time it is dropped. One storage item, so a reader never sees half a
// rotation. Without key_rotation nothing new is written and the layout is
// the one older versions read.
//
// A rotation is one instance, under the storage lock, re-reading the ring
// and, if the newest key is still older than the period, appending a key
// that signs from keyPrepublish later. Every instance reads the ring every
// keyRefreshInterval, so all of them publish the new key before any signs
// with it, and all switch at the same moment (the stored sign_from, on
// their own clocks) without talking to each other.
const (
	// keyPrepublish is how long a new key is in the JWKS before it signs:
	// longer than keyRefreshInterval (every instance has read it) plus the
	// JWKS's max-age of 5 minutes (every verifier caching the document has
	// fetched it again).
	keyPrepublish = 10 * time.Minute

	// keyRetireLeeway is how long, beyond the token lifetime, a replaced key
	// stays published: verifiers allow some clock skew past exp (the gate
	// up to its leeway, at most 10m; most libraries a minute or so).
	keyRetireLeeway = 10 * time.Minute

	// minKeyRotation is the shortest key_rotation accepted.
	minKeyRotation = time.Hour
)

// keyRefreshInterval is how often each handler re-reads the stored keys and
// rotates when due. Tests shorten it before starting Caddy.
var keyRefreshInterval = time.Minute

func ringName(alg string) string { return "signing-" + strings.ToLower(alg) + ".ring.json" }

// ringFile is the stored ring, oldest key first.
type ringFile struct {
	Keys []ringEntry `json:"keys"`
}

type ringEntry struct {
	PEM      string    `json:"pem"` // PKCS#8
	SignFrom time.Time `json:"sign_from"`
	Expires  time.Time `json:"expires,omitzero"` // zero while it has no successor
}

// ringKey is one parsed key. A zero signFrom means "since ever" (a key file,
// or a first key whose age storage cannot tell).
type ringKey struct {
	jwk      *jose.JSONWebKey // private, kid set
	signFrom time.Time
	expires  time.Time
}

func (k ringKey) publishedAt(t time.Time) bool { return k.expires.IsZero() || t.Before(k.expires) }

// readStoredKeys returns the keys of alg in storage, oldest first: the ring
// if there is one, else the first key alone, its signFrom the item's
// modification time when storage knows it. No key at all is (nil, nil).
func readStoredKeys(ctx context.Context, storage certmagic.Storage, alg string) ([]ringKey, error) {
	b, err := storage.Load(ctx, path.Join(keysPrefix, ringName(alg)))
	if err == nil {
		return parseRing(b, alg)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", ringName(alg), err)
	}
	name := path.Join(keysPrefix, signingKeyName(alg))
	b, err = storage.Load(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", signingKeyName(alg), err)
	}
	jwk, err := parseKeyFor(b, alg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", signingKeyName(alg), err)
	}
	k := ringKey{jwk: jwk}
	if info, err := storage.Stat(ctx, name); err == nil {
		k.signFrom = info.Modified
	}
	return []ringKey{k}, nil
}

func parseRing(b []byte, alg string) ([]ringKey, error) {
	var rf ringFile
	if err := json.Unmarshal(b, &rf); err != nil {
		return nil, fmt.Errorf("%s: %w", ringName(alg), err)
	}
	if len(rf.Keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", ringName(alg))
	}
	keys := make([]ringKey, 0, len(rf.Keys))
	for i, e := range rf.Keys {
		jwk, err := parseKeyFor([]byte(e.PEM), alg)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d: %w", ringName(alg), i, err)
		}
		keys = append(keys, ringKey{jwk: jwk, signFrom: e.SignFrom, expires: e.Expires})
	}
	return keys, nil
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

// rotationDue tells whether the newest key has signed for a whole period.
func rotationDue(keys []ringKey, t time.Time, period time.Duration) bool {
	return period > 0 && len(keys) > 0 && !t.Before(keys[len(keys)-1].signFrom.Add(period))
}

// rotate adds a key to alg's ring if one is due, under the storage lock and
// deciding on what it reads after taking it, so instances that find the
// key due together make one key. The replaced key stays published for a
// whole period after its successor starts signing (until the next
// rotation), or for retain if that is longer: every email_otp handler on
// this storage signs with the shared key, and this one knows only its own
// lifetimes, so a period at least as long as every handler's tokens and
// sessions (the documented rule) covers theirs too. Expired keys are left
// out of the ring written.
func rotate(ctx context.Context, storage certmagic.Storage, alg string, t time.Time, period, retain time.Duration) (bool, error) {
	lock := "email_otp_" + certmagic.StorageKeys.Safe(ringName(alg))
	if err := storage.Lock(ctx, lock); err != nil {
		return false, fmt.Errorf("locking %s: %w", ringName(alg), err)
	}
	defer func() { _ = storage.Unlock(context.WithoutCancel(ctx), lock) }()
	keys, err := readStoredKeys(ctx, storage, alg)
	if err != nil {
		return false, err
	}
	if len(keys) == 0 {
		return false, fmt.Errorf("%s: no key to rotate", signingKeyName(alg))
	}
	if !rotationDue(keys, t, period) {
		return false, nil // another instance rotated first
	}
	priv, err := supportedAlgs[alg]()
	if err != nil {
		return false, err
	}
	newPEM, err := marshalPrivateKey(priv)
	if err != nil {
		return false, err
	}
	signFrom := t.Add(keyPrepublish)
	keys[len(keys)-1].expires = signFrom.Add(max(retain, period))
	var rf ringFile
	for _, k := range keys {
		if !k.publishedAt(t) {
			continue
		}
		p, err := marshalPrivateKey(k.jwk.Key.(crypto.Signer))
		if err != nil {
			return false, err
		}
		rf.Keys = append(rf.Keys, ringEntry{PEM: string(p), SignFrom: k.signFrom.UTC(), Expires: k.expires.UTC()})
	}
	rf.Keys = append(rf.Keys, ringEntry{PEM: string(newPEM), SignFrom: signFrom.UTC()})
	b, err := json.Marshal(rf)
	if err != nil {
		return false, err
	}
	if err := storage.Store(ctx, path.Join(keysPrefix, ringName(alg)), b); err != nil {
		return false, fmt.Errorf("storing %s: %w", ringName(alg), err)
	}
	return true, nil
}

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

// longestLifetime is the longest validity of anything the handler signs:
// its tokens and, with a sign-in page, its session cookies.
func (h *Handler) longestLifetime() time.Duration {
	life := time.Duration(h.TokenLifetime)
	if h.SignIn != nil {
		life = max(life, time.Duration(h.SignIn.withDefaults(h.Clients).SessionLifetime))
	}
	return life
}

// validateKeys checks key_rotation and previous_signing_key_file.
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
	least := max(minKeyRotation, h.longestLifetime())
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
		file:     h.SigningKeyFile,
		prevFile: h.PreviousSigningKeyFile,
		period:   time.Duration(h.KeyRotation),
		retain:   h.longestLifetime() + keyRetireLeeway,
		logger:   h.logger,
		follow:   true,
	})
}
