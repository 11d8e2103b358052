package emailotp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// BenchmarkSessionRequest is what a gated request with a session cookie
// costs with sliding sessions and a revocation list: the email_otp
// handler's renewal check (slide) followed by the gate, over TLS (the
// __Host- cookie), against a list of 1000 jtis and 100 addresses. "fresh"
// is the common case (no renewal due: slide only decodes the payload),
// "due" a request that renews the cookie (a second verification and a
// signature); BenchmarkGateAuthenticate/session is the figure before.
//
//	go test -run '^$' -bench 'SessionRequest|GateAuthenticate' -benchtime 1s -count 6 .
func BenchmarkSessionRequest(b *testing.B) {
	dir := b.TempDir()
	storage := &certmagic.FileStorage{Path: dir}
	keys, err := loadSigningKeys(context.Background(), storage, "RS256", "")
	if err != nil {
		b.Fatal(err)
	}
	g := &Gate{Issuer: "https://example.com/uas"}
	if err := g.provision(context.Background(), storage, zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Cleanup() })
	t := now()
	doc := &revocationDoc{JTI: map[string]int64{}, Address: map[string]int64{}, Before: t.Add(-time.Hour).Unix()}
	for i := range 1000 {
		doc.JTI[randomID()] = t.Add(time.Hour).Unix()
		if i%10 == 0 {
			doc.Address["user"+randomID()[:6]+"@example.com"] = t.Unix()
		}
	}
	g.revoked.set.Store(newRevokedSet(doc))
	cfg := SignInConfig{SessionConfig: SessionConfig{IdleTimeout: caddy.Duration(time.Hour)}}.withDefaults(nil)
	si := &signIn{cfg: &cfg, keys: keys, logger: zap.NewNop(), revoked: g.revoked,
		issuer: func(*http.Request) string { return "https://example.com/uas" }}

	for _, c := range []struct {
		name string
		iat  time.Time
	}{
		{"fresh", t},
		{"due", t.Add(-40 * time.Minute)},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "https://example.com/app", nil)
			tok, err := si.signSession(r, session{addr: "alice@example.com", jti: randomID(), iat: c.iat, exp: c.iat.Add(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			r.AddCookie(&http.Cookie{Name: "__Host-" + DefaultSessionCookie, Value: tok})
			w := httptest.NewRecorder()
			si.slide(w, r)
			if renewed := len(w.Header().Values("Set-Cookie")) > 0; renewed != (c.name == "due") {
				b.Fatalf("renewed=%v", renewed)
			}
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b)()
			for b.Loop() {
				clear(w.Header())
				si.slide(w, r)
				if _, ok, _ := g.Authenticate(w, r); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
