package emailotp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// TestClientKeysCaddyfile: the key options of a client parse to the JSON
// fields of the same names, and a client has exactly one way to
// authenticate, with a jwks_uri over https (http only to loopback or when
// asked): testdata/caddyfile/email_otp_client_keys_*.txt.
func TestClientKeysCaddyfile(t *testing.T) { runGolden(t, "email_otp_client_keys_*.txt") }

// TestClientJWKSParsing: a JWKS file keeps only asymmetric signing keys a
// private_key_jwt client can hold; a symmetric key in a file is an error at
// provision, not a silent HS256 door.
func TestClientJWKSParsing(t *testing.T) {
	es := newPKKey(t, jose.ES256, "es")
	oct, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h", Algorithm: "HS256"}}})
	mixed := strings.Replace(string(pkJWKS(t, es)), `"keys":[`, `"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h"},`, 1)
	for _, c := range []struct {
		name, body, want string
	}{
		{"only oct", string(oct), "no usable signing key"},
		{"oct beside a good key", mixed, "unusable keys"},
		{"not JSON", "{", "not a JWK Set"},
	} {
		cl := &Client{ID: "pk", JWKSFile: pkWriteFile(t, "jwks.json", []byte(c.body))}
		if err := cl.provision(caddy.NewReplacer()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	cl := &Client{ID: "pk", JWKSFile: pkWriteFile(t, "jwks.json", pkJWKS(t, es))}
	if err := cl.provision(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	if got := matchKeys(cl.keys.static, "es", "ES256"); len(got) != 1 {
		t.Errorf("ES256 kid es: %d keys", len(got))
	}
	for _, alg := range []string{"RS256", "HS256", "none", "EdDSA"} {
		if got := matchKeys(cl.keys.static, "es", alg); len(got) != 0 {
			t.Errorf("a P-256 key was offered for %s", alg)
		}
	}
	h := &Handler{clients: map[string]*Client{cl.ID: cl}}
	if _, ok := h.authenticate(cl.ID, ""); ok {
		t.Error("a key client authenticated with an empty secret")
	}
}

// BenchmarkAssertionVerify measures an assertion's verification for a known
// client and for an unknown one, which is checked against a decoy key of the
// same algorithm so both cost about the same.
func BenchmarkAssertionVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		k := newPKKey(b, alg, "k")
		cl := &Client{ID: "pk", JWKSFile: pkWriteFile(b, "jwks.json", pkJWKS(b, k))}
		if err := cl.provision(caddy.NewReplacer()); err != nil {
			b.Fatal(err)
		}
		l := newMemoryLedger(time.Minute)
		b.Cleanup(func() { _ = l.Destruct() })
		h := &Handler{clients: map[string]*Client{"pk": cl}, core: &otp{ledger: l}, logger: zap.NewNop(),
			Issuer: "https://sso.example.com/uas", TokenPath: DefaultTokenPath, basePath: "/uas"}
		r := httptest.NewRequest(http.MethodPost, DefaultTokenPath, nil)
		decoyKeys()
		for _, who := range []string{"pk", "nobody"} {
			b.Run(string(alg)+"/"+who, func(b *testing.B) {
				as := make([]string, b.N)
				for i := range as {
					as[i] = k.sign(b, pkClaims(who, "https://sso.example.com/uas"))
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					c, reason, err := h.verifyAssertion(r, as[i], "")
					if err != nil || (who == "pk") != (reason == "" && c != nil) {
						b.Fatalf("%s: %q %v", who, reason, err)
					}
				}
			})
		}
	}
}
