package emailotp

// The cluster proof of issue 10: three Caddy processes sharing one
// `storage file_system` directory, configured as README's "Several
// instances" tells operators (the same email_otp block on every instance,
// the default `ledger storage`), requests spread round-robin. The limits
// under concurrent bursts are checked here too, run from TestClusterLimits
// on its processes (clusterBurstLimits); the flows with a SIGKILLed
// instance are TestClusterFlowsKill.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (any of 127.0.0.0/8), so that tests can act as many callers.
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// postVia is tryPost through c.
func postVia(c *http.Client, u string, form url.Values, basic []string) (answer, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &a.JSON); err != nil {
			return a, fmt.Errorf("bad JSON %q: %w", body, err)
		}
	}
	return a, nil
}

// burst sends n requests at once, request i to procs[i%len(procs)], and
// returns the answers.
func burst(t *testing.T, procs []*caddyProc, n int, send func(i int, base string) (answer, error)) []answer {
	t.Helper()
	return raceAnswers(t, n, func(i int) (answer, error) { return send(i, procs[i%len(procs)].Base) })
}

// tally counts the answers by status and fails on any status not in allowed.
func tally(t *testing.T, answers []answer, allowed ...int) map[int]int {
	t.Helper()
	got := map[int]int{}
	for i, a := range answers {
		got[a.Status]++
		ok := false
		for _, s := range allowed {
			ok = ok || a.Status == s
		}
		if !ok {
			t.Errorf("request %d: %s", i, a)
		}
	}
	return got
}

// clusterBurstLimits checks the limits of TestClusterLimits's instances under
// concurrent requests spread round-robin, as an attacker sends them: each
// limit admits at most limit + one per extra instance. It uses clients and
// caller IPs the sequential subtests do not.
func clusterBurstLimits(t *testing.T, procs []*caddyProc, mp *mailpit) {
	n := len(procs)
	bound := n - 1
	otherCreds := []string{"other", "other-secret"}

	t.Run("per address, concurrent", func(t *testing.T) {
		const reqs = 24
		answers := burst(t, procs, reqs, func(i int, base string) (answer, error) {
			return tryPost(base+tokenPath, initiateForm(fmt.Sprintf("burst+%d@example.org", i)), otherCreds)
		})
		got := tally(t, answers, http.StatusOK, http.StatusTooManyRequests)
		mails := 0
		for i := range reqs {
			mails += mp.Count(t, fmt.Sprintf("burst+%d@example.org", i))
		}
		if mails != got[http.StatusOK] || mails < 1 || mails > 3+bound {
			t.Errorf("%d mails (%d accepted) to one mailbox from %d concurrent requests over %d instances; limit 3, bound %d",
				mails, got[http.StatusOK], reqs, n, 3+bound)
		}
		t.Logf("per address, %d concurrent: %d mails, limit 3, bound %d", reqs, mails, 3+bound)
	})

	t.Run("per client, concurrent", func(t *testing.T) {
		const reqs = 30
		creds := []string{"burst", "burst-secret"}
		answers := burst(t, procs, reqs, func(i int, base string) (answer, error) {
			return tryPost(base+tokenPath, initiateForm(fmt.Sprintf("burst-client-%d@example.com", i)), creds)
		})
		got := tally(t, answers, http.StatusOK, http.StatusTooManyRequests)
		mails := 0
		for i := range reqs {
			mails += mp.Count(t, fmt.Sprintf("burst-client-%d@example.com", i))
		}
		if mails != got[http.StatusOK] || mails < 1 || mails > 6+bound {
			t.Errorf("%d mails (%d accepted) for one client from %d concurrent requests over %d instances; limit 6, bound %d",
				mails, got[http.StatusOK], reqs, n, 6+bound)
		}
		t.Logf("per client, %d concurrent: %d mails, limit 6, bound %d", reqs, mails, 6+bound)
	})

	t.Run("failed authentication per IP, concurrent", func(t *testing.T) {
		const reqs = 30
		c := clientFrom(t, "127.0.0.2")
		answers := burst(t, procs, reqs, func(i int, base string) (answer, error) {
			return postVia(c, base+tokenPath, initiateForm("burst-brute@example.com"), []string{"strict", fmt.Sprintf("guess-%d", i)})
		})
		got := tally(t, answers, http.StatusUnauthorized, http.StatusTooManyRequests)
		if checked := got[http.StatusUnauthorized]; checked > 4+bound {
			t.Errorf("%d secrets checked from one IP in a burst of %d over %d instances; limit 4, bound %d",
				checked, reqs, n, 4+bound)
		}
		t.Logf("failed authentication per IP, %d concurrent: %d secrets checked, limit 4, bound %d",
			reqs, got[http.StatusUnauthorized], 4+bound)
	})

	t.Run("failed authentication per client, many IPs", func(t *testing.T) {
		// One wrong guess from each of 20 IPs (each under its own limit),
		// all for client "other": past failed_auth_client (8) the IPs that
		// failed are refused, any other IP still reaches the secret check.
		const ips = 20
		clients := make([]*http.Client, ips)
		for i := range clients {
			clients[i] = clientFrom(t, fmt.Sprintf("127.0.1.%d", i+1))
		}
		checked := 0
		for i := range ips {
			a, err := postVia(clients[i], procs[i%n].Base+tokenPath, initiateForm("burst-auth@example.org"), []string{"other", fmt.Sprintf("guess-%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			switch a.Status {
			case http.StatusUnauthorized:
				checked++
			default:
				t.Fatalf("first guess from a new IP %d: %s (an IP that never failed must reach the secret check)", i, a)
			}
		}
		// Past the client's limit an IP that failed is refused by every
		// instance that knows of its failure: at once where it failed, and
		// at another instance after at most one more guess there (that
		// instance has not seen the IP fail, and the check does no I/O).
		guess := func(round string, ip, at int) bool {
			a, err := postVia(clients[ip], procs[at%n].Base+tokenPath, initiateForm("burst-auth@example.org"), []string{"other", "again"})
			if err != nil {
				t.Fatal(err)
			}
			switch a.Status {
			case http.StatusUnauthorized:
				return true
			case http.StatusTooManyRequests:
				if a.str("error") != "slow_down" || a.Header.Get("Retry-After") == "" {
					t.Fatalf("throttled without slow_down and Retry-After: %s %v", a, a.Header)
				}
				return false
			default:
				t.Fatalf("%s, IP %d at instance %d: %s", round, ip, at%n, a)
				return false
			}
		}
		same, others, after := 0, 0, 0
		for i := range ips {
			if guess("at the instance where it failed", i, i) {
				same++
			}
		}
		for i := range ips {
			for k := 1; k < n; k++ {
				if guess("at another instance", i, i+k) {
					others++
				}
			}
		}
		for i := range ips {
			for k := range n {
				if guess("after a guess at every instance", i, i+k) {
					after++
				}
			}
		}
		if same != 0 || others > ips*(n-1) || after != 0 {
			t.Errorf("client other past its limit (8 failures, %d seen): second guesses checked where the IP failed %d (want 0), at the other instances %d (at most %d), then %d (want 0)",
				checked, same, others, ips*(n-1), after)
		}
		// The application, from an IP that never failed, is not locked out.
		app := clientFrom(t, "127.0.2.1")
		for i, p := range procs {
			a, err := postVia(app, p.Base+tokenPath, initiateForm(fmt.Sprintf("burst-auth-app-%d@example.org", i)), otherCreds)
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != http.StatusOK {
				t.Errorf("instance %d: the right secret from a clean IP while the client is attacked: %s", i, a)
			}
		}
		// An IP that failed is refused even with the right secret.
		if a, err := postVia(clients[0], procs[0].Base+tokenPath, initiateForm("burst-auth-app@example.org"), otherCreds); err != nil || a.Status != http.StatusTooManyRequests {
			t.Errorf("right secret from an IP that failed, client past its limit: %s %v", a, err)
		}
		t.Logf("failed authentication per client (limit 8): %d IPs failed once; then %d guesses checked where they failed, %d at the other instances, %d after", checked, same, others, after)
	})
}
