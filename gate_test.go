package emailotp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-email-otp/emailotp/internal/keys"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
)

// gateSite is otpSite with routes behind the gate: /api/ proxies to
// upstream with the verified address in X-Verified-Email, the others
// answer with the user placeholders under one option each.
func gateSite(smtpPort int, upstream string) string {
	gated := func(path, opts string) string {
		return fmt.Sprintf(`
	handle %s* {
		email_otp_gate {
%s
		}
		respond "user={http.auth.user.id} email={http.auth.user.email} kind={http.auth.user.kind} client={http.auth.user.client_id} scope={http.auth.user.scope} jti={http.auth.user.jti} auth_time={http.auth.user.auth_time}" 200
	}`, path, opts)
	}
	return otpSite(smtpPort, "") + fmt.Sprintf(`
	handle /api/* {
		email_otp_gate {
			header X-Verified-Email
		}
		reverse_proxy %s
	}`, upstream) +
		gated("/who/", "") +
		gated("/only-app/", "allow_clients app") +
		gated("/only-other/", "allow_clients other") +
		gated("/wrong-iss/", "issuer https://elsewhere.example/uas") +
		gated("/iss-placeholder/", "issuer {http.request.scheme}://{http.request.hostport}/uas") +
		gated("/example-org/", "allow_domains example.org") +
		gated("/bob-only/", "allow_addresses bob@example.com") +
		gated("/bearer-only/", "accept bearer") +
		gated("/app/", "signin")
}

// gateReq is one request to the gated site.
type gateReq struct {
	method  string
	path    string
	bearer  string   // Authorization: Bearer <bearer>
	cookies []string // email_otp_session values, in order
	header  http.Header
}

// noRedirect sees the gate's redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (tc *testCaddy) gate(t *testing.T, q gateReq) answer {
	t.Helper()
	if q.method == "" {
		q.method = http.MethodGet
	}
	req, err := http.NewRequest(q.method, tc.Base+q.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range q.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if q.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	for _, c := range q.cookies {
		req.AddCookie(&http.Cookie{Name: DefaultSessionCookie, Value: c})
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// minter signs crafted tokens with a deployment's keys.
type minter struct {
	keys   *signingKeys
	issuer string
}

// newMinter loads (or creates) the signing key of alg in a file storage,
// exactly as the email_otp handler does.
func newMinter(t testing.TB, storageDir, alg, issuer string) *minter {
	t.Helper()
	sk, err := loadSigningKeys(context.Background(), &certmagic.FileStorage{Path: storageDir}, alg, "")
	if err != nil {
		t.Fatal(err)
	}
	return &minter{keys: sk, issuer: issuer}
}

// at is an access token as the handler mints it, with changes applied.
func (m *minter) at(t testing.TB, sub string, change func(map[string]any)) string {
	t.Helper()
	n := time.Now()
	c := map[string]any{"iss": m.issuer, "sub": sub, "aud": []string{"app"}, "client_id": "app",
		"scope": "openid", "iat": n.Unix(), "exp": n.Add(time.Hour).Unix(), "auth_time": n.Unix(), "jti": randomID()}
	if change != nil {
		change(c)
	}
	return sign(t, m.keys.atSigner, c)
}

// session is a sign-in page session as the shared contract defines it.
func (m *minter) session(t testing.TB, sub string, change func(map[string]any)) string {
	t.Helper()
	n := time.Now()
	c := map[string]any{"iss": m.issuer, "sub": sub, "email": sub, "aud": []string{sessionAudience},
		"iat": n.Unix(), "exp": n.Add(time.Hour).Unix(), "jti": randomID()}
	if change != nil {
		change(c)
	}
	return sign(t, m.keys.sessSigner, c)
}

func sign(t testing.TB, s jose.Signer, claims map[string]any) string {
	t.Helper()
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawJWS builds a compact JWS from a header and claims; sig signs the
// signing input.
func rawJWS(t *testing.T, header, claims map[string]any, sig func(input string) []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig(input))
}

func segments(t *testing.T, tok string) []string {
	t.Helper()
	s := strings.Split(tok, ".")
	if len(s) != 3 {
		t.Fatalf("not a compact JWS: %d segments", len(s))
	}
	return s
}

func wantUser(t *testing.T, a answer, want string) {
	t.Helper()
	if a.Status != http.StatusOK || !strings.Contains(string(a.Body), want) {
		t.Errorf("want 200 with %q, got %s", want, a)
	}
}

// wantRefused checks a 401 with the RFC 6750 challenge; bad tells whether
// the challenge must say invalid_token.
func wantRefused(t *testing.T, a answer, bad bool) {
	t.Helper()
	want := `Bearer realm="email_otp"`
	if bad {
		want += `, error="invalid_token"`
	}
	if a.Status != http.StatusUnauthorized || a.Header.Get("WWW-Authenticate") != want {
		t.Errorf("want 401 %s, got %s WWW-Authenticate=%q", want, a, a.Header.Get("WWW-Authenticate"))
	}
	if strings.Contains(string(a.Body), "user=") {
		t.Errorf("gated handler ran: %s", a)
	}
}

func TestGate(t *testing.T) {
	var upstreamHits atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		fmt.Fprintf(w, "upstream hdr=%q auth=%t", r.Header.Values("X-Verified-Email"), r.Header.Get("Authorization") != "")
	}))
	defer upstream.Close()
	mp := startMailpit(t)
	tc := startCaddy(t, gateSite(mp.SMTPPort, strings.TrimPrefix(upstream.URL, "http://")))
	issuer := tc.Base + "/uas"

	// Real tokens through the grant.
	grant := func(addr string, creds []string) answer {
		ref, code, _ := initiate(t, tc, mp, addr, nil, creds)
		a := post(t, tc.Base+tokenPath, validateForm(ref, code), creds)
		if a.Status != 200 || a.str("access_token") == "" {
			t.Fatalf("validate %s: %s", addr, a)
		}
		return a
	}
	alice := grant("alice@example.com", appCreds)
	aliceAT, aliceID := alice.str("access_token"), alice.str("id_token")
	leeAT := grant("lee@example.org", []string{"other", "other-secret"}).str("access_token")

	// Crafted tokens signed with this deployment's key, from its storage.
	m := newMinter(t, tc.Storage, "RS256", issuer)
	if kid := jwtHeader(t, aliceID)["kid"]; kid != m.keys.loaded().kid {
		t.Fatalf("storage RS256 key kid %s, real id_token kid %v", m.keys.loaded().kid, kid)
	}
	// The access token is signed with the access_token_alg key (ES256 by
	// default) of the same storage.
	if h := jwtHeader(t, aliceAT); h["kid"] != newMinter(t, tc.Storage, "ES256", issuer).keys.loaded().kid || h["alg"] != "ES256" {
		t.Fatalf("real access token header %v: want the storage ES256 key", h)
	}

	t.Run("valid token passes, upstream sees the address", func(t *testing.T) {
		before := upstreamHits.Load()
		a := tc.gate(t, gateReq{path: "/api/x", bearer: aliceAT})
		if a.Status != 200 || string(a.Body) != `upstream hdr=["alice@example.com"] auth=true` {
			t.Fatalf("got %s", a)
		}
		if upstreamHits.Load() != before+1 {
			t.Errorf("upstream hits %d, want %d", upstreamHits.Load(), before+1)
		}
	})

	t.Run("client-supplied header is stripped", func(t *testing.T) {
		h := http.Header{"X-Verified-Email": {"mallory@evil.example", "boss@example.com"}}
		a := tc.gate(t, gateReq{path: "/api/x", bearer: aliceAT, header: h})
		if a.Status != 200 || string(a.Body) != `upstream hdr=["alice@example.com"] auth=true` {
			t.Fatalf("got %s", a)
		}
		before := upstreamHits.Load()
		wantRefused(t, tc.gate(t, gateReq{path: "/api/x", header: h}), false)
		if upstreamHits.Load() != before {
			t.Errorf("a refused request reached the upstream")
		}
	})

	t.Run("placeholders", func(t *testing.T) {
		a := tc.gate(t, gateReq{path: "/who/", bearer: aliceAT})
		wantUser(t, a, "user=alice@example.com email=alice@example.com kind=bearer client=app scope=openid jti=")
		if strings.Contains(string(a.Body), "jti= ") || strings.HasSuffix(string(a.Body), "auth_time=") {
			t.Errorf("jti or auth_time empty: %s", a)
		}
		s := m.session(t, "sam@example.com", nil)
		wantUser(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{s}}),
			"user=sam@example.com email=sam@example.com kind=session client= scope= jti=")
	})

	t.Run("missing or other scheme", func(t *testing.T) {
		wantRefused(t, tc.gate(t, gateReq{path: "/who/"}), false)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", header: http.Header{"Authorization": {"Basic YTpi"}}}), false)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", header: http.Header{"Authorization": {"Bearer"}}}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", header: http.Header{"Authorization": {"Bearer " + aliceAT, "Bearer " + aliceAT}}}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: strings.Repeat("A", keys.MaxTokenBytes+1)}), true)
		wantUser(t, tc.gate(t, gateReq{path: "/who/", header: http.Header{"Authorization": {"bearer " + aliceAT}}}), "user=alice@example.com")
	})

	t.Run("expiry with leeway", func(t *testing.T) {
		ago := func(d time.Duration) func(map[string]any) {
			return func(c map[string]any) {
				c["exp"] = time.Now().Add(-d).Unix()
				c["iat"] = time.Now().Add(-d - time.Hour).Unix()
			}
		}
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@example.com", ago(2*time.Minute))}), true)
		wantUser(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@example.com", ago(5*time.Second))}), "user=bob@example.com")
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@example.com", func(c map[string]any) { delete(c, "exp") })}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@example.com", func(c map[string]any) { c["iat"] = time.Now().Add(5 * time.Minute).Unix() })}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@example.com", func(c map[string]any) { c["nbf"] = time.Now().Add(5 * time.Minute).Unix() })}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{m.session(t, "bob@example.com", ago(2*time.Minute))}}), true)
	})

	t.Run("audience", func(t *testing.T) {
		wantUser(t, tc.gate(t, gateReq{path: "/only-app/", bearer: aliceAT}), "user=alice@example.com")
		wantRefused(t, tc.gate(t, gateReq{path: "/only-other/", bearer: aliceAT}), true)
		wantUser(t, tc.gate(t, gateReq{path: "/only-other/", bearer: leeAT}), "user=lee@example.org email=lee@example.org kind=bearer client=other")
		// aud must name the client_id
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@example.com", func(c map[string]any) { c["aud"] = []string{"other"} })}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@example.com", func(c map[string]any) { delete(c, "client_id") })}), true)
		// a session's audience is fixed
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{m.session(t, "bob@example.com", func(c map[string]any) { c["aud"] = []string{"app"} })}}), true)
	})

	t.Run("issuer", func(t *testing.T) {
		wantRefused(t, tc.gate(t, gateReq{path: "/wrong-iss/", bearer: aliceAT}), true)
		wantUser(t, tc.gate(t, gateReq{path: "/iss-placeholder/", bearer: aliceAT}), "user=alice@example.com")
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@example.com", func(c map[string]any) { c["iss"] = "https://elsewhere.example/uas" })}), true)
	})

	t.Run("tampered", func(t *testing.T) {
		seg := segments(t, aliceAT)
		var claims map[string]any
		b, _ := base64.RawURLEncoding.DecodeString(seg[1])
		if err := json.Unmarshal(b, &claims); err != nil {
			t.Fatal(err)
		}
		claims["sub"] = "mallory@example.com"
		nb, _ := json.Marshal(claims)
		forged := seg[0] + "." + base64.RawURLEncoding.EncodeToString(nb) + "." + seg[2]
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: forged}), true)

		sig, _ := base64.RawURLEncoding.DecodeString(seg[2])
		sig[len(sig)/2] ^= 0x01
		flipped := seg[0] + "." + seg[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: flipped}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: seg[0] + "." + seg[1] + "."}), true)
	})

	t.Run("alg none and alg confusion", func(t *testing.T) {
		n := time.Now()
		claims := map[string]any{"iss": issuer, "sub": "mallory@example.com", "aud": []string{"app"}, "client_id": "app",
			"iat": n.Unix(), "exp": n.Add(time.Hour).Unix(), "jti": "x"}
		none := rawJWS(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": m.keys.loaded().kid}, claims, func(string) []byte { return nil })
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: none}), true)

		// HS256 keyed with the RSA public key, in every encoding a confused
		// verifier might use: PEM, DER, and the JWKS's modulus.
		pub := m.keys.loaded().public.Keys[0]
		der, err := x509.MarshalPKIXPublicKey(pub.Key)
		if err != nil {
			t.Fatal(err)
		}
		jwks, _ := pub.MarshalJSON()
		for name, secret := range map[string][]byte{
			"pem":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
			"der":  der,
			"jwks": jwks,
		} {
			hs := rawJWS(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": m.keys.loaded().kid}, claims, func(in string) []byte {
				mac := hmac.New(sha256.New, secret)
				mac.Write([]byte(in))
				return mac.Sum(nil)
			})
			a := tc.gate(t, gateReq{path: "/who/", bearer: hs})
			if a.Status != 401 {
				t.Errorf("HS256 keyed with the public key (%s): %s", name, a)
			}
		}
		// RS256 signature relabelled as another accepted algorithm
		seg := segments(t, m.at(t, "mallory@example.com", nil))
		h := jwtHeader(t, seg[0]+"."+seg[1]+"."+seg[2])
		h["alg"] = "ES256"
		hb, _ := json.Marshal(h)
		relabel := base64.RawURLEncoding.EncodeToString(hb) + "." + seg[1] + "." + seg[2]
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: relabel}), true)
	})

	t.Run("token kinds do not mix", func(t *testing.T) {
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: aliceID}), true)
		sess := m.session(t, "alice@example.com", nil)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: sess}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{aliceAT}}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{aliceID}}), true)
		// the session claims under the access token's typ, and the reverse
		asAT := sign(t, m.keys.atSigner, map[string]any{"iss": issuer, "sub": "alice@example.com", "aud": []string{sessionAudience},
			"client_id": sessionAudience, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
		wantUser(t, tc.gate(t, gateReq{path: "/who/", bearer: asAT}), "kind=bearer")
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{asAT}}), true)
		// a bad bearer is not rescued by a good cookie
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: aliceID, cookies: []string{sess}}), true)
		// a planted cookie in front of the real one does not lock it out
		wantUser(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{"garbage", aliceAT, sess}}), "user=alice@example.com email=alice@example.com kind=session")
	})

	t.Run("another deployment", func(t *testing.T) {
		other := newMinter(t, t.TempDir(), "RS256", issuer)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: other.at(t, "alice@example.com", nil)}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{other.session(t, "alice@example.com", nil)}}), true)
		// its token relabelled with our kid
		seg := segments(t, other.at(t, "alice@example.com", nil))
		h := jwtHeader(t, strings.Join(seg, "."))
		h["kid"] = m.keys.loaded().kid
		hb, _ := json.Marshal(h)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: base64.RawURLEncoding.EncodeToString(hb) + "." + seg[1] + "." + seg[2]}), true)
	})

	t.Run("domains and addresses", func(t *testing.T) {
		wantRefused(t, tc.gate(t, gateReq{path: "/example-org/", bearer: aliceAT}), true)
		wantUser(t, tc.gate(t, gateReq{path: "/example-org/", bearer: leeAT}), "user=lee@example.org")
		wantRefused(t, tc.gate(t, gateReq{path: "/bob-only/", bearer: aliceAT}), true)
		wantUser(t, tc.gate(t, gateReq{path: "/bob-only/", bearer: m.at(t, "bob@example.com", nil)}), "user=bob@example.com")
		wantUser(t, tc.gate(t, gateReq{path: "/bob-only/", cookies: []string{m.session(t, "Bob@example.com", nil)}}), "user=Bob@example.com")
		wantRefused(t, tc.gate(t, gateReq{path: "/bob-only/", bearer: m.at(t, "bob@example.com.evil.example", nil)}), true)
		// only the handler's normalized spelling is a subject
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "bob@EXAMPLE.com", nil)}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", bearer: m.at(t, "Bob <bob@example.com>", nil)}), true)
		wantRefused(t, tc.gate(t, gateReq{path: "/who/", cookies: []string{m.session(t, "bob@example.com", func(c map[string]any) { c["email"] = "boss@example.com" })}}), true)
	})

	t.Run("accept bearer only", func(t *testing.T) {
		wantUser(t, tc.gate(t, gateReq{path: "/bearer-only/", bearer: aliceAT}), "user=alice@example.com")
		wantRefused(t, tc.gate(t, gateReq{path: "/bearer-only/", cookies: []string{m.session(t, "alice@example.com", nil)}}), false)
	})

	t.Run("browser is sent to sign in", func(t *testing.T) {
		html := http.Header{"Accept": {"text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}}
		a := tc.gate(t, gateReq{path: "/app/page?x=1&y=%2F", header: html})
		want := "/email-otp/signin?return=" + url.QueryEscape("/app/page?x=1&y=%2F")
		if a.Status != http.StatusFound || a.Header.Get("Location") != want {
			t.Fatalf("want 302 to %s, got %s Location=%q", want, a, a.Header.Get("Location"))
		}
		if a.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("redirect Cache-Control = %q", a.Header.Get("Cache-Control"))
		}
		a = tc.gate(t, gateReq{method: http.MethodHead, path: "/app/", header: html})
		if a.Status != http.StatusFound {
			t.Errorf("HEAD: %s", a)
		}
		expired := m.session(t, "sam@example.com", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
		if a := tc.gate(t, gateReq{path: "/app/", header: html, cookies: []string{expired}}); a.Status != http.StatusFound {
			t.Errorf("expired session: %s", a)
		}
		wantRefused(t, tc.gate(t, gateReq{method: http.MethodPost, path: "/app/", header: html}), false)
		wantRefused(t, tc.gate(t, gateReq{path: "/app/", header: http.Header{"Accept": {"application/json"}}}), false)
		wantRefused(t, tc.gate(t, gateReq{path: "/app/", header: html, bearer: aliceID}), true)
		wantUser(t, tc.gate(t, gateReq{path: "/app/", header: html, cookies: []string{m.session(t, "sam@example.com", nil)}}), "user=sam@example.com")
	})

	t.Run("tokens are not logged", func(t *testing.T) {
		logs := tc.Logs(t)
		if !strings.Contains(logs, `"event":"refusal"`) {
			t.Errorf("no refusal logged")
		}
		for _, tok := range []string{aliceAT, aliceID, leeAT} {
			if sig := segments(t, tok)[2]; strings.Contains(logs, sig) {
				t.Errorf("a token signature is in the logs")
			}
		}
	})
}

func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(segments(t, tok)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestGateKeys runs the gate without the handler on a storage that has no
// keys yet: they are read on first use, read again at most once per
// gateRefreshInterval for an unknown kid, and a key_file adds its key.
func TestGateKeys(t *testing.T) {
	saved := gateRefreshInterval
	t.Cleanup(func() { gateRefreshInterval = saved }) // runs after Caddy stops
	gateRefreshInterval = 2 * time.Second

	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	outside := newMinter(t, filepath.Join(dir, "outside"), "EdDSA", "")
	pubDER, err := x509.MarshalPKIXPublicKey(outside.keys.loaded().public.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "outside.pub.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := startCaddy(t, fmt.Sprintf(`
	handle /kf/* {
		email_otp_gate {
			key_file %s
		}
		respond "user={http.auth.user.id}"
	}
	handle {
		email_otp_gate
		respond "user={http.auth.user.id}"
	}
`, keyFile), caddyOpts{storage: storage})
	issuer := tc.Base + "/uas"
	outside.issuer = issuer

	// keys created after the gate was provisioned
	rs := newMinter(t, storage, "RS256", issuer)
	beforeLoad := time.Now()
	wantUser(t, tc.gate(t, gateReq{path: "/", bearer: rs.at(t, "a@example.com", nil)}), "user=a@example.com")
	es := newMinter(t, storage, "ES256", issuer)
	esTok := es.at(t, "b@example.com", nil)
	a := tc.gate(t, gateReq{path: "/", bearer: esTok})
	if time.Since(beforeLoad) < gateRefreshInterval {
		wantRefused(t, a, true) // storage was read moments ago
	} else {
		t.Logf("too slow to see the refresh limit: %v since the first read", time.Since(beforeLoad))
	}
	time.Sleep(gateRefreshInterval + 100*time.Millisecond)
	wantUser(t, tc.gate(t, gateReq{path: "/", bearer: esTok}), "user=b@example.com")
	wantUser(t, tc.gate(t, gateReq{path: "/", bearer: rs.at(t, "a@example.com", nil)}), "user=a@example.com")

	// key_file
	wantUser(t, tc.gate(t, gateReq{path: "/kf/", bearer: outside.at(t, "c@example.com", nil)}), "user=c@example.com")
	wantUser(t, tc.gate(t, gateReq{path: "/kf/", bearer: rs.at(t, "a@example.com", nil)}), "user=a@example.com")
	wantRefused(t, tc.gate(t, gateReq{path: "/", bearer: outside.at(t, "c@example.com", nil)}), true)
}

func TestParseVerificationKey(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		sk, err := loadSigningKeys(context.Background(), &certmagic.FileStorage{Path: dir}, alg, "")
		if err != nil {
			t.Fatal(err)
		}
		priv, err := os.ReadFile(filepath.Join(dir, keys.Prefix, keys.SigningKeyName(alg)))
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(sk.loaded().public.Keys[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		for name, in := range map[string][]byte{
			"private": priv,
			"public":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		} {
			jwk, err := keys.ParseVerificationKey(in)
			if err != nil {
				t.Errorf("%s %s: %v", alg, name, err)
				continue
			}
			if jwk.KeyID != sk.loaded().kid || jwk.Algorithm != alg || jwk.IsPublic() != true {
				t.Errorf("%s %s: kid %s alg %s public %t, want kid %s", alg, name, jwk.KeyID, jwk.Algorithm, jwk.IsPublic(), sk.loaded().kid)
			}
		}
	}
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		key  any
		want string
	}{
		"rsa 1024": {&short.PublicKey, "at least 2048"},
		"p384":     {&p384.PublicKey, "only P-256"},
	} {
		der, err := x509.MarshalPKIXPublicKey(c.key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = keys.ParseVerificationKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
	if _, err := keys.ParseVerificationKey([]byte("not a key")); err == nil {
		t.Errorf("garbage accepted")
	}
}

// TestGateStripsHeader checks the header is removed from a refused request
// too, so no later handler (handle_errors, another provider's success) can
// see a client's copy.
func TestGateStripsHeader(t *testing.T) {
	dir := t.TempDir()
	m := newMinter(t, dir, "ES256", "https://idp.example/uas")
	g := &Gate{Issuer: "https://idp.example/uas", Header: "X-Verified-Email"}
	if err := g.provision(context.Background(), &certmagic.FileStorage{Path: dir}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		bearer string
		want   []string
		ok     bool
	}{
		"none":  {"", nil, false},
		"bad":   {"x.y.z", nil, false},
		"valid": {m.at(t, "ann@example.com", nil), []string{"ann@example.com"}, true},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["X-Verified-Email"] = []string{"mallory@evil.example"}
		r.Header["x-verified-email"] = []string{"mallory@evil.example"} // a non-canonical key
		if c.bearer != "" {
			r.Header.Set("Authorization", "Bearer "+c.bearer)
		}
		w := httptest.NewRecorder()
		u, ok, err := g.Authenticate(w, r)
		if err != nil || ok != c.ok {
			t.Errorf("%s: ok=%t err=%v", name, ok, err)
		}
		if got := r.Header.Values("X-Verified-Email"); !reflect.DeepEqual(got, c.want) || len(r.Header["x-verified-email"]) != 0 {
			t.Errorf("%s: header after Authenticate = %q (non-canonical %q), want %q", name, got, r.Header["x-verified-email"], c.want)
		}
		if ok && u.ID != "ann@example.com" {
			t.Errorf("%s: user %q", name, u.ID)
		}
	}
}

// FuzzGateVerify feeds arbitrary strings to the verifier: it must never
// panic, and nothing but the seed's own subject, under its own kind, may
// ever be admitted.
func FuzzGateVerify(f *testing.F) {
	const iss = "https://idp.example/uas"
	dir := f.TempDir()
	m := newMinter(f, dir, "RS256", iss)
	g := &Gate{Issuer: iss}
	if err := g.provision(context.Background(), &certmagic.FileStorage{Path: dir}, zap.NewNop()); err != nil {
		f.Fatal(err)
	}
	at := m.at(f, "fuzz@example.com", nil)
	sess := m.session(f, "fuzz@example.com", nil)
	for _, s := range []string{at, sess, "", "..", "a.b.c", at + ".", strings.Replace(at, ".", "..", 1),
		`{"protected":"x","payload":"y","signature":"z"}`} {
		f.Add(s)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, kind := range []string{kindBearer, kindSession} {
			u, _, err := g.verify(r, raw, kind)
			if err != nil {
				continue
			}
			if u.ID != "fuzz@example.com" || u.Metadata["kind"] != kind {
				t.Fatalf("admitted %q as %s", u.ID, kind)
			}
			want := at
			if kind == kindSession {
				want = sess
			}
			if segments(t, raw)[1] != segments(t, want)[1] {
				t.Fatalf("admitted a payload that was never signed")
			}
		}
	})
}
