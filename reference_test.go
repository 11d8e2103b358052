package emailotp

import (
	"strings"
	"testing"
	"time"
)

// TestReferenceV2Fields: what version 2 added to the sealed challenge (the
// issuing handler, the username as sent, max_attempts at sending, the dead
// end) comes back as sealed, and the longest reference still opens.
func TestReferenceV2Fields(t *testing.T) {
	s := testSealer(t, 7)
	c := s.newChallenge("app", "Ann@example.com", "n", "12345678", time.Unix(1_800_000_000, 0), time.Minute)
	c.Binding = bindingOf("https://sso.example.com/uas", "/uas/oauth2/token")
	c.Username, c.MaxAttempts, c.Dead, c.Attempt = "Ann@EXAMPLE.com", 7, deadExhausted, 3
	got, err := s.open(s.seal(c))
	if err != nil {
		t.Fatal(err)
	}
	if got.Binding != c.Binding || got.Username != c.Username || got.MaxAttempts != 7 || got.Dead != deadExhausted ||
		got.Attempt != 3 || got.subject() != "Ann@EXAMPLE.com" || got.Address != "Ann@example.com" {
		t.Errorf("opened %+v, sealed %+v", got, c)
	}
	if c.Username = ""; c.subject() != c.Address {
		t.Errorf("subject without a username: %q", c.subject())
	}
	for _, other := range [][2]string{
		{"https://sso.example.com/uas", "/other/oauth2/token"},
		{"https://other.example.com/uas", "/uas/oauth2/token"},
		{"http://sso.example.com/uas", "/uas/oauth2/token"},
		{"https://sso.example.com:8443/uas", "/uas/oauth2/token"},
		{"https://sso.example.com/uas/uas/oauth2/tok", "en"}, // the same bytes, another split
	} {
		if bindingOf(other[0], other[1]) == c.Binding {
			t.Errorf("binding of %q equals the original", other)
		}
	}

	long := strings.Repeat("x", maxFieldLen)
	c.ClientID, c.Address, c.Username, c.Nonce = long, long, long, long
	ref := s.seal(c)
	if len(ref) > maxRefLength {
		t.Fatalf("longest reference: %d characters, limit %d", len(ref), maxRefLength)
	}
	if got, err := s.open(ref); err != nil || got.Username != long || got.Nonce != long {
		t.Errorf("longest reference (%d characters) does not open: %v", len(ref), err)
	}
}
