package emailotp

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshal reads the signin block. Syntax:
//
//	signin [<path>] {
//		path             <path>
//		cookie           <name>
//		session_lifetime <duration>
//		client           <client id>
//		title            <text>
//	}
func (s *SignInConfig) unmarshal(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		s.Path = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "path":
			err = oneArg(d, &s.Path)
		case "cookie":
			err = oneArg(d, &s.Cookie)
		case "session_lifetime":
			err = durationArg(d, &s.SessionLifetime)
		case "client":
			err = oneArg(d, &s.Client)
		case "title":
			err = oneArg(d, &s.Title)
		default:
			return d.Errf("signin: unknown subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
