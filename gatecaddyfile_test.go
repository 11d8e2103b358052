package emailotp

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
)

func TestGateCaddyfile(t *testing.T) {
	for _, c := range []struct {
		name  string
		input string
		want  Gate
		err   string // substring of the error; empty when the input is good
	}{
		{name: "bare", input: `email_otp_gate`, want: Gate{}},
		{name: "empty block", input: `email_otp_gate {
		}`, want: Gate{}},
		{name: "everything", input: `email_otp_gate {
			issuer          https://sso.example.com/uas
			allow_clients   app other
			allow_clients   third
			allow_domains   example.com bücher.example
			allow_addresses boss@example.net
			accept          bearer
			leeway          1m
			header          X-Verified-Email
			cookie          my_session
			signin          /login
			key_file        /etc/caddy/otp.pem
		}`, want: Gate{
			Issuer:         "https://sso.example.com/uas",
			AllowClients:   []string{"app", "other", "third"},
			AllowDomains:   []string{"example.com", "bücher.example"},
			AllowAddresses: []string{"boss@example.net"},
			Accept:         []string{"bearer"},
			Leeway:         caddy.Duration(time.Minute),
			Header:         "X-Verified-Email",
			Cookie:         "my_session",
			SignInPath:     "/login",
			KeyFile:        "/etc/caddy/otp.pem",
		}},
		{name: "previous key file", input: `email_otp_gate {
			key_file          /etc/caddy/otp.pem
			previous_key_file /etc/caddy/otp-old.pem
		}`, want: Gate{KeyFile: "/etc/caddy/otp.pem", PreviousKeyFile: "/etc/caddy/otp-old.pem"}},
		{name: "cookie domain and audit", input: `email_otp_gate {
			cookie_domain example.com
			audit_log_address full
		}`, want: Gate{CookieDomain: "example.com", AuditLogAddress: "full"}},
		{name: "bad cookie domain", input: `email_otp_gate {
			cookie_domain com
		}`, err: "cookie_domain"},
		{name: "bad audit_log_address", input: `email_otp_gate {
			audit_log_address loud
		}`, err: "audit_log_address"},
		{name: "signin default", input: `email_otp_gate {
			signin
		}`, want: Gate{SignInPath: DefaultSignInPath}},
		{name: "issuer placeholder", input: `email_otp_gate {
			issuer {env.ISSUER}
		}`, want: Gate{Issuer: "{env.ISSUER}"}},

		{name: "argument", input: `email_otp_gate bearer`, err: `unexpected argument "bearer"`},
		{name: "unknown", input: `email_otp_gate {
			audience app
		}`, err: `unknown subdirective "audience"`},
		{name: "issuer twice", input: `email_otp_gate {
			issuer a b
		}`, err: "issuer: want one value, got more"},
		{name: "issuer missing", input: `email_otp_gate {
			issuer
		}`, err: "issuer: want one value"},
		{name: "empty list", input: `email_otp_gate {
			allow_domains
		}`, err: "allow_domains: want at least one value"},
		{name: "bad domain", input: `email_otp_gate {
			allow_domains localhost
		}`, err: `allow_domains: "localhost" is not a domain name`},
		{name: "bad address", input: `email_otp_gate {
			allow_addresses "Boss <boss@example.com>"
		}`, err: `allow_addresses: "Boss <boss@example.com>"`},
		{name: "bad accept", input: `email_otp_gate {
			accept basic
		}`, err: `accept "basic": want bearer or session`},
		{name: "bad leeway", input: `email_otp_gate {
			leeway soon
		}`, err: `leeway: "soon" is not a duration`},
		{name: "leeway too long", input: `email_otp_gate {
			leeway 1h
		}`, err: "leeway 1h0m0s out of range 0-10m"},
		{name: "negative leeway", input: `email_otp_gate {
			leeway -5s
		}`, err: "out of range 0-10m"},
		{name: "bad header", input: `email_otp_gate {
			header "X Verified"
		}`, err: `header "X Verified" is not a valid header field name`},
		{name: "reserved header", input: `email_otp_gate {
			header authorization
		}`, err: `header "authorization": choose a header of your own`},
		{name: "bad cookie", input: `email_otp_gate {
			cookie "a;b"
		}`, err: `cookie "a;b" is not a valid cookie name`},
		{name: "signin not a path", input: `email_otp_gate {
			signin https://elsewhere.example/login
		}`, err: "must be a path on this site"},
		{name: "signin protocol-relative", input: `email_otp_gate {
			signin //elsewhere.example/login
		}`, err: "must be a path on this site"},
		{name: "signin two paths", input: `email_otp_gate {
			signin /a /b
		}`, err: "signin: want at most one path"},
		{name: "block on an option", input: `email_otp_gate {
			header X-Email {
				foo
			}
		}`, err: "header takes no block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := httpcaddyfile.Helper{Dispenser: caddyfile.NewTestDispenser(c.input)}
			mh, err := parseGateCaddyfile(h)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			auth, ok := mh.(caddyauth.Authentication)
			if !ok || len(auth.ProvidersRaw) != 1 {
				t.Fatalf("want an authentication handler with one provider, got %#v", mh)
			}
			var got Gate
			if err := json.Unmarshal(auth.ProvidersRaw["email_otp"], &got); err != nil {
				t.Fatalf("provider email_otp: %v (%s)", err, auth.ProvidersRaw)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

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
