package emailotp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSubjectAsSent: the tokens' sub is the username as the client sent it
// and their email the normalized address, which is what the gate, its
// allow lists, introspection and revocation by address go by. A token
// whose sub is another mailbox than its email is refused.
func TestSubjectAsSent(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, gateSite(mp.SMTPPort, "127.0.0.1:9"))
	const sent, email = "Bob@EXAMPLE.com", "Bob@example.com"

	a := post(t, tc.Base+tokenPath, initiateForm(sent), appCreds)
	if a.Status != http.StatusOK {
		t.Fatalf("initiate: %s", a)
	}
	code := codeFrom(t, mp.WaitFor(t, email, 10*time.Second).Text, DefaultCodeLength)
	ok := post(t, tc.Base+tokenPath, validateForm(a.reference(), code), appCreds)
	if ok.Status != http.StatusOK {
		t.Fatalf("validate: %s", ok)
	}
	at := ok.str("access_token")
	if c := jwtPayload(t, at); c["sub"] != sent || c["email"] != email {
		t.Fatalf("access token sub %v email %v, want %q and %q", c["sub"], c["email"], sent, email)
	}

	wantUser(t, tc.gate(t, gateReq{path: "/who/", bearer: at}), "user="+email+" email="+email+" ")
	wantUser(t, tc.gate(t, gateReq{path: "/bob-only/", bearer: at}), "user="+email)
	wantRefused(t, tc.gate(t, gateReq{path: "/example-org/", bearer: at}), true)

	in := post(t, tc.Base+"/uas"+introspectSuffix, url.Values{"token": {at}}, appCreds)
	if in.JSON["active"] != true || in.str("sub") != sent || in.str("email") != email {
		t.Errorf("introspection: %s", in)
	}

	// The validation's username, in another case, is the sub; the gate
	// still knows the mailbox by email.
	const carol, carolEmail = "carol@EXAMPLE.com", "Carol@example.com"
	ref, code2, _ := initiate(t, tc, mp, carolEmail, initiateForm(carolEmail), appCreds)
	v := validateForm(ref, code2)
	v.Set("username", carol)
	ok2 := post(t, tc.Base+tokenPath, v, appCreds)
	if c := jwtPayload(t, ok2.str("id_token")); c["sub"] != carol || c["email"] != carolEmail {
		t.Fatalf("id_token sub %v email %v, want %q and %q", c["sub"], c["email"], carol, carolEmail)
	}
	wantUser(t, tc.gate(t, gateReq{path: "/who/", bearer: ok2.str("access_token")}), "user="+carolEmail+" ")

	m := newMinter(t, tc.Storage, "RS256", tc.Base+"/uas")
	other := m.at(t, "mallory@evil.example", func(c map[string]any) { c["email"] = email })
	wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: other}), true)

	// Revoking the address, in any case of its domain, ends the token.
	req, err := http.NewRequest(http.MethodPost, "http://"+tc.AdminAddr+"/email-otp/revoke", strings.NewReader(`{"address":"Bob@Example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r := do(t, req); r.Status != http.StatusOK {
		t.Fatalf("admin revoke: %s", r)
	}
	wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: at}), true)
}
