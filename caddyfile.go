package emailotp

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("email_otp", parseCaddyfile)
	// Before basic_auth and the other gates: the token endpoint must stay
	// reachable on a site whose other routes are protected.
	httpcaddyfile.RegisterDirectiveOrder("email_otp", httpcaddyfile.Before, "basic_auth")
	// The gate (gatecaddyfile.go) goes between the two: after the token
	// endpoint and sign-in page, before any other authentication.
	httpcaddyfile.RegisterDirectiveOrder("email_otp_gate", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	email_otp {
//		token_path       <path>
//		issuer           <url>
//		grant_type       <uri>
//		method           <name>
//		otp_timeout      <duration>
//		code_length      <6-12>
//		max_attempts     <n>
//		token_lifetime   <duration>
//		signing_alg      RS256|ES256|EdDSA
//		access_token_alg RS256|ES256|EdDSA
//		signing_key_file <pem file>
//		previous_signing_key_file <pem file>
//		key_rotation     <duration>|off
//		ledger           memory|storage
//		grant_only
//		limit            address|client|user_ip|failed_auth_ip|failed_auth_client <count> <window> | off
//		limit            max_keys <n>
//		smtp [<host>] {
//			host        <host>
//			port        <port>
//			tls         starttls|tls|none
//			ca_file     <pem file>
//			server_name <name>
//			username    <user>
//			password    <password>
//			from        <address>
//			timeout     <duration>
//			idle_conns  <n>
//		}
//		template {
//			subject   <text>
//			body      <text with {0}>
//			html_file <file>
//			locale <tag> <subject> <body> [<html_file>]
//			locale <tag> {
//				subject|body|html_file <value>
//			}
//		}
//		client <id> [<secret>] {
//			secret           <secret>
//			allow_domains    <domain>...
//			claim            <name> <value>
//			request_template allow|deny
//			user_ip_param    <parameter name>
//			jwks_file        <JWK Set file>
//			public_key_file  <PEM file>
//			jwks_uri         <https URL>
//			jwks_uri_allow_http
//			uniform_refusals
//		}
//		signin [<path>] {
//			path             <path>
//			cookie           <name>
//			session_lifetime <duration>
//			client           <client id>
//			title            <text>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "token_path":
			err = oneArg(d, &h.TokenPath)
		case "issuer":
			err = oneArg(d, &h.Issuer)
		case "grant_type":
			err = oneArg(d, &h.GrantType)
		case "method":
			err = oneArg(d, &h.Method)
		case "otp_timeout":
			err = durationArg(d, &h.OTPTimeout)
		case "token_lifetime":
			err = durationArg(d, &h.TokenLifetime)
		case "code_length":
			if err = intArg(d, &h.CodeLength); err == nil && h.CodeLength < 1 {
				return d.Errf("code_length %d out of range 6-12", h.CodeLength)
			}
		case "max_attempts":
			if err = intArg(d, &h.MaxAttempts); err == nil && h.MaxAttempts < 1 {
				return d.Errf("max_attempts %d out of range 1-100", h.MaxAttempts)
			}
		case "signing_alg":
			err = oneArg(d, &h.SigningAlg)
		case "access_token_alg":
			err = oneArg(d, &h.AccessTokenAlg)
		case "signing_key_file":
			err = oneArg(d, &h.SigningKeyFile)
		case "previous_signing_key_file":
			err = oneArg(d, &h.PreviousSigningKeyFile)
		case "key_rotation":
			var v string
			if err = oneArg(d, &v); err == nil {
				h.KeyRotation = 0
				if v != "off" {
					p, perr := caddy.ParseDuration(v)
					if perr != nil || p <= 0 {
						return d.Errf("key_rotation: %q: want a positive duration or off", v)
					}
					h.KeyRotation = caddy.Duration(p)
				}
			}
		case "ledger":
			err = oneArg(d, &h.Ledger)
		case "grant_only":
			h.GrantOnly = true
			if d.NextArg() {
				return d.ArgErr()
			}
		case "limit":
			err = h.unmarshalLimit(d)
		case "smtp":
			if h.SMTP != nil {
				return d.Err("smtp: block given twice")
			}
			h.SMTP = new(SMTPConfig)
			err = h.SMTP.unmarshal(d)
		case "template":
			if h.Template == nil {
				h.Template = new(Template)
			}
			err = h.Template.unmarshal(d)
		case "client":
			c := new(Client)
			err = c.unmarshal(d)
			h.Clients = append(h.Clients, c)
		case "signin":
			if h.SignIn != nil {
				return d.Err("signin: block given twice")
			}
			h.SignIn = new(SignInConfig)
			err = h.SignIn.unmarshal(d)
		default:
			return d.Errf("email_otp: unknown subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	// Check now, so `caddy adapt` names the problem with its line; on a
	// copy, so the adapted JSON holds only what the Caddyfile says.
	check, err := h.configCopy()
	if err == nil {
		check.fillDefaults()
		err = check.checkConfig()
	}
	if err != nil {
		return d.Errf("email_otp: %v", err)
	}
	return nil
}

// configCopy is a deep copy of the configuration, made through its JSON form
// so that no block is shared.
func (h *Handler) configCopy() (*Handler, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	c := new(Handler)
	return c, json.Unmarshal(b, c)
}

func (h *Handler) unmarshalLimit(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Errf("limit: want <address|client|user_ip|failed_auth_ip|failed_auth_client> <count> <window>, or <scope> off, or max_keys <n>")
	}
	if h.Limits == nil {
		h.Limits = new(RateLimits)
	}
	if args[0] == "max_keys" {
		n, err := strconv.Atoi(args[1])
		if err != nil || n <= 0 || len(args) != 2 {
			return d.Errf("limit max_keys: want a positive integer, got %q", args[1])
		}
		h.Limits.MaxKeys = n
		return nil
	}
	var l *Limit
	if args[1] == "off" && len(args) == 2 {
		l = &Limit{Count: -1}
	} else {
		if len(args) != 3 {
			return d.Errf("limit %s: want <count> <window> or off", args[0])
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n <= 0 {
			return d.Errf("limit %s: count %q must be a positive integer", args[0], args[1])
		}
		w, err := caddy.ParseDuration(args[2])
		if err != nil || w <= 0 {
			return d.Errf("limit %s: window %q must be a positive duration", args[0], args[2])
		}
		l = &Limit{Count: n, Window: caddy.Duration(w)}
	}
	switch args[0] {
	case "address":
		h.Limits.PerAddress = l
	case "client":
		h.Limits.PerClient = l
	case "user_ip":
		h.Limits.PerUserIP = l
	case "failed_auth_ip":
		h.Limits.FailedAuthIP = l
	case "failed_auth_client":
		h.Limits.FailedAuthClient = l
	default:
		return d.Errf("limit: unknown scope %q (want address, client, user_ip, failed_auth_ip, failed_auth_client or max_keys)", args[0])
	}
	return nil
}
