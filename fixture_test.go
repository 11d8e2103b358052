package emailotp

// The unit-test fixture: a Handler provisioned by the same code as in Caddy
// (Handler.provision), without a running Caddy.

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// benchSMTP is where benchHandler sends mail: a fake SMTP server, with or
// without STARTTLS.
type benchSMTP struct {
	port      int
	caFile    string // set for STARTTLS
	idleConns int    // SMTPConfig.IdleConns
}

// benchHandler provisions a Handler outside Caddy through Handler.provision:
// keys in a certmagic.FileStorage in a temp dir, the memory ledger, the
// address and client limits off, the metrics collectors counted but not
// registered, and a JSON logger at INFO writing to io.Discard, so log lines
// are encoded as in production but not written. The client is "bench" with
// secret "bench-secret"; without a port, mail goes to port 25, never dialled.
func benchHandler(tb testing.TB, alg string, smtp benchSMTP) *Handler {
	tb.Helper()
	alg, atAlg, _ := strings.Cut(alg, "+") // "signing_alg+access_token_alg"
	h := &Handler{
		SigningAlg:     alg,
		AccessTokenAlg: cmp.Or(atAlg, alg),
		Ledger:         "memory",
		SMTP: &SMTPConfig{Host: "127.0.0.1", Port: smtp.port, TLS: "none",
			From: "Bench <no-reply@example.com>", Timeout: caddy.Duration(5 * time.Second)},
		Template: &Template{Subject: "Your code", Body: "Your code is {0}"},
		Clients:  []*Client{{ID: "bench", Secret: "bench-secret"}},
		Limits:   &RateLimits{PerAddress: &Limit{Count: -1}, PerClient: &Limit{Count: -1}},
	}
	h.SMTP.IdleConns = &smtp.idleConns
	if smtp.caFile != "" {
		h.SMTP.TLS, h.SMTP.CAFile, h.SMTP.ServerName = "starttls", smtp.caFile, "localhost"
	}
	enc := zap.NewProductionEncoderConfig()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	storage := &certmagic.FileStorage{Path: tb.TempDir()}
	tb.Cleanup(func() { _ = h.Cleanup() })
	if err := h.provision(context.Background(), storage, nil, logger); err != nil {
		tb.Fatal(err)
	}
	return h
}

// benchRequest is a token request as Caddy hands it to the handler: a form
// body, HTTP Basic client authentication and a replacer in the context.
func benchRequest(h *Handler, form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+h.TokenPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("bench", "bench-secret")
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}
