package floor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-email-otp/emailotp/internal/keys"
)

func init() {
	caddy.RegisterModule(new(Handler))
	httpcaddyfile.RegisterHandlerDirective("bench_sign", parseCaddyfile)
}

// Handler answers every request with the tokens of a validation, signed
// with the email_otp key of the same algorithm in Caddy's storage, in the
// plugin's JSON answer. It is the validate step without the plugin's own
// work (form, client, reference, ledger, code, log): the floor of that
// step measured in one Caddy request, where the costs of a request that
// computes for milliseconds (the scheduler waking the connection's
// goroutine, a fuller heap) are paid as the plugin pays them.
type Handler struct {
	// Alg is the signing_alg of the email_otp handler whose keys are used.
	Alg string `json:"alg,omitempty"`

	// ATAlg is its access_token_alg. Default: Alg.
	ATAlg string `json:"at_alg,omitempty"`

	storage certmagic.Storage
	once    sync.Once
	signer  *Signer
	err     error
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.bench_sign", New: func() caddy.Module { return new(Handler) }}
}

// Provision keeps the storage; the key is read at the first request, since
// the email_otp handler that creates it may be provisioned after this one.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.storage = ctx.Storage()
	return nil
}

func (h *Handler) load(r *http.Request) (*Signer, error) {
	h.once.Do(func() {
		atAlg := cmp.Or(h.ATAlg, h.Alg)
		var pems [2][]byte
		for i, alg := range []string{h.Alg, atAlg} {
			key := path.Join(keys.Prefix, keys.SigningKeyName(alg))
			b, err := h.storage.Load(r.Context(), key)
			if err != nil {
				h.err = fmt.Errorf("bench_sign: %s: %w", key, err)
				return
			}
			pems[i] = b
		}
		h.signer, h.err = NewSigner(pems[0], h.Alg, pems[1], atAlg)
	})
	return h.signer, h.err
}

// ServeHTTP signs and answers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	s, err := h.load(r)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	id, at, err := s.Sign("alice@example.com")
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	b, err := json.Marshal(struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
		IDToken     string `json:"id_token"`
	}{at, "Bearer", 3600, "openid", id})
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(b)
	return err
}

// parseCaddyfile sets up the handler from `bench_sign <alg> [<at_alg>]`.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	return m, m.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile reads `bench_sign <alg> [<at_alg>]`.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.NextArg() {
		return d.ArgErr()
	}
	h.Alg = d.Val()
	if d.NextArg() {
		h.ATAlg = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
