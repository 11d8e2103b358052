package emailotp

import (
	"bytes"
	"encoding/base64"
	"math"
	"strings"
	"testing"
	"time"
)

func testSealer(t testing.TB, key byte) *sealer {
	t.Helper()
	s, err := newSealer(bytes.Repeat([]byte{key}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReferenceRoundTrip(t *testing.T) {
	s := testSealer(t, 1)
	t0 := time.Unix(1_800_000_000, 0)
	c := s.newChallenge("app", "alice@example.com", "nonce-1", "12345678", t0, 10*time.Minute)
	c.Attempt = 3
	ref := s.seal(c)
	got, err := s.open(ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Attempt != 3 || got.ClientID != "app" || got.Address != "alice@example.com" ||
		got.Nonce != "nonce-1" || !got.Issued.Equal(t0) || !got.Expires.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("round trip: %+v", got)
	}
	if !s.checkCode(got, "12345678") || s.checkCode(got, "12345679") || s.checkCode(got, "1234567") {
		t.Error("code check")
	}
	if strings.Contains(ref, "alice") || strings.Contains(ref, "12345678") {
		t.Error("reference reveals its content")
	}
	if s.seal(c) == ref {
		t.Error("two seals of one challenge are equal: nonce reuse")
	}
	if c.ledgerKey() == (&challenge{ID: c.ID, Attempt: 2}).ledgerKey() {
		t.Error("ledger keys of two links of the chain collide")
	}
}

func TestReferenceTamperAnyByte(t *testing.T) {
	s := testSealer(t, 2)
	c := s.newChallenge("app", "bob@example.com", "", "00000000", time.Now(), time.Minute)
	raw, _ := base64.RawURLEncoding.DecodeString(s.seal(c))
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(raw)
			b[i] ^= bit
			if _, err := s.open(base64.RawURLEncoding.EncodeToString(b)); err == nil {
				t.Fatalf("byte %d flipped (%#x) still opens", i, bit)
			}
		}
	}
	for _, n := range []int{0, 1, 13, len(raw) - 1} {
		if _, err := s.open(base64.RawURLEncoding.EncodeToString(raw[:n])); err == nil {
			t.Errorf("truncated to %d bytes opens", n)
		}
	}
	if _, err := s.open(base64.RawURLEncoding.EncodeToString(append(raw, 0))); err == nil {
		t.Error("extended reference opens")
	}
	if _, err := s.open(strings.Repeat("A", maxRefLength+1)); err != errRefMalformed {
		t.Errorf("oversized: %v", err)
	}
	if _, err := s.open("not base64!"); err != errRefMalformed {
		t.Errorf("garbage: %v", err)
	}
}

func TestReferenceOtherDeployment(t *testing.T) {
	a, b := testSealer(t, 3), testSealer(t, 4)
	ref := a.seal(a.newChallenge("app", "c@example.com", "", "11111111", time.Now(), time.Minute))
	if _, err := b.open(ref); err != errRefForged {
		t.Errorf("other key: %v", err)
	}
}

func TestCodeGeneration(t *testing.T) {
	for n := 6; n <= 12; n++ {
		for range 200 {
			c := newCode(n)
			if len(c) != n || !isDigits(c) {
				t.Fatalf("newCode(%d) = %q", n, c)
			}
		}
	}
	// Rough uniformity: each digit at each position of 20,000 codes should
	// be near 2,000; a chi-square over 10 bins with 9 degrees of freedom
	// exceeds 33.7 with probability 1e-4.
	const samples = 20000
	var counts [8][10]int
	for range samples {
		for i, ch := range newCode(8) {
			counts[i][ch-'0']++
		}
	}
	for pos, row := range counts {
		chi := 0.0
		for _, n := range row {
			d := float64(n) - samples/10.0
			chi += d * d / (samples / 10.0)
		}
		if chi > 33.7 || math.IsNaN(chi) {
			t.Errorf("position %d: chi-square %.1f, counts %v", pos, chi, row)
		}
	}
	// Leading zeros are kept, not dropped.
	zeros := 0
	for range 2000 {
		if newCode(6)[0] == '0' {
			zeros++
		}
	}
	if zeros < 100 || zeros > 320 {
		t.Errorf("%d of 2000 codes start with 0, want about 200", zeros)
	}
}

func TestMemoryLedger(t *testing.T) {
	l := newMemoryLedger(time.Hour)
	defer l.Destruct()
	base := time.Unix(1_800_000_000, 0)
	now = func() time.Time { return base }
	defer func() { now = time.Now }()
	exp := base.Add(time.Minute)
	if ok, _ := l.consume(t.Context(), "a.0", exp); !ok {
		t.Fatal("first consume refused")
	}
	if ok, _ := l.consume(t.Context(), "a.0", exp); ok {
		t.Fatal("second consume accepted")
	}
	if ok, _ := l.consume(t.Context(), "a.1", exp); !ok {
		t.Fatal("next link refused")
	}
	now = func() time.Time { return base.Add(2 * time.Minute) }
	l.sweep()
	if n := l.len(); n != 0 {
		t.Errorf("%d entries after sweep", n)
	}
}
