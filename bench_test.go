package emailotp

// Micro-benchmarks of the pieces of the grant and of its two handler steps.
//
//	go test -run '^$' -bench . -benchmem .
//
// The handler benchmarks call ServeHTTP on a Handler built by benchHandler
// (fixture_test.go), provisioned as Caddy does but outside it. Not included:
// Caddy's HTTP server, routing and connection handling, which bench/load
// measures over loopback.

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ns/op metric: the CPU time the process used per
// operation, every goroutine included (GC, and the fake SMTP server where
// there is one). On a shared machine it moves much less than ns/op, which
// also counts the time other processes held the CPUs.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if d := cpuTime() - start; d > 0 && b.N > 0 {
			b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// noNext fails the benchmark if the handler passes a request on.
func noNext(tb testing.TB) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		tb.Error("request passed to the next handler")
		return nil
	})
}

func newBenchChallenge(tb testing.TB, h *Handler, code string) *challenge {
	tb.Helper()
	ch := h.core.refs.newChallenge("bench", "alice@example.com", "", code, time.Now(), 10*time.Minute)
	ch.Binding = bindingOf(h.issuer(benchRequest(h, nil)), h.core.tokenPath) // as the handler sends it
	return ch
}

func BenchmarkNewCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if c := newCode(DefaultCodeLength); len(c) != DefaultCodeLength {
			b.Fatalf("code %d digits", len(c))
		}
	}
}

func BenchmarkReferenceSeal(b *testing.B) {
	h := benchHandler(b, "EdDSA", benchSMTP{})
	ch := newBenchChallenge(b, h, "12345678")
	b.ReportAllocs()
	for b.Loop() {
		if ref := h.core.refs.seal(ch); ref == "" {
			b.Fatal("empty reference")
		}
	}
}

func BenchmarkReferenceOpen(b *testing.B) {
	h := benchHandler(b, "EdDSA", benchSMTP{})
	ref := h.core.refs.seal(newBenchChallenge(b, h, "12345678"))
	b.ReportAllocs()
	for b.Loop() {
		ch, err := h.core.refs.open(ref)
		if err != nil || ch.ClientID != "bench" {
			b.Fatalf("open: %v", err)
		}
	}
}

func BenchmarkCheckCode(b *testing.B) {
	h := benchHandler(b, "EdDSA", benchSMTP{})
	ch := newBenchChallenge(b, h, "12345678")
	b.ReportAllocs()
	for b.Loop() {
		if !h.core.refs.checkCode(ch, "12345678") {
			b.Fatal("right code refused")
		}
	}
}

func BenchmarkLedgerConsume(b *testing.B) {
	l := newMemoryLedger(time.Minute)
	defer l.Destruct()
	exp := time.Now().Add(10 * time.Minute)
	var id [16]byte
	b.ReportAllocs()
	for b.Loop() {
		_, _ = rand.Read(id[:])
		ch := challenge{ID: id}
		if first, _ := l.consume(context.Background(), ch.ledgerKey(), exp); !first {
			b.Fatal("fresh key refused")
		}
	}
}

// benchAlgs are the signing_alg+access_token_alg pairs measured: the
// default (RS256+ES256), the access token's alternatives, and one key for
// both (RS256 was the only choice before access_token_alg).
var benchAlgs = []string{"RS256+ES256", "RS256+EdDSA", "RS256+RS256", "ES256+ES256", "EdDSA+EdDSA"}

// BenchmarkMint signs one id_token and one access token: the signing work of
// a successful validation.
func BenchmarkMint(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			h := benchHandler(b, alg, benchSMTP{})
			g := grantResult{issuer: "https://sso.example.com/uas", client: h.clients["bench"],
				address: "alice@example.com", scope: "openid", authTime: time.Now()}
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				resp, err := h.mint(g)
				if err != nil || resp.IDToken == "" || resp.AccessToken == "" {
					b.Fatalf("mint: %v", err)
				}
			}
		})
	}
}

// BenchmarkValidateHandler is a successful validation through ServeHTTP:
// parsing, client authentication, opening the reference, the ledger, the
// code check, minting both tokens (RS256 unless named), logging and the JSON
// answer. The references are sealed before the timer starts.
func BenchmarkValidateHandler(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			h := benchHandler(b, alg, benchSMTP{})
			next := noNext(b)
			const code = "12345678"
			refs := make([]string, 0, 1024)
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				if i == len(refs) { // refill outside the timer
					b.StopTimer()
					refs, i = refs[:0], 0
					for range cap(refs) {
						refs = append(refs, h.core.refs.seal(newBenchChallenge(b, h, code)))
					}
					b.StartTimer()
				}
				w := httptest.NewRecorder()
				if err := h.ServeHTTP(w, benchRequest(h, validateForm(refs[i], code)), next); err != nil || w.Code != 200 {
					b.Fatalf("validate: %v %d %s", err, w.Code, w.Body)
				}
				i++
			}
		})
	}
}

// BenchmarkInitiateHandler is a successful initiation through ServeHTTP
// against the in-process fake SMTP server: parsing, client authentication,
// address parsing, the limiter, a new code and challenge, rendering, one SMTP
// delivery (go-mail, loopback; plain or STARTTLS, a connection per mail or
// kept-open connections), logging, the sealed reference in the JSON answer.
// The fake server runs in this process and its CPU time is counted too.
func BenchmarkInitiateHandler(b *testing.B) {
	for _, mode := range []string{"plain", "plain-pool", "starttls", "starttls-pool"} {
		b.Run(mode, func(b *testing.B) {
			var opts []fakeOpt
			cfg := benchSMTP{}
			if strings.HasSuffix(mode, "-pool") {
				cfg.idleConns = 4
			}
			if strings.HasPrefix(mode, "starttls") {
				serverTLS, caPEM, _, _ := testCert(b)
				opts = append(opts, withSTARTTLS(serverTLS))
				cfg.caFile = filepath.Join(b.TempDir(), "ca.pem")
				if err := os.WriteFile(cfg.caFile, caPEM, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			srv := startFakeSMTP(b, opts...)
			cfg.port = srv.Port
			h := benchHandler(b, "RS256", cfg)
			next := noNext(b)
			var n atomic.Int64
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				w := httptest.NewRecorder()
				addr := fmt.Sprintf("user%d@example.com", n.Add(1))
				if err := h.ServeHTTP(w, benchRequest(h, initiateForm(addr)), next); err != nil || w.Code != 200 {
					b.Fatalf("initiate: %v %d %s", err, w.Code, w.Body)
				}
			}
			if got := len(srv.Messages()); int64(got) < n.Load() {
				b.Fatalf("fake SMTP holds %d messages, sent %d", got, n.Load())
			}
		})
	}
}
