package emailotp

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// clusterRefresh is the gates' revocation_refresh in the two-instance
// test, and clusterWait how long the test waits for the other instance:
// the refresh plus a -race binary's slack on a busy machine.
const (
	clusterRefresh = time.Second
	clusterWait    = 15 * time.Second
)

// TestRevocationTwoInstances: two Caddy processes on one file_system
// storage. A revocation taken on one (RFC 7009 on A, the admin API on B)
// is refused there at once and on the other within its refresh.
func TestRevocationTwoInstances(t *testing.T) {
	const issuer = "https://idp.example/uas"
	site := revokeSite("\t\tissuer "+issuer, "\t\t\tissuer "+issuer+"\n\t\t\trevocation_refresh 1s")
	a := startCaddyProc(t, site)
	b := startCaddyProc(t, site, procOpts{Storage: a.Storage})
	m := newMinter(t, a.Storage, "RS256", issuer)

	gate := func(p *caddyProc, tok string) int {
		t.Helper()
		req := newRequest(t, http.MethodGet, p.Base+"/who/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return do(t, req).Status
	}
	active := func(p *caddyProc, tok string) bool {
		t.Helper()
		return post(t, p.Base+"/uas"+introspectSuffix, url.Values{"token": {tok}}, appCreds).JSON["active"] == true
	}
	// refusedWithin polls p until it refuses tok, and fails after clusterWait.
	refusedWithin := func(p *caddyProc, tok string) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < clusterWait {
			if gate(p, tok) == http.StatusUnauthorized && !active(p, tok) {
				return time.Since(start)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s still admits the revoked token after %v", p.Base, clusterWait)
		return 0
	}

	alice, bob, carol := m.at(t, "alice@example.com", nil), m.at(t, "bob@example.com", nil), m.at(t, "carol@example.com", nil)
	for _, p := range []*caddyProc{a, b} {
		for _, tok := range []string{alice, bob, carol} {
			if gate(p, tok) != http.StatusOK || !active(p, tok) {
				t.Fatalf("%s refuses a fresh token", p.Base)
			}
		}
	}

	// RFC 7009 on A.
	if r := post(t, a.Base+"/uas"+revokeSuffix, url.Values{"token": {alice}}, appCreds); r.Status != 200 {
		t.Fatalf("revoke on A: %s", r)
	}
	if gate(a, alice) != http.StatusUnauthorized || active(a, alice) {
		t.Error("A admits the token it just revoked")
	}
	t.Logf("RFC 7009 on A: B refused after %v", refusedWithin(b, alice))

	// The admin API on B.
	if r := adminRevoke(t, b.AdminAddr, `{"address":"bob@example.com"}`); r.Status != 200 {
		t.Fatalf("admin revoke on B: %s", r)
	}
	if gate(b, bob) != http.StatusUnauthorized || active(b, bob) {
		t.Error("B admits the address it just revoked")
	}
	t.Logf("admin API on B: A refused after %v", refusedWithin(a, bob))

	for _, p := range []*caddyProc{a, b} {
		if gate(p, carol) != http.StatusOK {
			t.Errorf("%s refuses a token nobody revoked", p.Base)
		}
	}
}
