package emailotp

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	zclient "github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Specs of private_key_jwt client authentication (RFC 7523 §2.2, OpenID
// Connect Core §9), driven by zitadel/oidc's client package, which builds
// the assertions and posts them as a relying party would.

// pkOTPCall is the smtp-otp form as zitadel's form encoder writes it.
type pkOTPCall struct {
	GrantType string `schema:"grant_type"`
	Scope     string `schema:"scope"`
	Username  string `schema:"username,omitempty"`
	Reference string `schema:"x_globalsign_iam_reference_id,omitempty"`
	Code      string `schema:"x_globalsign_iam_otp_code,omitempty"`
}

type pkTokenCaller string

func (c pkTokenCaller) TokenEndpoint() string    { return string(c) }
func (c pkTokenCaller) HttpClient() *http.Client { return http.DefaultClient }

// pkZitadelCall posts req to the token endpoint authenticated by assertion.
func pkZitadelCall(t *testing.T, endpoint string, req pkOTPCall, assertion string) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := zclient.CallTokenEndpointWithAuthFn(ctx, req, zclient.ClientAssertionFormAuthorization(assertion), pkTokenCaller(endpoint))
	if err != nil {
		return nil, err
	}
	out := map[string]any{"access_token": tok.AccessToken}
	for _, k := range []string{"id_token", "x_globalsign_iam_challenge", "scope"} {
		out[k] = tok.Extra(k)
	}
	return out, nil
}

// pkZitadelAssertion signs an assertion with zitadel's helper: iss = sub =
// clientID, a uuid jti, iat now, exp in a minute.
func pkZitadelAssertion(t *testing.T, clientID, aud string, pemKey []byte, kid string) string {
	t.Helper()
	s, err := zclient.NewSignerFromPrivateKeyByte(pemKey, kid)
	if err != nil {
		t.Fatal(err)
	}
	a, err := zclient.SignedJWTProfileAssertion(clientID, []string{aud}, time.Minute, s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// pkKey is a client's key pair.
type pkKey struct {
	priv   any
	pemKey []byte // PKCS#8
	pub    jose.JSONWebKey
	alg    jose.SignatureAlgorithm
}

func newPKKey(t testing.TB, alg jose.SignatureAlgorithm, kid string) pkKey {
	t.Helper()
	var priv, pub any
	switch alg {
	case jose.RS256, jose.PS256:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	case jose.EdDSA:
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, p
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pkKey{priv: priv, alg: alg, pemKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pub: jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"}}
}

func (k pkKey) publicPEM(t testing.TB) []byte {
	der, err := x509.MarshalPKIXPublicKey(k.pub.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func pkJWKS(t testing.TB, keys ...pkKey) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.pub)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign makes an assertion with arbitrary claims, for the refusals.
func (k pkKey) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, s, claims)
}

// pkClaims are valid claims of client id for aud.
func pkClaims(id, aud string) map[string]any {
	t := time.Now()
	return map[string]any{"iss": id, "sub": id, "aud": aud, "jti": randomID(),
		"iat": t.Unix(), "exp": t.Add(time.Minute).Unix()}
}

func pkAssertionForm(base url.Values, assertion string) url.Values {
	f := url.Values{}
	for k, v := range base {
		f[k] = v
	}
	f.Set("client_assertion_type", clientAssertionType)
	f.Set("client_assertion", assertion)
	return f
}

func pkWriteFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pkWantError checks an RFC 6749 error answer.
func pkWantError(t *testing.T, what string, a answer, status int, code string) {
	t.Helper()
	if a.Status != status || a.str("error") != code {
		t.Errorf("%s: got %s, want %d %s", what, a, status, code)
	}
}

// TestPrivateKeyJWTFlow runs the whole grant, initiate and validate, with
// clients that authenticate by assertions zitadel/oidc signs: one with a
// JWKS file (ES256), one with a PEM public key (RS256). The same assertion
// is refused the second time.
func TestPrivateKeyJWTFlow(t *testing.T) {
	es := newPKKey(t, jose.ES256, "es-1")
	rs := newPKKey(t, jose.RS256, "")
	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, fmt.Sprintf(`
		client pk-jwks {
			jwks_file %s
		}
		client pk-pem {
			public_key_file %s
		}`, pkWriteFile(t, "jwks.json", pkJWKS(t, es)), pkWriteFile(t, "pub.pem", rs.publicPEM(t)))))
	endpoint := tc.Base + tokenPath

	for _, c := range []struct {
		id, aud, kid string
		key          pkKey
	}{
		{"pk-jwks", endpoint, "es-1", es},    // OpenID Connect Core §9: the token endpoint
		{"pk-pem", tc.Base + "/uas", "", rs}, // RFC 7523 §3: the issuer
	} {
		t.Run(c.id, func(t *testing.T) {
			addr := c.id + "@example.com"
			first := pkZitadelAssertion(t, c.id, c.aud, c.key.pemKey, c.kid)
			res, err := pkZitadelCall(t, endpoint, pkOTPCall{GrantType: grantURI, Scope: "openid email", Username: addr}, first)
			if err != nil {
				t.Fatalf("initiate: %v", err)
			}
			ch, _ := res["x_globalsign_iam_challenge"].(map[string]any)
			ref, _ := ch["reference"].(string)
			if ref == "" {
				t.Fatalf("initiate answered no reference: %v", res)
			}
			code := codeFrom(t, mp.WaitFor(t, addr, 10*time.Second).Text, DefaultCodeLength)

			// The same assertion again: its jti was used.
			_, err = pkZitadelCall(t, endpoint, pkOTPCall{GrantType: grantURI, Scope: "openid", Reference: ref, Code: code}, first)
			var oe *oidc.Error
			if !errors.As(err, &oe) || oe.ErrorType != oidc.InvalidClient {
				t.Fatalf("replayed assertion: err = %v, want invalid_client", err)
			}

			res, err = pkZitadelCall(t, endpoint, pkOTPCall{GrantType: grantURI, Scope: "openid email", Reference: ref, Code: code},
				pkZitadelAssertion(t, c.id, c.aud, c.key.pemKey, c.kid))
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			idt, _ := res["id_token"].(string)
			if res["access_token"] == "" || idt == "" {
				t.Fatalf("no tokens: %v", res)
			}
			var claims struct {
				AZP string       `json:"azp"`
				Aud jwt.Audience `json:"aud"` // a string or an array
			}
			payload, err := base64.RawURLEncoding.DecodeString(strings.Split(idt, ".")[1])
			if err == nil {
				err = json.Unmarshal(payload, &claims)
			}
			if err != nil {
				t.Fatalf("id_token payload: %v", err)
			}
			if claims.AZP != c.id || !claims.Aud.Contains(c.id) {
				t.Errorf("id_token azp/aud = %q %v, want %s", claims.AZP, claims.Aud, c.id)
			}
			if logs := tc.Logs(t); strings.Contains(logs, first) || strings.Contains(logs, strings.Split(first, ".")[2]) {
				t.Error("an assertion was logged")
			}
		})
	}
}

// TestPrivateKeyJWTRefused: every assertion that is not exactly right is
// invalid_client (RFC 7521 §4.2.1), and a request mixing methods is
// invalid_request (RFC 6749 §2.3), with nothing mailed.
func TestPrivateKeyJWTRefused(t *testing.T) {
	es := newPKKey(t, jose.ES256, "es-1")
	rs := newPKKey(t, jose.RS256, "rs-1")
	other := newPKKey(t, jose.ES256, "es-1") // same kid, another key
	pubPEM := rs.publicPEM(t)
	tc := startCaddy(t, otpSite(freePort(t), fmt.Sprintf(`
		limit failed_auth_ip off
		limit failed_auth_client off
		client pk {
			jwks_file %s
		}
		client pk-rsa {
			public_key_file %s
		}`, pkWriteFile(t, "jwks.json", pkJWKS(t, es)), pkWriteFile(t, "pub.pem", pubPEM))))
	endpoint := tc.Base + tokenPath
	init := initiateForm("refused@example.com")
	with := func(change func(map[string]any)) map[string]any {
		c := pkClaims("pk", endpoint)
		change(c)
		return c
	}
	hmacWithPublicKey := func() string { // the RS/HS confusion
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubPEM}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sign(t, s, pkClaims("pk-rsa", endpoint))
	}
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		p, _ := json.Marshal(pkClaims("pk", endpoint))
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	sevenMinutes := time.Now().Add(7 * time.Minute).Unix()
	for _, c := range []struct {
		name      string
		assertion string
	}{
		{"wrong aud", es.sign(t, with(func(m map[string]any) { m["aud"] = "https://elsewhere.example/token" }))},
		{"no aud", es.sign(t, with(func(m map[string]any) { delete(m, "aud") }))},
		{"wrong iss", es.sign(t, with(func(m map[string]any) { m["iss"] = "app" }))},
		{"sub another client", es.sign(t, with(func(m map[string]any) { m["sub"] = "app"; m["iss"] = "app" }))},
		{"unknown client", es.sign(t, with(func(m map[string]any) { m["sub"] = "nobody"; m["iss"] = "nobody" }))},
		{"expired", es.sign(t, with(func(m map[string]any) { m["exp"] = time.Now().Add(-2 * time.Minute).Unix() }))},
		{"no exp", es.sign(t, with(func(m map[string]any) { delete(m, "exp") }))},
		{"exp too far", es.sign(t, with(func(m map[string]any) { m["exp"] = sevenMinutes }))},
		{"nbf ahead", es.sign(t, with(func(m map[string]any) { m["nbf"] = time.Now().Add(2 * time.Minute).Unix() }))},
		{"iat ahead", es.sign(t, with(func(m map[string]any) { m["iat"] = time.Now().Add(2 * time.Minute).Unix() }))},
		{"no jti", es.sign(t, with(func(m map[string]any) { delete(m, "jti") }))},
		{"other key same kid", other.sign(t, pkClaims("pk", endpoint))},
		{"alg none", none()},
		{"HS256 with the public key", hmacWithPublicKey()},
		{"garbage", "not.a.jwt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, endpoint, pkAssertionForm(init, c.assertion), nil)
			pkWantError(t, c.name, a, http.StatusUnauthorized, "invalid_client")
		})
	}

	good := func() string { return es.sign(t, pkClaims("pk", endpoint)) }
	t.Run("client_id differs", func(t *testing.T) {
		f := pkAssertionForm(init, good())
		f.Set("client_id", "app")
		pkWantError(t, "client_id differs", post(t, endpoint, f, nil), http.StatusUnauthorized, "invalid_client")
	})
	t.Run("other assertion type", func(t *testing.T) {
		f := pkAssertionForm(init, good())
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		pkWantError(t, "type", post(t, endpoint, f, nil), http.StatusUnauthorized, "invalid_client")
	})
	t.Run("Basic and assertion", func(t *testing.T) {
		pkWantError(t, "Basic+assertion", post(t, endpoint, pkAssertionForm(init, good()), appCreds), http.StatusBadRequest, "invalid_request")
	})
	t.Run("secret and assertion", func(t *testing.T) {
		f := pkAssertionForm(init, good())
		f.Set("client_id", "pk")
		f.Set("client_secret", "x")
		pkWantError(t, "secret+assertion", post(t, endpoint, f, nil), http.StatusBadRequest, "invalid_request")
	})
	t.Run("assertion without type", func(t *testing.T) {
		f := pkAssertionForm(init, good())
		f.Del("client_assertion_type")
		pkWantError(t, "no type", post(t, endpoint, f, nil), http.StatusBadRequest, "invalid_request")
	})
	t.Run("key client with a secret", func(t *testing.T) {
		f := initiateForm("refused@example.com")
		f.Set("client_id", "pk")
		pkWantError(t, "empty secret", post(t, endpoint, f, nil), http.StatusUnauthorized, "invalid_client")
		pkWantError(t, "Basic", post(t, endpoint, initiateForm("refused@example.com"), []string{"pk", ""}), http.StatusUnauthorized, "invalid_client")
	})
	t.Run("secret client with an assertion", func(t *testing.T) {
		pkWantError(t, "app", post(t, endpoint, pkAssertionForm(init, es.sign(t, pkClaims("app", endpoint))), nil), http.StatusUnauthorized, "invalid_client")
	})
	t.Run("PS256 with the PEM key is accepted", func(t *testing.T) {
		// Control: the refusals above are not a broken setup. PS256 is
		// allowed for an RSA key; the mail server is down, so 503.
		ps := rs
		ps.alg = jose.PS256
		a := post(t, endpoint, pkAssertionForm(init, ps.sign(t, pkClaims("pk-rsa", endpoint))), nil)
		if a.Status != http.StatusServiceUnavailable {
			t.Errorf("PS256 assertion: %s, want 503 (authenticated, then SMTP down)", a)
		}
	})
	if logs := tc.Logs(t); !strings.Contains(logs, `"method":"private_key_jwt"`) {
		t.Error("refusals were not logged")
	}
}

// TestPrivateKeyJWTThrottled: failed assertions count against the caller's
// IP like wrong secrets (RFC 6749 §2.3.1 brute-force protection): past
// failed_auth_ip even a valid assertion gets 429 before it is verified.
func TestPrivateKeyJWTThrottled(t *testing.T) {
	es := newPKKey(t, jose.ES256, "es-1")
	tc := startCaddy(t, otpSite(freePort(t), fmt.Sprintf(`
		limit failed_auth_ip 3 1m
		client pk {
			jwks_file %s
		}`, pkWriteFile(t, "jwks.json", pkJWKS(t, es)))))
	endpoint := tc.Base + tokenPath
	init := initiateForm("throttled@example.com")
	for i := range 3 {
		a := post(t, endpoint, pkAssertionForm(init, "not.a.jwt"), nil)
		pkWantError(t, fmt.Sprintf("bad assertion %d", i+1), a, http.StatusUnauthorized, "invalid_client")
	}
	a := post(t, endpoint, pkAssertionForm(init, es.sign(t, pkClaims("pk", endpoint))), nil)
	pkWantError(t, "valid assertion after 3 failures", a, http.StatusTooManyRequests, "slow_down")
	if a.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %s", a)
	}
}

// TestPrivateKeyJWTReplayAcrossHandlers: two handlers sharing the storage
// ledger (here two routes of one Caddy, both with ledger storage and one
// issuer) accept an assertion once between them.
func TestPrivateKeyJWTReplayAcrossHandlers(t *testing.T) {
	es := newPKKey(t, jose.ES256, "es-1")
	jwksFile := pkWriteFile(t, "jwks.json", pkJWKS(t, es))
	block := func(prefix string) string {
		return fmt.Sprintf(`
	handle %s/* {
		email_otp {
			token_path %s/oauth2/token
			issuer {http.request.scheme}://{http.request.hostport}/uas
			ledger storage
			smtp {
				host 127.0.0.1
				port %d
				tls none
				from "Test <no-reply@example.com>"
				timeout 2s
			}
			client pk {
				jwks_file %s
			}
		}
	}`, prefix, prefix, freePort(t), jwksFile)
	}
	tc := startCaddy(t, block("/a")+block("/b"))
	iss := tc.Base + "/uas"
	assertion := es.sign(t, pkClaims("pk", iss))
	f := pkAssertionForm(initiateForm("replay@example.com"), assertion)
	// First use: authenticated (the mail server is absent: 503).
	if a := post(t, tc.Base+"/a/oauth2/token", f, nil); a.Status != http.StatusServiceUnavailable {
		t.Fatalf("first use at /a: %s, want 503 after authentication", a)
	}
	pkWantError(t, "replay at /b", post(t, tc.Base+"/b/oauth2/token", f, nil), http.StatusUnauthorized, "invalid_client")
	pkWantError(t, "replay at /a", post(t, tc.Base+"/a/oauth2/token", f, nil), http.StatusUnauthorized, "invalid_client")
	// A fresh assertion still works at /b.
	if a := post(t, tc.Base+"/b/oauth2/token", pkAssertionForm(initiateForm("replay@example.com"), es.sign(t, pkClaims("pk", iss))), nil); a.Status != http.StatusServiceUnavailable {
		t.Errorf("fresh assertion at /b: %s, want 503 after authentication", a)
	}
}

// pkJWKSServer serves a JWKS that the test swaps, counting fetches.
type pkJWKSServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int32
}

func newPKJWKSServer(t *testing.T, body []byte) *pkJWKSServer {
	s := &pkJWKSServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		b := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *pkJWKSServer) set(b []byte) {
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

// TestPrivateKeyJWTJWKSURI: a client's jwks_uri (httptest on loopback) is
// fetched on first use, not again for an unknown kid within jwksRefetch,
// and again after it, so a key rotation at the client is picked up and the
// withdrawn key stops verifying.
func TestPrivateKeyJWTJWKSURI(t *testing.T) {
	k1 := newPKKey(t, jose.EdDSA, "k1")
	k2 := newPKKey(t, jose.RS256, "k2")
	srv := newPKJWKSServer(t, pkJWKS(t, k1))
	oldRefetch := jwksRefetch
	jwksRefetch = 300 * time.Millisecond
	t.Cleanup(func() { jwksRefetch = oldRefetch })
	tc := startCaddy(t, otpSite(freePort(t), fmt.Sprintf(`
		client remote {
			jwks_uri %s/jwks.json
		}`, srv.URL)))
	endpoint := tc.Base + tokenPath
	try := func(k pkKey) answer {
		return post(t, endpoint, pkAssertionForm(initiateForm("remote@example.com"), k.sign(t, pkClaims("remote", endpoint))), nil)
	}
	authenticated := func(what string, a answer) {
		t.Helper()
		if a.Status != http.StatusServiceUnavailable { // SMTP absent: past authentication
			t.Errorf("%s: %s, want 503 after authentication", what, a)
		}
	}
	authenticated("k1", try(k1))
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches after first use = %d, want 1", n)
	}
	authenticated("k1 again", try(k1))
	unknown := newPKKey(t, jose.EdDSA, "made-up")
	pkWantError(t, "unknown kid", try(unknown), http.StatusUnauthorized, "invalid_client")
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("fetches after a known kid and a made-up kid within jwksRefetch = %d, want 1", n)
	}

	srv.set(pkJWKS(t, k2)) // the client rotates
	time.Sleep(jwksRefetch + 100*time.Millisecond)
	authenticated("k2 after rotation", try(k2))
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("fetches after rotation = %d, want 2", n)
	}
	pkWantError(t, "withdrawn k1", try(k1), http.StatusUnauthorized, "invalid_client")
}

// TestPrivateKeyJWTJWKSURIDown: no copy of the client's keys and its
// jwks_uri unreachable is a 503, not a refusal of the client.
func TestPrivateKeyJWTJWKSURIDown(t *testing.T) {
	k := newPKKey(t, jose.ES256, "k")
	tc := startCaddy(t, otpSite(freePort(t), fmt.Sprintf(`
		client remote {
			jwks_uri http://127.0.0.1:%d/jwks.json
		}`, freePort(t))))
	a := post(t, tc.Base+tokenPath, pkAssertionForm(initiateForm("down@example.com"), k.sign(t, pkClaims("remote", tc.Base+tokenPath))), nil)
	pkWantError(t, "jwks_uri down", a, http.StatusServiceUnavailable, "temporarily_unavailable")
	if a.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

// TestPrivateKeyJWTDiscovery: discovery lists each method some client may
// use and the assertion algorithms, never none or HS*.
func TestPrivateKeyJWTDiscovery(t *testing.T) {
	es := newPKKey(t, jose.ES256, "es-1")
	for _, c := range []struct {
		name, extra string
		methods     []string
	}{
		{"secrets only", "", []string{"client_secret_basic", "client_secret_post"}},
		{"with a key client", fmt.Sprintf("client pk {\njwks_file %s\n}", pkWriteFile(t, "jwks.json", pkJWKS(t, es))),
			[]string{"client_secret_basic", "client_secret_post", "private_key_jwt"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc := startCaddy(t, otpSite(freePort(t), c.extra))
			a := httpGet(t, tc.Base+"/uas/.well-known/openid-configuration")
			var d struct {
				Methods []string `json:"token_endpoint_auth_methods_supported"`
				Algs    []string `json:"token_endpoint_auth_signing_alg_values_supported"`
			}
			if err := json.Unmarshal(a.Body, &d); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.Methods, c.methods) {
				t.Errorf("token_endpoint_auth_methods_supported = %v, want %v", d.Methods, c.methods)
			}
			wantAlgs := []string(nil)
			if slices.Contains(c.methods, "private_key_jwt") {
				wantAlgs = []string{"RS256", "PS256", "ES256", "EdDSA"}
			}
			if !slices.Equal(d.Algs, wantAlgs) {
				t.Errorf("token_endpoint_auth_signing_alg_values_supported = %v, want %v", d.Algs, wantAlgs)
			}
		})
	}
}
