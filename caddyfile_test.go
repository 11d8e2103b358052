package emailotp

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

const minimalSMTP = `smtp {
		host smtp.example.com
		from no-reply@example.com
	}
	client app secret`

func TestCaddyfileAllOptions(t *testing.T) {
	d := caddyfile.NewTestDispenser(`email_otp {
		token_path /oauth/token
		issuer https://sso.example.com/uas
		grant_type urn:example:otp
		method mail.2
		otp_timeout 5m
		code_length 10
		max_attempts 3
		token_lifetime 30m
		signing_alg ES256
		signing_key_file /etc/keys/sign.pem
		previous_signing_key_file /etc/keys/old.pem
		ledger storage
		limit address 3 10m
		limit client off
		limit user_ip 7 1h
		limit max_keys 5000
		smtp smtp.example.com {
			port 465
			tls tls
			ca_file /etc/ssl/ca.pem
			server_name mail.example.com
			username {env.SMTP_USER}
			password {env.SMTP_PASSWORD}
			from "Example <no-reply@example.com>"
			timeout 7s
		}
		template {
			subject "Your code"
			body "Code: {0}"
			html_file /etc/otp/mail.html
			locale fi "Koodi" "Koodi: {0}" /etc/otp/fi.html
			locale sv {
				subject "Kod"
				body "Kod: {0}"
			}
		}
		client c495bb59 {
			secret {env.APP_SECRET}
			allow_domains example.com Bücher.example
			claim role admin
			claim tier gold
			request_template deny
			user_ip_param end_user_ip
		}
		client other other-secret
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"token_path", h.TokenPath, "/oauth/token"},
		{"issuer", h.Issuer, "https://sso.example.com/uas"},
		{"grant_type", h.GrantType, "urn:example:otp"},
		{"method", h.Method, "mail.2"},
		{"otp_timeout", h.OTPTimeout, caddy.Duration(5 * time.Minute)},
		{"code_length", h.CodeLength, 10},
		{"max_attempts", h.MaxAttempts, 3},
		{"token_lifetime", h.TokenLifetime, caddy.Duration(30 * time.Minute)},
		{"signing_alg", h.SigningAlg, "ES256"},
		{"signing_key_file", h.SigningKeyFile, "/etc/keys/sign.pem"},
		{"previous_signing_key_file", h.PreviousSigningKeyFile, "/etc/keys/old.pem"},
		{"ledger", h.Ledger, "storage"},
		{"limit address", *h.Limits.PerAddress, Limit{3, caddy.Duration(10 * time.Minute)}},
		{"limit client", h.Limits.PerClient.Count, -1},
		{"limit user_ip", *h.Limits.PerUserIP, Limit{7, caddy.Duration(time.Hour)}},
		{"max_keys", h.Limits.MaxKeys, 5000},
		{"smtp host", h.SMTP.Host, "smtp.example.com"},
		{"smtp port", h.SMTP.Port, 465},
		{"smtp tls", h.SMTP.TLS, "tls"},
		{"smtp ca_file", h.SMTP.CAFile, "/etc/ssl/ca.pem"},
		{"smtp server_name", h.SMTP.ServerName, "mail.example.com"},
		{"smtp username", h.SMTP.Username, "{env.SMTP_USER}"},
		{"smtp password", h.SMTP.Password, "{env.SMTP_PASSWORD}"},
		{"smtp from", h.SMTP.From, "Example <no-reply@example.com>"},
		{"smtp timeout", h.SMTP.Timeout, caddy.Duration(7 * time.Second)},
		{"subject", h.Template.Subject, "Your code"},
		{"body", h.Template.Body, "Code: {0}"},
		{"html_file", h.Template.HTMLFile, "/etc/otp/mail.html"},
		{"locale fi", h.Template.Locales["fi"].Subject + "|" + h.Template.Locales["fi"].Body + "|" + h.Template.Locales["fi"].HTMLFile, "Koodi|Koodi: {0}|/etc/otp/fi.html"},
		{"locale sv", h.Template.Locales["sv"].Subject + "|" + h.Template.Locales["sv"].Body, "Kod|Kod: {0}"},
		{"clients", len(h.Clients), 2},
		{"client id", h.Clients[0].ID, "c495bb59"},
		{"client secret", h.Clients[0].Secret, "{env.APP_SECRET}"},
		{"allow_domains", strings.Join(h.Clients[0].AllowDomains, ","), "example.com,Bücher.example"},
		{"claims", h.Clients[0].Claims["role"] + h.Clients[0].Claims["tier"], "admingold"},
		{"request_template", h.Clients[0].RequestTemplate, "deny"},
		{"user_ip_param", h.Clients[0].PassUserIPParam, "end_user_ip"},
		{"inline secret", h.Clients[1].Secret, "other-secret"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestCaddyfileErrors(t *testing.T) {
	for _, c := range []struct {
		name, input, wantErr string
	}{
		{"unknown subdirective", "bogus 1\n" + minimalSMTP, `unknown subdirective "bogus"`},
		{"missing smtp", "client app secret", "smtp: block is required"},
		{"missing smtp host", "smtp {\nfrom a@example.com\n}\nclient app s", "smtp: host is required"},
		{"missing from", "smtp h.example.com\nclient app s", "smtp: from is required"},
		{"bad from", "smtp h.example.com {\nfrom not-an-address\n}\nclient app s", "smtp: from"},
		{"bad tls mode", "smtp h.example.com {\ntls maybe\nfrom a@example.com\n}\nclient app s", `tls "maybe"`},
		{"unknown smtp option", "smtp h.example.com {\nfrom a@example.com\nrelay x\n}\nclient app s", `smtp: unknown subdirective "relay"`},
		{"username without password", "smtp h.example.com {\nfrom a@example.com\nusername u\n}\nclient app s", "username and password go together"},
		{"no client", "smtp h.example.com {\nfrom a@example.com\n}", "at least one client"},
		{"client without secret", minimalSMTP + "\nclient lonely", "client lonely: secret is required"},
		{"client twice", minimalSMTP + "\nclient app other", `client "app": defined twice`},
		{"reserved claim", minimalSMTP + "\nclient x {\nsecret s\nclaim sub someone\n}", `claim "sub" is set by the grant`},
		{"bad domain", minimalSMTP + "\nclient x {\nsecret s\nallow_domains exa_mple..com\n}", "is not a domain name"},
		{"bad request_template", minimalSMTP + "\nclient x {\nsecret s\nrequest_template maybe\n}", "want allow or deny"},
		{"body without {0}", "template {\nbody \"no code here\"\n}\n" + minimalSMTP, "body must contain {0}"},
		{"locale body without {0}", "template {\nlocale fi \"Koodi\" \"ei koodia\"\n}\n" + minimalSMTP, "locale fi: body must contain {0}"},
		{"bad locale tag", "template {\nlocale !! \"a\" \"{0}\"\n}\n" + minimalSMTP, "not a BCP 47 language tag"},
		{"locale without args", "template {\nlocale fi\n}\n" + minimalSMTP, "locale fi: empty"},
		{"code_length too short", "code_length 5\n" + minimalSMTP, "code_length 5 out of range 6-12"},
		{"code_length too long", "code_length 13\n" + minimalSMTP, "code_length 13 out of range 6-12"},
		{"code_length not a number", "code_length eight\n" + minimalSMTP, `"eight" is not an integer`},
		{"max_attempts zero", "max_attempts 0\n" + minimalSMTP, "max_attempts 0 out of range"},
		{"bad duration", "otp_timeout soon\n" + minimalSMTP, `otp_timeout: "soon" is not a duration`},
		{"otp_timeout too long", "otp_timeout 48h\n" + minimalSMTP, "otp_timeout 48h0m0s out of range"},
		{"token_lifetime too short", "token_lifetime 10s\n" + minimalSMTP, "token_lifetime 10s out of range"},
		{"bad alg", "signing_alg HS256\n" + minimalSMTP, `signing_alg "HS256"`},
		{"bad ledger", "ledger redis\n" + minimalSMTP, `ledger "redis"`},
		{"bad key_rotation", "key_rotation often\n" + minimalSMTP, `key_rotation: "often"`},
		{"key_rotation too short", "key_rotation 30m\n" + minimalSMTP, "key_rotation 30m0s: at least 1h0m0s"},
		{"key_rotation with key file", "key_rotation 90d\nsigning_key_file k.pem\n" + minimalSMTP, "rotated by its operator"},
		{"previous key file alone", "previous_signing_key_file old.pem\n" + minimalSMTP, "needs signing_key_file"},
		{"token_path relative", "token_path token\n" + minimalSMTP, "must start with /"},
		{"two values", "code_length 8 9\n" + minimalSMTP, "want one value, got more"},
		{"no value", "issuer\n" + minimalSMTP, "issuer: want one value"},
		{"limit bad scope", "limit everyone 5 1m\n" + minimalSMTP, `unknown scope "everyone"`},
		{"limit bad count", "limit address -3 1m\n" + minimalSMTP, "must be a positive integer"},
		{"limit bad window", "limit address 3 forever\n" + minimalSMTP, "must be a positive duration"},
		{"limit missing window", "limit address 3\n" + minimalSMTP, "want <count> <window> or off"},
		{"smtp twice", minimalSMTP + "\nsmtp other.example.com", "smtp: block given twice"},
		{"directive args", "", "wrong argument count"},
	} {
		t.Run(c.name, func(t *testing.T) {
			input := "email_otp {\n" + c.input + "\n}"
			if c.name == "directive args" {
				input = "email_otp extra {\n" + minimalSMTP + "\n}"
			}
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
			if err == nil {
				t.Fatalf("accepted: %s", input)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error %q does not say %q", err, c.wantErr)
			}
		})
	}
}
