package emailotp

import (
	"encoding/base64"
	"testing"
	"time"
)

// TestUnverifiedExpiry: the renewal pre-check reads exp from any payload
// the signer writes, and gives up on anything else.
func TestUnverifiedExpiry(t *testing.T) {
	enc := func(p string) string { return "h." + base64.RawURLEncoding.EncodeToString([]byte(p)) + ".s" }
	for tok, want := range map[string]int64{
		enc(`{"aud":["email_otp_session"],"exp":1796308846,"iat":1796265646}`): 1796308846,
		enc(`{"exp":5}`):                         5,
		enc(`{"iat":5}`):                         -1,
		enc(`{"exp":"5"}`):                       -1,
		enc(`{"exp":}`):                          -1,
		"no-dots":                                -1,
		"h.!!!.s":                                -1,
		"h." + string(make([]byte, 2000)) + ".s": -1,
	} {
		got, ok := unverifiedExpiry(tok)
		if (want < 0) == ok || (ok && !got.Equal(time.Unix(want, 0))) {
			t.Errorf("unverifiedExpiry(%.40q) = %v %v, want %d", tok, got, ok, want)
		}
	}
}
