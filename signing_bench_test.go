package emailotp

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkMintParallel measures signBoth's choice: the two signatures of
// a validation one after the other ("serial") or at once ("parallel"), by
// one caller (c=1: latency, ns/op is one mint's wall time) and by 16
// callers at a time (c=16: ns/op is wall time per mint with 16 in flight,
// the inverse of throughput). Run with -cpu 2 to match the load tests.
func BenchmarkMintParallel(b *testing.B) {
	saved := signInParallel
	b.Cleanup(func() { signInParallel = saved })
	for _, alg := range []string{"RS256+RS256", "RS256+ES256"} {
		h := benchHandler(b, alg, benchSMTP{})
		h.keys.parallel = true // as if both were RSA, to measure the hand-over with ES256 too
		g := grantResult{issuer: "https://sso.example.com/uas", client: h.clients["bench"],
			address: "alice@example.com", scope: "openid", authTime: time.Now()}
		for _, mode := range []string{"serial", "parallel"} {
			b.Run(alg+"/"+mode+"/c=1", func(b *testing.B) {
				signInParallel = mode == "parallel"
				b.ReportAllocs()
				defer reportCPU(b)()
				for b.Loop() {
					if _, err := h.mint(g); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(alg+"/"+mode+"/c=16", func(b *testing.B) {
				signInParallel = mode == "parallel"
				b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
				b.ReportAllocs()
				defer reportCPU(b)()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := h.mint(g); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
