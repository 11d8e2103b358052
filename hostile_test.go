package emailotp

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostileRow is one request of the hostile-input table and what it must get.
type hostileRow struct {
	name   string
	method string   // default POST
	path   string   // default the token path
	ctype  string   // default form; "-" sends no Content-Type
	body   string   // raw body
	auth   []string // Authorization header values; default Basic app credentials; empty slice: none
	status int      // expected status; 299 is the upstream (passed through)
	err    string   // expected "error" of a 4xx
	sends  int      // mails this row is expected to send
	check  func(answer) string
}

// formOf form-encodes key/value pairs in order, keeping duplicates.
func formOf(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// grantForm is the grant and scope every row starts from, then kv.
func grantForm(kv ...string) string {
	return formOf(append([]string{"grant_type", grantURI, "scope", "openid"}, kv...)...)
}

func basicHdr(id, secret string) []string {
	return []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
}

var noAuth = []string{}

// flipChar changes the character at i of a base64url string into another
// alphabet character.
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// sameBytesOtherText changes the unused low bits of the last character of an
// unpadded base64url string: a different string that a lenient decoder
// decodes to the same bytes. It reports false when the length leaves no
// unused bits.
func sameBytesOtherText(ref string) (string, bool) {
	if len(ref)%4 == 0 {
		return "", false
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, ref[len(ref)-1])
	return ref[:len(ref)-1] + string(alphabet[last^1]), true
}

// longIDN is a 248-byte address whose domain grows from 183 to 233 bytes
// when IDNA-encoded: 298 bytes, too long for an SMTP path.
var longIDN = strings.Repeat("l", 64) + "@" + strings.Repeat("ü.", 10) + strings.Repeat(strings.Repeat("d", 49)+".", 3) + "com"

// TestHostileInput sends a table of malformed, oversized and adversarial
// requests to a whole server. None may answer 5xx, every 4xx is an RFC 6749
// JSON error with Cache-Control: no-store, only the rows meant to send a mail
// do, and a reference issued before the table still works after it.
func TestHostileInput(t *testing.T) {
	mp := startMailpit(t)
	htmlFile := filepath.Join(t.TempDir(), "mail.html")
	if err := os.WriteFile(htmlFile, []byte(`<html><body><h1>{{.Subject}}</h1><p>{{.Body}}</p></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	tc := startCaddy(t, otpSite(mp.SMTPPort, "template {\n\t\t\thtml_file "+htmlFile+"\n\t\t}"))
	// This address gives a reference whose last character has spare bits.
	ref, code, _ := initiate(t, tc, mp, "setup1@example.com", nil, appCreds)

	other, err := newSealer(randomRefKey(t))
	if err != nil {
		t.Fatal(err)
	}
	foreign := other.seal(other.newChallenge("app", "setup1@example.com", "", code, time.Now(), time.Hour))
	rawRef, _ := base64.RawURLEncoding.DecodeString(ref)
	v2 := append([]byte{refVersion + 1}, rawRef[1:]...)
	randomRef := make([]byte, len(rawRef))
	_, _ = rand.Read(randomRef)
	randomRef[0] = refVersion
	lenientRef, hasSpareBits := sameBytesOtherText(ref)
	if !hasSpareBits {
		t.Fatalf("reference of %d characters has no spare bits; pick another setup address", len(ref))
	}
	invalidRef := func(a answer) string { // refused before the ledger is asked
		if a.str("error_description") != "reference is invalid" {
			return "not refused as an invalid reference"
		}
		return ""
	}

	big := strings.Repeat("a", 20000)
	fill := func(target int, kv ...string) string { // a body of exactly target bytes
		b := grantForm(kv...) + "&pad="
		return b + strings.Repeat("p", target-len(b))
	}
	validate := func(kv ...string) string {
		return grantForm(append([]string{paramReference, ref, paramCode, code}, kv...)...)
	}
	withRef := func(r string) string { return grantForm(paramReference, r, paramCode, code) }
	withCode := func(c string) string { return grantForm(paramReference, ref, paramCode, c) }
	upstream := func(a answer) string {
		if !strings.HasPrefix(string(a.Body), "upstream saw") {
			return "not answered by the upstream"
		}
		return ""
	}

	rows := []hostileRow{
		// transport: method, content type, size, encoding
		{name: "GET on the token path", method: "GET", status: 299, check: upstream},
		{name: "PUT with a grant form", method: "PUT", body: grantForm("username", "put@example.com"), status: 299, check: upstream},
		{name: "DELETE", method: "DELETE", status: 299},
		{name: "grant only in the query string", path: tokenPath + "?" + grantForm("username", "q@example.com"), body: "", status: 299},
		{name: "text/plain", ctype: "text/plain", body: grantForm("username", "ct1@example.com"), status: 400, err: "invalid_request"},
		{name: "no Content-Type", ctype: "-", body: grantForm("username", "ct2@example.com"), status: 400, err: "invalid_request"},
		{name: "application/json holding a form", ctype: "application/json", body: grantForm("username", "ct3@example.com"), status: 400, err: "invalid_request"},
		{name: "JSON body", ctype: "application/json", body: `{"grant_type":"` + grantURI + `","scope":"openid","username":"j@example.com"}`, status: 299, check: upstream},
		{name: "multipart type with a form body", ctype: "multipart/form-data; boundary=x", body: grantForm("username", "ct4@example.com"), status: 400, err: "invalid_request"},
		{name: "form type with malformed parameters (the type is right)", ctype: "application/x-www-form-urlencoded;;;=", body: grantForm(), status: 400, err: "invalid_request"}, // stops at username
		{name: "unparseable Content-Type", ctype: "application/x-www-form-urlencoded/x;", body: grantForm("username", "ct5@example.com"), status: 400, err: "invalid_request"},
		{name: "form type with a charset parameter", ctype: "application/x-www-form-urlencoded; charset=UTF-8", body: grantForm(), status: 400, err: "invalid_request"},
		{name: "body of 16 KiB + 1", body: fill(maxBodyBytes+1, "username", "size1@example.com"), status: 400, err: "invalid_request"},
		{name: "body of 200 KiB", body: fill(200<<10, "username", "size2@example.com"), status: 400, err: "invalid_request"},
		{name: "body of exactly 16 KiB", body: fill(maxBodyBytes, "username", "size3@example.com"), status: 200, sends: 1},
		{name: "grant_type beyond 16 KiB", body: "pad=" + strings.Repeat("p", maxBodyBytes) + "&" + grantForm("username", "size4@example.com"), status: 299, check: upstream},
		{name: "bad percent-encoding", body: grantForm("username", "pct@example.com") + "&x=%zz", status: 400, err: "invalid_request"},
		{name: "semicolon separator", body: grantForm() + "&username=semi@example.com;x=1", status: 400, err: "invalid_request"},
		{name: "non-UTF-8 value", body: grantForm() + "&username=%ff%fe@example.com", status: 400, err: "invalid_request"},
		{name: "non-UTF-8 key", body: grantForm("username", "key@example.com") + "&%ff=1", status: 400, err: "invalid_request"},
		{name: "empty key is ignored", body: grantForm() + "&=x", status: 400, err: "invalid_request"},

		// parameters: duplicated, missing
		{name: "grant_type twice", body: grantForm("grant_type", grantURI, "username", "d1@example.com"), status: 400, err: "invalid_request"},
		{name: "grant_type ours and another", body: grantForm("grant_type", "client_credentials", "username", "d2@example.com"), status: 400, err: "invalid_request"},
		{name: "scope twice", body: grantForm("scope", "openid", "username", "d3@example.com"), status: 400, err: "invalid_request"},
		{name: "username twice", body: grantForm("username", "d4@example.com", "username", "d5@example.com"), status: 400, err: "invalid_request"},
		{name: "client_id twice", auth: noAuth, body: grantForm("client_id", "app", "client_id", "app", "client_secret", "app-secret", "username", "d6@example.com"), status: 400, err: "invalid_request"},
		{name: "reference twice", body: grantForm(paramReference, ref, paramReference, ref, paramCode, code), status: 400, err: "invalid_request"},
		{name: "code twice", body: grantForm(paramReference, ref, paramCode, code, paramCode, code), status: 400, err: "invalid_request"},
		{name: "ui_locales twice", body: grantForm("username", "d7@example.com", "ui_locales", "fi", "ui_locales", "sv"), status: 400, err: "invalid_request"},
		{name: "username missing", body: grantForm(), status: 400, err: "invalid_request"},
		{name: "username empty", body: grantForm("username", ""), status: 400, err: "invalid_request"},
		{name: "scope missing", body: formOf("grant_type", grantURI, "username", "s1@example.com"), status: 400, err: "invalid_scope"},
		{name: "scope without openid", body: formOf("grant_type", grantURI, "scope", "email profile", "username", "s2@example.com"), status: 400, err: "invalid_scope"},
		{name: "scope openidx", body: formOf("grant_type", grantURI, "scope", "openidx", "username", "s3@example.com"), status: 400, err: "invalid_scope"},

		// grants and paths that are not ours pass through, body intact
		{name: "another grant", body: formOf("grant_type", "client_credentials", "scope", "x"), status: 299, check: func(a answer) string {
			if !strings.Contains(string(a.Body), "body=grant_type=client_credentials&scope=x") {
				return "upstream did not see the body"
			}
			return ""
		}},
		{name: "no grant_type", body: formOf("scope", "openid", "username", "ng@example.com"), status: 299, check: upstream},
		{name: "grant_type in upper case", body: formOf("grant_type", strings.ToUpper(grantURI), "scope", "openid", "username", "uc@example.com"), status: 299, check: upstream},
		{name: "grant_type with a trailing space", body: formOf("grant_type", grantURI+" ", "scope", "openid", "username", "sp@example.com"), status: 299, check: upstream},
		{name: "our grant on another path", path: "/oauth2/token", body: grantForm("username", "path1@example.com"), status: 299, check: upstream},
		{name: "token path with a trailing slash", path: tokenPath + "/", body: grantForm("username", "path2@example.com"), status: 299, check: upstream},

		// client authentication
		{name: "no client authentication", auth: noAuth, body: grantForm("username", "c1@example.com"), status: 401, err: "invalid_client", check: wantBasicChallenge},
		{name: "unknown client", auth: basicHdr("nobody", "x"), body: grantForm("username", "c2@example.com"), status: 401, err: "invalid_client", check: wantBasicChallenge},
		{name: "wrong secret in the body", auth: noAuth, body: grantForm("client_id", "app", "client_secret", "wrong", "username", "c3@example.com"), status: 401, err: "invalid_client"},
		{name: "empty secret in the body", auth: noAuth, body: grantForm("client_id", "app", "client_secret", "", "username", "c4@example.com"), status: 401, err: "invalid_client"},
		{name: "10 KB client_id", auth: noAuth, body: grantForm("client_id", big[:10000], "client_secret", "x", "username", "c5@example.com"), status: 401, err: "invalid_client"},
		{name: "Basic and a body secret", body: grantForm("client_id", "app", "client_secret", "app-secret", "username", "c6@example.com"), status: 400, err: "invalid_request"},
		{name: "Basic and another body client_id", body: grantForm("client_id", "other", "username", "c7@example.com"), status: 400, err: "invalid_request"},
		{name: "Basic and the same body client_id", body: grantForm("client_id", "app"), status: 400, err: "invalid_request"}, // passes auth, stops at username
		{name: "malformed Basic", auth: []string{"Basic !!!notbase64"}, body: grantForm("username", "c8@example.com"), status: 401, err: "invalid_client", check: wantBasicChallenge},
		{name: "Basic without a colon", auth: []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("app"))}, body: grantForm("username", "c9@example.com"), status: 401, err: "invalid_client"},
		{name: "Basic with an empty user", auth: basicHdr("", "app-secret"), body: grantForm("username", "c10@example.com"), status: 401, err: "invalid_client"},
		{name: "Basic with bad percent-encoding", auth: basicHdr("%zz", "app-secret"), body: grantForm("username", "c11@example.com"), status: 401, err: "invalid_client"},
		{name: "two Authorization headers", auth: append(basicHdr("app", "app-secret"), basicHdr("app", "app-secret")...), body: grantForm("username", "c12@example.com"), status: 401, err: "invalid_client"},
		{name: "Basic scheme in lower case", auth: []string{"basic " + base64.StdEncoding.EncodeToString([]byte("app:app-secret"))}, body: grantForm(), status: 400, err: "invalid_request"},
		{name: "Bearer header, body credentials", auth: []string{"Bearer abc"}, body: grantForm("client_id", "app", "client_secret", "app-secret"), status: 400, err: "invalid_request"},
		{name: "client not allowed the domain", auth: basicHdr("other", "other-secret"), body: grantForm("username", "c13@example.com"), status: 400, err: "unauthorized_client"},
		{name: "client may not set the title", auth: basicHdr("strict", "strict-secret"), body: grantForm("username", "c14@example.com", paramTitle, "Hi"), status: 400, err: "unauthorized_client"},

		// references
		{name: "reference garbage", body: withRef("!!!not-a-reference!!!"), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference truncated", body: withRef(ref[:len(ref)-5]), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference one character changed", body: withRef(flipChar(ref, len(ref)/2)), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference with a space appended", body: withRef(ref + " "), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference with padding", body: withRef(ref + "=="), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference of 3000 characters", body: withRef(strings.Repeat("A", 3000)), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference of random bytes", body: withRef(base64.RawURLEncoding.EncodeToString(randomRef)), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference of an unknown version", body: withRef(base64.RawURLEncoding.EncodeToString(v2)), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference from another deployment", body: withRef(foreign), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference with CRLF inserted", body: withRef(ref[:40] + "\r\n" + ref[40:]), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference re-encoded with other spare bits", body: withRef(lenientRef), status: 400, err: "invalid_grant", check: invalidRef},
		{name: "reference empty", body: withRef(""), status: 400, err: "invalid_request"},
		{name: "code without reference", body: grantForm(paramCode, code), status: 400, err: "invalid_request"},
		{name: "reference without code", body: grantForm(paramReference, ref), status: 400, err: "invalid_request"},
		{name: "reference of another client", auth: basicHdr("other", "other-secret"), body: validate(), status: 400, err: "invalid_grant"},
		{name: "username not the reference's", body: validate("username", "someone@example.com"), status: 400, err: "invalid_grant"},
		{name: "username with CRLF at validation", body: validate("username", "setup1@example.com\r\nBcc: x@example.com"), status: 400, err: "invalid_grant"},
		{name: "nonce of 256 bytes at validation", body: validate("nonce", big[:256]), status: 400, err: "invalid_request"},

		// codes
		{name: "code with letters", body: withCode("12ab5678"), status: 400, err: "invalid_request"},
		{name: "code with a space", body: withCode("1234 5678"), status: 400, err: "invalid_request"},
		{name: "code in Arabic-Indic digits", body: withCode("١٢٣٤٥٦٧٨"), status: 400, err: "invalid_request"},
		{name: "code in full-width digits", body: withCode("１２３４５６７８"), status: 400, err: "invalid_request"},
		{name: "code of 13 digits", body: withCode("1234567890123"), status: 400, err: "invalid_request"},
		{name: "code of 5 digits", body: withCode("12345"), status: 400, err: "invalid_request"},
		{name: "code with a sign", body: withCode("+" + code[1:]), status: 400, err: "invalid_request"},
		{name: "code with a NUL", body: withCode(code + "\x00"), status: 400, err: "invalid_request"},
		{name: "code of 10 KB", body: withCode(strings.Repeat("1", 10000)), status: 400, err: "invalid_request"},

		// addresses
		{name: "address with CRLF and a header", body: grantForm("username", "a@example.com\r\nBcc: victim@example.com"), status: 400, err: "invalid_request"},
		{name: "address with LF", body: grantForm("username", "a@example.com\nx"), status: 400, err: "invalid_request"},
		{name: "address with NUL", body: grantForm("username", "a\x00@example.com"), status: 400, err: "invalid_request"},
		{name: "display name", body: grantForm("username", "Alice <alice@example.com>"), status: 400, err: "invalid_request"},
		{name: "angle brackets", body: grantForm("username", "<alice@example.com>"), status: 400, err: "invalid_request"},
		{name: "quoted local part", body: grantForm("username", `"alice"@example.com`), status: 400, err: "invalid_request"},
		{name: "quoted local part with @ and space", body: grantForm("username", `"a@b c"@example.com`), status: 400, err: "invalid_request"},
		{name: "comment", body: grantForm("username", "alice(x)@example.com"), status: 400, err: "invalid_request"},
		{name: "two addresses", body: grantForm("username", "a@example.com,b@example.com"), status: 400, err: "invalid_request"},
		{name: "no @", body: grantForm("username", "alice.example.com"), status: 400, err: "invalid_request"},
		{name: "two @", body: grantForm("username", "a@b@example.com"), status: 400, err: "invalid_request"},
		{name: "full-width @", body: grantForm("username", "a＠example.com"), status: 400, err: "invalid_request"},
		{name: "domain without a dot", body: grantForm("username", "a@localhost"), status: 400, err: "invalid_request"},
		{name: "IP literal", body: grantForm("username", "a@[127.0.0.1]"), status: 400, err: "invalid_request"},
		{name: "domain with a trailing dot", body: grantForm("username", "a@example.com."), status: 400, err: "invalid_request"},
		{name: "leading space", body: grantForm("username", " a@example.com"), status: 400, err: "invalid_request"},
		{name: "1,000-byte local part", body: grantForm("username", strings.Repeat("l", 1000)+"@example.com"), status: 400, err: "invalid_request"},
		{name: "65-byte local part", body: grantForm("username", strings.Repeat("l", 65)+"@example.com"), status: 400, err: "invalid_request"},
		{name: "255-byte address", body: grantForm("username", strings.Repeat("l", 64)+"@"+strings.Repeat("d", 63)+"."+strings.Repeat("d", 63)+"."+strings.Repeat("d", 58)+".com"), status: 400, err: "invalid_request"},
		{name: "non-ASCII local part", body: grantForm("username", "jürgen@example.com"), status: 400, err: "invalid_request"},
		{name: "right-to-left override in the domain", body: grantForm("username", "a@exa\u202emple.com"), status: 400, err: "invalid_request"},
		{name: "IDN address over 254 bytes once punycoded", body: grantForm("username", longIDN), status: 400, err: "invalid_request"},
		{name: "IDN domain (punycoded)", body: grantForm("username", "idn@bücher.example"), status: 200, sends: 1},
		{name: "upper-case domain (lower-cased)", body: grantForm("username", "Upper@EXAMPLE.COM"), status: 200, sends: 1},

		// mail title and body
		{name: "title with CRLF", body: grantForm("username", "t1@example.com", paramTitle, "Hi\r\nBcc: victim@example.com"), status: 400, err: "invalid_request"},
		{name: "title with LF", body: grantForm("username", "t2@example.com", paramTitle, "Hi\nthere"), status: 400, err: "invalid_request"},
		{name: "title with a tab", body: grantForm("username", "t3@example.com", paramTitle, "Hi\tthere"), status: 400, err: "invalid_request"},
		{name: "title of 256 characters", body: grantForm("username", "t4@example.com", paramTitle, strings.Repeat("é", 256)), status: 400, err: "invalid_request"},
		{name: "title empty", body: grantForm("username", "t5@example.com", paramTitle, ""), status: 400, err: "invalid_request"},
		{name: "body without {0}", body: grantForm("username", "b1@example.com", paramBody, "no code here"), status: 400, err: "invalid_request"},
		{name: "body with {O} (letter O)", body: grantForm("username", "b2@example.com", paramBody, "code {O}"), status: 400, err: "invalid_request"},
		{name: "body empty", body: grantForm("username", "b3@example.com", paramBody, ""), status: 400, err: "invalid_request"},
		{name: "body of 8 KiB + 1", body: grantForm("username", "b4@example.com", paramBody, "{0}"+strings.Repeat("b", maxBodyLength-2)), status: 400, err: "invalid_request"},
		{name: "HTML in title and body (escaped in the HTML part)", body: grantForm("username", "html@example.com", paramTitle, "<i>Sign in</i>", paramBody, `<script>alert("x")</script><b>code</b> {0}`), status: 200, sends: 1},
		{name: "nonce of 256 bytes", body: grantForm("username", "n1@example.com", "nonce", big[:256]), status: 400, err: "invalid_request"},

		// ui_locales garbage picks the default template
		{name: "ui_locales garbage", body: grantForm("username", "l1@example.com", "ui_locales", "!!! ### \x01"), status: 200, sends: 1},
		{name: "ui_locales of 2,000 tags", body: grantForm("username", "l2@example.com", "ui_locales", strings.Repeat("zz-ZZ ", 2000)), status: 200, sends: 1},
	}

	var tried, rejected, passed, accepted, fiveXX, strayMails int
	total := len(mp.Messages(t))
	for _, r := range rows {
		tried++
		req := hostileRequest(t, tc, r)
		a := do(t, req)
		fail := func(format string, args ...any) {
			t.Errorf("%s: %s — got %s", r.name, fmt.Sprintf(format, args...), a)
		}
		if a.Status >= 500 {
			fiveXX++
			fail("5xx")
		}
		if a.Status != r.status {
			fail("want status %d", r.status)
		}
		if a.Status >= 400 && a.Status < 500 {
			if a.str("error") == "" || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/json") {
				fail("4xx without a JSON error")
			}
			if a.Header.Get("Cache-Control") != "no-store" {
				fail("Cache-Control %q", a.Header.Get("Cache-Control"))
			}
			if a.reference() != "" {
				fail("a reference in an error")
			}
		}
		if a.str("error") != r.err {
			fail("want error %q", r.err)
		}
		if r.check != nil {
			if msg := r.check(a); msg != "" {
				fail("%s", msg)
			}
		}
		got := waitMailTotal(t, mp, total+r.sends)
		if got != total+r.sends {
			fail("sent %d mail(s), want %d", got-total, r.sends)
		}
		if r.sends == 0 && got > total {
			strayMails += got - total
		}
		total = got
		switch {
		case a.Status == r.status && r.status == 299:
			passed++
		case a.Status == r.status && r.status == 200:
			accepted++
		case a.Status == r.status && a.str("error") == r.err:
			rejected++
		}
	}
	t.Logf("hostile input: %d requests tried, %d rejected as expected, %d passed through, %d accepted (%d mails), 5xx: %d, mails sent by rejected rows: %d",
		tried, rejected, passed, accepted, countSends(rows), fiveXX, strayMails)
	if tried < 60 {
		t.Errorf("only %d hostile rows", tried)
	}

	// What the accepted rows mailed.
	if n := mp.Count(t, "idn@xn--bcher-kva.example"); n != 1 {
		t.Errorf("IDN address: %d mails to the punycoded address", n)
	}
	if n := mp.Count(t, "Upper@example.com"); n != 1 {
		t.Errorf("upper-case domain: %d mails to the lower-cased address", n)
	}
	html := mp.WaitFor(t, "html@example.com", 5*time.Second)
	if strings.Contains(html.HTML, "<script>") || strings.Contains(html.HTML, "<b>code</b>") || strings.Contains(html.HTML, "<i>Sign in</i>") ||
		!strings.Contains(html.HTML, "&lt;script&gt;") || !strings.Contains(html.HTML, "&lt;i&gt;Sign in&lt;/i&gt;") {
		t.Errorf("HTML part not escaped: %q", html.HTML)
	}
	if html.Subject != "<i>Sign in</i>" || !strings.Contains(html.Text, `<script>alert("x")</script><b>code</b> `) {
		t.Errorf("text part or subject altered: %q / %q", html.Subject, html.Text)
	}

	// The reference issued before the table survived every hostile row.
	if a := post(t, tc.Base+tokenPath, validateForm(ref, code), appCreds); a.Status != 200 || a.str("id_token") == "" {
		t.Errorf("the setup reference no longer works: %s", a)
	}
}

// hostileRequest builds the HTTP request of a row.
func hostileRequest(t *testing.T, tc *testCaddy, r hostileRow) *http.Request {
	t.Helper()
	method, path := r.method, r.path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = tokenPath
	}
	req, err := http.NewRequest(method, tc.Base+path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	switch r.ctype {
	case "":
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case "-":
	default:
		req.Header.Set("Content-Type", r.ctype)
	}
	auth := r.auth
	if auth == nil {
		auth = basicHdr("app", "app-secret")
	}
	for _, v := range auth {
		req.Header.Add("Authorization", v)
	}
	return req
}

func wantBasicChallenge(a answer) string {
	if !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Basic") {
		return "no WWW-Authenticate: Basic"
	}
	return ""
}

func countSends(rows []hostileRow) int {
	n := 0
	for _, r := range rows {
		n += r.sends
	}
	return n
}

// waitMailTotal returns mailpit's message count, waiting up to a second for
// it to reach want (mailpit stores a mail just after accepting it).
func waitMailTotal(t *testing.T, mp *mailpit, want int) int {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		n := len(mp.Messages(t))
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomRefKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}
