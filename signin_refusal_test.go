package emailotp

// The public sign-in page does not tell which mailboxes exist (issue 10
// item 8): a recipient the mail server refuses (550), a domain the client's
// allow_domains refuses and a mailed code get the same answer, byte for byte
// but for the reference, the CSRF token and the address. The grant keeps its
// precise errors unless the client sets uniform_refusals.

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// refusalSite is a site on the fake SMTP server whose sign-in page belongs to
// client "other" (allow_domains example.org), with a second client that
// hides refusals from the grant too.
func refusalSite(smtpPort int) string {
	return otpSite(smtpPort, `
		client hiding {
			secret hiding-secret
			allow_domains example.org
			uniform_refusals
		}
		signin {
			client other
		}
`)
}

// normalized is a page answer with its per-request values blanked: the
// reference and CSRF fields and the address.
func normalized(a pageAnswer, addr string) string {
	b := regexp.MustCompile(`name="(reference|csrf)" value="[^"]*"`).ReplaceAllString(a.Body, `name="$1" value="…"`)
	return strings.ReplaceAll(b, addr, "ADDR")
}

func TestSignInRefusalsLookSent(t *testing.T) {
	srv := startFakeSMTP(t)
	tc := startCaddy(t, refusalSite(srv.Port))
	b := newBrowserless(t, tc.Base)
	b.do(http.MethodGet, signinPath, nil, nil) // the CSRF cookie
	csrf := b.cookie(DefaultSessionCookie + "_csrf").Value
	start := func(addr string) pageAnswer {
		return b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {addr}, "csrf": {csrf}, "return": {"/app/"}}, nil)
	}
	refusedBefore := func(reason string) float64 {
		var m dto.Metric
		if err := collectors.refusals.WithLabelValues("other", reason).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	domain0, rcpt0 := refusedBefore("domain_refused"), refusedBefore("recipient_refused")

	// Three addresses of one length, so even Content-Length must agree.
	const sentTo, refusedRcpt, refusedDomain = "known@example.org", "nobod@example.org", "other@example.net"
	srv.SetMode(modeOK)
	sent := start(sentTo)
	srv.WaitCount(1, 10*time.Second)
	srv.SetMode(modeRejectRcpt)
	rcpt := start(refusedRcpt)
	srv.SetMode(modeOK)
	dom := start(refusedDomain)

	if sent.Status != http.StatusOK || sent.field("reference") == "" || !strings.Contains(sent.Body, `id="code"`) {
		t.Fatalf("mailed code: %d %s", sent.Status, sent.Body)
	}
	want := normalized(sent, sentTo)
	for _, c := range []struct {
		what string
		a    pageAnswer
		addr string
	}{{"550 recipient", rcpt, refusedRcpt}, {"refused domain", dom, refusedDomain}} {
		if c.a.Status != sent.Status {
			t.Errorf("%s: status %d, mailed code %d", c.what, c.a.Status, sent.Status)
		}
		if got := normalized(c.a, c.addr); got != want {
			t.Errorf("%s: page differs from the mailed code's:\n%s\n---- mailed:\n%s", c.what, got, want)
		}
		for k := range sent.Header {
			if k == "Date" {
				continue
			}
			if !slices.Equal(c.a.Header[k], sent.Header[k]) {
				t.Errorf("%s: header %s = %q, mailed code %q", c.what, k, c.a.Header[k], sent.Header[k])
			}
		}
		if len(c.a.Header) != len(sent.Header) {
			t.Errorf("%s: headers %v, mailed code %v", c.what, c.a.Header, sent.Header)
		}
		if len(c.a.field("reference")) != len(sent.field("reference")) {
			t.Errorf("%s: reference of another length", c.what)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].To[0] != sentTo {
		t.Errorf("mailed: %+v, want only %s", msgs, sentTo)
	}
	if d, r := refusedBefore("domain_refused")-domain0, refusedBefore("recipient_refused")-rcpt0; d != 1 || r != 1 {
		t.Errorf("refused_total: domain +%v recipient +%v, want +1 each", d, r)
	}
	logs := tc.Logs(t)
	for _, outcome := range []string{`"outcome":"domain_refused"`, `"outcome":"smtp_failed"`} {
		if !strings.Contains(logs, outcome) {
			t.Errorf("no log line with %s", outcome)
		}
	}

	// The decoy reference behaves as a real one: a code is a wrong code.
	v := b.do(http.MethodPost, signinPath+"/verify", url.Values{"reference": {rcpt.field("reference")}, "code": {"123456"}, "csrf": {csrf}}, nil)
	if v.Status != http.StatusBadRequest || !strings.Contains(v.Body, pageTexts["en"].ErrCode) || v.field("reference") == "" {
		t.Errorf("code against a decoy: %d %s", v.Status, v.Body)
	}
}

func TestGrantUniformRefusalsOption(t *testing.T) {
	srv := startFakeSMTP(t)
	tc := startCaddy(t, refusalSite(srv.Port))
	other := []string{"other", "other-secret"}
	hiding := []string{"hiding", "hiding-secret"}

	// By default the authenticated client gets the precise errors.
	if a := post(t, tc.Base+tokenPath, initiateForm("x@example.net"), other); a.Status != 400 || a.str("error") != "unauthorized_client" {
		t.Errorf("refused domain, default: %s", a)
	}
	srv.SetMode(modeRejectRcpt)
	if a := post(t, tc.Base+tokenPath, initiateForm("nobody@example.org"), other); a.Status != 400 || a.str("error") != "invalid_request" {
		t.Errorf("550, default: %s", a)
	}
	// With uniform_refusals both look like a mailed code.
	for _, addr := range []string{"nobody@example.org", "x@example.net"} {
		a := post(t, tc.Base+tokenPath, initiateForm(addr), hiding)
		if a.Status != 200 || a.reference() == "" {
			t.Fatalf("uniform_refusals, %s: %s", addr, a)
		}
		v := post(t, tc.Base+tokenPath, validateForm(a.reference(), "123456"), hiding)
		if v.Status != 400 || v.str("error_description") != "OTP Invalid" {
			t.Errorf("code against the decoy for %s: %s", addr, v)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d mails went out", n)
	}
}

// Under the per-address limit too, a refused address answers as a mailed
// one does: the limit counts it, so both reach 429 on the same request.
func TestSignInRefusalsUnderLimit(t *testing.T) {
	srv := startFakeSMTP(t)
	tc := startCaddy(t, otpSite(srv.Port, `
		limit address 2 15m
		signin {
			client other
		}
`))
	b := newBrowserless(t, tc.Base)
	csrf := b.do(http.MethodGet, signinPath, nil, nil).field("csrf")
	for _, addr := range []string{"known@example.org", "other@example.net"} {
		var got []int
		for range 3 {
			a := b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {addr}, "csrf": {csrf}}, nil)
			got = append(got, a.Status)
		}
		if !slices.Equal(got, []int{200, 200, 429}) {
			t.Errorf("%s: statuses %v, want [200 200 429]", addr, got)
		}
	}
}
