package emailotp

// Caddyfile.example as shipped, one process on Caddy's default storage: a
// reference and code that got tokens stay refused after kill -9, after
// SIGTERM and after reloads that change the ledger setting.

import (
	"net/http"
	"regexp"
	"testing"
	"time"
)

var exampleCreds = []string{"demo-app", "demo-secret"}

// exampleFlow initiates and validates at p and returns the reference and
// code that got tokens.
func exampleFlow(t *testing.T, p *caddyProc, mp *mailpit, addr string) [2]string {
	t.Helper()
	ref, code := examplePending(t, p, mp, addr)
	if a := post(t, p.Base+tokenPath, validateForm(ref, code), exampleCreds); a.Status != http.StatusOK || a.str("id_token") == "" {
		t.Fatalf("validate at %s: %s", p.Base, a)
	}
	return [2]string{ref, code}
}

// examplePending initiates at p and returns the reference and the mailed code.
func examplePending(t *testing.T, p *caddyProc, mp *mailpit, addr string) (string, string) {
	t.Helper()
	a := post(t, p.Base+tokenPath, initiateForm(addr), exampleCreds)
	if a.Status != http.StatusOK || a.reference() == "" {
		t.Fatalf("initiate at %s: %s", p.Base, a)
	}
	return a.reference(), codeFrom(t, mp.WaitFor(t, addr, 15*time.Second).Text, DefaultCodeLength)
}

// replayAll posts every used (reference, code) to p: each must be refused as
// already used.
func replayAll(t *testing.T, p *caddyProc, when string, used [][2]string) {
	t.Helper()
	for i, u := range used {
		if a := post(t, p.Base+tokenPath, validateForm(u[0], u[1]), exampleCreds); !isReplay(a) {
			t.Errorf("%s: used reference %d of %d: %d %s %q (want 400 invalid_grant, already used)",
				when, i+1, len(used), a.Status, a.str("error"), a.str("error_description"))
		}
	}
}

// exampleLedgerLine is the example's commented ledger line.
var exampleLedgerLine = regexp.MustCompile(`(?m)^\t\t# ledger .*$`)

func TestExampleLedgerDurable(t *testing.T) {
	mp := startMailpit(t)
	shipped := readFile(t, "Caddyfile.example")
	if !exampleLedgerLine.MatchString(shipped) {
		t.Fatal("Caddyfile.example has no commented ledger line to change in a reload")
	}
	withLedger := func(kind string) string {
		return exampleLedgerLine.ReplaceAllString(shipped, "\t\tledger "+kind)
	}

	// Caddy's data directory, its default storage, stays across restarts.
	p := startExample(t, "Caddyfile.example", mp.SMTPPort, map[string]string{"EMAIL_OTP_CLIENT_SECRET": "demo-secret"})
	used := [][2]string{exampleFlow(t, p, mp, "durable-1@example.com")}
	pendingRef, pendingCode := examplePending(t, p, mp, "durable-pending@example.com")

	p.Kill(t)
	p = p.Restart(t)
	replayAll(t, p, "after kill -9", used)
	// the keys survived too: a reference issued before the crash still works
	if a := post(t, p.Base+tokenPath, validateForm(pendingRef, pendingCode), exampleCreds); a.Status != http.StatusOK {
		t.Fatalf("reference issued before kill -9: %s", a)
	}
	used = append(used, [2]string{pendingRef, pendingCode}, exampleFlow(t, p, mp, "durable-2@example.com"))

	p.Stop(t) // SIGTERM
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	p = p.Restart(t)
	replayAll(t, p, "after SIGTERM", used)
	used = append(used, exampleFlow(t, p, mp, "durable-3@example.com"))

	load := func(caddyfile string) {
		t.Helper()
		if err := p.LoadCaddyfile(caddyfile); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{"memory", "storage"} {
		load(withLedger(kind))
		replayAll(t, p, "after a reload to ledger "+kind, used)
		used = append(used, exampleFlow(t, p, mp, "durable-"+kind+"@example.com"))
	}
	load(shipped)
	replayAll(t, p, "after a reload back to the shipped example", used)

	p.Kill(t)
	p = p.Restart(t)
	// The one reference used under "ledger memory" is that ledger's risk;
	// every other one must still be refused.
	var durable [][2]string
	for i, u := range used {
		if i != len(used)-2 {
			durable = append(durable, u)
		}
	}
	replayAll(t, p, "after a second kill -9", durable)
}
