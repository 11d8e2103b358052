package emailotp

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSMTPTLS runs the plugin against mailpit serving a test certificate:
// STARTTLS (the default) and implicit TLS deliver when ca_file trusts the
// test CA; a server without STARTTLS, or with a certificate nobody vouches
// for, is refused with a 503 and a log line, and nothing is sent.
func TestSMTPTLS(t *testing.T) {
	_, _, certFile, keyFile := testCert(t)
	caFile := filepath.Join(filepath.Dir(certFile), "ca.pem") // written by testCert
	tlsArgs := []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile}

	// deliver checks a whole sign-in through mp, authenticated as user.
	deliver := func(t *testing.T, mp *mailpit, smtpBlock, addr string) {
		t.Helper()
		tc := startCaddy(t, faultSite(smtpBlock, ""))
		ref, code, msg := initiate(t, tc, mp, addr, nil, appCreds)
		if msg.Username != faultSMTPUser {
			t.Errorf("mailpit saw SMTP user %q, want %q", msg.Username, faultSMTPUser)
		}
		if a := post(t, tc.Base+tokenPath, validateForm(ref, code), appCreds); a.Status != 200 || a.str("id_token") == "" {
			t.Fatalf("validate: %s", a)
		}
		if l := tc.Logs(t); strings.Contains(l, faultSMTPPass) || strings.Contains(l, code) {
			t.Errorf("log holds the SMTP password or the code")
		}
	}

	// refuse checks that delivery fails cleanly and nothing reaches mp.
	refuse := func(t *testing.T, mp *mailpit, smtpBlock, addr string, reasons ...string) {
		t.Helper()
		tc := startCaddy(t, faultSite(smtpBlock, ""))
		mark := markLog(t, tc)
		a := post(t, tc.Base+tokenPath, initiateForm(addr), appCreds)
		if a.Status != 503 || a.str("error") != "temporarily_unavailable" || a.Header.Get("Retry-After") == "" || a.reference() != "" {
			t.Fatalf("want 503 temporarily_unavailable with Retry-After and no reference, got %s %v", a, a.Header)
		}
		e := waitLogEntry(t, tc, mark, "otp challenge", map[string]string{"outcome": "smtp_failed"})
		r, _ := e["reason"].(string)
		t.Logf("logged reason: %s", r)
		ok := false
		for _, want := range reasons {
			ok = ok || strings.Contains(r, want)
		}
		if !ok {
			t.Errorf("log reason %q names none of %q", r, reasons)
		}
		if l := logSince(t, tc, mark); strings.Contains(l, faultSMTPPass) {
			t.Errorf("log holds the SMTP password")
		}
		// Give a wrongly accepted mail time to show up before counting.
		time.Sleep(200 * time.Millisecond)
		if n := len(mp.Messages(t)); n != 0 {
			t.Fatalf("%d mail(s) reached the server", n)
		}
	}

	block := func(port int, lines ...string) string {
		return fmt.Sprintf("\t\t\thost 127.0.0.1\n\t\t\tport %d\n\t\t\tusername %s\n\t\t\tpassword %s\n\t\t\ttimeout 5s\n\t\t\t%s",
			port, faultSMTPUser, faultSMTPPass, strings.Join(lines, "\n\t\t\t"))
	}

	t.Run("STARTTLS by default", func(t *testing.T) {
		mp := startMailpit(t, append(tlsArgs, "--smtp-require-starttls")...)
		deliver(t, mp, block(mp.SMTPPort, "ca_file "+caFile), "starttls@example.com")
	})

	t.Run("implicit TLS", func(t *testing.T) {
		mp := startMailpit(t, append(tlsArgs, "--smtp-require-tls")...)
		deliver(t, mp, block(mp.SMTPPort, "tls tls", "ca_file "+caFile), "implicit@example.com")
	})

	t.Run("no STARTTLS offered", func(t *testing.T) {
		mp := startMailpit(t) // plain text only
		refuse(t, mp, block(mp.SMTPPort, "ca_file "+caFile), "plain@example.com", "STARTTLS")
	})

	t.Run("untrusted certificate with STARTTLS", func(t *testing.T) {
		mp := startMailpit(t, append(tlsArgs, "--smtp-require-starttls")...)
		refuse(t, mp, block(mp.SMTPPort), "untrusted@example.com", "certificate", "unknown authority")
	})

	t.Run("untrusted certificate with implicit TLS", func(t *testing.T) {
		mp := startMailpit(t, append(tlsArgs, "--smtp-require-tls")...)
		refuse(t, mp, block(mp.SMTPPort, "tls tls"), "untrusted2@example.com", "certificate", "unknown authority")
	})

	t.Run("certificate for another name", func(t *testing.T) {
		mp := startMailpit(t, append(tlsArgs, "--smtp-require-starttls")...)
		refuse(t, mp, block(mp.SMTPPort, "ca_file "+caFile, "server_name smtp.example.net"), "wrongname@example.com", "certificate", "smtp.example.net")
	})
}
