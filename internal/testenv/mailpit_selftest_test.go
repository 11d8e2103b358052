package testenv

import (
	"net"
	"net/smtp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMailpitHarness checks the mailpit test harness itself (mailpit.go)
// against a real mailpit, so that plugin tests built on it can be trusted.
func TestMailpitHarness(t *testing.T) {
	mp := StartMailpit(t)
	addr := net.JoinHostPort(mp.SMTPHost, strconv.Itoa(mp.SMTPPort))

	if got := mp.Messages(t); len(got) != 0 {
		t.Fatalf("fresh mailpit has %d messages, want 0: %+v", len(got), got)
	}

	const to = "alice@example.org"
	send := func(auth smtp.Auth, rcpt, subject, body string) {
		t.Helper()
		msg := "From: OTP Sender <noreply@example.com>\r\n" +
			"To: " + rcpt + "\r\n" +
			"Subject: " + subject + "\r\n" +
			"X-Harness-Test: " + subject + "\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n" +
			"\r\n" + body + "\r\n"
		if err := smtp.SendMail(addr, auth, "noreply@example.com", []string{rcpt}, []byte(msg)); err != nil {
			t.Fatalf("SendMail to %s: %v", rcpt, err)
		}
	}

	// 1: plain SMTP, no AUTH, no TLS. The text has a longer digit run before
	// the 8-digit code that codeFrom must skip.
	send(nil, to, "first", "Order 1234567890 placed. Your code is 48213907, valid 10 min.")
	m := mp.WaitFor(t, to, 10*time.Second)
	if m.Subject != "first" {
		t.Errorf("Subject = %q, want %q", m.Subject, "first")
	}
	if m.From != "noreply@example.com" {
		t.Errorf("From = %q, want noreply@example.com", m.From)
	}
	if !slices.Equal(m.To, []string{to}) {
		t.Errorf("To = %v, want [%s]", m.To, to)
	}
	if m.Username != "" {
		t.Errorf("Username = %q, want empty (no AUTH sent)", m.Username)
	}
	if code := CodeFrom(t, m.Text, 8); code != "48213907" {
		t.Errorf("codeFrom = %q, want 48213907 (text %q)", code, m.Text)
	}
	if got := m.Header("x-harness-test"); got != "first" {
		t.Errorf("X-Harness-Test header = %q, want %q (headers %v)", got, "first", m.Headers)
	}
	if got := m.Header("Subject"); got != "first" {
		t.Errorf("Subject header = %q, want %q", got, "first")
	}
	if !strings.Contains(m.Header("From"), "OTP Sender") {
		t.Errorf("From header = %q, want display name", m.Header("From"))
	}

	// 2: with AUTH PLAIN over plain text (accepted: loopback + accept-any).
	// WaitFor must return this newer message, not the first one.
	send(smtp.PlainAuth("", "user", "pass", mp.SMTPHost), to, "second", "Your code is 77001234.")
	m2 := mp.WaitFor(t, to, 10*time.Second)
	if m2.Subject != "second" || m2.ID == m.ID {
		t.Fatalf("WaitFor returned %q (ID %s), want newest message %q", m2.Subject, m2.ID, "second")
	}
	if m2.Username != "user" {
		t.Errorf("Username = %q, want %q", m2.Username, "user")
	}
	if code := CodeFrom(t, m2.Text, 8); code != "77001234" {
		t.Errorf("codeFrom = %q, want 77001234", code)
	}

	// 3: a superstring address; mailpit's to: search would match it, Count
	// and WaitFor must not.
	send(nil, "xalice@example.org", "other", "Your code is 11112222.")
	mp.WaitFor(t, "xalice@example.org", 10*time.Second)
	if n := mp.Count(t, to); n != 2 {
		t.Errorf("Count(%s) = %d, want 2", to, n)
	}
	if n := mp.Count(t, "xalice@example.org"); n != 1 {
		t.Errorf("Count(xalice) = %d, want 1", n)
	}
	if n := mp.Count(t, "nobody@example.org"); n != 0 {
		t.Errorf("Count(nobody) = %d, want 0", n)
	}
	if got := mp.WaitFor(t, to, time.Second); got.Subject != "second" {
		t.Errorf("WaitFor(%s) after other mail = %q, want %q", to, got.Subject, "second")
	}
	if n := len(mp.Messages(t)); n != 3 {
		t.Errorf("len(Messages) = %d, want 3", n)
	}

	mp.DeleteAll(t)
	if n := len(mp.Messages(t)); n != 0 {
		t.Errorf("after DeleteAll: %d messages, want 0", n)
	}
	if n := mp.Count(t, to); n != 0 {
		t.Errorf("after DeleteAll: Count = %d, want 0", n)
	}

	mp.Stop()
	mp.Stop() // idempotent
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("SMTP port %s still accepts connections after Stop", addr)
	}
	if err := smtp.SendMail(addr, nil, "noreply@example.com", []string{to}, []byte("Subject: x\r\n\r\nx\r\n")); err == nil {
		t.Error("SendMail succeeded after Stop")
	}

	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Errorf("freePort = %d", p)
	}

	// codeFrom's exact-length rule on fixed inputs.
	for _, tc := range []struct {
		text string
		n    int
		want string
	}{
		{"code: 123456", 6, "123456"},
		{"1234567 then 654321", 6, "654321"},
		{"<b>00123456</b>", 8, "00123456"},
		{"12-345678 x 87654321", 8, "87654321"},
		{"abc999999def", 6, "999999"},
	} {
		if got := CodeFrom(t, tc.text, tc.n); got != tc.want {
			t.Errorf("CodeFrom(%q, %d) = %q, want %q", tc.text, tc.n, got, tc.want)
		}
	}
}
