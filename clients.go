package emailotp

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"

	"github.com/caddy-email-otp/emailotp/internal/keys"
	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/net/idna"
)

// Client is an application allowed to use the grant.
type Client struct {
	// ID is the client_id. Required.
	ID string `json:"id,omitempty"`

	// Secret is the client_secret, placeholders such as {env.APP_SECRET}
	// resolved once at provision. Required unless the client authenticates
	// with keys (jwks_file, public_key_file or jwks_uri).
	Secret string `json:"secret,omitempty"`

	// JWKSFile is a JWK Set file of the public keys this client signs its
	// private_key_jwt assertions with, instead of a secret. Default: none.
	JWKSFile string `json:"jwks_file,omitempty"`

	// PublicKeyFile is a PEM public key this client signs its
	// private_key_jwt assertions with, instead of a secret. Default: none.
	PublicKeyFile string `json:"public_key_file,omitempty"`

	// JWKSURI is the https URL of the JWK Set this client signs its
	// private_key_jwt assertions with, fetched when needed and cached.
	// Default: none.
	JWKSURI string `json:"jwks_uri,omitempty"`

	// JWKSURIAllowHTTP allows an http jwks_uri to a host that is not
	// loopback. Default: false.
	JWKSURIAllowHTTP bool `json:"jwks_uri_allow_http,omitempty"`

	// AllowDomains restricts the addresses this client may verify to these
	// domains (exact match, case-insensitive; IDN allowed; "*" for any).
	// Default: any domain.
	AllowDomains []string `json:"allow_domains,omitempty"`

	// Claims are static claims added to every id_token of this client, none
	// of them one the grant sets. Default: none.
	Claims map[string]string `json:"claim,omitempty"`

	// RequestTemplate is "allow" or "deny": whether a request may supply the
	// mail's title and body (x_globalsign_iam_otp_title / _body).
	// Default: allow (as Ubisecure does).
	RequestTemplate string `json:"request_template,omitempty"`

	// PassUserIPParam names the request parameter in which this trusted
	// client passes the end user's IP, for the per-IP limit. Default: none.
	PassUserIPParam string `json:"user_ip_param,omitempty"`

	// UniformRefusals answers an address refused by allow_domains or by the
	// mail server as if the code had been mailed (a reference no code opens),
	// so the answer does not tell which mailboxes exist. Default: false (the
	// authenticated client gets the precise error).
	UniformRefusals bool `json:"uniform_refusals,omitempty"`

	secretHash [32]byte
	keys       *clientKeys // set for private_key_jwt clients
	domains    map[string]bool
}

// reservedClaims are set by the grant and cannot be configured per client.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"auth_time": true, "amr": true, "azp": true, "session_index": true, "email": true,
	"email_verified": true, "nonce": true, "client_id": true, "scope": true,
}

func (c *Client) validate() error {
	if c.ID == "" || len(c.ID) > 255 || strings.ContainsAny(c.ID, " \t\r\n:") {
		return fmt.Errorf("client %q: id must be 1-255 characters without spaces or colons", c.ID)
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if c.RequestTemplate != "" && c.RequestTemplate != "allow" && c.RequestTemplate != "deny" {
		return fmt.Errorf("client %q: request_template %q: want allow or deny", c.ID, c.RequestTemplate)
	}
	for k := range c.Claims {
		if reservedClaims[k] || strings.HasSuffix(k, ".grant_type") {
			return fmt.Errorf("client %q: claim %q is set by the grant and cannot be configured", c.ID, k)
		}
	}
	for _, d := range c.AllowDomains {
		if d == "*" {
			continue
		}
		if _, err := idna.Lookup.ToASCII(d); err != nil || d == "" {
			return fmt.Errorf("client %q: allow_domains: %q is not a domain name", c.ID, d)
		}
	}
	return nil
}

// provision resolves the secret's placeholders once and indexes the domains.
func (c *Client) provision(repl *caddy.Replacer) error {
	if err := c.provisionKeys(repl); err != nil {
		return err
	}
	secret := repl.ReplaceAll(c.Secret, "")
	if secret == "" && c.keys == nil {
		return fmt.Errorf("client %q: secret %q resolved to an empty value", c.ID, c.Secret)
	}
	if c.keys == nil {
		warnShortSecret(c.ID, secret)
	}
	c.secretHash = sha256.Sum256([]byte(secret))
	c.domains = nil
	for _, d := range c.AllowDomains {
		if d == "*" {
			c.domains = nil
			break
		}
		a, _ := idna.Lookup.ToASCII(d)
		if c.domains == nil {
			c.domains = make(map[string]bool)
		}
		c.domains[strings.ToLower(a)] = true
	}
	return nil
}

// allows reports whether the client may verify addresses of this domain
// (already lower-cased and IDNA-encoded).
func (c *Client) allows(domain string) bool {
	return c.domains == nil || c.domains[domain]
}

// unknownClient is compared against when the client_id is unknown, so an
// unknown client costs the same time as a wrong secret (as caddyauth's
// basicauth does with its fake hash).
var unknownClient = &Client{secretHash: sha256.Sum256([]byte("email_otp unknown client"))}

// authenticate returns the client if the secret matches, in time independent
// of whether the client exists.
func (h *Handler) authenticate(id, secret string) (*Client, bool) {
	c, known := h.clients[id]
	if !known {
		c = unknownClient
	}
	sum := sha256.Sum256([]byte(secret))
	ok := subtle.ConstantTimeCompare(sum[:], c.secretHash[:]) == 1
	return c, ok && known && c.keys == nil
}

// usesKeys reports whether the client authenticates with keys, not a secret.
func (c *Client) usesKeys() bool {
	return c.JWKSFile != "" || c.PublicKeyFile != "" || c.JWKSURI != ""
}

// validateAuth checks that the client has exactly one way to authenticate.
func (c *Client) validateAuth() error {
	n := 0
	for _, s := range []string{c.Secret, c.JWKSFile, c.PublicKeyFile, c.JWKSURI} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return fmt.Errorf("client %q: secret is required, or one of jwks_file, public_key_file, jwks_uri", c.ID)
	case n > 1:
		return fmt.Errorf("client %q: give one of secret, jwks_file, public_key_file, jwks_uri", c.ID)
	case c.JWKSURIAllowHTTP && c.JWKSURI == "":
		return fmt.Errorf("client %q: jwks_uri_allow_http without jwks_uri", c.ID)
	case c.JWKSURI != "":
		return checkJWKSURI(c.JWKSURI, c.JWKSURIAllowHTTP)
	}
	return nil
}

// provisionKeys reads the client's key file or prepares its jwks_uri cache.
// Placeholders are resolved once, like the secret's.
func (c *Client) provisionKeys(repl *caddy.Replacer) error {
	c.keys = nil
	switch {
	case c.JWKSFile != "":
		name := repl.ReplaceAll(c.JWKSFile, "")
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("client %q: jwks_file: %w", c.ID, err)
		}
		keys, skipped, err := parseClientJWKS(b)
		if err == nil && len(skipped) > 0 {
			err = fmt.Errorf("unusable keys: %s", strings.Join(skipped, "; "))
		}
		if err != nil {
			return fmt.Errorf("client %q: jwks_file %s: %w", c.ID, name, err)
		}
		c.keys = &clientKeys{static: keys}
	case c.PublicKeyFile != "":
		name := repl.ReplaceAll(c.PublicKeyFile, "")
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("client %q: public_key_file: %w", c.ID, err)
		}
		jwk, err := keys.ParseVerificationKey(b)
		if err != nil {
			return fmt.Errorf("client %q: public_key_file %s: %w", c.ID, name, err)
		}
		// One key: it verifies whatever kid the client names, with any
		// algorithm its type allows (RSA: RS256 and PS256).
		jwk.KeyID, jwk.Algorithm = "", ""
		c.keys = &clientKeys{static: []jose.JSONWebKey{jwk}}
	case c.JWKSURI != "":
		uri := repl.ReplaceAll(c.JWKSURI, "")
		if err := checkJWKSURI(uri, c.JWKSURIAllowHTTP); err != nil {
			return fmt.Errorf("client %q: %w", c.ID, err)
		}
		c.keys = &clientKeys{remote: newRemoteJWKS(uri)}
	}
	if c.keys != nil {
		// The decoy keys an unknown client is checked against: made now,
		// so the first such request does not pay for an RSA key.
		go decoyKeys()
	}
	return nil
}
