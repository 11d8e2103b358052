package emailotp

// Tests that the grant's state — signing keys, the reference key and the
// ledger of consumed references — survives restarts and reloads, is shared
// by instances on one storage, and that the single-use chain of references
// holds under concurrency and storage faults.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// sharedIssuer is the issuer of processes that act as one server.
const sharedIssuer = "http://sso.test/uas"

// tryPost is post for any goroutine: it reports errors instead of failing.
func tryPost(u string, form url.Values, basic []string) (answer, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
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

// initiateAt asks base for a code mailed to addr and returns the reference
// and the code.
func initiateAt(t *testing.T, base string, mp *mailpit, addr string) (string, string) {
	t.Helper()
	a := post(t, base+tokenPath, initiateForm(addr), appCreds)
	if a.Status != http.StatusOK || a.reference() == "" {
		t.Fatalf("initiate at %s: %s", base, a)
	}
	msg := mp.WaitFor(t, addr, 15*time.Second)
	return a.reference(), codeFrom(t, msg.Text, DefaultCodeLength)
}

// validateAt posts a validation and returns the answer.
func validateAt(t *testing.T, base, ref, code string) answer {
	t.Helper()
	return post(t, base+tokenPath, validateForm(ref, code), appCreds)
}

// isReplay reports whether a is the refusal of an already used reference.
func isReplay(a answer) bool {
	return a.Status == http.StatusBadRequest && a.str("error") == "invalid_grant" &&
		a.str("error_description") == "reference was already used" && a.reference() == ""
}

// jwksAt fetches the JWKS published under the default issuer path.
func jwksAt(t *testing.T, base string) ([]byte, jose.JSONWebKeySet) {
	t.Helper()
	a := httpGet(t, base+"/uas"+jwksSuffix)
	var set jose.JSONWebKeySet
	if a.Status != http.StatusOK {
		t.Fatalf("JWKS at %s: %s", base, a)
	}
	if err := json.Unmarshal(a.Body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS at %s: %q: %v", base, a.Body, err)
	}
	return a.Body, set
}

// verifyTokens checks that both tokens of a successful answer are signed by
// the current keys of set: the id_token by the first (RS256), the access
// token by the second (ES256, access_token_alg's default).
func verifyTokens(t *testing.T, a answer, set jose.JSONWebKeySet, addr string) {
	t.Helper()
	if a.Status != http.StatusOK {
		t.Fatalf("no tokens: %s", a)
	}
	if len(set.Keys) < 2 {
		t.Fatalf("JWKS has %d keys, want the id_token's and the access token's", len(set.Keys))
	}
	for i, name := range []string{"id_token", "access_token"} {
		alg := []jose.SignatureAlgorithm{jose.RS256, jose.ES256}[i]
		tok, err := jwt.ParseSigned(a.str(name), []jose.SignatureAlgorithm{alg})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if kid := tok.Headers[0].KeyID; kid != set.Keys[i].KeyID {
			t.Errorf("%s kid %q, JWKS current %s kid %q", name, kid, alg, set.Keys[i].KeyID)
		}
		var c jwt.Claims
		if err := tok.Claims(set, &c); err != nil {
			t.Fatalf("%s does not verify with the JWKS: %v", name, err)
		}
		if c.Subject != addr {
			t.Errorf("%s sub = %q, want %q", name, c.Subject, addr)
		}
	}
}

// TestStateRestart: keys, the reference key and the storage ledger live in
// storage, so a new process on the same storage honours what the old one
// issued and remembers what it consumed.
func TestStateRestart(t *testing.T) {
	mp := startMailpit(t)
	storage := filepath.Join(t.TempDir(), "storage")
	// One issuer for the processes, which listen on other ports: a
	// reference is bound to the issuer (and token path) that sent it.
	site := otpSite(mp.SMTPPort, "\t\tledger storage\n\t\tissuer "+sharedIssuer)

	p1 := startCaddyProc(t, site, procOpts{Storage: storage})
	pending, pendingCode := initiateAt(t, p1.Base, mp, "restart-pending@example.com")
	used, usedCode := initiateAt(t, p1.Base, mp, "restart-used@example.com")
	if a := validateAt(t, p1.Base, used, usedCode); a.Status != http.StatusOK {
		t.Fatalf("validate before restart: %s", a)
	}
	raw1, set1 := jwksAt(t, p1.Base)
	p1.Stop(t)

	p2 := startCaddyProc(t, site, procOpts{Storage: storage})
	raw2, _ := jwksAt(t, p2.Base)
	if string(raw1) != string(raw2) {
		t.Errorf("JWKS changed across restart:\n%s\n%s", raw1, raw2)
	}
	a := validateAt(t, p2.Base, pending, pendingCode)
	verifyTokens(t, a, set1, "restart-pending@example.com")
	if b := validateAt(t, p2.Base, used, usedCode); !isReplay(b) {
		t.Errorf("reference consumed before the restart accepted after it: %s", b)
	}
}

// TestStateReload: a config reload keeps pending references valid and
// consumed ones consumed, with either ledger, through both reload paths.
func TestStateReload(t *testing.T) {
	mp := startMailpit(t)
	for _, c := range []struct {
		ledger string
		reload func(p *caddyProc, site string) error
	}{
		{"memory", (*caddyProc).Load},
		{"storage", (*caddyProc).Reload},
	} {
		t.Run(c.ledger, func(t *testing.T) {
			site := otpSite(mp.SMTPPort, "\t\tledger "+c.ledger)
			p := startCaddyProc(t, site)
			pending, pendingCode := initiateAt(t, p.Base, mp, "reload-pending-"+c.ledger+"@example.com")
			used, usedCode := initiateAt(t, p.Base, mp, "reload-used-"+c.ledger+"@example.com")
			if a := validateAt(t, p.Base, used, usedCode); a.Status != http.StatusOK {
				t.Fatalf("validate before reload: %s", a)
			}
			_, set := jwksAt(t, p.Base)

			added := otpSite(mp.SMTPPort, "\t\tledger "+c.ledger+"\n\t\tclient added added-secret")
			if err := c.reload(p, added); err != nil {
				t.Fatal(err)
			}
			// the new config is in force: the added client authenticates
			a := post(t, p.Base+tokenPath, initiateForm("reload-added-"+c.ledger+"@example.com"), []string{"added", "added-secret"})
			if a.Status != http.StatusOK {
				t.Fatalf("added client after reload: %s", a)
			}
			if b := validateAt(t, p.Base, used, usedCode); !isReplay(b) {
				t.Errorf("reference consumed before the reload accepted after it: %s", b)
			}
			verifyTokens(t, validateAt(t, p.Base, pending, pendingCode), set, "reload-pending-"+c.ledger+"@example.com")
		})
	}
}

// TestStateCluster: two processes on one storage with the storage ledger act
// as one server: same keys, shared single use, shared attempt count.
func TestStateCluster(t *testing.T) {
	mp := startMailpit(t)
	storage := filepath.Join(t.TempDir(), "storage")
	// One issuer for the processes, which listen on other ports: a
	// reference is bound to the issuer (and token path) that sent it.
	site := otpSite(mp.SMTPPort, "\t\tledger storage\n\t\tissuer "+sharedIssuer)

	// Started together, so both race to create the keys in empty storage.
	var (
		wg     sync.WaitGroup
		procs  [2]*caddyProc
		errs   [2]error
		starts [2]time.Duration
	)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			procs[i], errs[i] = launchCaddyProc(t, site, procOpts{Storage: storage})
			starts[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	A, B := procs[0], procs[1]
	t.Logf("two processes started together in %v and %v", starts[0].Round(time.Millisecond), starts[1].Round(time.Millisecond))

	rawA, setA := jwksAt(t, A.Base)
	rawB, setB := jwksAt(t, B.Base)
	if string(rawA) != string(rawB) || setA.Keys[0].KeyID != setB.Keys[0].KeyID {
		t.Fatalf("instances publish different JWKS:\n%s\n%s", rawA, rawB)
	}

	t.Run("issued at A validates at B", func(t *testing.T) {
		ref, code := initiateAt(t, A.Base, mp, "cluster-ab@example.com")
		verifyTokens(t, validateAt(t, B.Base, ref, code), setA, "cluster-ab@example.com")
	})

	t.Run("consumed at A refused at B", func(t *testing.T) {
		ref, code := initiateAt(t, B.Base, mp, "cluster-used@example.com")
		verifyTokens(t, validateAt(t, A.Base, ref, code), setB, "cluster-used@example.com")
		if a := validateAt(t, B.Base, ref, code); !isReplay(a) {
			t.Errorf("replay at B: %s", a)
		}
	})

	t.Run("attempt limit across A and B", func(t *testing.T) {
		ref, code := initiateAt(t, A.Base, mp, "cluster-attempts@example.com")
		chain := []string{ref}
		for i := 1; i <= DefaultMaxAttempts; i++ {
			at := []*caddyProc{A, B}[i%2]
			a := validateAt(t, at.Base, ref, wrong(code))
			if a.Status != http.StatusBadRequest || a.str("error_description") != descOTPInvalid {
				t.Fatalf("attempt %d at %s: %s", i, at.Base, a)
			}
			ref = a.reference()
			if ref == "" { // after the last attempt: a dead end
				t.Fatalf("attempt %d: no new reference", i)
			}
			chain = append(chain, ref)
		}
		// every link, the dead end included, refuses the right code at both
		for i, r := range chain {
			for _, at := range []*caddyProc{A, B} {
				if a := validateAt(t, at.Base, r, code); a.Status == http.StatusOK {
					t.Fatalf("reference %d of the spent chain accepted at %s", i, at.Base)
				}
			}
		}
	})

	t.Run("race across A and B", func(t *testing.T) {
		ref, code := initiateAt(t, A.Base, mp, "cluster-race@example.com")
		t0 := time.Now()
		answers := raceAnswers(t, 20, func(i int) (answer, error) {
			return tryPost([]*caddyProc{A, B}[i%2].Base+tokenPath, validateForm(ref, code), appCreds)
		})
		t.Logf("20 concurrent validations split over A and B answered in %v", time.Since(t0).Round(time.Millisecond))
		if ok, replays := countOutcomes(t, answers); ok != 1 || replays != len(answers)-1 {
			t.Errorf("%d answers 200, %d replays; want exactly one 200", ok, replays)
		}
	})
}

// raceAnswers runs n calls of fn at once and returns their answers.
func raceAnswers(t *testing.T, n int, fn func(i int) (answer, error)) []answer {
	t.Helper()
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		answers = make([]answer, n)
		errs    = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i], errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return answers
}

// countOutcomes counts the 200s and the replay refusals, failing on any
// other answer.
func countOutcomes(t *testing.T, answers []answer) (ok, replays int) {
	t.Helper()
	for _, a := range answers {
		switch {
		case a.Status == http.StatusOK:
			ok++
		case isReplay(a):
			replays++
		default:
			t.Errorf("unexpected answer: %s", a)
		}
	}
	return ok, replays
}

// TestStateConcurrentValidation races validations of one reference with
// either ledger: single use holds, and the chain has exactly one next link.
func TestStateConcurrentValidation(t *testing.T) {
	mp := startMailpit(t)
	for _, ledger := range []string{"memory", "storage"} {
		t.Run(ledger, func(t *testing.T) {
			tc := startCaddy(t, otpSite(mp.SMTPPort, "\t\tledger "+ledger))
			tokenURL := tc.Base + tokenPath
			const n = 20

			t.Run("right code", func(t *testing.T) {
				ref, code := initiateAt(t, tc.Base, mp, "race-right-"+ledger+"@example.com")
				t0 := time.Now()
				answers := raceAnswers(t, n, func(int) (answer, error) { return tryPost(tokenURL, validateForm(ref, code), appCreds) })
				t.Logf("%s ledger: %d concurrent validations answered in %v", ledger, n, time.Since(t0).Round(time.Millisecond))
				if ok, replays := countOutcomes(t, answers); ok != 1 || replays != n-1 {
					t.Errorf("%d answers 200, %d replays; want exactly one 200", ok, replays)
				}
			})

			t.Run("wrong code", func(t *testing.T) {
				ref, code := initiateAt(t, tc.Base, mp, "race-wrong-"+ledger+"@example.com")
				answers := raceAnswers(t, n, func(int) (answer, error) { return tryPost(tokenURL, validateForm(ref, wrong(code)), appCreds) })
				var next []string
				for _, a := range answers {
					switch {
					case a.Status == http.StatusBadRequest && a.str("error_description") == descOTPInvalid && a.reference() != "":
						next = append(next, a.reference())
					case isReplay(a):
					default:
						t.Errorf("unexpected answer: %s", a)
					}
				}
				if len(next) != 1 {
					t.Fatalf("%d new references issued, want exactly 1", len(next))
				}
				if a := validateAt(t, tc.Base, next[0], code); a.Status != http.StatusOK {
					t.Errorf("the one new reference refused the right code: %s", a)
				}
			})

			t.Run("older reference of the chain", func(t *testing.T) {
				ref0, code := initiateAt(t, tc.Base, mp, "race-chain-"+ledger+"@example.com")
				a := validateAt(t, tc.Base, ref0, wrong(code))
				ref1 := a.reference()
				b := validateAt(t, tc.Base, ref1, wrong(code))
				ref2 := b.reference()
				if ref1 == "" || ref2 == "" {
					t.Fatalf("chain broken: %s / %s", a, b)
				}
				for i, r := range []string{ref0, ref1} {
					if a := validateAt(t, tc.Base, r, code); !isReplay(a) {
						t.Errorf("reference %d replayed with the right code: %s", i, a)
					}
				}
				if a := validateAt(t, tc.Base, ref2, code); a.Status != http.StatusOK {
					t.Errorf("latest reference refused: %s", a)
				}
			})

			t.Run("other client", func(t *testing.T) {
				ref, code := initiateAt(t, tc.Base, mp, "race-client-"+ledger+"@example.com")
				for _, creds := range [][]string{{"other", "other-secret"}, {"strict", "strict-secret"}} {
					a := post(t, tokenURL, validateForm(ref, code), creds)
					if a.Status != http.StatusBadRequest || a.str("error") != "invalid_grant" || a.reference() != "" {
						t.Errorf("client %s used another client's reference: %s", creds[0], a)
					}
				}
				if a := validateAt(t, tc.Base, ref, code); a.Status != http.StatusOK {
					t.Errorf("reference lost to another client's attempt: %s", a)
				}
			})
		})
	}
}

// TestStateLedgerLatency measures what a validation costs with each ledger
// (a chain of wrong codes: every link is a ledger write) and under
// contention on one reference.
func TestStateLedgerLatency(t *testing.T) {
	mp := startMailpit(t)
	for _, ledger := range []string{"memory", "storage"} {
		t.Run(ledger, func(t *testing.T) {
			tc := startCaddy(t, otpSite(mp.SMTPPort, "\t\tledger "+ledger+"\n\t\tmax_attempts 100"))
			ref, code := initiateAt(t, tc.Base, mp, "latency-"+ledger+"@example.com")
			const links = 60
			lat := make([]time.Duration, 0, links)
			for i := range links {
				t0 := time.Now()
				a := validateAt(t, tc.Base, ref, wrong(code))
				lat = append(lat, time.Since(t0))
				if ref = a.reference(); ref == "" {
					t.Fatalf("link %d: %s", i, a)
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			p50, p95, worst := lat[links/2], lat[links*95/100], lat[links-1]
			t.Logf("%s ledger: sequential validate p50 %v, p95 %v, max %v (%d requests)", ledger,
				p50.Round(time.Microsecond), p95.Round(time.Microsecond), worst.Round(time.Microsecond), links)
			if p50 > 250*time.Millisecond {
				t.Errorf("%s ledger: median validation %v", ledger, p50)
			}

			const n = 20
			answers := make([]time.Duration, n)
			raceAnswers(t, n, func(i int) (answer, error) {
				t0 := time.Now()
				a, err := tryPost(tc.Base+tokenPath, validateForm(ref, code), appCreds)
				answers[i] = time.Since(t0)
				return a, err
			})
			sort.Slice(answers, func(i, j int) bool { return answers[i] < answers[j] })
			t.Logf("%s ledger: %d concurrent validations of one reference: p50 %v, max %v", ledger, n,
				answers[n/2].Round(time.Millisecond), answers[n-1].Round(time.Millisecond))
			if answers[n-1] > 5*time.Second {
				t.Errorf("%s ledger: slowest of %d concurrent validations took %v", ledger, n, answers[n-1])
			}
		})
	}
}

// unwritableDir returns a storage path that cannot be created or written:
// a directory with mode 0500, or, where that does not stop writes (root), a
// path under a regular file, so that mkdir fails.
func unwritableDir(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return filepath.Join(dir, "storage")
	}
	_ = os.Remove(probe)
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("chmod 0500 does not stop writes here (root?): using a path under a regular file")
	return filepath.Join(file, "storage")
}

// TestStateStorageUnwritable: a storage the plugin cannot write fails the
// config load, with an error naming the cause, at startup and on reload.
func TestStateStorageUnwritable(t *testing.T) {
	mp := startMailpit(t)
	storageSite := otpSite(mp.SMTPPort, "\t\tledger storage")

	t.Run("whole storage", func(t *testing.T) {
		bad := unwritableDir(t)
		_, err := launchCaddyProc(t, storageSite, procOpts{Storage: bad})
		if err == nil {
			t.Fatal("Caddy started on an unwritable storage")
		}
		msg := err.Error()
		if !strings.Contains(msg, "email_otp") || !strings.Contains(msg, bad) ||
			!(strings.Contains(msg, "not a directory") || strings.Contains(msg, "permission denied")) {
			t.Errorf("error does not name the problem:\n%s", msg)
		}
	})

	t.Run("ledger only", func(t *testing.T) {
		storage := filepath.Join(t.TempDir(), "storage")
		p := startCaddyProc(t, otpSite(mp.SMTPPort, "\t\tledger memory"), procOpts{Storage: storage})
		// keys exist; now the ledger's place in storage is a file
		if err := os.WriteFile(filepath.Join(storage, "email_otp", "ledger"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		ref, code := initiateAt(t, p.Base, mp, "unwritable-ledger@example.com")
		err := p.Load(storageSite)
		if err == nil || !strings.Contains(err.Error(), "ledger storage is not writable") {
			t.Fatalf("reload onto an unwritable ledger: err = %v", err)
		}
		// the running config stays in force and keeps working
		if a := validateAt(t, p.Base, ref, code); a.Status != http.StatusOK {
			t.Errorf("old config after the refused reload: %s", a)
		}
		_, err = launchCaddyProc(t, storageSite, procOpts{Storage: storage})
		if err == nil || !strings.Contains(err.Error(), "ledger storage is not writable") {
			t.Errorf("start on an unwritable ledger: err = %v", err)
		}
	})
}

// TestStateStorageFailsClosed: when the storage ledger breaks at run time,
// validations fail with 503 and nothing is accepted; once it is back, what
// was consumed stays consumed and what was pending still works.
func TestStateStorageFailsClosed(t *testing.T) {
	mp := startMailpit(t)
	storage := filepath.Join(t.TempDir(), "storage")
	tc := startCaddy(t, otpSite(mp.SMTPPort, "\t\tledger storage"), caddyOpts{storage: storage})
	used, usedCode := initiateAt(t, tc.Base, mp, "closed-used@example.com")
	pending, pendingCode := initiateAt(t, tc.Base, mp, "closed-pending@example.com")
	if a := validateAt(t, tc.Base, used, usedCode); a.Status != http.StatusOK {
		t.Fatalf("validate: %s", a)
	}

	ledgerDir := filepath.Join(storage, filepath.FromSlash(ledgerPrefix))
	if err := os.Rename(ledgerDir, ledgerDir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ledgerDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// This process remembers what it consumed, so the replay is refused
	// without asking the storage; the pending reference cannot be decided.
	if a := validateAt(t, tc.Base, used, usedCode); !isReplay(a) {
		t.Errorf("replay with a broken ledger: %s", a)
	}
	a := validateAt(t, tc.Base, pending, pendingCode)
	if a.Status != http.StatusServiceUnavailable || a.str("error") != "temporarily_unavailable" || a.Header.Get("Retry-After") == "" {
		t.Errorf("pending reference with a broken ledger: %s", a)
	}
	if !strings.Contains(tc.Logs(t), "ledger unavailable") {
		t.Error("no log line about the broken ledger")
	}

	if err := os.Remove(ledgerDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(ledgerDir+".away", ledgerDir); err != nil {
		t.Fatal(err)
	}
	if a := validateAt(t, tc.Base, used, usedCode); !isReplay(a) {
		t.Errorf("replay after the ledger came back: %s", a)
	}
	if a := validateAt(t, tc.Base, pending, pendingCode); a.Status != http.StatusOK {
		t.Errorf("pending reference after the ledger came back: %s", a)
	}
}
