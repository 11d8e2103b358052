package emailotp

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The smtp and template blocks of email_otp (syntax in caddyfile.go).

// unmarshal reads the smtp block.
func (s *SMTPConfig) unmarshal(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		s.Host = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "host":
			err = oneArg(d, &s.Host)
		case "port":
			err = intArg(d, &s.Port)
		case "tls":
			err = oneArg(d, &s.TLS)
			if err == nil && s.TLS != "starttls" && s.TLS != "tls" && s.TLS != "none" {
				return d.Errf("smtp: tls %q: want starttls, tls or none", s.TLS)
			}
		case "ca_file":
			err = oneArg(d, &s.CAFile)
		case "server_name":
			err = oneArg(d, &s.ServerName)
		case "username":
			err = oneArg(d, &s.Username)
		case "password":
			err = oneArg(d, &s.Password)
		case "from":
			err = oneArg(d, &s.From)
		case "timeout":
			err = durationArg(d, &s.Timeout)
		case "idle_conns":
			var n int
			if err = intArg(d, &n); err == nil {
				s.IdleConns = &n
			}
		default:
			return d.Errf("smtp: unknown subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *Template) unmarshal(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "subject":
			err = oneArg(d, &t.Subject)
		case "body":
			err = oneArg(d, &t.Body)
		case "html_file":
			err = oneArg(d, &t.HTMLFile)
		case "locale":
			err = t.unmarshalLocale(d)
		default:
			return d.Errf("template: unknown subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *Template) unmarshalLocale(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("template locale: want a language tag")
	}
	tag := d.Val()
	if t.Locales == nil {
		t.Locales = make(map[string]*Template)
	}
	if _, dup := t.Locales[tag]; dup {
		return d.Errf("template locale %q: given twice", tag)
	}
	lt := new(Template)
	t.Locales[tag] = lt
	args := d.RemainingArgs()
	switch len(args) {
	case 0:
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			var err error
			switch d.Val() {
			case "subject":
				err = oneArg(d, &lt.Subject)
			case "body":
				err = oneArg(d, &lt.Body)
			case "html_file":
				err = oneArg(d, &lt.HTMLFile)
			default:
				return d.Errf("template locale %s: unknown subdirective %q", tag, d.Val())
			}
			if err != nil {
				return err
			}
		}
	case 2, 3:
		lt.Subject, lt.Body = args[0], args[1]
		if len(args) == 3 {
			lt.HTMLFile = args[2]
		}
	default:
		return d.Errf("template locale %s: want <subject> <body> [<html_file>] or a block", tag)
	}
	if lt.Subject == "" && lt.Body == "" && lt.HTMLFile == "" {
		return d.Errf("template locale %s: empty", tag)
	}
	return nil
}
