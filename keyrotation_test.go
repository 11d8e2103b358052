package emailotp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-email-otp/emailotp/internal/testenv"

	"github.com/caddy-email-otp/emailotp/internal/keys"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
)

// rotClock is the tests' one clock (internal/testenv).
type rotClock = testenv.Clock

func newRotClock(t time.Time) *rotClock { return testenv.NewClock(t) }

// usePackageClock makes c the package clock (tokens, gate, ledgers) for
// the test. Set before anything runs that reads it; restored by a cleanup
// that runs after those registered later (Caddy stopping, say).
func usePackageClock(t *testing.T, c *rotClock) {
	saved := now
	now = c.Now
	t.Cleanup(func() { now = saved })
}

// countingStorage counts the writes of each key.
type countingStorage struct {
	*certmagic.FileStorage
	mu     sync.Mutex
	stores map[string]int
}

func (s *countingStorage) Store(ctx context.Context, key string, value []byte) error {
	s.mu.Lock()
	s.stores[key]++
	s.mu.Unlock()
	return s.FileStorage.Store(ctx, key, value)
}

func (s *countingStorage) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stores[key]
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	kid, _ := jwtHeader(t, tok)["kid"].(string)
	return kid
}

func algOf(t *testing.T, tok string) string {
	t.Helper()
	alg, _ := jwtHeader(t, tok)["alg"].(string)
	return alg
}

// jwksKIDs lists the kids of a JWKS document, which must hold public keys
// only.
func jwksKIDs(t *testing.T, doc []byte) []string {
	t.Helper()
	kids, err := testenv.KeyIDs(doc)
	if err != nil {
		t.Fatal(err)
	}
	return kids
}

// verifiesWithJWKS checks a token's signature with a JWKS document as a
// relying party does: the key named by kid (testenv.Verify).
func verifiesWithJWKS(doc []byte, tok string) error {
	_, err := testenv.Verify(doc, tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if errors.Is(err, testenv.ErrUnknownKID) {
		return errUnknownKey
	}
	return err
}

// longToken is an access token signed with jwk directly, valid for two
// days: refused only if the gate no longer trusts the key.
func longToken(t *testing.T, jwk *jose.JSONWebKey, alg, issuer string, at time.Time) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jwk},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, s, map[string]any{"iss": issuer, "sub": "long@example.com", "aud": []string{"app"},
		"client_id": "app", "scope": "openid", "iat": at.Unix(), "exp": at.Add(48 * time.Hour).Unix(),
		"auth_time": at.Unix(), "jti": randomID()})
}

// admits runs the gate on a bearer token for http://example.com.
func admits(t *testing.T, g *Gate, tok string) bool {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://example.com/app", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	_, ok, err := g.Authenticate(httptest.NewRecorder(), r)
	if err != nil {
		t.Fatalf("gate: %v", err)
	}
	return ok
}

func newTestGate(t *testing.T, st certmagic.Storage) *Gate {
	t.Helper()
	g := new(Gate)
	if err := g.provision(context.Background(), st, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	return g
}

// waitGateIdle waits for a background refresh of the gate's keys to end.
func waitGateIdle(t *testing.T, g *Gate) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); g.keys.refreshing.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("gate key refresh still running after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKeyRotation follows one key through its life on a handler with a
// controlled clock: it signs, a successor is published, the successor
// signs while the tokens of the first still verify (gate, JWKS, go-oidc),
// and once they have all expired the first is gone from the JWKS, the gate
// refuses it, and the next rotation drops it from storage.
func TestKeyRotation(t *testing.T) {
	const (
		alg    = "ES256"
		period = 24 * time.Hour
		life   = time.Hour
	)
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	clk := newRotClock(time.Now())
	usePackageClock(t, clk)
	t0 := clk.Now()

	h := &Handler{TokenLifetime: caddy.Duration(life)}
	h.fillDefaults()
	sk, err := openKeys(ctx, st, keyOptions{alg: alg, period: period, retain: life + keys.RetireLeeway, now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.keys = sk
	client := &Client{ID: "app"}
	const iss = "http://example.com/uas"
	mint := func() *tokenResponse {
		t.Helper()
		tr, err := h.mint(grantResult{issuer: iss, client: client, address: "a@example.com", scope: "openid", authTime: clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	jwksSrv := httptest.NewServer(http.HandlerFunc(h.serveJWKS))
	defer jwksSrv.Close()
	rp := oidc.NewRemoteKeySet(ctx, jwksSrv.URL)
	gate := newTestGate(t, st)
	t.Cleanup(func() { waitGateIdle(t, gate) }) // before the clock is restored

	kid1 := sk.ring.current().kid
	if got := jwksKIDs(t, sk.jwks()); !slices.Equal(got, []string{kid1}) {
		t.Fatalf("JWKS before rotation = %v, want [%s]", got, kid1)
	}

	// Half an hour before the period ends: a token of the first key.
	clk.Set(t0.Add(period - 30*time.Minute))
	if err := sk.ring.refresh(ctx, nil); err != nil {
		t.Fatal(err)
	}
	old := mint()
	if kidOf(t, old.AccessToken) != kid1 || !admits(t, gate, old.AccessToken) {
		t.Fatal("first token: wrong kid or refused")
	}
	firstKey := sk.ring.stored[alg][0].JWK
	longOld := longToken(t, firstKey, alg, iss, clk.Now())

	// The period is over: a successor is published but does not sign yet.
	// (A minute late: the first key's age counts from its file's mtime.)
	tr := t0.Add(period + time.Minute)
	clk.Set(tr)
	if err := sk.ring.refresh(ctx, nil); err != nil {
		t.Fatal(err)
	}
	kids := jwksKIDs(t, sk.jwks())
	if len(kids) != 2 || kids[0] != kid1 {
		t.Fatalf("JWKS right after rotation = %v, want [%s <new>]", kids, kid1)
	}
	kid2 := kids[1]
	if k := kidOf(t, mint().IDToken); k != kid1 {
		t.Errorf("signed with %s during pre-publication, want %s", k, kid1)
	}

	// Pre-publication over: the new key signs, the old tokens still verify.
	clk.Advance(keys.Prepublish)
	fresh := mint()
	if k := kidOf(t, fresh.AccessToken); k != kid2 || kidOf(t, fresh.IDToken) != kid2 {
		t.Fatalf("token after pre-publication has kid %s, want %s", k, kid2)
	}
	if kids := jwksKIDs(t, sk.jwks()); !slices.Equal(kids, []string{kid2, kid1}) {
		t.Errorf("JWKS after switch = %v, want [%s %s]", kids, kid2, kid1)
	}
	// The sign-in page's sessions follow the same keys.
	sess, err := jwt.Signed(sk.sessSigner).Claims(jwt.Claims{Issuer: iss, Subject: "a@example.com",
		IssuedAt: jwt.NewNumericDate(clk.Now()), Expiry: jwt.NewNumericDate(clk.Now().Add(life))}).
		Claims(sessionClaims{Audience: []string{sessionAudience}, Email: "a@example.com"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if k := kidOf(t, sess); k != kid2 {
		t.Errorf("session signed with %s after the switch, want %s", k, kid2)
	}
	if addr, err := sk.verifySession(sess, iss, clk.Now()); err != nil || addr != "a@example.com" {
		t.Errorf("session of the new key: %q, %v", addr, err)
	}
	for name, tok := range map[string]string{"old access": old.AccessToken, "old id": old.IDToken, "new id": fresh.IDToken} {
		if err := verifiesWithJWKS(sk.jwks(), tok); err != nil {
			t.Errorf("%s token not verified by the JWKS: %v", name, err)
		}
		if _, err := rp.VerifySignature(ctx, tok); err != nil {
			t.Errorf("%s token not verified by go-oidc through the JWKS: %v", name, err)
		}
	}
	verifier := oidc.NewVerifier(iss, rp, &oidc.Config{ClientID: "app", SupportedSigningAlgs: []string{alg}, Now: clk.Now})
	if _, err := verifier.Verify(ctx, old.IDToken); err != nil {
		t.Errorf("go-oidc refuses the id_token of the replaced key: %v", err)
	}
	if !admits(t, gate, old.AccessToken) || !admits(t, gate, fresh.AccessToken) || !admits(t, gate, longOld) {
		t.Fatal("gate refuses a token of the old or the new key after the switch")
	}

	// The last token of the first key has expired (plus leeway): it is gone.
	retired := tr.Add(keys.Prepublish + max(life+keys.RetireLeeway, period)) // a whole period: until the next rotation
	clk.Set(retired.Add(-time.Second))
	if !slices.Contains(jwksKIDs(t, sk.jwks()), kid1) || !admits(t, gate, longOld) {
		t.Fatal("first key dropped before its retention ended")
	}
	clk.Set(retired)
	if kids := jwksKIDs(t, sk.jwks()); !slices.Equal(kids, []string{kid2}) {
		t.Errorf("JWKS after retention = %v, want [%s]", kids, kid2)
	}
	if err := verifiesWithJWKS(sk.jwks(), longOld); err == nil {
		t.Error("a token of the dropped key still verifies with the JWKS")
	}
	if admits(t, gate, longOld) {
		t.Error("gate still admits a token of the dropped key")
	}
	if _, err := gate.keys.lookup(kid1); err != errUnknownKey {
		t.Errorf("gate lookup of the dropped kid: %v, want errUnknownKey", err)
	}
	if !admits(t, gate, mint().AccessToken) {
		t.Error("gate refuses a token of the current key")
	}

	// The next rotation writes a ring without the dropped key.
	clk.Set(tr.Add(keys.Prepublish + period))
	if err := sk.ring.refresh(ctx, nil); err != nil {
		t.Fatal(err)
	}
	stored, err := keys.ReadStored(ctx, st, alg)
	if err != nil {
		t.Fatal(err)
	}
	var storedKIDs []string
	for _, k := range stored {
		storedKIDs = append(storedKIDs, k.JWK.KeyID)
	}
	if len(storedKIDs) != 2 || storedKIDs[0] != kid2 || slices.Contains(storedKIDs, kid1) {
		t.Errorf("ring after the second rotation = %v, want [%s <new>]", storedKIDs, kid2)
	}
}

// TestKeyRotationStaleGate: a gate that read the keys before a rotation and
// never meets a token of the new key still stops trusting the old one: a
// lookup on a set older than gateStaleAfter reads storage again.
func TestKeyRotationStaleGate(t *testing.T) {
	const alg = "EdDSA"
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	clk := newRotClock(time.Now())
	usePackageClock(t, clk)
	t0 := clk.Now()
	sk, err := openKeys(ctx, st, keyOptions{alg: alg, period: 2 * time.Hour, retain: time.Hour, now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	gate := newTestGate(t, st)
	t.Cleanup(func() { waitGateIdle(t, gate) })
	const iss = "http://example.com/uas"
	long := longToken(t, sk.ring.stored[alg][0].JWK, alg, iss, t0)
	if !admits(t, gate, long) {
		t.Fatal("gate refuses a token of the current key")
	}
	tr := t0.Add(2*time.Hour + time.Minute)
	clk.Set(tr)
	if err := sk.ring.refresh(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(sk.ring.stored[alg]) != 2 {
		t.Fatal("no rotation")
	}
	clk.Set(tr.Add(keys.Prepublish + 2*time.Hour)) // retired a period after the switch
	refused := false
	for range 50 { // the first lookup may still use the old set
		if !admits(t, gate, long) {
			refused = true
			break
		}
		waitGateIdle(t, gate)
	}
	if !refused {
		t.Error("a gate that never saw the new key still admits the dropped one")
	}
}

// TestKeyRotationCluster: instances sharing one storage that all find the
// key due at once make one new key, publish the same JWKS and switch to the
// same kid.
func TestKeyRotationCluster(t *testing.T) {
	const (
		alg       = "RS256"
		instances = 5
		period    = 90 * 24 * time.Hour
	)
	ctx := context.Background()
	st := &countingStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}, stores: map[string]int{}}
	clk := newRotClock(time.Now())
	t0 := clk.Now()
	var nodes []*signingKeys
	for range instances {
		sk, err := openKeys(ctx, st, keyOptions{alg: alg, period: period, retain: time.Hour + keys.RetireLeeway, now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, sk)
	}
	ringKey := path.Join(keys.Prefix, keys.RingName(alg))
	if n := st.count(path.Join(keys.Prefix, keys.SigningKeyName(alg))); n != 1 {
		t.Fatalf("first key stored %d times by %d instances, want once", n, instances)
	}
	kid1 := nodes[0].ring.current().kid

	clk.Set(t0.Add(period + time.Minute))
	var wg sync.WaitGroup
	errs := make([]error, instances)
	for i, sk := range nodes {
		wg.Go(func() { errs[i] = sk.ring.refresh(ctx, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	if n := st.count(ringKey); n != 1 {
		t.Fatalf("%d instances rotated %d times, want once", instances, n)
	}
	first := nodes[0].jwks()
	for i, sk := range nodes {
		if got := string(sk.jwks()); got != string(first) {
			t.Errorf("instance %d publishes another JWKS:\n%s\n%s", i, got, first)
		}
		if sk.ring.current().kid != kid1 {
			t.Errorf("instance %d signs with the new key during pre-publication", i)
		}
	}
	clk.Advance(keys.Prepublish)
	kid2 := nodes[0].ring.current().kid
	if kid2 == kid1 {
		t.Fatal("no instance switched to the new key")
	}
	for i, sk := range nodes {
		tok := sign(t, sk.atSigner, map[string]any{"sub": "x"})
		if k := kidOf(t, tok); k != kid2 {
			t.Errorf("instance %d signs with %s, want %s", i, k, kid2)
		}
	}
	// Later refreshes, not due, write nothing.
	for _, sk := range nodes {
		if err := sk.ring.refresh(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.count(ringKey); n != 1 {
		t.Errorf("ring written %d times, want once", n)
	}
}

// TestKeyRotationFiles: with signing_key_file the operator rotates by
// moving the old file to previous_signing_key_file: both are published,
// the current one signs, and the gate takes both files.
func TestKeyRotationFiles(t *testing.T) {
	dir := t.TempDir()
	cur, prev := filepath.Join(dir, "cur.pem"), filepath.Join(dir, "prev.pem")
	var kids []string
	for _, f := range []string{prev, cur} {
		k, _ := keys.Generate("EdDSA")
		b, err := keys.MarshalPrivate(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		jwk, _ := keys.NewJWK(k, "EdDSA")
		kids = append(kids, jwk.KeyID)
	}
	st := &certmagic.FileStorage{Path: filepath.Join(dir, "storage")}
	sk, err := openKeys(context.Background(), st, keyOptions{alg: "EdDSA", file: cur, prevFile: prev, follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.close()
	if sk.ring.cancel != nil {
		t.Error("a refresh loop runs for key files")
	}
	if got := jwksKIDs(t, sk.jwks()); !slices.Equal(got, []string{kids[1], kids[0]}) {
		t.Errorf("JWKS = %v, want [current %s, previous %s]", got, kids[1], kids[0])
	}
	tok := sign(t, sk.idSigner, map[string]any{"sub": "x"})
	if kidOf(t, tok) != kids[1] {
		t.Errorf("signed with %s, want the current file's %s", kidOf(t, tok), kids[1])
	}
	g := &Gate{KeyFile: cur, PreviousKeyFile: prev}
	if err := g.provision(context.Background(), st, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	for _, kid := range kids {
		if _, err := g.keys.lookup(kid); err != nil {
			t.Errorf("gate does not know %s: %v", kid, err)
		}
	}
}

// TestKeyRotationOptions: the checks on key_rotation and the key files.
func TestKeyRotationOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		h    Handler
		want string // "" accepted
	}{
		{"off", Handler{}, ""},
		{"90 days", Handler{KeyRotation: days(90)}, ""},
		{"too short", Handler{KeyRotation: caddy.Duration(59 * time.Minute)}, "at least 1h0m0s"},
		{"shorter than sessions", Handler{KeyRotation: days(1), SignIn: &SignInConfig{SessionLifetime: days(2)}}, "at least 48h0m0s"},
		{"with a key file", Handler{KeyRotation: days(90), SigningKeyFile: "k.pem"}, "rotated by its operator"},
		{"previous alone", Handler{PreviousSigningKeyFile: "old.pem"}, "needs signing_key_file"},
		{"previous with file", Handler{SigningKeyFile: "k.pem", PreviousSigningKeyFile: "old.pem"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.h.fillDefaults()
			err := c.h.validateKeys()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

func days(n int) caddy.Duration { return caddy.Duration(time.Duration(n) * 24 * time.Hour) }

func getJWKS(t *testing.T, tc *testCaddy) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, tc.Base+"/uas"+jwksSuffix, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := do(t, req)
	if a.Status != http.StatusOK {
		t.Fatalf("JWKS: %s", a)
	}
	return a.Body
}

// TestKeyRotationCaddy: a running Caddy with key_rotation and the default
// algorithms (id_token RS256, access token ES256, distinct kids, both in the
// JWKS) rotates both keys on its own, without a reload: tokens from the
// grant carry the new kids once they sign, tokens of the old keys still
// pass the gate and go-oidc (discovery and JWKS over HTTP, the id_token
// through its verifier and the access token through RemoteKeySet), and
// after their lifetime the old keys are gone from the JWKS and the gate.
func TestKeyRotationCaddy(t *testing.T) {
	clk := newRotClock(time.Now())
	usePackageClock(t, clk)
	savedRefresh := keyRefreshInterval
	keyRefreshInterval = 20 * time.Millisecond
	t.Cleanup(func() { keyRefreshInterval = savedRefresh }) // after Caddy stops
	t0 := clk.Now()

	mp := startMailpit(t)
	tc := startCaddy(t, otpSite(mp.SMTPPort, "key_rotation 1h")+`
	handle /who/* {
		email_otp_gate
		respond "user={http.auth.user.id}" 200
	}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	grant := func(addr string) (string, string) {
		t.Helper()
		ref, code, _ := initiate(t, tc, mp, addr, nil, appCreds)
		a := post(t, tc.Base+tokenPath, validateForm(ref, code), appCreds)
		if a.Status != http.StatusOK || a.str("access_token") == "" {
			t.Fatalf("validate: %s", a)
		}
		return a.str("access_token"), a.str("id_token")
	}
	admitted := func(tok string) bool {
		t.Helper()
		return tc.gate(t, gateReq{path: "/who/", bearer: tok}).Status == http.StatusOK
	}
	waitJWKS := func(what string, ok func([]string) bool) []string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			kids := jwksKIDs(t, getJWKS(t, tc))
			if ok(kids) {
				return kids
			}
			if time.Now().After(deadline) {
				t.Fatalf("JWKS after 10s: %v; want %s", kids, what)
			}
		}
	}

	clk.Set(t0.Add(50 * time.Minute))
	at1, id1 := grant("rot1@example.com")
	atKid1, idKid1 := kidOf(t, at1), kidOf(t, id1)
	if atKid1 == idKid1 || algOf(t, at1) != "ES256" || algOf(t, id1) != "RS256" {
		t.Fatalf("access token %s %s, id_token %s %s: want ES256 and RS256 with distinct kids", algOf(t, at1), atKid1, algOf(t, id1), idKid1)
	}
	if kids := waitJWKS("both keys", func(k []string) bool { return len(k) == 2 }); !slices.Equal(kids, []string{idKid1, atKid1}) {
		t.Fatalf("JWKS %v, want the id_token's key then the access token's", kids)
	}
	if !admitted(at1) {
		t.Fatal("gate refuses the first token")
	}

	// The hour is over: some refresh of the running handler rotates both.
	tr := t0.Add(time.Hour + time.Minute)
	clk.Set(tr)
	kids := waitJWKS("four keys", func(k []string) bool { return len(k) == 4 })
	if kids[0] != idKid1 || kids[1] != atKid1 {
		t.Fatalf("JWKS %v: the current keys %s, %s are not first", kids, idKid1, atKid1)
	}
	idKid2, atKid2 := kids[2], kids[3]
	st := &certmagic.FileStorage{Path: tc.Storage}
	for alg, want := range map[string][2]string{"RS256": {idKid1, idKid2}, "ES256": {atKid1, atKid2}} {
		ring, err := keys.ReadStored(context.Background(), st, alg)
		if err != nil || len(ring) != 2 || ring[0].JWK.KeyID != want[0] || ring[1].JWK.KeyID != want[1] {
			t.Fatalf("stored %s ring: %d keys, %v", alg, len(ring), err)
		}
	}
	esRing, _ := keys.ReadStored(context.Background(), st, "ES256")
	longOld := longToken(t, esRing[0].JWK, "ES256", tc.Base+"/uas", clk.Now())

	clk.Advance(keys.Prepublish)
	at2, id2 := grant("rot2@example.com")
	if kidOf(t, at2) != atKid2 || kidOf(t, id2) != idKid2 {
		t.Fatalf("tokens after pre-publication carry %s / %s, want %s / %s", kidOf(t, at2), kidOf(t, id2), atKid2, idKid2)
	}
	for name, tok := range map[string]string{"old": at1, "new": at2, "long-lived old": longOld} {
		if !admitted(tok) {
			t.Errorf("gate refuses the %s access token after the rotation", name)
		}
	}
	// A client library reads both tokens through discovery and the JWKS.
	provider, err := oidc.NewProvider(ctx, tc.Base+"/uas")
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: "app", SupportedSigningAlgs: []string{"RS256"}, Now: clk.Now})
	for name, tok := range map[string]string{"old": id1, "new": id2} {
		if _, err := verifier.Verify(ctx, tok); err != nil {
			t.Errorf("go-oidc refuses the %s id_token: %v", name, err)
		}
	}
	remote := oidc.NewRemoteKeySet(ctx, tc.Base+"/uas/oauth2/metadata.jwks")
	for name, tok := range map[string]string{"old": at1, "new": at2} {
		if _, err := remote.VerifySignature(ctx, tok); err != nil {
			t.Errorf("go-oidc's RemoteKeySet refuses the %s access token: %v", name, err)
		}
	}

	// Every token of the old keys has expired: they are gone.
	clk.Set(tr.Add(keys.Prepublish + time.Hour + keys.RetireLeeway))
	waitJWKS("only "+idKid2+" and "+atKid2, func(k []string) bool { return slices.Equal(k, []string{idKid2, atKid2}) })
	if admitted(longOld) {
		t.Error("gate admits a token of the dropped key")
	}
	if n := strings.Count(tc.Logs(t), "signing key rotated"); n != 2 {
		t.Errorf("%d log lines for the rotation, want one per algorithm", n)
	}
}

// TestKeyRotationCaddyfileValues: key_rotation takes Caddy durations
// (days included) and off.
func TestKeyRotationCaddyfileValues(t *testing.T) {
	for in, want := range map[string]caddy.Duration{"90d": days(90), "2160h": days(90), "off": 0} {
		var h Handler
		d := caddyfile.NewTestDispenser("email_otp {\nkey_rotation " + in + "\n" + minimalSMTP + "\n}")
		if err := h.UnmarshalCaddyfile(d); err != nil {
			t.Fatalf("key_rotation %s: %v", in, err)
		}
		if h.KeyRotation != want {
			t.Errorf("key_rotation %s = %v, want %v", in, h.KeyRotation, want)
		}
	}
}

// TestKeyRotationSharedKeyOtherLifetimes: handlers on one storage share the
// key, and the one that rotates knows only its own lifetimes. B (no
// rotation, 12h sessions) must keep verifying its sessions signed just
// before A's switch for their whole life, which holds because a replaced
// key stays published for a whole period (A's 24h >= B's 12h).
func TestKeyRotationSharedKeyOtherLifetimes(t *testing.T) {
	const alg = "ES256"
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	clk := newRotClock(time.Now())
	usePackageClock(t, clk)

	b, err := openKeys(ctx, st, keyOptions{alg: alg, now: clk.Now}) // no rotation
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(25 * time.Hour)
	a, err := openKeys(ctx, st, keyOptions{alg: alg, period: 24 * time.Hour, retain: time.Hour + keys.RetireLeeway, now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ring.stored[alg]) != 1 {
		t.Fatal("A rotated while opening its keys (Provision must not write)")
	}
	if err := a.ring.refresh(ctx, nil); err != nil { // A's minute tick
		t.Fatal(err)
	}
	if len(a.ring.stored[alg]) != 2 {
		t.Fatal("A did not rotate")
	}
	if err := b.ring.refresh(ctx, nil); err != nil { // B's minute tick
		t.Fatal(err)
	}
	// B signs a 12h session during pre-publication, still with the old key.
	clk.Advance(5 * time.Minute)
	const iss = "https://b.example"
	signed := clk.Now()
	tok, err := jwt.Signed(b.sessSigner).Claims(jwt.Claims{
		Issuer: iss, Subject: "a@example.com",
		IssuedAt: jwt.NewNumericDate(signed), Expiry: jwt.NewNumericDate(signed.Add(12 * time.Hour)),
	}).Claims(sessionClaims{Audience: []string{sessionAudience}, Email: "a@example.com"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	for _, left := range []time.Duration{12 * time.Hour, 9 * time.Hour, time.Minute} {
		clk.Set(signed.Add(12*time.Hour - left))
		if err := b.ring.refresh(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.verifySession(tok, iss, clk.Now()); err != nil {
			t.Fatalf("B's session with %v left refused after A's rotation: %v", left, err)
		}
	}
}
