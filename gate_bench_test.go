package emailotp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// BenchmarkGateAuthenticate is the gate's hot path: one request with a valid
// credential through Authenticate, keys already read. It is the figure the
// revocation check must keep at ≥ 0.9× (BENCHMARKS.md):
//
//	go test -run '^$' -bench GateAuthenticate -benchtime 3s -count 5 .
func BenchmarkGateAuthenticate(b *testing.B) {
	dir := b.TempDir()
	m := newMinter(b, dir, "RS256", "http://example.com/uas")
	byAlg := map[string]*minter{"RS256": m}
	for _, alg := range []string{"ES256", "EdDSA"} {
		byAlg[alg] = newMinter(b, dir, alg, "http://example.com/uas")
	}
	g := new(Gate)
	if err := g.provision(context.Background(), &certmagic.FileStorage{Path: dir}, zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Cleanup() })
	for _, c := range []struct {
		name string
		req  func() *http.Request
	}{
		{"bearer", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/app", nil)
			r.Header.Set("Authorization", "Bearer "+m.at(b, "alice@example.com", nil))
			return r
		}},
		{"bearer-ES256", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/app", nil)
			r.Header.Set("Authorization", "Bearer "+byAlg["ES256"].at(b, "alice@example.com", nil))
			return r
		}},
		{"bearer-EdDSA", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/app", nil)
			r.Header.Set("Authorization", "Bearer "+byAlg["EdDSA"].at(b, "alice@example.com", nil))
			return r
		}},
		{"session", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/app", nil)
			r.AddCookie(&http.Cookie{Name: DefaultSessionCookie, Value: m.session(b, "alice@example.com", nil)})
			return r
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := c.req()
			w := httptest.NewRecorder()
			if _, ok, err := g.Authenticate(w, r); !ok || err != nil {
				b.Fatalf("refused: %v", err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b)()
			for b.Loop() {
				if _, ok, _ := g.Authenticate(w, r); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkGateAuthenticateListed is the bearer case with a revocation
// list holding 1000 jtis, 100 addresses and a time cut-off, none of which
// names the token: the map lookups the check costs once anything is listed.
func BenchmarkGateAuthenticateListed(b *testing.B) {
	dir := b.TempDir()
	m := newMinter(b, dir, "RS256", "http://example.com/uas")
	g := new(Gate)
	if err := g.provision(context.Background(), &certmagic.FileStorage{Path: dir}, zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Cleanup() })
	t := now()
	doc := &revocationDoc{JTI: map[string]int64{}, Address: map[string]int64{}, Before: t.Add(-time.Hour).Unix()}
	for i := range 1000 {
		doc.JTI[randomID()] = t.Add(time.Hour).Unix()
		if i%10 == 0 {
			doc.Address[fmt.Sprintf("user%d@example.com", i)] = t.Unix()
		}
	}
	g.revoked.set.Store(newRevokedSet(doc))
	r := httptest.NewRequest(http.MethodGet, "http://example.com/app", nil)
	r.Header.Set("Authorization", "Bearer "+m.at(b, "alice@example.com", nil))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for b.Loop() {
		if _, ok, _ := g.Authenticate(w, r); !ok {
			b.Fatal("refused")
		}
	}
}
