package emailotp

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
)

// DefaultSessionLifetime is how long a sign-in session lasts. The path and
// cookie defaults are shared with the gate (gate.go).
const DefaultSessionLifetime = 12 * time.Hour

// DefaultResendCooldown is how long the code page waits before it offers to
// send a new code.
const DefaultResendCooldown = 30 * time.Second

// SignInConfig enables the browser sign-in pages: the person types an
// address, receives a code by mail, types the code and gets a session cookie,
// which email_otp_gate accepts in front of an application. The pages use the
// grant's machinery: the same codes, references, ledger, mail templates and
// rate limits, with the person's own IP for the per-user-IP limit.
type SignInConfig struct {
	// Path of the sign-in page, whose forms post to <path>/start and
	// <path>/verify and whose <path>/signout ends the session.
	// Default: /email-otp/signin
	Path string `json:"path,omitempty"`

	// Cookie is the name of the session cookie. Default: email_otp_session
	Cookie string `json:"cookie,omitempty"`

	// SessionLifetime is how long a session cookie stays valid.
	// Default: 12h
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// Client is the configured client whose allowed domains and limit apply
	// to the codes asked for on the page. Default: the only client, when
	// exactly one is configured.
	Client string `json:"client,omitempty"`

	// Title heads every page, whatever the language. Default: "Sign in",
	// translated.
	Title string `json:"title,omitempty"`

	// SessionConfig: idle_timeout, cookie_domain, audit_log_address.
	SessionConfig

	// ResendCooldown is how long after a code was sent the code page lets
	// the person ask for a new one. Default: 30s
	ResendCooldown caddy.Duration `json:"resend_cooldown,omitempty"`

	// MailLink, an origin such as https://intranet.example.com, puts a
	// sign-in link to this page under that origin into the mail besides the
	// code; the link signs in only in the browser that asked for the code.
	// Default: empty (code only).
	MailLink string `json:"mail_link,omitempty"`

	// Logo is an image file (PNG, SVG, JPEG, WebP or GIF, at most 512 KiB)
	// shown above the heading. Default: none.
	Logo string `json:"logo,omitempty"`

	// AccentColor is the colour of buttons, links and focus rings, as
	// #rrggbb; the button text is black or white, whichever contrasts more.
	// Default: #1f5fbf (#7fb0ff in dark mode).
	AccentColor string `json:"accent_color,omitempty"`

	// CSS is a stylesheet file appended to the page's own. Default: none.
	CSS string `json:"css,omitempty"`

	// TemplateFile is an html/template file that replaces the page's
	// markup; docs/signin.md lists the data it gets. Default: the built-in
	// page.
	TemplateFile string `json:"template_file,omitempty"`

	// Texts overrides page strings by locale and key (docs/signin.md lists
	// the keys). Default: the shipped strings.
	Texts map[string]map[string]string `json:"texts,omitempty"`

	client *Client
	pages  *pageLocales
	assets *pageAssets
}

// fillDefaults sets every field left out to its default (the client when
// there is only one); it is the only place that knows them, and running it
// twice changes nothing.
func (s *SignInConfig) fillDefaults(clients []*Client) {
	if s.Path == "" {
		s.Path = DefaultSignInPath
	}
	if s.Cookie == "" {
		s.Cookie = DefaultSessionCookie
	}
	if s.SessionLifetime == 0 {
		s.SessionLifetime = caddy.Duration(DefaultSessionLifetime)
	}
	if s.ResendCooldown == 0 {
		s.ResendCooldown = caddy.Duration(DefaultResendCooldown)
	}
	if s.Client == "" && len(clients) == 1 {
		s.Client = clients[0].ID
	}
}

// validate checks the configuration, defaults filled, against the clients
// and the token path it shares the site with.
func (s *SignInConfig) validate(clients []*Client, tokenPath string) error {
	if s == nil {
		return nil
	}
	c := s
	if !strings.HasPrefix(c.Path, "/") || c.Path == "/" || strings.HasSuffix(c.Path, "/") ||
		strings.ContainsAny(c.Path, "?#\\ ") {
		return fmt.Errorf("signin: path %q must start with /, not end with /, and not be /", c.Path)
	}
	if tokenPath == c.Path || strings.HasPrefix(tokenPath, c.Path+"/") {
		return fmt.Errorf("signin: path %q overlaps token_path %q", c.Path, tokenPath)
	}
	if !validCookieName(c.Cookie) {
		return fmt.Errorf("signin: cookie %q: want letters, digits, - and _ only", c.Cookie)
	}
	if c.SessionLifetime < caddy.Duration(time.Minute) || c.SessionLifetime > caddy.Duration(30*24*time.Hour) {
		return fmt.Errorf("signin: session_lifetime %s out of range 1m-720h", time.Duration(c.SessionLifetime))
	}
	if c.Client == "" {
		return fmt.Errorf("signin: client is required when more than one client is configured")
	}
	found := false
	for _, cl := range clients {
		found = found || cl.ID == c.Client
	}
	if !found {
		return fmt.Errorf("signin: client %q is not configured", c.Client)
	}
	if err := c.SessionConfig.validate(c.SessionLifetime); err != nil {
		return err
	}
	if len(c.Title) > 200 || strings.ContainsFunc(c.Title, isControl) {
		return fmt.Errorf("signin: title must be one line of at most 200 bytes")
	}
	if c.ResendCooldown < 0 || c.ResendCooldown > caddy.Duration(time.Hour) {
		return fmt.Errorf("signin: resend_cooldown %s out of range 0-1h", time.Duration(c.ResendCooldown))
	}
	if c.MailLink != "" && !validOrigin(c.MailLink) {
		return fmt.Errorf("signin: mail_link %q: want an origin like https://example.com (no path)", c.MailLink)
	}
	if c.AccentColor != "" && !validColor(c.AccentColor) {
		return fmt.Errorf("signin: accent_color %q: want #rrggbb", c.AccentColor)
	}
	return validateTexts(c.Texts)
}

func validCookieName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// provision binds the client and the page languages; it runs after the
// clients and the mail templates are ready.
func (s *SignInConfig) provision(byID map[string]*Client, templateLocales []string) error {
	s.client = byID[s.Client]
	if s.client == nil {
		return fmt.Errorf("signin: client %q is not configured", s.Client)
	}
	pages, err := newPageLocales(templateLocales, s.Texts)
	if err != nil {
		return err
	}
	s.pages = pages
	s.assets, err = loadPageAssets(pageLook{Path: s.Path, Logo: s.Logo, TemplateFile: s.TemplateFile, AccentColor: s.AccentColor, CSS: s.CSS})
	return err
}

// signIn is the browser sign-in page: an adapter between HTML forms and the
// core, which sets a session cookie for email_otp_gate.
type signIn struct {
	cfg    *SignInConfig
	core   *otp
	keys   *signingKeys
	logger *zap.Logger
	issuer func(*http.Request) string

	revoked *revocationList // sign-out everywhere writes it; sessions are checked against it
	audit   auditLog
}
