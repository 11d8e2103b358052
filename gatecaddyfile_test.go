package emailotp

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestGateCaddyfile: the email_otp_gate block adapts to Caddy's
// authentication handler with the gate as its one provider, each option in
// the JSON field of its name; bad blocks fail with an error naming the
// option (testdata/caddyfile/email_otp_gate_*.txt).
func TestGateCaddyfile(t *testing.T) { runGolden(t, "email_otp_gate_*.txt") }

// TestGateDirectiveOrder adapts a site that writes the directives in the
// wrong order: email_otp must still come first (its token endpoint and
// sign-in page stay reachable), then the gate, then basic_auth.
func TestGateDirectiveOrder(t *testing.T) {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`
example.com {
	basic_auth /admin/* {
		admin $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
	}
	email_otp_gate {
		header X-Verified-Email
	}
	email_otp {
		smtp 127.0.0.1 {
			from no-reply@example.com
		}
		client app app-secret
	}
	respond "hi"
}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	otp := strings.Index(s, `"handler":"email_otp"`)
	gate := strings.Index(s, `"email_otp":{"header":"X-Verified-Email"}`)
	basic := strings.Index(s, `"http_basic"`)
	if otp < 0 || gate < 0 || basic < 0 || !(otp < gate && gate < basic) {
		t.Errorf("handler order: email_otp at %d, gate at %d, basic_auth at %d in\n%s", otp, gate, basic, s)
	}
}
