package emailotp

// A reference is bound to the handler that sent it (its issuer and token
// path) and is checked against the validating handler's current config:
// the client's allow_domains, and the stricter of the sealed and the
// current otp_timeout and max_attempts.

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// webSite is a site body whose one client, web, may verify the domains
// given (any when none), with a sign-in page for it. extra goes inside the
// email_otp block.
func webSite(smtpPort int, domains, extra string) string {
	allow := ""
	if domains != "" {
		allow = "\n\t\t\tallow_domains " + domains
	}
	return fmt.Sprintf(`
	email_otp {
		smtp {
			host 127.0.0.1
			port %d
			tls none
			from "Test <no-reply@example.com>"
			timeout 5s
		}
		client web {
			secret web-secret%s
		}
		signin {
			client web
		}
%s
	}
	respond "upstream saw {method} {path}" 299
`, smtpPort, allow, extra)
}

var webCreds = []string{"web", "web-secret"}

// startTwoSites runs one Caddy with two sites, one storage: the returned
// testCaddy's Base is site a's, second is site b's.
func startTwoSites(t *testing.T, a, b string) (tc *testCaddy, second string) {
	t.Helper()
	tc = startCaddy(t, a)
	port2 := freePort(t)
	both := a + fmt.Sprintf("\n}\n\nhttp://127.0.0.1:%d {\n\tbind 127.0.0.1\n%s", port2, b)
	tc.load(t, both)
	second = fmt.Sprintf("http://127.0.0.1:%d", port2)
	if got := httpGet(t, second+"/uas/.well-known/openid-configuration"); got.Status != http.StatusOK {
		t.Fatalf("second site: %s", got)
	}
	return tc, second
}

// TestReferenceBoundToSite: two sites in one Caddy share the storage, so
// the reference key, and each has a client web; the second restricts
// allow_domains. A reference and code from the first are refused at the
// second, at the token endpoint and at the sign-in page, and stay usable
// at the first: the refusal consumed nothing.
func TestReferenceBoundToSite(t *testing.T) {
	mp := startMailpit(t)
	tc, restricted := startTwoSites(t, webSite(mp.SMTPPort, "", ""), webSite(mp.SMTPPort, "example.com", ""))
	open := tc.Base

	for _, addr := range []string{"mallory@evil.example", "alice@example.com"} {
		t.Run("token endpoint, "+addr, func(t *testing.T) {
			a := post(t, open+tokenPath, initiateForm(addr), webCreds)
			if a.Status != http.StatusOK {
				t.Fatalf("initiate at the open site: %s", a)
			}
			code := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)
			b := post(t, restricted+tokenPath, validateForm(a.reference(), code), webCreds)
			if b.Status != http.StatusBadRequest || b.str("error") != "invalid_grant" ||
				b.str("error_description") != "reference is invalid" || b.reference() != "" || b.str("access_token") != "" {
				t.Fatalf("the open site's reference at the restricted site: %s", b)
			}
			if c := post(t, open+tokenPath, validateForm(a.reference(), code), webCreds); c.Status != http.StatusOK {
				t.Errorf("the reference at its own site after the refusal: %s", c)
			}
		})
	}

	t.Run("sign-in page", func(t *testing.T) {
		const addr = "mallory2@evil.example"
		ob := newBrowserless(t, open)
		tok := ob.do(http.MethodGet, signinPath, nil, nil).field("csrf")
		start := ob.do(http.MethodPost, signinPath+"/start", url.Values{"email": {addr}, "csrf": {tok}}, nil)
		ref := start.field("reference")
		if start.Status != http.StatusOK || ref == "" {
			t.Fatalf("start at the open site: %d", start.Status)
		}
		code := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)

		rb := newBrowserless(t, restricted)
		rtok := rb.do(http.MethodGet, signinPath, nil, nil).field("csrf")
		v := rb.do(http.MethodPost, signinPath+"/verify", url.Values{"reference": {ref}, "code": {code}, "csrf": {rtok}}, nil)
		if v.Status != http.StatusBadRequest || rb.cookie(DefaultSessionCookie) != nil || v.field("reference") != "" {
			t.Fatalf("the open site's reference at the restricted site's sign-in page: %d, session cookie %v", v.Status, rb.cookie(DefaultSessionCookie))
		}
		ok := ob.do(http.MethodPost, signinPath+"/verify", url.Values{"reference": {ref}, "code": {code}, "csrf": {tok}}, nil)
		if ok.Status != http.StatusSeeOther || ob.cookie(DefaultSessionCookie) == nil {
			t.Errorf("the reference at its own sign-in page after the refusal: %d", ok.Status)
		}
	})
}

// TestReferenceRecheckAllowDomains: allow_domains is the client's as
// configured when the code is checked, not when it was sent.
func TestReferenceRecheckAllowDomains(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, webSite(mp.SMTPPort, "", ""))
	const addr, pageAddr = "eve@evil.example", "eve2@evil.example"
	a := post(t, tc.Base+tokenPath, initiateForm(addr), webCreds)
	if a.Status != http.StatusOK {
		t.Fatalf("initiate: %s", a)
	}
	code := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)
	br := newBrowserless(t, tc.Base)
	tok := br.do(http.MethodGet, signinPath, nil, nil).field("csrf")
	start := br.do(http.MethodPost, signinPath+"/start", url.Values{"email": {pageAddr}, "csrf": {tok}}, nil)
	if start.Status != http.StatusOK || start.field("reference") == "" {
		t.Fatalf("sign-in start: %d", start.Status)
	}
	pageCode := codeFrom(t, mp.WaitFor(t, pageAddr, 10*time.Second).Text, DefaultCodeLength)

	tc.load(t, webSite(mp.SMTPPort, "example.com", "")) // the operator restricts web
	b := post(t, tc.Base+tokenPath, validateForm(a.reference(), code), webCreds)
	if b.Status != http.StatusBadRequest || b.str("error") != "unauthorized_client" || b.str("access_token") != "" {
		t.Fatalf("a reference for a domain the client may no longer verify: %s", b)
	}
	v := br.do(http.MethodPost, signinPath+"/verify", url.Values{"reference": {start.field("reference")}, "code": {pageCode}, "csrf": {tok}}, nil)
	if v.Status != http.StatusForbidden || br.cookie(DefaultSessionCookie) != nil {
		t.Fatalf("sign-in page, a domain the client may no longer verify: %d, session cookie %v", v.Status, br.cookie(DefaultSessionCookie))
	}
}

// TestReloadShortensOTPTimeout: a code mailed under otp_timeout 10m is
// refused once a reload set 2s and 2s have passed, with the "OTP Expired"
// answer and its dead end.
func TestReloadShortensOTPTimeout(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, webSite(mp.SMTPPort, "", "\t\totp_timeout 10m"))
	const addr = "timeout@example.com"
	a := post(t, tc.Base+tokenPath, initiateForm(addr), webCreds)
	code := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)

	tc.load(t, webSite(mp.SMTPPort, "", "\t\totp_timeout 2s"))
	time.Sleep(2100 * time.Millisecond)
	b := post(t, tc.Base+tokenPath, validateForm(a.reference(), code), webCreds)
	if b.Status != http.StatusBadRequest || b.str("error_description") != descOTPExpired || b.reference() == "" || b.str("access_token") != "" {
		t.Fatalf("a 10m code after a reload to 2s: %s", b)
	}
	if c := post(t, tc.Base+tokenPath, validateForm(b.reference(), code), webCreds); c.Status != http.StatusBadRequest || c.str("error_description") != descOTPExpired {
		t.Errorf("its dead end: %s", c)
	}
}

// TestReloadMaxAttempts: the stricter of the sealed and the current
// max_attempts holds, whichever way a reload moved it.
func TestReloadMaxAttempts(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, webSite(mp.SMTPPort, "", "\t\tmax_attempts 2"))
	// spend sends wrong codes down the chain and returns the last answer.
	spend := func(ref, code string, n int) answer {
		t.Helper()
		var a answer
		for i := range n {
			a = post(t, tc.Base+tokenPath, validateForm(ref, wrong(code)), webCreds)
			if a.Status != http.StatusBadRequest || a.str("error_description") != descOTPInvalid || a.reference() == "" {
				t.Fatalf("wrong code %d: %s", i+1, a)
			}
			ref = a.reference()
		}
		return a
	}

	t.Run("raised after sending", func(t *testing.T) {
		const addr = "raised@example.com"
		a := post(t, tc.Base+tokenPath, initiateForm(addr), webCreds)
		code := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)
		tc.load(t, webSite(mp.SMTPPort, "", "\t\tmax_attempts 5"))
		last := spend(a.reference(), code, 2) // the sealed 2 are used up
		b := post(t, tc.Base+tokenPath, validateForm(last.reference(), code), webCreds)
		if b.Status != http.StatusBadRequest || b.str("error_description") != descOTPInvalid || b.str("access_token") != "" {
			t.Fatalf("right code after the sealed max_attempts: %s", b)
		}
	})

	t.Run("lowered after sending", func(t *testing.T) {
		const addr = "lowered@example.com"
		a := post(t, tc.Base+tokenPath, initiateForm(addr), webCreds) // under 5
		code := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)
		first := spend(a.reference(), code, 1)
		tc.load(t, webSite(mp.SMTPPort, "", "\t\tmax_attempts 1"))
		b := post(t, tc.Base+tokenPath, validateForm(first.reference(), code), webCreds)
		if b.Status != http.StatusBadRequest || b.str("error_description") != descOTPInvalid || b.str("access_token") != "" {
			t.Fatalf("right code after max_attempts was lowered below the attempts made: %s", b)
		}
	})
}

// TestReferenceBoundAcrossProcesses: two processes on one storage act as one
// server when they resolve the same issuer, and refuse each other's
// references when they do not (the default issuer holds the port).
func TestReferenceBoundAcrossProcesses(t *testing.T) {
	mp := startMailpit(t)
	storage := filepath.Join(t.TempDir(), "storage")
	A := startCaddyProc(t, webSite(mp.SMTPPort, "", ""), procOpts{Storage: storage})
	B := startCaddyProc(t, webSite(mp.SMTPPort, "", ""), procOpts{Storage: storage})
	const addr = "procs@example.com"
	a := post(t, A.Base+tokenPath, initiateForm(addr), webCreds)
	code := codeFrom(t, mp.WaitFor(t, addr, 15*time.Second).Text, DefaultCodeLength)
	b := post(t, B.Base+tokenPath, validateForm(a.reference(), code), webCreds)
	if b.Status != http.StatusBadRequest || b.str("error_description") != "reference is invalid" {
		t.Fatalf("a reference of http://%s/uas at another issuer: %s", strings.TrimPrefix(A.Base, "http://"), b)
	}
	if c := post(t, A.Base+tokenPath, validateForm(a.reference(), code), webCreds); c.Status != http.StatusOK {
		t.Errorf("at its own issuer: %s", c)
	}
}
