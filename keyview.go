package emailotp

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/caddy-email-otp/emailotp/internal/claims"
	"github.com/caddy-email-otp/emailotp/internal/keys"
)

// keyRefreshInterval is how often each handler re-reads the stored keys and
// rotates when due. Tests shorten it before starting Caddy.
var keyRefreshInterval = time.Minute

// keyView is the immutable state of the keys at one moment: what signs and
// what is published, until the next moment a key starts signing or expires.
type keyView struct {
	kid, atKid string
	signers    map[string]jose.Signer         // by typ
	compact    map[string]*keys.CompactSigner // the tokens' signers, by typ
	public     jose.JSONWebKeySet
	jwksJSON   []byte
	until      time.Time // zero: no change ahead
}

// buildView picks the signing key of each own algorithm at t (own[0] the
// id_token's, own[1] the access token's, maybe the same): the newest
// published key whose signFrom has come. The JWKS lists those first, then
// the own algorithms' other published keys newest first, then the
// published keys of the other algorithms in sorted order, so every
// instance serves the same bytes.
func buildView(own [2]string, stored map[string][]keys.RingKey, t time.Time) (*keyView, error) {
	v := &keyView{signers: make(map[string]jose.Signer, 3), compact: make(map[string]*keys.CompactSigner, 2)}
	algs := distinct(own)
	cur := make(map[string]*jose.JSONWebKey, len(algs))
	var rest []jose.JSONWebKey
	atAlg := own[1] // the algorithm the access token is signed with at t
	for i, alg := range algs {
		pub := slices.DeleteFunc(slices.Clone(stored[alg]), func(k keys.RingKey) bool { return !k.PublishedAt(t) })
		if len(pub) == 0 {
			return nil, fmt.Errorf("no %s signing key published at %s", alg, t.UTC().Format(time.RFC3339))
		}
		c := 0
		for i, k := range pub {
			if !k.SignFrom.After(t) {
				c = i
			}
		}
		if i == 1 && pub[c].SignFrom.After(t) {
			// The access token's first key is still pre-published
			// (keys.EnsurePrepublished): the id_token's key signs it.
			atAlg = own[0]
		}
		cur[alg] = pub[c].JWK
		v.public.Keys = append(v.public.Keys, pub[c].JWK.Public())
		for i := len(pub) - 1; i >= 0; i-- {
			if i != c {
				rest = append(rest, pub[i].JWK.Public())
			}
		}
	}
	v.public.Keys = append(v.public.Keys, rest...)
	for _, other := range slices.Sorted(maps.Keys(stored)) {
		if slices.Contains(algs, other) {
			continue
		}
		for _, k := range slices.Backward(stored[other]) {
			if k.PublishedAt(t) {
				v.public.Keys = append(v.public.Keys, k.JWK.Public())
			}
		}
	}
	for _, ks := range stored {
		for _, k := range ks {
			for _, at := range []time.Time{k.SignFrom, k.Expires} {
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
	v.kid, v.atKid = cur[own[0]].KeyID, cur[atAlg].KeyID
	for _, s := range []struct{ typ, alg string }{
		{claims.TypID, own[0]}, {claims.TypAccess, atAlg}, {claims.TypSession, own[0]},
	} {
		key := jose.SigningKey{Algorithm: jose.SignatureAlgorithm(s.alg), Key: cur[s.alg]}
		signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType(jose.ContentType(s.typ)))
		if err != nil {
			return nil, err
		}
		v.signers[s.typ] = signer
		if s.typ != claims.TypSession {
			if v.compact[s.typ], err = keys.NewCompactSigner(cur[s.alg], s.alg, s.typ); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// distinct is the own algorithms once each, the id_token's first.
func distinct(own [2]string) []string {
	if own[0] == own[1] {
		return own[:1]
	}
	return own[:]
}

// keyRing is the live set of signing keys of a handler: a view swapped
// atomically, rebuilt when the clock passes its until and when a refresh
// reads storage. Requests only load the view.
type keyRing struct {
	own     [2]string         // the id_token's and the access token's algorithms
	storage certmagic.Storage // nil: keys from files only
	period  time.Duration     // 0: this instance never rotates
	retain  time.Duration
	now     func() time.Time
	logger  *zap.Logger

	mu     sync.Mutex                // one refresh or rebuild at a time
	stored map[string][]keys.RingKey // by alg; guarded by mu
	view   atomic.Pointer[keyView]

	cancel context.CancelFunc
	done   chan struct{}
}

// keyOptions configure openKeys.

// refresh reads every algorithm's keys from storage, rotates the own
// algorithms' first if due, and rebuilds the view. fileKeys, when given,
// are the keys of own[0] (then the only own algorithm).
func (r *keyRing) refresh(ctx context.Context, fileKeys []keys.RingKey) error {
	return r.read(ctx, fileKeys, true)
}

// read is refresh, rotating only when asked. A failure to read an own
// algorithm's keys is returned and the view kept; another algorithm that
// cannot be read keeps the keys last read for it.
func (r *keyRing) read(ctx context.Context, fileKeys []keys.RingKey, mayRotate bool) error {
	t := r.now()
	stored := make(map[string][]keys.RingKey, len(keys.Algs))
	failed := map[string]error{}
	for _, alg := range keys.Algs {
		own := slices.Contains(r.own[:], alg)
		if own && fileKeys != nil {
			stored[alg] = fileKeys
			continue
		}
		if r.storage == nil {
			continue
		}
		ks, err := keys.ReadStored(ctx, r.storage, alg)
		if err == nil && own && mayRotate && keys.RotationDue(ks, t, r.period) {
			var rotated bool
			if rotated, err = keys.Rotate(ctx, r.storage, alg, t, r.period, r.retain); err == nil {
				if rotated {
					r.logger.Info("signing key rotated", zap.String("alg", alg),
						zap.Time("signs_from", t.Add(keys.Prepublish)))
				}
				ks, err = keys.ReadStored(ctx, r.storage, alg)
			}
		}
		if err != nil {
			if own {
				return err
			}
			failed[alg] = err
			continue
		}
		if len(ks) > 0 {
			stored[alg] = ks
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for alg, err := range failed {
		if old, ok := r.stored[alg]; ok {
			stored[alg] = old
		}
		r.logger.Warn("reading signing keys of another algorithm", zap.String("alg", alg), zap.Error(err))
	}
	v, err := buildView(r.own, stored, t)
	if err != nil {
		return err
	}
	r.stored = stored
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
	nv, err := buildView(r.own, r.stored, t)
	if err != nil {
		// every key of an own algorithm has expired: only when storage has
		// been unreadable for longer than a token lifetime. Keep signing,
		// and try again in a minute rather than on every request (one log
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
