package emailotp

import (
	"fmt"
	"go.uber.org/zap"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// DefaultSessionLifetime is how long a sign-in session lasts. The path and
// cookie defaults are shared with the gate (gate.go).
const DefaultSessionLifetime = 12 * time.Hour

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

	client *Client
	pages  *pageLocales
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
	if len(c.Title) > 200 || strings.ContainsFunc(c.Title, isControl) {
		return fmt.Errorf("signin: title must be one line of at most 200 bytes")
	}
	return nil
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
	s.pages = newPageLocales(templateLocales)
	return nil
}

// signIn is the browser sign-in page: an adapter between HTML forms and the
// core, which sets a session cookie for email_otp_gate.
type signIn struct {
	cfg    *SignInConfig
	core   *otp
	keys   *signingKeys
	logger *zap.Logger
	issuer func(*http.Request) string
}
