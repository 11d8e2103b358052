package emailotp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// fuzzHandler is a Handler provisioned just enough for the request parsing:
// the grant URI and two clients.
func fuzzHandler(t testing.TB) *Handler {
	h := &Handler{GrantType: DefaultGrantType, clients: map[string]*Client{}, logger: zap.NewNop(), core: &otp{}}
	repl := caddy.NewReplacer()
	for _, c := range []*Client{{ID: "app", Secret: "app-secret"}, {ID: "other", Secret: "other-secret"}} {
		if err := c.provision(repl); err != nil {
			t.Fatal(err)
		}
		h.clients[c.ID] = c
	}
	return h
}

// FuzzParseForm drives readForm and parseRequest with any body, Content-Type
// and Authorization header. Invariants: no panic; the body is always put back
// unread for the next handler; a request is ours only if it names the grant;
// a refusal is a well-formed RFC 6749 error of the expected kind; an accepted
// request has single UTF-8 parameters, scope openid and a client that proved
// its secret.
func FuzzParseForm(f *testing.F) {
	form := "application/x-www-form-urlencoded"
	basic := "Basic YXBwOmFwcC1zZWNyZXQ=" // app:app-secret
	g := "grant_type=" + strings.ReplaceAll(DefaultGrantType, ":", "%3A") + "&scope=openid"
	f.Add([]byte(g+"&username=a%40example.com"), form, basic)
	f.Add([]byte(g+"&client_id=app&client_secret=app-secret&username=a@example.com"), form, "")
	f.Add([]byte(g+"&client_id=app&client_secret=app-secret"), form, basic)
	f.Add([]byte(g+"&scope=openid"), form+"; charset=utf-8", basic)
	f.Add([]byte(g+"&x=%zz"), form, basic)
	f.Add([]byte(g+"&u=%ff"), "text/plain", "Basic !!!")
	f.Add([]byte("grant_type=client_credentials"), form, basic)
	f.Add([]byte(g), form, "Basic "+"JXp6OnNlY3JldA==") // %zz:secret
	h := fuzzHandler(f)

	f.Fuzz(func(t *testing.T, body []byte, contentType, authorization string) {
		r := httptest.NewRequest(http.MethodPost, DefaultTokenPath, bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		form, oerr, ours := h.readForm(r)
		if rest, err := io.ReadAll(r.Body); err != nil || !bytes.Equal(rest, body) {
			t.Fatalf("body not restored for the next handler: %q, %v", rest, err)
		}
		if !ours {
			if oerr != nil || form != nil {
				t.Fatalf("not ours but answered: %v", oerr)
			}
			return
		}
		q, _ := url.ParseQuery(string(body[:min(len(body), maxBodyBytes+1)]))
		if !slices.Contains(q["grant_type"], DefaultGrantType) {
			t.Fatalf("claimed a request not naming the grant: %q", body)
		}
		if oerr != nil {
			checkOAuthError(t, oerr, "invalid_request")
			return
		}
		req, oerr := h.parseRequest(r, form)
		if oerr != nil {
			checkOAuthError(t, oerr, "invalid_request", "invalid_client", "invalid_scope")
			return
		}
		if req.client == nil || h.clients[req.client.ID] != req.client {
			t.Fatalf("accepted without a known client")
		}
		for k, v := range req.form {
			if len(v) != 1 || !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
				t.Fatalf("parameter %q = %q passed", k, v)
			}
		}
		if !hasScope(req.get("scope"), "openid") {
			t.Fatalf("scope %q passed", req.get("scope"))
		}
		if id, secret, ok, _ := basicAuth(r); ok {
			if req.form.Has("client_secret") || id != req.client.ID {
				t.Fatalf("Basic client %q accepted as %q, body secret %v", id, req.client.ID, req.form.Has("client_secret"))
			}
			if _, good := h.authenticate(id, secret); !good {
				t.Fatalf("Basic secret not checked")
			}
		} else if _, good := h.authenticate(req.get("client_id"), req.get("client_secret")); !good || req.get("client_id") != req.client.ID {
			t.Fatalf("body credentials not checked")
		}
	})
}

// checkOAuthError checks an error is one of the codes and renders as an RFC
// 6749 JSON body with no-store.
func checkOAuthError(t *testing.T, e *oauthError, codes ...string) {
	t.Helper()
	want := map[string]int{"invalid_request": 400, "invalid_client": 401, "invalid_scope": 400}
	ok := false
	for _, c := range codes {
		ok = ok || (e.Code == c && e.status == want[c])
	}
	if !ok {
		t.Fatalf("error %s/%d not among %v", e.Code, e.status, codes)
	}
	rec := httptest.NewRecorder()
	writeError(rec, e)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out["error"] != e.Code {
		t.Fatalf("error body %q: %v", rec.Body.Bytes(), err)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("error without no-store")
	}
}

// FuzzParseAddress checks what parseAddress accepts: no control characters,
// ASCII only, a lower-case A-label domain, at most 254 bytes mailed, and a
// normal form that parses to itself.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "Alice@EXAMPLE.com", "idn@bücher.example", "a@xn--bcher-kva.example",
		"a@example.com\r\nBcc: b@example.com", "Alice <a@example.com>", `"a b"@example.com`,
		"a@[127.0.0.1]", "a.b+tag@sub.example.co.uk", "a@ex\u00adample.com", "a@ＥＸＡＭＰＬＥ.com",
		longIDN, strings.Repeat("l", 64) + "@" + strings.Repeat("d", 63) + ".com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAddress(s)
		if err != nil {
			if a != (address{}) {
				t.Fatalf("refused %q but returned %+v", s, a)
			}
			return
		}
		str := a.String()
		if len(str) > 254 || a.Local == "" || len(a.Local) > 64 {
			t.Fatalf("%q accepted as %q (%d bytes)", s, str, len(str))
		}
		for i := 0; i < len(str); i++ {
			if c := str[i]; c < 0x21 || c >= 0x7f {
				t.Fatalf("%q accepted as %q holding byte %#x", s, str, c)
			}
		}
		if a.Domain != strings.ToLower(a.Domain) || strings.ContainsAny(a.Domain, "@\"<>()[]\\,;:") {
			t.Fatalf("%q accepted with domain %q", s, a.Domain)
		}
		if strings.ContainsAny(a.Local, "@\"<>()[]\\,;: ") {
			t.Fatalf("%q accepted with local part %q", s, a.Local)
		}
		b, err := parseAddress(str)
		if err != nil || b != a {
			t.Fatalf("%q → %q does not parse to itself: %+v, %v", s, str, b, err)
		}
		if m := a.masked(); m != a.Local[:1]+"***@"+a.Domain {
			t.Fatalf("masked %q", m)
		}
	})
}

// fuzzRefKey is a fixed reference key: the seeds never hold a reference
// sealed with it, so any input that opens was forged by the fuzzer.
var fuzzRefKey = bytes.Repeat([]byte{0x5a}, 32)

// FuzzOpenReference checks that no input forged by the fuzzer opens, that a
// sealed challenge opens to itself, and that changing any single byte of a
// sealed reference makes it unopenable.
func FuzzOpenReference(f *testing.F) {
	f.Add("", uint16(0), byte('A'), "app", "a@example.com", "", uint8(0))
	f.Add("AQAAAAAAAAAAAAAAAA", uint16(5), byte('\n'), "app", "a@example.com", "n-0S6_WzA2Mj", uint8(3))
	f.Add(strings.Repeat("A", 300), uint16(299), byte('B'), "other", "idn@xn--bcher-kva.example", "", uint8(4))
	f.Add("!!!", uint16(65535), byte(0), strings.Repeat("c", 255), strings.Repeat("l", 64)+"@example.com", strings.Repeat("n", 255), uint8(255))
	other, err := newSealer(bytes.Repeat([]byte{0xa5}, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(other.seal(other.newChallenge("app", "a@example.com", "", "12345678", time.Unix(1700000000, 0), time.Hour)),
		uint16(10), byte('x'), "app", "a@example.com", "", uint8(1))
	s, err := newSealer(fuzzRefKey)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, input string, pos uint16, b byte, client, addr, nonce string, attempt uint8) {
		if c, err := s.open(input); err == nil {
			t.Fatalf("forged input %q opened as %+v", input, c)
		}
		client, addr, nonce = clipField(client), clipField(addr), clipField(nonce)
		issued := time.Unix(1700000000, 0)
		ch := s.newChallenge(client, addr, nonce, "12345678", issued, 10*time.Minute)
		ch.Attempt = int(attempt)
		ref := s.seal(ch)
		got, err := s.open(ref)
		if err != nil {
			t.Fatalf("sealed reference does not open: %v", err)
		}
		if got.ID != ch.ID || got.Attempt != ch.Attempt || got.ClientID != client || got.Address != addr ||
			got.Nonce != nonce || !got.Issued.Equal(issued) || !got.Expires.Equal(ch.Expires) || !s.checkCode(got, "12345678") {
			t.Fatalf("opened %+v, sealed %+v", got, ch)
		}
		i := int(pos) % len(ref)
		if b == ref[i] {
			b ^= 1
		}
		bad := ref[:i] + string([]byte{b}) + ref[i+1:]
		if c, err := s.open(bad); err == nil {
			t.Fatalf("reference with byte %d changed from %q to %q opened as %+v", i, ref[i], b, c)
		}
		if other, ok := sameBytesOtherText(ref); ok {
			if _, err := s.open(other); err == nil {
				t.Fatalf("reference with other spare bits in its last character opened")
			}
		}
	})
}

// clipField keeps a string within the 255 bytes a reference field holds.
func clipField(s string) string {
	if len(s) > maxFieldLen {
		return s[:maxFieldLen]
	}
	return s
}
