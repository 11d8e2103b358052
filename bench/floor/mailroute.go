package floor

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	gomail "github.com/wneessen/go-mail"
)

func init() {
	caddy.RegisterModule(new(MailHandler))
	httpcaddyfile.RegisterHandlerDirective("bench_mail", parseMailCaddyfile)
}

// MailHandler sends the plugin's mail to a fresh address on a kept-open
// go-mail connection for every request and answers 200: raw sends on
// kept-open connections, inside a Caddy request. It is the initiate step
// without the plugin's own work (form, client, address, limits, code,
// reference, template, log), so initiate over it is the plugin's share.
// Connections are kept without bound or idle timeout, the cheapest a
// server can do.
type MailHandler struct {
	// Port is the SMTP port on 127.0.0.1, plaintext.
	Port int `json:"port,omitempty"`

	idle chan *gomail.Client
	seq  atomic.Int64
}

// CaddyModule returns the Caddy module information.
func (*MailHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.bench_mail", New: func() caddy.Module { return new(MailHandler) }}
}

// Provision makes the store of kept connections.
func (h *MailHandler) Provision(caddy.Context) error {
	h.idle = make(chan *gomail.Client, 256)
	return nil
}

// Cleanup closes the kept connections.
func (h *MailHandler) Cleanup() error {
	for {
		select {
		case c := <-h.idle:
			_ = c.Close()
		default:
			return nil
		}
	}
}

// ServeHTTP mails and answers.
func (h *MailHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	msg, err := Message(fmt.Sprintf("floor%d@bench.example", h.seq.Add(1)))
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	var c *gomail.Client
	select {
	case c = <-h.idle:
	default:
		if c, err = MailClient(h.Port); err == nil {
			err = c.DialWithContext(r.Context())
		}
		if err != nil {
			return caddyhttp.Error(http.StatusServiceUnavailable, err)
		}
	}
	if err := c.Send(msg); err != nil {
		_ = c.Close()
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	select {
	case h.idle <- c:
	default:
		_ = c.Close()
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write([]byte(`{"x_globalsign_iam_challenge":{"reference":"-"}}`))
	return err
}

func parseMailCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(MailHandler)
	return m, m.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile reads `bench_mail <port>`.
func (h *MailHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.NextArg() {
		return d.ArgErr()
	}
	port, err := strconv.Atoi(d.Val())
	if err != nil {
		return d.Errf("bench_mail: port %q: %v", d.Val(), err)
	}
	h.Port = port
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

var (
	_ caddy.Provisioner           = (*MailHandler)(nil)
	_ caddy.CleanerUpper          = (*MailHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*MailHandler)(nil)
	_ caddyfile.Unmarshaler       = (*MailHandler)(nil)
)
