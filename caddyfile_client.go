package emailotp

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshal reads a client block of email_otp (syntax in caddyfile.go).
func (c *Client) unmarshal(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch len(args) {
	case 1:
		c.ID = args[0]
	case 2:
		c.ID, c.Secret = args[0], args[1]
	default:
		return d.Errf("client: want <id> [<secret>]")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "secret":
			err = oneArg(d, &c.Secret)
		case "allow_domains":
			doms := d.RemainingArgs()
			if len(doms) == 0 {
				return d.Errf("client %s: allow_domains needs at least one domain", c.ID)
			}
			c.AllowDomains = append(c.AllowDomains, doms...)
		case "claim":
			kv := d.RemainingArgs()
			if len(kv) != 2 {
				return d.Errf("client %s: claim wants <name> <value>", c.ID)
			}
			if c.Claims == nil {
				c.Claims = make(map[string]string)
			}
			c.Claims[kv[0]] = kv[1]
		case "request_template":
			var v string
			if err = oneArg(d, &v); err == nil {
				if v != "allow" && v != "deny" {
					return d.Errf("client %s: request_template %q: want allow or deny", c.ID, v)
				}
				c.RequestTemplate = v
			}
		case "user_ip_param":
			err = oneArg(d, &c.PassUserIPParam)
		case "jwks_file":
			err = oneArg(d, &c.JWKSFile)
		case "public_key_file":
			err = oneArg(d, &c.PublicKeyFile)
		case "jwks_uri":
			err = oneArg(d, &c.JWKSURI)
		case "jwks_uri_allow_http":
			c.JWKSURIAllowHTTP = true
			if d.NextArg() {
				return d.ArgErr()
			}
		case "uniform_refusals":
			c.UniformRefusals = true
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("client %s: unknown subdirective %q", c.ID, d.Val())
		}
		if err != nil {
			return err
		}
	}
	if c.Secret == "" && !c.usesKeys() {
		return d.Errf("client %s: secret is required, or one of jwks_file, public_key_file, jwks_uri", c.ID)
	}
	return nil
}
