package emailotp

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	grantURI  = DefaultGrantType
	tokenPath = DefaultTokenPath
)

// otpSite is a site body with the plugin mailing through mailpit and an
// upstream stand-in behind it. extra goes inside the email_otp block.
func otpSite(smtpPort int, extra string) string {
	return fmt.Sprintf(`
	email_otp {
		otp_timeout 10m
		smtp {
			host 127.0.0.1
			port %d
			tls none
			from "Test <no-reply@example.com>"
			timeout 5s
		}
		template {
			subject "Your code"
			body "Your code is {0}"
			locale fi "Kertakäyttösalasana" "Koodisi on {0}"
			locale sv-SE "Engångskod" "Din kod är {0}"
		}
		client app app-secret
		client other {
			secret other-secret
			allow_domains example.org
			claim role tester
		}
		client strict {
			secret strict-secret
			request_template deny
		}
%s
	}
	respond "upstream saw {method} {path} body={http.request.body}" 299
`, smtpPort, extra)
}

var appCreds = []string{"app", "app-secret"}

func initiateForm(username string) url.Values {
	return url.Values{"grant_type": {grantURI}, "scope": {"openid"}, "username": {username}}
}

func validateForm(ref, code string) url.Values {
	return url.Values{"grant_type": {grantURI}, "scope": {"openid"},
		"x_globalsign_iam_reference_id": {ref}, "x_globalsign_iam_otp_code": {code}}
}

// initiate asks for a code and returns the reference and the mailed code.
func initiate(t *testing.T, tc *testCaddy, mp *mailpit, addr string, form url.Values, basic []string) (string, string, mpFull) {
	t.Helper()
	if form == nil {
		form = initiateForm(addr)
	}
	a := post(t, tc.Base+tokenPath, form, basic)
	if a.Status != http.StatusOK || a.reference() == "" {
		t.Fatalf("initiate: %s", a)
	}
	if a.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("initiate Cache-Control = %q", a.Header.Get("Cache-Control"))
	}
	msg := mp.WaitFor(t, addr, 10*time.Second)
	return a.reference(), codeFrom(t, msg.Text, DefaultCodeLength), msg
}

func TestGrantEndToEnd(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, ""))
	tokenURL := tc.Base + tokenPath

	t.Run("happy path with Basic auth", func(t *testing.T) {
		ref, code, msg := initiate(t, tc, mp, "alice@example.com", nil, appCreds)
		if msg.Subject != "Your code" || !strings.Contains(msg.Text, "Your code is "+code) {
			t.Errorf("mail = %q / %q", msg.Subject, msg.Text)
		}
		if msg.Header("Auto-Submitted") != "auto-generated" || msg.Header("Message-Id") == "" {
			t.Errorf("headers: Auto-Submitted=%q Message-Id=%q", msg.Header("Auto-Submitted"), msg.Header("Message-Id"))
		}
		a := post(t, tokenURL, validateForm(ref, code), appCreds)
		if a.Status != 200 || a.str("token_type") != "Bearer" || a.str("id_token") == "" || a.str("access_token") == "" {
			t.Fatalf("validate: %s", a)
		}
		if a.JSON["expires_in"].(float64) != 3600 || a.str("scope") != "openid" {
			t.Errorf("expires_in/scope: %s", a)
		}
		if a.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", a.Header.Get("Cache-Control"))
		}
		// replay of the consumed reference
		b := post(t, tokenURL, validateForm(ref, code), appCreds)
		if b.Status != 400 || b.str("error") != "invalid_grant" || b.reference() != "" {
			t.Errorf("replay: %s", b)
		}
	})

	t.Run("happy path with body auth", func(t *testing.T) {
		f := initiateForm("bob@example.com")
		f.Set("client_id", "app")
		f.Set("client_secret", "app-secret")
		ref, code, _ := initiate(t, tc, mp, "bob@example.com", f, nil)
		v := validateForm(ref, code)
		v.Set("client_id", "app")
		v.Set("client_secret", "app-secret")
		v.Set("username", "bob@EXAMPLE.com")
		if a := post(t, tokenURL, v, nil); a.Status != 200 || a.str("id_token") == "" {
			t.Fatalf("validate: %s", a)
		}
	})

	t.Run("wrong code then right code", func(t *testing.T) {
		ref, code, _ := initiate(t, tc, mp, "carol@example.com", nil, appCreds)
		a := post(t, tokenURL, validateForm(ref, wrong(code)), appCreds)
		if a.Status != 400 || a.str("error") != "invalid_grant" || a.str("error_description") != "OTP Invalid" || a.reference() == "" {
			t.Fatalf("wrong code: %s", a)
		}
		// the old reference is spent, the new one works
		if b := post(t, tokenURL, validateForm(ref, code), appCreds); b.Status != 400 {
			t.Errorf("old reference accepted after retry: %s", b)
		}
		if b := post(t, tokenURL, validateForm(a.reference(), code), appCreds); b.Status != 200 {
			t.Errorf("new reference refused: %s", b)
		}
	})

	t.Run("attempts exhausted", func(t *testing.T) {
		ref, code, _ := initiate(t, tc, mp, "dave@example.com", nil, appCreds)
		for i := 1; i <= DefaultMaxAttempts; i++ {
			a := post(t, tokenURL, validateForm(ref, wrong(code)), appCreds)
			if a.Status != 400 || a.str("error_description") != "OTP Invalid" {
				t.Fatalf("attempt %d: %s", i, a)
			}
			ref = a.reference()
			if i < DefaultMaxAttempts && ref == "" {
				t.Fatalf("attempt %d: no new reference", i)
			}
		}
		// after the last attempt, a dead end: the right code gets the same
		// answer and another dead end, never tokens
		for i := range 2 {
			a := post(t, tokenURL, validateForm(ref, code), appCreds)
			if a.Status != 400 || a.str("error_description") != "OTP Invalid" || a.reference() == "" || a.str("access_token") != "" {
				t.Fatalf("right code on the dead end, try %d: %s", i+1, a)
			}
			ref = a.reference()
		}
	})

	t.Run("wrong client", func(t *testing.T) {
		ref, code, _ := initiate(t, tc, mp, "erin@example.com", nil, appCreds)
		a := post(t, tokenURL, validateForm(ref, code), []string{"strict", "strict-secret"})
		if a.Status != 400 || a.str("error") != "invalid_grant" {
			t.Fatalf("other client: %s", a)
		}
		// not consumed by the wrong client's attempt
		if b := post(t, tokenURL, validateForm(ref, code), appCreds); b.Status != 200 {
			t.Errorf("reference lost to another client's attempt: %s", b)
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		a := post(t, tokenURL, initiateForm("frank@example.com"), []string{"nobody", "x"})
		if a.Status != 401 || a.str("error") != "invalid_client" || !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("unknown client: %s %v", a, a.Header)
		}
		b := post(t, tokenURL, initiateForm("frank@example.com"), []string{"app", "wrong"})
		if b.Status != 401 || b.str("error") != "invalid_client" {
			t.Fatalf("bad secret: %s", b)
		}
		if n := mp.Count(t, "frank@example.com"); n != 0 {
			t.Errorf("%d mails sent to an unauthenticated request", n)
		}
	})

	t.Run("request title and body", func(t *testing.T) {
		f := initiateForm("gina@example.com")
		f.Set("x_globalsign_iam_otp_title", "Sign in to Shop")
		f.Set("x_globalsign_iam_otp_body", "Shop code: {0}")
		_, code, msg := initiate(t, tc, mp, "gina@example.com", f, appCreds)
		if msg.Subject != "Sign in to Shop" || !strings.Contains(msg.Text, "Shop code: "+code) {
			t.Errorf("mail = %q / %q", msg.Subject, msg.Text)
		}
		a := post(t, tokenURL, f, []string{"strict", "strict-secret"})
		if a.Status != 400 || a.str("error") != "unauthorized_client" {
			t.Errorf("strict client with title: %s", a)
		}
		f.Set("x_globalsign_iam_otp_body", "no placeholder")
		if a := post(t, tokenURL, f, appCreds); a.Status != 400 || a.str("error") != "invalid_request" {
			t.Errorf("body without {0}: %s", a)
		}
	})

	t.Run("ui_locales", func(t *testing.T) {
		for _, c := range []struct{ locales, addr, subject, body string }{
			{"fi", "hanna@example.com", "Kertakäyttösalasana", "Koodisi on "},
			{"de sv", "ivan@example.com", "Engångskod", "Din kod är "},
			{"de", "jane@example.com", "Your code", "Your code is "},
			{"!!garbage!! fi-FI", "kim@example.com", "Kertakäyttösalasana", "Koodisi on "},
		} {
			f := initiateForm(c.addr)
			f.Set("ui_locales", c.locales)
			_, code, msg := initiate(t, tc, mp, c.addr, f, appCreds)
			if msg.Subject != c.subject || !strings.Contains(msg.Text, c.body+code) {
				t.Errorf("ui_locales %q: mail = %q / %q", c.locales, msg.Subject, msg.Text)
			}
		}
	})

	t.Run("allowed domains", func(t *testing.T) {
		a := post(t, tokenURL, initiateForm("lee@example.com"), []string{"other", "other-secret"})
		if a.Status != 400 || a.str("error") != "unauthorized_client" {
			t.Errorf("domain not allowed: %s", a)
		}
		if n := mp.Count(t, "lee@example.com"); n != 0 {
			t.Errorf("%d mails sent to a refused domain", n)
		}
		initiate(t, tc, mp, "lee@example.org", nil, []string{"other", "other-secret"})
	})

	t.Run("other grants pass through with their body", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "scope": {"x"}}
		a := post(t, tokenURL, f, appCreds)
		if a.Status != 299 || !strings.Contains(string(a.Body), "body=grant_type=client_credentials&scope=x") {
			t.Errorf("pass-through: %s", a)
		}
		req, _ := http.NewRequest(http.MethodGet, tc.Base+"/some/app/page", nil)
		if b := do(t, req); b.Status != 299 || !strings.Contains(string(b.Body), "GET /some/app/page") {
			t.Errorf("other path: %s", b)
		}
	})
}

// wrong returns a code of the same length that differs from code.
func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestGrantSMTPDown(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, ""))
	mp.Stop()
	a := post(t, tc.Base+tokenPath, initiateForm("zed@example.com"), appCreds)
	if a.Status != 503 || a.str("error") != "temporarily_unavailable" || a.Header.Get("Retry-After") == "" || a.reference() != "" {
		t.Fatalf("SMTP down: %s %v", a, a.Header)
	}
}

func TestGrantExpiry(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, strings.Replace(otpSite(mp.SMTPPort, ""), "otp_timeout 10m", "otp_timeout 1s", 1))
	ref, code, _ := initiate(t, tc, mp, "old@example.com", nil, appCreds)
	time.Sleep(2100 * time.Millisecond)
	a := post(t, tc.Base+tokenPath, validateForm(ref, code), appCreds)
	if a.Status != 400 || a.str("error") != "invalid_grant" || a.str("error_description") != "OTP Expired" || a.reference() == "" {
		t.Fatalf("expired: %s", a)
	}
	if b := post(t, tc.Base+tokenPath, validateForm(a.reference(), code), appCreds); b.Status != 400 || b.str("error_description") != "OTP Expired" {
		t.Fatalf("the dead end of an expired code: %s", b)
	}
}
