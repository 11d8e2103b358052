// Package emailotp is a Caddy HTTP handler that proves a person can read mail
// sent to an address. It speaks Ubisecure SSO's smtp-otp OAuth 2.0 grant: the
// application asks for a code to be mailed, then trades the code for an access
// token and a signed OpenID Connect id_token.
//
// Email proves control of an address; it is not an authenticator in the sense
// of NIST SP 800-63B.
package emailotp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-email-otp/emailotp/internal/keys"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the grant, as Ubisecure SSO names and sizes them.
const (
	DefaultGrantType     = "http://globalsign.com/iam/sso/oauth2/grant-type/smtp-otp"
	DefaultTokenPath     = "/uas/oauth2/token"
	DefaultMethod        = "smtp.1"
	DefaultOTPTimeout    = 10 * time.Minute
	DefaultCodeLength    = 8
	DefaultMaxAttempts   = 5
	DefaultTokenLifetime = time.Hour
)

// Handler implements the smtp-otp grant on a token endpoint and publishes the
// OpenID Connect discovery document and the JWKS that verify its tokens. Any
// other request, including a token request for another grant type, goes to the
// next handler untouched, so Caddy can front an existing OAuth server.
type Handler struct {
	// TokenPath is the path of the token endpoint. Default: /uas/oauth2/token
	TokenPath string `json:"token_path,omitempty"`

	// Issuer is the `iss` of every token and the base of the discovery
	// document, placeholders allowed. Default: the request's scheme and host
	// followed by the token path's prefix before /oauth2/token (https://host/uas).
	Issuer string `json:"issuer,omitempty"`

	// GrantType is the grant_type URI this handler answers.
	// Default: http://globalsign.com/iam/sso/oauth2/grant-type/smtp-otp
	GrantType string `json:"grant_type,omitempty"`

	// Method names the authentication method in the id_token's `amr` and
	// `<method>.grant_type` claims. Default: smtp.1
	Method string `json:"method,omitempty"`

	// OTPTimeout is how long a mailed code stays valid, 1s to 24h. Default: 10m
	OTPTimeout caddy.Duration `json:"otp_timeout,omitempty"`

	// CodeLength is the number of digits of a code, 6 to 12. Default: 8
	CodeLength int `json:"code_length,omitempty"`

	// MaxAttempts is how many codes may be tried against one mailed code,
	// across its whole chain of references, 1 to 100. Default: 5
	MaxAttempts int `json:"max_attempts,omitempty"`

	// TokenLifetime is the lifetime of the access token and the id_token,
	// 1m to 24h. Default: 1h
	TokenLifetime caddy.Duration `json:"token_lifetime,omitempty"`

	// SigningAlg is the JWS algorithm of the id_token: RS256, ES256 or EdDSA.
	// Default: RS256
	SigningAlg string `json:"signing_alg,omitempty"`

	// AccessTokenAlg is the JWS algorithm of the access token: RS256, ES256
	// or EdDSA. Default: ES256 (signing_alg with a signing_key_file)
	AccessTokenAlg string `json:"access_token_alg,omitempty"`

	// SigningKeyFile is a PEM private key (PKCS#8, PKCS#1 or SEC 1) of
	// signing_alg's type to sign with. Default: a key generated once and kept
	// in Caddy's storage, shared by every instance using that storage.
	SigningKeyFile string `json:"signing_key_file,omitempty"`

	// PreviousSigningKeyFile is the PEM key signing_key_file held before the
	// operator rotated it, kept in the JWKS (never signing) until the tokens
	// it signed expire. Default: none.
	PreviousSigningKeyFile string `json:"previous_signing_key_file,omitempty"`

	// KeyRotation is how long a signing key kept in storage signs before a
	// new one replaces it, at least 1h and the longest token or session
	// lifetime (2160h is a common choice). Default: 0, off.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

	// Ledger is where consumed references are recorded: "storage" (they
	// stay refused after restarts and at every instance sharing it) or
	// "memory" (lost on restart). Default: storage
	Ledger string `json:"ledger,omitempty"`

	// SMTP is the mail server the codes are handed to. Required.
	SMTP *SMTPConfig `json:"smtp,omitempty"`

	// Template is the default mail and its per-locale variants.
	// Default: an English subject and body.
	Template *Template `json:"template,omitempty"`

	// Clients are the applications allowed to use the grant. Required: at
	// least one.
	Clients []*Client `json:"client,omitempty"`

	// Limits bound how often codes may be sent. Default: each limit's own.
	Limits *RateLimits `json:"limit,omitempty"`

	// GrantOnly leaves discovery, metadata.json, the JWKS, introspection and
	// revocation to the next handler (fronting a real Ubisecure SSO).
	// Default: false
	GrantOnly bool `json:"grant_only,omitempty"`

	// SignIn serves the browser sign-in pages whose session cookie
	// email_otp_gate accepts. Default: no sign-in pages.
	SignIn *SignInConfig `json:"signin,omitempty"`

	logger    *zap.Logger
	basePath  string
	clients   map[string]*Client
	keys      *signingKeys
	core      *otp
	ledgerKey string
	signIn    *signIn
	scopes    []string
	revoked   *revocationList
	revKey    string
	audit     auditLog // the sign-in page's and RFC 7009 revocation's
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.email_otp",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills defaults, validates, resolves secrets once, loads or
// creates the keys in storage and prepares templates and the mail client, so
// no request ever pays for them.
func (h *Handler) Provision(ctx caddy.Context) error {
	return h.provision(ctx, ctx.Storage(), ctx.GetMetricsRegistry(), ctx.Logger())
}

// provision is Provision with its dependencies named, so tests build the
// handler the way Caddy does without a running Caddy. The order is the only
// one: defaults, then the one validation, before anything touches storage,
// so a rejected config never starts a key rotation.
func (h *Handler) provision(ctx context.Context, storage certmagic.Storage, reg *prometheus.Registry, logger *zap.Logger) error {
	h.logger = logger
	h.fillDefaults()
	if err := h.checkConfig(); err != nil {
		return err
	}
	repl := caddy.NewReplacer()

	h.clients = make(map[string]*Client, len(h.Clients))
	for _, c := range h.Clients {
		if err := c.provision(repl); err != nil {
			return err
		}
		h.clients[c.ID] = c
	}

	var err error
	if h.keys, err = h.openKeys(ctx, storage); err != nil {
		if h.SigningKeyFile != "" { // openKeys names the option and the file
			return err
		}
		return fmt.Errorf("signing key: %w", err)
	}
	refKey, err := keys.LoadSecret(ctx, storage, keys.ReferenceKeyName)
	if err != nil {
		return fmt.Errorf("reference key: %w", err)
	}
	o := &otp{codeLength: h.CodeLength, ttl: time.Duration(h.OTPTimeout), maxAttempts: h.MaxAttempts, tokenPath: h.TokenPath, logger: h.logger}
	h.core = o
	if o.refs, err = newSealer(refKey); err != nil {
		return err
	}
	if o.tmpl, err = newTemplateSet(h.Template); err != nil {
		return err
	}
	if o.mailer, err = newMailer(h.SMTP, repl); err != nil {
		return err
	}
	if o.ledger, h.ledgerKey, err = openLedger(storage, h.Ledger); err != nil {
		return err
	}
	if o.limiter, err = newLimiter(h.Limits, storage, h.logger); err != nil {
		return err
	}
	if o.metrics, err = registerMetrics(reg); err != nil {
		return err
	}
	if h.revoked, h.revKey, err = openRevocations(storage, h.logger, 0); err != nil {
		return err
	}
	// audit_log_address is set in the signin block, the one place an
	// operator states the policy; without a sign-in page addresses are masked.
	h.audit = newAuditLog(h.logger, auditAddressMasked)
	if h.SignIn != nil {
		if err := h.SignIn.provision(h.clients, o.tmpl.locales()); err != nil {
			return err
		}
		h.audit = newAuditLog(h.logger, h.SignIn.AuditLogAddress)
		h.signIn = &signIn{cfg: h.SignIn, core: o, keys: h.keys, logger: h.logger, issuer: h.issuer,
			revoked: h.revoked, audit: h.audit}
	}
	return nil
}

// fillDefaults sets every field left out, in the handler and its blocks, to
// its default. Each block's defaults live in its own fillDefaults; this is
// the only caller during a provision, and running it twice changes nothing.
func (h *Handler) fillDefaults() {
	if h.TokenPath == "" {
		h.TokenPath = DefaultTokenPath
	}
	if h.GrantType == "" {
		h.GrantType = DefaultGrantType
	}
	if h.Method == "" {
		h.Method = DefaultMethod
	}
	if h.OTPTimeout == 0 {
		h.OTPTimeout = caddy.Duration(DefaultOTPTimeout)
	}
	if h.CodeLength == 0 {
		h.CodeLength = DefaultCodeLength
	}
	if h.MaxAttempts == 0 {
		h.MaxAttempts = DefaultMaxAttempts
	}
	if h.TokenLifetime == 0 {
		h.TokenLifetime = caddy.Duration(DefaultTokenLifetime)
	}
	if h.SigningAlg == "" {
		h.SigningAlg = "RS256"
	}
	if h.AccessTokenAlg == "" {
		h.AccessTokenAlg = "ES256"
		if h.SigningKeyFile != "" {
			h.AccessTokenAlg = h.SigningAlg
		}
	}
	if h.Ledger == "" {
		h.Ledger = "storage"
	}
	if h.SMTP != nil {
		h.SMTP.fillDefaults()
	}
	if h.Limits == nil {
		h.Limits = new(RateLimits)
	}
	h.Limits.fillDefaults()
	if h.SignIn != nil {
		h.SignIn.fillDefaults(h.Clients)
	}
	h.basePath = issuerPath(h.Issuer, h.TokenPath)
	h.scopes = []string{"openid", "email"}
}

// checkConfig checks the configuration, defaults filled, without side effects.
// It runs once, in provision, before anything is opened: the handler is
// deliberately not a caddy.Validator, whose check would come after
// Provision had already touched storage (and run the checks a second time).
func (h *Handler) checkConfig() error {
	if !strings.HasPrefix(h.TokenPath, "/") {
		return fmt.Errorf("token_path %q must start with /", h.TokenPath)
	}
	if h.CodeLength < 6 || h.CodeLength > 12 {
		return fmt.Errorf("code_length %d out of range 6-12", h.CodeLength)
	}
	if h.MaxAttempts < 1 || h.MaxAttempts > 100 {
		return fmt.Errorf("max_attempts %d out of range 1-100", h.MaxAttempts)
	}
	if h.OTPTimeout < caddy.Duration(time.Second) || h.OTPTimeout > caddy.Duration(24*time.Hour) {
		return fmt.Errorf("otp_timeout %s out of range 1s-24h", time.Duration(h.OTPTimeout))
	}
	if h.TokenLifetime < caddy.Duration(time.Minute) || h.TokenLifetime > caddy.Duration(24*time.Hour) {
		return fmt.Errorf("token_lifetime %s out of range 1m-24h", time.Duration(h.TokenLifetime))
	}
	if !keys.Supported(h.SigningAlg) {
		return fmt.Errorf("signing_alg %q: want RS256, ES256 or EdDSA", h.SigningAlg)
	}
	if !keys.Supported(h.AccessTokenAlg) {
		return fmt.Errorf("access_token_alg %q: want RS256, ES256 or EdDSA", h.AccessTokenAlg)
	}
	if h.SigningKeyFile != "" && h.AccessTokenAlg != h.SigningAlg {
		return fmt.Errorf("access_token_alg %s: a signing_key_file signs both tokens, with signing_alg %s", h.AccessTokenAlg, h.SigningAlg)
	}
	if h.Ledger != "memory" && h.Ledger != "storage" {
		return fmt.Errorf("ledger %q: want memory or storage", h.Ledger)
	}
	if h.Method == "" || strings.ContainsAny(h.Method, " /") {
		return fmt.Errorf("method %q must be a non-empty token without spaces or slashes", h.Method)
	}
	if h.SMTP == nil {
		return fmt.Errorf("smtp: block is required")
	}
	if err := h.SMTP.validate(); err != nil {
		return err
	}
	if err := h.Template.validate(); err != nil {
		return err
	}
	if len(h.Clients) == 0 {
		return fmt.Errorf("at least one client is required")
	}
	seen := make(map[string]bool, len(h.Clients))
	for _, c := range h.Clients {
		if err := c.validate(); err != nil {
			return err
		}
		if seen[c.ID] {
			return fmt.Errorf("client %q: defined twice", c.ID)
		}
		seen[c.ID] = true
	}
	if err := h.SignIn.validate(h.Clients, h.TokenPath); err != nil {
		return err
	}
	if err := h.validateKeys(); err != nil {
		return err
	}
	return h.Limits.validate()
}

// Cleanup releases what Provision took; it works after a failed Provision.
func (h *Handler) Cleanup() error {
	if h.ledgerKey != "" {
		_, _ = ledgers.Delete(h.ledgerKey)
	}
	if h.revKey != "" {
		_, _ = revocationLists.Delete(h.revKey)
		h.revKey = ""
	}
	if h.core != nil {
		if h.core.limiter != nil {
			h.core.limiter.release()
		}
		h.core.mailer.close()
	}
	h.keys.close()
	return nil
}

// ServeHTTP answers the token endpoint for this grant and the published
// documents; everything else goes to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.signIn != nil {
		if h.signIn.serveSignIn(w, r) {
			return nil
		}
		h.signIn.slide(w, r)
	}
	if r.URL.Path == h.TokenPath && r.Method == http.MethodPost && h.serveToken(w, r) {
		return nil
	}
	if !h.GrantOnly && h.servePublished(w, r) {
		return nil
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)

// longestLifetime is the longest validity of anything the handler signs:
// its tokens and, with a sign-in page, its session cookies.
func (h *Handler) longestLifetime() time.Duration {
	life := time.Duration(h.TokenLifetime)
	if h.SignIn != nil {
		life = max(life, time.Duration(h.SignIn.SessionLifetime))
	}
	return life
}
