package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	c := NewClock(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	c.Advance(time.Minute)
	if !c.Now().Equal(t0.Add(time.Minute)) {
		t.Errorf("after Advance: %v", c.Now())
	}
	c.Set(t0.Add(-time.Hour))
	if !c.Now().Equal(t0.Add(-time.Hour)) {
		t.Errorf("after Set: %v", c.Now())
	}
}

func TestVerifyChecksTheKeyTheKIDNames(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv := jose.JSONWebKey{Key: k, KeyID: "k1", Algorithm: "ES256"}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(jwt.Claims{Subject: "ann@example.com"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	var c jwt.Claims
	if _, err := Verify(doc, tok, []jose.SignatureAlgorithm{jose.ES256}, &c); err != nil || c.Subject != "ann@example.com" {
		t.Errorf("Verify: %v, subject %q", err, c.Subject)
	}
	if kids, err := KeyIDs(doc); err != nil || len(kids) != 1 || kids[0] != "k1" {
		t.Errorf("KeyIDs: %v %v", kids, err)
	}
	other := priv.Public()
	other.KeyID = "k2"
	doc2, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{other}})
	if _, err := Verify(doc2, tok, []jose.SignatureAlgorithm{jose.ES256}); !errors.Is(err, ErrUnknownKID) {
		t.Errorf("unknown kid: %v", err)
	}
	if _, err := Verify(doc, tok, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		t.Error("an algorithm outside the list verified")
	}
	privDoc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv}})
	if _, err := KeyIDs(privDoc); err == nil {
		t.Error("a JWKS with a private key was accepted")
	}
}
