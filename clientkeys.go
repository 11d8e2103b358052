package emailotp

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Bounds of a client's jwks_uri. Tests shorten the intervals before
// starting Caddy.
var (
	// jwksRefresh is the age after which the fetched keys are fetched again
	// before use, so a key the client withdrew stops verifying.
	jwksRefresh = 15 * time.Minute
	// jwksRefetch is the least time between two fetches, so assertions
	// naming made-up kids cannot turn into traffic to the client.
	jwksRefetch = time.Minute
	// jwksTimeout bounds one fetch.
	jwksTimeout = 5 * time.Second
)

const (
	jwksMaxBytes = 64 << 10 // largest JWKS document read
	jwksMaxKeys  = 32       // most keys kept per client
)

// errJWKSUnavailable means a client's jwks_uri could not be fetched and no
// earlier copy exists: the server cannot decide, so the grant answers 503.
var errJWKSUnavailable = errors.New("client jwks_uri unavailable")

// clientKeys are the public keys a private_key_jwt client signs its
// assertions with: from a file, fixed at provision, or from its jwks_uri.
type clientKeys struct {
	static []jose.JSONWebKey
	remote *remoteJWKS
}

// checkJWKSURI allows https, and http only to a loopback host or when the
// operator asked for it: the keys decide who the client is.
func checkJWKSURI(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("jwks_uri %q: want an absolute URL without credentials or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP || isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("jwks_uri %q: http only to a loopback host or with jwks_uri_allow_http", raw)
	}
	return fmt.Errorf("jwks_uri %q: scheme must be https", raw)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// candidates returns the keys that may have signed an assertion with this
// kid and alg. A jwks_uri is fetched when its copy is older than
// jwksRefresh, or when no key fits and the last fetch is older than
// jwksRefetch (the client rotated its keys).
func (k *clientKeys) candidates(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	if k.remote == nil {
		return matchKeys(k.static, kid, alg), nil
	}
	return k.remote.candidates(ctx, kid, alg)
}

// matchKeys keeps the keys of this kid (a key without kid matches any) whose
// type and declared algorithm fit alg. Without a kid every fitting key is
// tried.
func matchKeys(keys []jose.JSONWebKey, kid, alg string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if kid != "" && k.KeyID != "" && k.KeyID != kid {
			continue
		}
		if keyFits(k, alg) {
			out = append(out, k)
		}
	}
	return out
}

// keyFits reports whether an asymmetric public key can verify alg.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch p := k.Key.(type) {
	case *rsa.PublicKey:
		return alg == string(jose.RS256) || alg == string(jose.PS256)
	case *ecdsa.PublicKey:
		return alg == string(jose.ES256) && p.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA)
	}
	return false
}

// parseClientJWKS reads a JWK Set and keeps the public signing keys this
// server verifies (RSA of at least 2048 bits, P-256, Ed25519); private
// members are dropped. skipped names the keys left out and why; a set
// without any usable key is an error.
func parseClientJWKS(b []byte) (keys []jose.JSONWebKey, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	for i, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if why := unusableKey(k); why != "" {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %s", i, k.KeyID, why))
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
		}
		if len(keys) == jwksMaxKeys {
			skipped = append(skipped, fmt.Sprintf("more than %d keys", jwksMaxKeys))
			break
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("no usable signing key (RSA ≥ 2048 bits, P-256 or Ed25519) in the set")
	}
	return keys, skipped, nil
}

func unusableKey(k jose.JSONWebKey) string {
	if k.Use != "" && k.Use != "sig" {
		return "use is not sig"
	}
	switch p := k.Key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		var n int
		if pub, ok := p.(*rsa.PublicKey); ok {
			n = pub.N.BitLen()
		} else {
			n = p.(*rsa.PrivateKey).N.BitLen()
		}
		if n < 2048 {
			return fmt.Sprintf("RSA key of %d bits, at least 2048 required", n)
		}
	case *ecdsa.PublicKey, *ecdsa.PrivateKey:
		var curve elliptic.Curve
		if pub, ok := p.(*ecdsa.PublicKey); ok {
			curve = pub.Curve
		} else {
			curve = p.(*ecdsa.PrivateKey).Curve
		}
		if curve != elliptic.P256() {
			return "only P-256 (ES256) is supported"
		}
	case ed25519.PublicKey, ed25519.PrivateKey:
	default:
		return fmt.Sprintf("unsupported key type %T (symmetric keys never verify private_key_jwt)", k.Key)
	}
	if a := k.Algorithm; a != "" && !assertionAlgAllowed(a) {
		return fmt.Sprintf("alg %q is not one of %s", a, strings.Join(assertionAlgNames(), ", "))
	}
	return ""
}

// remoteJWKS is the cached copy of a client's jwks_uri.
type remoteJWKS struct {
	uri    string
	client *http.Client
	set    atomic.Pointer[remoteSet]

	mu      sync.Mutex // one fetch at a time; lookups of known kids never wait
	tried   time.Time  // last fetch attempt, under mu
	lastErr error      // of that attempt, under mu
}

type remoteSet struct {
	keys    []jose.JSONWebKey
	fetched time.Time
}

func newRemoteJWKS(uri string) *remoteJWKS {
	return &remoteJWKS{uri: uri, client: &http.Client{
		// A redirect could leave https or the client's host: refused.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (r *remoteJWKS) candidates(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	if s := r.set.Load(); s != nil && now().Sub(s.fetched) < jwksRefresh {
		if m := matchKeys(s.keys, kid, alg); len(m) > 0 {
			return m, nil
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.set.Load()
	if s != nil && now().Sub(s.fetched) < jwksRefresh {
		if m := matchKeys(s.keys, kid, alg); len(m) > 0 {
			return m, nil // another request just fetched
		}
	}
	if !r.tried.IsZero() && now().Sub(r.tried) < jwksRefetch {
		if s == nil {
			return nil, fmt.Errorf("%w: %v", errJWKSUnavailable, r.lastErr)
		}
		return matchKeys(s.keys, kid, alg), nil
	}
	r.tried = now()
	keys, err := r.fetch(ctx)
	r.lastErr = err
	if err != nil {
		if s == nil {
			return nil, fmt.Errorf("%w: %v", errJWKSUnavailable, err)
		}
		// Keep the last good copy: the client's server being down must
		// not lock the client out.
		return matchKeys(s.keys, kid, alg), err
	}
	r.set.Store(&remoteSet{keys: keys, fetched: now()})
	return matchKeys(keys, kid, alg), nil
}

// fetch reads the JWKS once, bounded in time and size, and ignores the
// request's cancellation so one impatient caller does not fail the others.
func (r *remoteJWKS) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks_uri answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > jwksMaxBytes {
		return nil, fmt.Errorf("jwks_uri document larger than %d bytes", jwksMaxBytes)
	}
	keys, _, err := parseClientJWKS(b)
	return keys, err
}
