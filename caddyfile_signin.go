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
//		idle_timeout     <duration>
//		cookie_domain    <domain>
//		audit_log_address masked|full
//		resend_cooldown  <duration>
//		mail_link        <origin>
//		logo             <image file>
//		accent_color     <#rrggbb>
//		css              <css file>
//		template_file    <html/template file>
//		texts <locale> {
//			<key> <text>
//		}
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
		case "resend_cooldown":
			err = durationArg(d, &s.ResendCooldown)
		case "mail_link":
			err = oneArg(d, &s.MailLink)
		case "logo":
			err = oneArg(d, &s.Logo)
		case "accent_color":
			err = oneArg(d, &s.AccentColor)
		case "css":
			err = oneArg(d, &s.CSS)
		case "template_file":
			err = oneArg(d, &s.TemplateFile)
		case "texts":
			err = s.unmarshalTexts(d)
		default:
			var ok bool
			if ok, err = s.SessionConfig.unmarshalOption(d); !ok {
				return d.Errf("signin: unknown subdirective %q", d.Val())
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalTexts reads one texts block: texts <locale> { <key> <text> ... }.
func (s *SignInConfig) unmarshalTexts(d *caddyfile.Dispenser) error {
	var locale string
	if err := oneArg(d, &locale); err != nil {
		return err
	}
	if s.Texts == nil {
		s.Texts = make(map[string]map[string]string)
	}
	if s.Texts[locale] == nil {
		s.Texts[locale] = make(map[string]string)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		var v string
		if err := oneArg(d, &v); err != nil {
			return err
		}
		s.Texts[locale][key] = v
	}
	return nil
}
