package emailotp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI adds operator revocation to Caddy's admin API:
//
//	POST /email-otp/revoke {"address": "ann@example.com"}
//	POST /email-otp/revoke {"address": "ann@example.com", "before": "2026-12-02T12:00:00Z"}
//	POST /email-otp/revoke {"before": "2026-12-02T12:00:00Z"}
//	POST /email-otp/revoke {"jti": "…"}
//
// An address alone revokes every access token and session issued to it up to
// now; with before, up to that moment; before alone revokes everything
// issued up to it; jti revokes one access token or session. The revocation
// is written to the list in Caddy's storage (the configured one, shared by
// every instance using it), applies at once on this instance and within the
// gates' revocation_refresh (default 30s) on the others. Caddy loads admin
// modules by itself; there is nothing to configure.
type AdminAPI struct {
	storage certmagic.Storage
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.email_otp",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision keeps the config's storage: the list lives there.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	a.storage = ctx.Storage()
	a.logger = ctx.Logger()
	return nil
}

// Routes returns the admin route.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/email-otp/revoke", Handler: caddy.AdminHandlerFunc(a.revoke)}}
}

// adminRevocation is the request body of POST /email-otp/revoke.
type adminRevocation struct {
	Address string `json:"address,omitempty"`
	Before  string `json:"before,omitempty"`
	JTI     string `json:"jti,omitempty"`
}

// maxAdminBody bounds the request body.
const maxAdminBody = 4 << 10

// parse turns the request into one list entry, refusing anything ambiguous.
func (req adminRevocation) parse(t time.Time) (revocation, error) {
	var e revocation
	switch {
	case req.JTI != "" && (req.Address != "" || req.Before != ""):
		return e, errors.New("jti cannot be combined with address or before")
	case req.JTI != "":
		if len(req.JTI) > 256 {
			return e, errors.New("jti longer than 256 bytes")
		}
		// Its token's exp is unknown here: kept as long as anything lives.
		return revocation{jti: req.JTI, exp: t.Add(maxCredentialLife)}, nil
	case req.Address == "" && req.Before == "":
		return e, errors.New(`want "address", "before" or "jti"`)
	}
	e.before = t
	if req.Before != "" {
		b, err := time.Parse(time.RFC3339, req.Before)
		if err != nil {
			return e, fmt.Errorf("before: want an RFC 3339 time: %v", err)
		}
		if b.After(t.Add(time.Minute)) {
			return e, errors.New("before is in the future")
		}
		e.before = b
	}
	if req.Address != "" {
		a, err := parseAddress(strings.TrimSpace(req.Address))
		if err != nil {
			return e, fmt.Errorf("address: %v", err)
		}
		e.address = a.key()
	}
	return e, nil
}

func (a *AdminAPI) revoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("use POST")}
	}
	var req adminRevocation
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("body: want a JSON object: %v", err)}
	}
	if dec.More() {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("body: one JSON object only")}
	}
	t := now()
	e, err := req.parse(t)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	if err := revocationsOf(a.storage).add(r.Context(), e); err != nil {
		a.logger.Error("revocation not stored", zap.Error(err))
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the revocation could not be stored")}
	}
	kind := "before"
	switch {
	case e.jti != "":
		kind = "jti"
	case e.address != "":
		kind = "address"
	}
	// The admin API has no configuration: its audit lines mask the address.
	newAuditLog(a.logger, auditAddressMasked).write(auditRevocation, "admin"+r.URL.Path, e.address, kind,
		zap.String("by", "admin"), zap.Time("before", e.before))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write([]byte(`{"revoked":true}` + "\n"))
	return err
}

// Interface guards
var (
	_ caddy.Provisioner = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
