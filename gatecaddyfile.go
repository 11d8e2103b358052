package emailotp

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
)

// The directive's place in the handler order is set in caddyfile.go, right
// after email_otp's, so the two can't end up the other way round.
func init() {
	httpcaddyfile.RegisterHandlerDirective("email_otp_gate", parseGateCaddyfile)
}

// parseGateCaddyfile builds Caddy's authentication handler with the gate as
// its only provider, as basic_auth does with http_basic.
func parseGateCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(Gate)
	if err := g.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return caddyauth.Authentication{
		ProvidersRaw: caddy.ModuleMap{"email_otp": caddyconfig.JSON(g, nil)},
	}, nil
}

// UnmarshalCaddyfile sets up the gate from Caddyfile tokens. Syntax:
//
//	email_otp_gate [<matcher>] {
//		issuer          <url>
//		allow_clients   <client_id>...
//		allow_domains   <domain>...
//		allow_addresses <address>...
//		accept          bearer|session...
//		leeway          <duration>
//		header          <field name>
//		cookie          <name>
//		cookie_domain   <domain>
//		audit_log_address masked|full
//		signin          [<path>]
//		key_file        <pem file>
//		previous_key_file <pem file>
//		revocation_refresh <duration>
//	}
//
// The block may be omitted. `signin` without a path uses /email-otp/signin.
func (g *Gate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("email_otp_gate: unexpected argument %q; options go in a block", d.Val())
	}
	for d.NextBlock(0) {
		var err error
		sub := d.Val()
		switch sub {
		case "issuer":
			err = oneArg(d, &g.Issuer)
		case "allow_clients":
			err = listArg(d, &g.AllowClients)
		case "allow_domains":
			err = listArg(d, &g.AllowDomains)
		case "allow_addresses":
			err = listArg(d, &g.AllowAddresses)
		case "accept":
			err = listArg(d, &g.Accept)
		case "leeway":
			err = durationArg(d, &g.Leeway)
		case "header":
			err = oneArg(d, &g.Header)
		case "cookie":
			err = oneArg(d, &g.Cookie)
		case "cookie_domain":
			err = oneArg(d, &g.CookieDomain)
		case "audit_log_address":
			err = oneArg(d, &g.AuditLogAddress)
		case "key_file":
			err = oneArg(d, &g.KeyFile)
		case "previous_key_file":
			err = oneArg(d, &g.PreviousKeyFile)
		case "revocation_refresh":
			err = durationArg(d, &g.RevocationRefresh)
		case "signin":
			args := d.RemainingArgs()
			switch len(args) {
			case 0:
				g.SignInPath = DefaultSignInPath
			case 1:
				g.SignInPath = args[0]
			default:
				return d.Errf("signin: want at most one path")
			}
		default:
			return d.Errf("email_otp_gate: unknown subdirective %q", sub)
		}
		if err != nil {
			return err
		}
		if d.NextBlock(d.Nesting()) {
			return d.Errf("email_otp_gate: %s takes no block", sub)
		}
	}
	check := *g
	check.fillDefaults()
	if err := check.Validate(); err != nil {
		return d.Errf("email_otp_gate: %v", err)
	}
	return nil
}

// listArg appends the remaining arguments of the current subdirective; at
// least one is required.
func listArg(d *caddyfile.Dispenser, dst *[]string) error {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Errf("%s: want at least one value", name)
	}
	*dst = append(*dst, args...)
	return nil
}
