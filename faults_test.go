package emailotp

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// faultSite is a site whose email_otp block mails through smtpBlock (the
// lines inside smtp { … } other than from) with the app client and an
// upstream stand-in. extra goes inside the email_otp block.
func faultSite(smtpBlock, extra string) string {
	return fmt.Sprintf(`
	email_otp {
		smtp {
%s
			from "Test <no-reply@example.com>"
		}
		template {
			subject "Your code"
			body "Your code is {0}"
		}
		client app app-secret
%s
	}
	respond "upstream saw {method} {path} body={http.request.body}" 299
`, smtpBlock, extra)
}

// writeCAFile writes the test CA for the plugin's ca_file option.
func writeCAFile(t *testing.T, caPEM []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(f, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// fakeCode returns the code of a mail the fake server accepted: the digits
// after "Your code is " in the quoted-printable text part (digits are never
// escaped in quoted-printable).
func fakeCode(t *testing.T, m fakeMsg) string {
	t.Helper()
	_, rest, ok := strings.Cut(string(m.Data), "Your code is ")
	if !ok || len(rest) < DefaultCodeLength || !isDigits(rest[:DefaultCodeLength]) {
		t.Fatalf("no code in mail:\n%s", m.Data)
	}
	return rest[:DefaultCodeLength]
}

const (
	faultSMTPUser = "otp-mailer"
	faultSMTPPass = "s3cret-SMTP-pw-4f9c"
)

// TestSMTPFaults breaks the SMTP server in every way the fake knows and
// checks each gives a clear answer, no reference, no mail, a log line saying
// why without the code, and that the next request after healing goes through
// to tokens. The plugin runs its real configuration: STARTTLS (mandatory)
// trusting the test CA, AUTH, and a 1s timeout; once dialling per mail
// (idle_conns 0) and once with the default kept connections, where each
// fault starts with the server dropping the connections it had (a restart),
// so that the faults of the dial phase meet a new connection too.
func TestSMTPFaults(t *testing.T) {
	for _, pool := range []struct{ name, line string }{
		{"a connection per mail", "\n\t\t\tidle_conns 0"},
		{"kept connections (default)", ""},
	} {
		t.Run(pool.name, func(t *testing.T) { testSMTPFaults(t, pool.line, pool.line == "") })
	}
}

func testSMTPFaults(t *testing.T, poolLine string, kept bool) {
	serverTLS, caPEM, _, _ := testCert(t)
	srv := startFakeSMTP(t, withSTARTTLS(serverTLS), withAuth(faultSMTPUser, faultSMTPPass), withDelay(3*time.Second))
	tc := startCaddy(t, faultSite(fmt.Sprintf(`
			host 127.0.0.1
			port %d
			ca_file %s
			username %s
			password %s
			timeout 1s%s`, srv.Port, writeCAFile(t, caPEM), faultSMTPUser, faultSMTPPass, poolLine), ""))
	tokenURL := tc.Base + tokenPath

	cases := []struct {
		name    string
		mode    fakeMode
		status  int
		errCode string
		reason  []string // any of these in the log line's reason
		late    bool     // the server still takes the mail after the client gave up
	}{
		{"server down", modeRefuse, 503, "temporarily_unavailable", []string{"connection refused"}, false},
		{"greeting slower than the timeout", modeSlow, 503, "temporarily_unavailable", []string{"i/o timeout", "deadline exceeded"}, false},
		{"recipient refused (550)", modeRejectRcpt, 400, "invalid_request", []string{"550", "5.1.1"}, false},
		{"recipient deferred (451)", modeTempFailRcpt, 503, "temporarily_unavailable", []string{"451", "4.3.0"}, false},
		{"authentication failed (535)", modeAuthFail, 503, "temporarily_unavailable", []string{"535"}, false},
		{"connection dropped during DATA", modeDropData, 503, "temporarily_unavailable", []string{"reset by peer", "EOF", "broken pipe"}, false},
		{"message refused after DATA (554)", modeRejectData, 503, "temporarily_unavailable", []string{"554"}, false},
		{"message deferred after DATA (451)", modeTempFailData, 503, "temporarily_unavailable", []string{"451"}, false},
		{"DATA reply slower than the timeout", modeSlowData, 503, "temporarily_unavailable", []string{"i/o timeout", "deadline exceeded"}, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := fmt.Sprintf("fault%d@example.com", i)
			before := len(srv.Messages())
			mark := markLog(t, tc)
			srv.SetMode(c.mode)
			if kept {
				srv.DropConns()
			}

			start := time.Now()
			a := post(t, tokenURL, initiateForm(addr), appCreds)
			took := time.Since(start)
			if a.Status != c.status || a.str("error") != c.errCode {
				t.Fatalf("want %d %s, got %s", c.status, c.errCode, a)
			}
			if a.reference() != "" || strings.Contains(string(a.Body), "reference") {
				t.Errorf("a reference was given for an unsent mail: %s", a)
			}
			if a.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", a.Header.Get("Cache-Control"))
			}
			if c.status == 503 {
				if s, err := strconv.Atoi(a.Header.Get("Retry-After")); err != nil || s <= 0 {
					t.Errorf("Retry-After = %q", a.Header.Get("Retry-After"))
				}
			}
			if took > 4*time.Second {
				t.Errorf("answer took %v with a 1s SMTP timeout", took)
			}

			e := waitLogEntry(t, tc, mark, "otp challenge", map[string]string{"outcome": "smtp_failed", "address": "f***@example.com"})
			reason, _ := e["reason"].(string)
			t.Logf("answer %d %s; logged reason: %s", a.Status, a.str("error_description"), reason)
			found := false
			for _, r := range c.reason {
				found = found || strings.Contains(reason, r)
			}
			if !found {
				t.Errorf("log reason %q names none of %q", reason, c.reason)
			}
			if e["level"] != "warn" {
				t.Errorf("log level %v, want warn", e["level"])
			}
			logged := logSince(t, tc, mark)
			assertNoDigitRuns(t, logEntries(t, logged))
			if strings.Contains(logged, faultSMTPPass) || strings.Contains(logged, addr) {
				t.Errorf("log holds the SMTP password or the unmasked address:\n%s", logged)
			}

			if c.late {
				// The server got the whole message and answers after the
				// client gave up: SMTP cannot take a mail back. The code in
				// it is useless, since no reference was handed out.
				srv.WaitCount(before+1, 10*time.Second)
				before++
			} else if n := len(srv.Messages()); n != before {
				t.Errorf("%d mail(s) delivered by a failed request", n-before)
			}

			// Healed, the next request goes through to tokens.
			if c.mode == modeRefuse {
				srv.Restart()
			} else {
				srv.SetMode(modeOK)
			}
			a = post(t, tokenURL, initiateForm(addr), appCreds)
			if a.Status != 200 || a.reference() == "" {
				t.Fatalf("after healing: %s", a)
			}
			msgs := srv.WaitCount(before+1, 10*time.Second)
			m := msgs[len(msgs)-1]
			if !m.TLS || m.AuthUser != faultSMTPUser {
				t.Errorf("healed mail: TLS=%v AuthUser=%q", m.TLS, m.AuthUser)
			}
			if v := post(t, tokenURL, validateForm(a.reference(), fakeCode(t, m)), appCreds); v.Status != 200 || v.str("id_token") == "" {
				t.Fatalf("validate after healing: %s", v)
			}
			// The healed connection is kept for the next mail, or closed.
			want := 0
			if kept {
				want = 1
			}
			waitConns(t, srv, want)
		})
	}
}

// TestSMTPFaultNoLingeringConnection checks that a delivery refused in the
// dial phase (here the mandatory STARTTLS is not offered) leaves no
// connection open on the server: go-mail does not close it there, mail.go
// does.
func TestSMTPFaultNoLingeringConnection(t *testing.T) {
	srv := startFakeSMTP(t)
	tc := startCaddy(t, faultSite(fmt.Sprintf("\t\t\thost 127.0.0.1\n\t\t\tport %d\n\t\t\ttimeout 1s", srv.Port), ""))
	mark := markLog(t, tc)
	for i := range 3 {
		a := post(t, tc.Base+tokenPath, initiateForm(fmt.Sprintf("plain%d@example.com", i)), appCreds)
		if a.Status != http.StatusServiceUnavailable || a.str("error") != "temporarily_unavailable" || a.reference() != "" {
			t.Fatalf("plaintext server under tls starttls: %s", a)
		}
	}
	e := waitLogEntry(t, tc, mark, "otp challenge", map[string]string{"outcome": "smtp_failed"})
	if r, _ := e["reason"].(string); !strings.Contains(r, "STARTTLS") {
		t.Errorf("log reason %q does not name STARTTLS", r)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d mail(s) sent in plaintext", n)
	}
	waitConns(t, srv, 0) // refused deliveries leave no connection open
}
