package emailotp

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// TestRevocationList: two lists on one storage stand for two instances.
// What one takes applies there at once and on the other at its next read;
// address and time cut-offs take what was issued up to their second; and
// entries leave the stored document once nothing they name can be valid.
func TestRevocationList(t *testing.T) {
	ctx := context.Background()
	clk := newRotClock(time.Unix(1_800_000_000, 0))
	usePackageClock(t, clk)
	st := &certmagic.FileStorage{Path: t.TempDir()}
	a, b := &revocationList{storage: st}, &revocationList{storage: st}
	for _, l := range []*revocationList{a, b} {
		if err := l.read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ann, _ := parseAddress("Ann@Example.COM")
	bob, _ := parseAddress("bob@example.com")
	t0 := clk.Now().Unix()

	if a.revoked("j1", ann, t0) || b.revoked("j1", ann, t0) {
		t.Fatal("revoked before anything was listed")
	}
	if err := a.add(ctx, revocation{jti: "j1", exp: clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if !a.revoked("j1", ann, t0) {
		t.Error("jti not revoked at once on the instance that took it")
	}
	if a.revoked("j2", ann, t0) {
		t.Error("another jti revoked")
	}
	if b.revoked("j1", ann, t0) {
		t.Error("the other instance knew before reading storage")
	}
	if err := b.read(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.revoked("j1", ann, t0) {
		t.Error("jti not revoked on the other instance after its read")
	}

	// An address: what it was issued up to the moment, in any spelling.
	addr, _ := parseAddress("ann@example.com")
	if err := b.add(ctx, revocation{address: addr.key(), before: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.read(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*revocationList{a, b} {
		if !l.revoked("x", ann, t0) || !l.revoked("x", ann, t0-100) {
			t.Error("address not revoked up to its moment")
		}
		if l.revoked("x", ann, t0+1) {
			t.Error("a credential issued after the moment is revoked")
		}
		if l.revoked("x", bob, t0) {
			t.Error("another address revoked")
		}
		if !l.revoked("j1", bob, t0) {
			t.Error("the jti entry was lost by the address write")
		}
	}

	// Everything before a moment.
	if err := a.add(ctx, revocation{before: clk.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if !a.revoked("y", bob, t0-60) || a.revoked("y", bob, t0-59) {
		t.Error("global cut-off wrong")
	}
	if !a.revoked("y", bob, 0) {
		t.Error("a credential without iat passes a global cut-off")
	}

	// Bounded: the jti leaves after its token's exp plus leeway, the
	// others after the longest credential lifetime.
	clk.Advance(time.Hour + revokedJTIKeep + time.Second)
	if err := a.add(ctx, revocation{jti: "j3", exp: clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	doc := storedRevocations(t, st)
	if _, ok := doc.JTI["j1"]; ok {
		t.Error("j1 kept after its token expired")
	}
	if len(doc.Address) != 1 || doc.Before == 0 {
		t.Errorf("address or time entry dropped too early: %+v", doc)
	}
	clk.Advance(maxCredentialLife)
	if err := a.add(ctx, revocation{jti: "j4", exp: clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	doc = storedRevocations(t, st)
	if len(doc.Address) != 0 || doc.Before != 0 || len(doc.JTI) != 1 {
		t.Errorf("document not pruned: %+v", doc)
	}
}

func storedRevocations(t *testing.T, st certmagic.Storage) revocationDoc {
	t.Helper()
	b, err := st.Load(context.Background(), revocationKey)
	if err != nil {
		t.Fatal(err)
	}
	var d revocationDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRevocationRefresh: the stated delay. The default is within a minute,
// a longer one is refused, and modules sharing a list get the shortest.
func TestRevocationRefresh(t *testing.T) {
	if DefaultRevocationRefresh > time.Minute {
		t.Errorf("default refresh %v: revocations must apply within 60s", DefaultRevocationRefresh)
	}
	g := &Gate{RevocationRefresh: caddy.Duration(61 * time.Second)}
	g.fillDefaults()
	if err := g.Validate(); err == nil {
		t.Error("revocation_refresh 61s accepted")
	}
	st := &certmagic.FileStorage{Path: t.TempDir()}
	l1, k1, err := openRevocations(st, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer revocationLists.Delete(k1)
	if got := time.Duration(l1.refresh.Load()); got != DefaultRevocationRefresh {
		t.Errorf("refresh %v, want the default", got)
	}
	l2, k2, err := openRevocations(st, nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer revocationLists.Delete(k2)
	if l1 != l2 {
		t.Fatal("two lists for one storage")
	}
	if got := time.Duration(l1.refresh.Load()); got != 2*time.Second {
		t.Errorf("refresh %v, want the shorter 2s", got)
	}
	if revocationsOf(st) != l1 {
		t.Error("the admin API would not reach the live list")
	}
	// The loop, started waiting 30s, follows the shorter interval at once.
	other := &revocationList{storage: st}
	if err := other.add(context.Background(), revocation{jti: "elsewhere", exp: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !l1.revoked("elsewhere", address{}, 1) {
		if time.Now().After(deadline) {
			t.Fatal("a 2s refresh did not read storage within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
