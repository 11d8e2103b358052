package emailotp

// About 100 whole flows spread round-robin over three Caddy processes that
// share one storage directory as README's "Several instances" says (the same
// email_otp block everywhere, the default ledger), while one instance is
// killed with SIGKILL and started again: afterwards every (reference, code)
// that got tokens is replayed at every instance and none is accepted, and no
// answer was a 5xx (the killed instance only refused connections while down).

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestClusterFlowsKill(t *testing.T) {
	mp := startMailpit(t)
	storage := filepath.Join(t.TempDir(), "shared")
	site := otpSite(mp.SMTPPort, "\t\tissuer "+sharedIssuer) // the defaults (ledger storage, limits shared); one issuer, as instances behind one name have
	const n, flows, workers = 3, 99, 6
	procs := make([]*caddyProc, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = launchCaddyProc(t, site, procOpts{Storage: storage})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	const victim = 1 // the instance killed mid-run
	var (
		mu         sync.Mutex
		down       bool // victim killed and not yet ready again
		used       [][2]string
		refused    int // connections the victim refused while down
		lostToKill int // validations consumed by the victim as it died
		fiveXX     []string
		failures   []string
		next       atomic.Int64
		completed  atomic.Int64
	)
	// A restarted instance keeps its address: the workers read only these.
	bases := make([]string, n)
	for i, p := range procs {
		bases[i] = p.Base
	}
	base := func(i int) string { return bases[i%n] }
	// send posts to instance i; a connection error is acceptable only from
	// the victim while it is down.
	send := func(i int, form func() (answer, error)) (answer, bool) {
		a, err := form()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if i%n == victim && down {
				refused++
				return a, false
			}
			failures = append(failures, fmt.Sprintf("instance %d: %v", i%n, err))
			return a, false
		}
		if a.Status >= 500 {
			fiveXX = append(fiveXX, fmt.Sprintf("instance %d: %s", i%n, a))
		}
		return a, true
	}
	flow := func(f int) {
		addr := fmt.Sprintf("flow-%d@example.com", f)
		// initiate at instance f, the next one if that one is down
		var ref string
		at := f
		for try := 0; try < n && ref == ""; try, at = try+1, at+1 {
			if a, ok := send(at, func() (answer, error) { return tryPost(base(at)+tokenPath, initiateForm(addr), appCreds) }); ok {
				if a.Status != http.StatusOK || a.reference() == "" {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("flow %d initiate: %s", f, a))
					mu.Unlock()
					return
				}
				ref = a.reference()
			}
		}
		if ref == "" {
			return
		}
		code := codeFrom(t, mp.WaitFor(t, addr, 30*time.Second).Text, DefaultCodeLength)
		// every fifth flow first sends a wrong code: the retry chain
		// crosses instances too
		if f%5 == 0 {
			at++
			a, ok := send(at, func() (answer, error) { return tryPost(base(at)+tokenPath, validateForm(ref, wrong(code)), appCreds) })
			if ok && a.reference() != "" {
				mu.Lock()
				used = append(used, [2]string{ref, code}) // consumed by the wrong code
				mu.Unlock()
				ref = a.reference()
			}
		}
		// validate at the next instance, moving on while one is down
		lost := false // a validation sent to the victim as it died
		for try := 0; try < n; try++ {
			at++
			a, ok := send(at, func() (answer, error) { return tryPost(base(at)+tokenPath, validateForm(ref, code), appCreds) })
			if !ok {
				lost = true
				continue
			}
			if lost && isReplay(a) {
				// The victim consumed the reference before SIGKILL cut its
				// answer: single use holds, the flow gets no tokens.
				mu.Lock()
				used = append(used, [2]string{ref, code})
				lostToKill++
				mu.Unlock()
				return
			}
			if a.Status != http.StatusOK || a.str("id_token") == "" {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("flow %d validate at %d: %s", f, at%n, a))
				mu.Unlock()
				return
			}
			mu.Lock()
			used = append(used, [2]string{ref, code})
			mu.Unlock()
			completed.Add(1)
			return
		}
	}

	t0 := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := int(next.Add(1)) - 1; f < flows; f = int(next.Add(1)) - 1 {
				flow(f)
			}
		}()
	}
	// Kill the victim a third of the way in, start it again on the same
	// storage and port while the flows go on.
	for next.Load() < flows/3 {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	down = true
	mu.Unlock()
	procs[victim].Kill(t)
	killedAt := next.Load()
	restarted := procs[victim].Restart(t)
	procs[victim] = restarted
	mu.Lock()
	down = false
	mu.Unlock()
	restartedAt := next.Load()
	wg.Wait()
	elapsed := time.Since(t0)

	for _, f := range failures {
		t.Error(f)
	}
	for _, a := range fiveXX {
		t.Errorf("5xx: %s", a)
	}
	if c := completed.Load(); c < flows*9/10 {
		t.Errorf("%d of %d flows got tokens", c, flows)
	}
	t.Logf("%d flows over %d instances in %v: %d got tokens, %d consumed by the victim as it died; instance %d killed at flow %d, serving again at flow %d; %d requests to it failed while it was down",
		flows, n, elapsed.Round(time.Millisecond), completed.Load(), lostToKill, victim, killedAt, restartedAt, refused)

	// Replay everything that was consumed, at every instance.
	accepted := 0
	for i, u := range used {
		for j, p := range procs {
			a, err := tryPost(p.Base+tokenPath, validateForm(u[0], u[1]), appCreds)
			if err != nil {
				t.Fatalf("replay %d at instance %d: %v", i, j, err)
			}
			if a.Status == http.StatusOK {
				accepted++
			}
			if !isReplay(a) {
				t.Errorf("replay %d of %d at instance %d: %d %s %q (want 400 invalid_grant, already used)",
					i+1, len(used), j, a.Status, a.str("error"), a.str("error_description"))
			}
		}
	}
	if accepted != 0 {
		t.Errorf("%d replays accepted", accepted)
	}
	t.Logf("%d consumed (reference, code) pairs replayed at %d instances: %d accepted", len(used), n, accepted)
}
