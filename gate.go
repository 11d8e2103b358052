package emailotp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/idna"
)

func init() {
	caddy.RegisterModule(Gate{})
}

// Defaults of the gate.
const (
	DefaultSessionCookie = "email_otp_session"
	DefaultSignInPath    = "/email-otp/signin"
	DefaultGateLeeway    = 30 * time.Second

	// sessionAudience is the `aud` of every session cookie, so no access
	// token or id_token (whose audience is a client) can pass for one.
	sessionAudience = "email_otp_session"

	// maxSessionCookies bounds how many same-named cookies are verified.
	maxSessionCookies = 4
)

// credential kinds: what the gate accepts, and the JOSE typ of each.
const (
	kindBearer  = "bearer"
	kindSession = "session"
)

var kindTyp = map[string]string{kindBearer: "at+jwt", kindSession: "session+jwt"}

// Gate is an authentication provider for Caddy's `authentication` handler:
// it admits a request that carries an access token minted by the email_otp
// handler (`Authorization: Bearer`, RFC 6750 and RFC 9068) or the session
// cookie of its sign-in page, and names the verified address as the user.
// `{http.auth.user.id}` is the address; `{http.auth.user.email}`,
// `.client_id`, `.scope`, `.auth_time`, `.jti` and `.kind` (bearer or
// session) describe the credential.
//
// It verifies tokens with the public halves of the signing keys email_otp
// keeps in Caddy's storage, so it works in any site, or on any instance,
// sharing that storage; it needs no network call and keeps no state.
type Gate struct {
	// Issuer is the `iss` a token must carry. Placeholders are allowed.
	// Default: the request's scheme and host followed by /uas, the email_otp
	// handler's default issuer.
	Issuer string `json:"issuer,omitempty"`

	// AllowClients admits only access tokens issued to these client_ids.
	// Sessions of the sign-in page belong to no client and are not affected
	// (restrict them with Accept). Default: any client.
	AllowClients []string `json:"allow_clients,omitempty"`

	// AllowDomains admits only addresses of these domains (exact match,
	// case-insensitive; IDN allowed). Default: any domain.
	AllowDomains []string `json:"allow_domains,omitempty"`

	// AllowAddresses admits these addresses (case-insensitive), in addition
	// to those AllowDomains admits. When only AllowAddresses is set, only
	// these addresses pass. Default: any address.
	AllowAddresses []string `json:"allow_addresses,omitempty"`

	// Accept lists the credentials taken: "bearer" (an access token in the
	// Authorization header) and "session" (the sign-in page's cookie). An
	// API that does not want cookie-borne credentials accepts only bearer.
	// Default: both.
	Accept []string `json:"accept,omitempty"`

	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Default: 30s
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// Header is a request header set to the verified address for the
	// handlers after the gate (a reverse_proxy upstream, say). Any copy the
	// client sent is removed first, on every request, so an upstream can
	// trust it. Default: none.
	Header string `json:"header,omitempty"`

	// Cookie is the name of the sign-in page's session cookie. Over TLS the
	// gate reads only `__Host-<cookie>` (or `__Secure-<cookie>` with
	// CookieDomain), the name the sign-in page sets there.
	// Default: email_otp_session
	Cookie string `json:"cookie,omitempty"`

	// CookieDomain must equal the sign-in page's cookie_domain when that is
	// set: over TLS the gate then reads `__Secure-<cookie>`. Default: none
	// (a host-only `__Host-` session cookie over TLS).
	CookieDomain string `json:"cookie_domain,omitempty"`

	// AuditLogAddress is how the address appears in the audit line of a
	// refusal: masked (a***@example.com) or full. Default: masked
	AuditLogAddress string `json:"audit_log_address,omitempty"`

	// SignInPath is where a browser without a valid credential is sent (302,
	// the original path and query in `return`); other requests get 401.
	// Default: none (always 401).
	SignInPath string `json:"signin,omitempty"`

	// KeyFile is a PEM key (private or public: PKCS#8, PKIX, PKCS#1 or SEC 1)
	// whose tokens are also accepted, for an email_otp configured with
	// signing_key_file. Default: only the keys in Caddy's storage.
	KeyFile string `json:"key_file,omitempty"`

	// PreviousKeyFile is a second such key, also accepted: the one an
	// email_otp's previous_signing_key_file holds while tokens it signed
	// before the operator rotated the key file are still valid.
	// Default: none.
	PreviousKeyFile string `json:"previous_key_file,omitempty"`

	// RevocationRefresh is how often the revocation list is read again from
	// storage: a revocation taken on another instance is honoured within
	// this delay, one taken here at once. At most 60s. Default: 30s
	RevocationRefresh caddy.Duration `json:"revocation_refresh,omitempty"`

	logger    *zap.Logger
	audit     auditLog
	revoked   *revocationList
	revKey    string
	keys      *gateKeys
	leeway    time.Duration
	clients   map[string]bool
	domains   map[string]bool
	addresses map[string]bool
	accepts   map[string]bool
}

// CaddyModule returns the Caddy module information.
func (Gate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.authentication.providers.email_otp",
		New: func() caddy.Module { return new(Gate) },
	}
}

// Provision fills defaults, indexes the allow lists and reads the key file.
// Storage keys are loaded on first use: the email_otp handler may create
// them after the gate is provisioned.
func (g *Gate) Provision(ctx caddy.Context) error {
	return g.provision(ctx, ctx.Storage(), ctx.Logger())
}

// provision is Provision with its dependencies named, so tests can build a
// gate without a running Caddy.
func (g *Gate) provision(ctx context.Context, storage certmagic.Storage, logger *zap.Logger) error {
	g.logger = logger
	g.audit = newAuditLog(logger, g.AuditLogAddress)
	g.fillDefaults()
	if err := g.Validate(); err != nil {
		return err
	}
	g.leeway = time.Duration(g.Leeway)
	g.clients = setOf(g.AllowClients, func(s string) string { return s })
	g.domains = setOf(g.AllowDomains, func(s string) string {
		a, _ := idna.Lookup.ToASCII(s)
		return strings.ToLower(a)
	})
	g.addresses = setOf(g.AllowAddresses, func(s string) string {
		a, _ := parseAddress(s)
		return a.key()
	})
	g.accepts = setOf(g.Accept, func(s string) string { return s })
	var err error
	if g.keys, err = newGateKeys(ctx, storage, g.KeyFile, g.PreviousKeyFile); err != nil {
		return err
	}
	g.revoked, g.revKey, err = openRevocations(storage, logger, time.Duration(g.RevocationRefresh))
	return err
}

func (g *Gate) fillDefaults() {
	if g.Cookie == "" {
		g.Cookie = DefaultSessionCookie
	}
	if g.Leeway == 0 {
		g.Leeway = caddy.Duration(DefaultGateLeeway)
	}
	if len(g.Accept) == 0 {
		g.Accept = []string{kindBearer, kindSession}
	}
}

// Validate checks the configuration without side effects.
func (g *Gate) Validate() error {
	if g.Leeway < 0 || g.Leeway > caddy.Duration(10*time.Minute) {
		return fmt.Errorf("leeway %s out of range 0-10m", time.Duration(g.Leeway))
	}
	for _, a := range g.Accept {
		if _, ok := kindTyp[a]; !ok {
			return fmt.Errorf("accept %q: want bearer or session", a)
		}
	}
	for _, c := range g.AllowClients {
		if c == "" {
			return fmt.Errorf("allow_clients: empty client_id")
		}
	}
	for _, d := range g.AllowDomains {
		if a, err := idna.Lookup.ToASCII(d); err != nil || d == "" || !strings.Contains(a, ".") {
			return fmt.Errorf("allow_domains: %q is not a domain name", d)
		}
	}
	for _, s := range g.AllowAddresses {
		if _, err := parseAddress(s); err != nil {
			return fmt.Errorf("allow_addresses: %q: %v", s, err)
		}
	}
	if g.Header != "" {
		if !httpguts.ValidHeaderFieldName(g.Header) {
			return fmt.Errorf("header %q is not a valid header field name", g.Header)
		}
		switch http.CanonicalHeaderKey(g.Header) {
		case "Authorization", "Cookie", "Host", "Content-Length", "Transfer-Encoding":
			return fmt.Errorf("header %q: choose a header of your own", g.Header)
		}
	}
	if g.Cookie != "" && !httpguts.ValidHeaderFieldName(g.Cookie) {
		return fmt.Errorf("cookie %q is not a valid cookie name", g.Cookie)
	}
	if err := validateRevocationRefresh(g.RevocationRefresh); err != nil {
		return err
	}
	if err := validateCookieDomain(g.CookieDomain); err != nil {
		return err
	}
	if err := validateAuditAddress(g.AuditLogAddress); err != nil {
		return err
	}
	if g.SignInPath != "" && (!strings.HasPrefix(g.SignInPath, "/") || strings.HasPrefix(g.SignInPath, "//")) {
		return fmt.Errorf("signin %q must be a path on this site, starting with a single /", g.SignInPath)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner       = (*Gate)(nil)
	_ caddy.Validator         = (*Gate)(nil)
	_ caddy.CleanerUpper      = (*Gate)(nil)
	_ caddyauth.Authenticator = (*Gate)(nil)
	_ caddyfile.Unmarshaler   = (*Gate)(nil)
)

// setOf indexes a list through norm; an empty list gives nil (no limit).
func setOf(list []string, norm func(string) string) map[string]bool {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[norm(s)] = true
	}
	return m
}
