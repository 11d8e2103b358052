package emailotp

// The limits of three Caddy processes sharing one storage directory, as
// docs/cluster.md tells operators to run several instances, with requests
// spread round-robin: each limit holds to the bound the README states,
// the limit plus one per extra instance, counted in mails at mailpit.

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestClusterLimits(t *testing.T) {
	mp := startMailpit(t)
	storage := filepath.Join(t.TempDir(), "shared")
	site := otpSite(mp.SMTPPort, "\t\tledger storage\n\t\tlimit address 3 1h\n\t\tlimit client 6 1h\n\t\tlimit failed_auth_ip 4 1h\n\t\tlimit failed_auth_client 8 1h\n\t\tclient burst burst-secret\n")
	const n = 3
	var procs [n]*caddyProc
	for i := range procs {
		procs[i] = startCaddyProc(t, site, procOpts{Storage: storage})
	}
	const bound = n - 1 // the stated slack: one per extra instance

	t.Run("per address, +tags folded", func(t *testing.T) {
		sent := 0
		for i := range 12 {
			a := post(t, procs[i%n].Base+tokenPath, initiateForm(fmt.Sprintf("victim+%d@example.com", i)), appCreds)
			switch a.Status {
			case http.StatusOK:
				sent++
			case http.StatusTooManyRequests:
				checkSlowDown(t, a, "address", 3600e9)
			default:
				t.Fatalf("request %d: %s", i, a)
			}
		}
		mails := 0
		for i := range 12 {
			mails += mp.Count(t, fmt.Sprintf("victim+%d@example.com", i))
		}
		if mails != sent || mails < 3 || mails > 3+bound {
			t.Errorf("%d mails to one mailbox (%d accepted) over %d instances, limit 3, bound %d", mails, sent, n, 3+bound)
		}
		t.Logf("per address: %d mails, limit 3", mails)
	})

	t.Run("per client", func(t *testing.T) {
		strict := []string{"strict", "strict-secret"}
		sent := 0
		for i := range 18 {
			a := post(t, procs[i%n].Base+tokenPath, initiateForm(fmt.Sprintf("client-%d@example.com", i)), strict)
			switch a.Status {
			case http.StatusOK:
				sent++
			case http.StatusTooManyRequests:
				checkSlowDown(t, a, "client", 3600e9)
			default:
				t.Fatalf("request %d: %s", i, a)
			}
		}
		mails := 0
		for i := range 18 {
			mails += mp.Count(t, fmt.Sprintf("client-%d@example.com", i))
		}
		if mails != sent || mails < 6 || mails > 6+bound {
			t.Errorf("%d mails for one client over %d instances, limit 6, bound %d", mails, n, 6+bound)
		}
		t.Logf("per client: %d mails, limit 6", mails)
	})

	clusterBurstLimits(t, procs[:], mp)

	// Last: it locks this test's IP out of every client for the window.
	t.Run("failed client authentication", func(t *testing.T) {
		checked := 0
		for i := range 30 {
			a := post(t, procs[i%n].Base+tokenPath, initiateForm("brute@example.com"), []string{"app", fmt.Sprintf("guess-%d", i)})
			switch a.Status {
			case http.StatusUnauthorized:
				checked++
			case http.StatusTooManyRequests:
				if a.str("error") != "slow_down" || a.Header.Get("Retry-After") == "" {
					t.Fatalf("throttled without slow_down and Retry-After: %s %v", a, a.Header)
				}
			default:
				t.Fatalf("guess %d: %s", i, a)
			}
		}
		if checked < 4 || checked > 4+bound {
			t.Errorf("%d secrets checked over %d instances, limit 4, bound %d", checked, n, 4+bound)
		}
		// Answered before the secret is checked: the right one is refused too.
		for i := range procs {
			if a := post(t, procs[i].Base+tokenPath, initiateForm("brute@example.com"), appCreds); a.Status != http.StatusTooManyRequests {
				t.Errorf("instance %d: right secret from a throttled IP: %s", i, a)
			}
		}
		if n := mp.Count(t, "brute@example.com"); n != 0 {
			t.Errorf("%d mails sent for throttled requests", n)
		}
		t.Logf("failed authentication: %d secrets checked, limit 4", checked)
		for _, p := range procs {
			if strings.Contains(p.Output(), "guess-") {
				t.Error("a guessed secret in the logs")
			}
		}
	})
}
