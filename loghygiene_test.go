package emailotp

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLogHygiene runs whole flows on a server logging at DEBUG, with access
// logs on — success, a wrong code, SMTP failures, bad client secrets — and
// then reads every line written: no code, client secret, SMTP password,
// reference or token may appear, whole or as a 16-character piece, nor an
// unmasked address; and each challenge and validation has its one line.
func TestLogHygiene(t *testing.T) {
	const (
		clientSecret = "Cl1ent-S3cret-7d1e9a0b"
		wrongSecret  = "Wr0ng-S3cret-c0ffee42"
		smtpPass     = "SMTP-Passw0rd-b5e8f2a1"
	)
	serverTLS, caPEM, _, _ := testCert(t)
	srv := startFakeSMTP(t, withSTARTTLS(serverTLS), withAuth(faultSMTPUser, smtpPass), withDelay(2*time.Second))
	site := fmt.Sprintf(`
	log
	email_otp {
		smtp {
			host 127.0.0.1
			port %d
			ca_file %s
			username %s
			password %s
			from "Test <no-reply@example.com>"
			timeout 1s
		}
		template {
			subject "Your code"
			body "Your code is {0}"
		}
		client app %s
	}
	respond "upstream" 299
`, srv.Port, writeCAFile(t, caPEM), faultSMTPUser, smtpPass, clientSecret)
	tc := startCaddy(t, site)
	tokenURL := tc.Base + tokenPath
	creds := []string{"app", clientSecret}

	var secrets []string // everything that must not be logged
	addrs := []string{"logged.user@example.com", "second.user@example.com", "slow.user@example.com", "refused.user@example.com", "badsecret@example.com"}
	sent := 0
	challenge := func(addr string) (string, string) {
		t.Helper()
		a := post(t, tokenURL, initiateForm(addr), creds)
		if a.Status != 200 || a.reference() == "" {
			t.Fatalf("initiate %s: %s", addr, a)
		}
		sent++
		msgs := srv.WaitCount(sent, 10*time.Second)
		code := fakeCode(t, msgs[sent-1])
		secrets = append(secrets, a.reference(), code)
		return a.reference(), code
	}

	// Success after a wrong code, with Basic.
	ref, code := challenge(addrs[0])
	w := post(t, tokenURL, validateForm(ref, wrong(code)), creds)
	if w.Status != 400 || w.reference() == "" {
		t.Fatalf("wrong code: %s", w)
	}
	secrets = append(secrets, w.reference(), wrong(code))
	ok := post(t, tokenURL, validateForm(w.reference(), code), creds)
	if ok.Status != 200 || ok.str("access_token") == "" || ok.str("id_token") == "" {
		t.Fatalf("validate: %s", ok)
	}
	secrets = append(secrets, ok.str("access_token"), ok.str("id_token"))

	// Success with the secret in the body.
	ref2, code2 := challenge(addrs[1])
	f := validateForm(ref2, code2)
	f.Set("client_id", "app")
	f.Set("client_secret", clientSecret)
	ok2 := post(t, tokenURL, f, nil)
	if ok2.Status != 200 {
		t.Fatalf("validate with body credentials: %s", ok2)
	}
	secrets = append(secrets, ok2.str("access_token"), ok2.str("id_token"))

	// SMTP failures: the server takes the mail too late (so its code is
	// known), refuses AUTH (the password was sent), refuses connections.
	srv.SetMode(modeSlowData)
	if a := post(t, tokenURL, initiateForm(addrs[2]), creds); a.Status != 503 {
		t.Fatalf("slow DATA: %s", a)
	}
	sent++
	late := srv.WaitCount(sent, 10*time.Second)
	secrets = append(secrets, fakeCode(t, late[sent-1]))
	srv.SetMode(modeAuthFail)
	if a := post(t, tokenURL, initiateForm(addrs[3]), creds); a.Status != 503 {
		t.Fatalf("AUTH refused: %s", a)
	}
	srv.SetMode(modeRefuse)
	if a := post(t, tokenURL, initiateForm(addrs[3]), creds); a.Status != 503 {
		t.Fatalf("server down: %s", a)
	}
	srv.Restart()

	// Bad client secrets, in Basic and in the body.
	if a := post(t, tokenURL, initiateForm(addrs[4]), []string{"app", wrongSecret}); a.Status != 401 {
		t.Fatalf("bad Basic secret: %s", a)
	}
	bf := initiateForm(addrs[4])
	bf.Set("client_id", "app")
	bf.Set("client_secret", wrongSecret)
	if a := post(t, tokenURL, bf, nil); a.Status != 401 {
		t.Fatalf("bad body secret: %s", a)
	}
	secrets = append(secrets, clientSecret, wrongSecret, smtpPass,
		base64.StdEncoding.EncodeToString([]byte("app:"+clientSecret)),
		base64.StdEncoding.EncodeToString([]byte("app:"+wrongSecret)))

	// Every line written so far.
	text := tc.Logs(t)
	entries := logEntries(t, text)
	for _, s := range secrets {
		for _, piece := range secretPieces(s) {
			if strings.Contains(text, piece) {
				t.Errorf("log holds %q (from a secret of %d chars)", piece, len(s))
			}
		}
	}
	for _, a := range addrs {
		if strings.Contains(strings.ToLower(text), strings.ToLower(a)) {
			t.Errorf("log holds the unmasked address %s", a)
		}
	}
	assertNoDigitRuns(t, entries)

	// The expected lines, one per challenge and per validation.
	type line struct{ msg, outcome, address string }
	var got []line
	access := 0
	for _, e := range entries {
		if l, _ := e["logger"].(string); strings.HasPrefix(l, "http.log.access") {
			access++
		}
		if e["logger"] != pluginLogger {
			continue
		}
		msg, _ := e["msg"].(string)
		if msg != "otp challenge" && msg != "otp validation" {
			continue
		}
		outcome, _ := e["outcome"].(string)
		address, _ := e["address"].(string)
		got = append(got, line{msg, outcome, address})
	}
	want := []line{
		{"otp challenge", "sent", "l***@example.com"},
		{"otp validation", "invalid_code", "l***@example.com"},
		{"otp validation", "ok", "l***@example.com"},
		{"otp challenge", "sent", "s***@example.com"},
		{"otp validation", "ok", "s***@example.com"},
		{"otp challenge", "smtp_failed", "s***@example.com"},
		{"otp challenge", "smtp_failed", "r***@example.com"},
		{"otp challenge", "smtp_failed", "r***@example.com"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plugin lines:\n got %v\nwant %v", got, want)
	}
	// 10 token requests; the access log must have been checked too.
	if access < 10 {
		t.Errorf("%d access log lines, want one per request (10)", access)
	}
	if t.Failed() {
		t.Logf("log:\n%s", text)
	}
}

// secretPieces is a secret and, for long ones, every 16-character window of
// it, so a truncated or partly logged secret is caught too.
func secretPieces(s string) []string {
	const n = 16
	if len(s) <= n {
		return []string{s}
	}
	out := make([]string, 0, len(s)-n+1)
	for i := 0; i+n <= len(s); i++ {
		out = append(out, s[i:i+n])
	}
	return out
}
