package emailotp

import (
	"fmt"
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The audit trail: one structured log line, at info level on the logger
// named "…audit", for every sign-in, sign-out, revocation and refusal, so
// that an operator can follow who came in, who left and who was turned away
// without raising the log level. A line holds the event, the route (host
// and path: never the query, which may carry anything), the address —
// masked (a***@example.com) unless audit_log_address is "full" — and the
// reason. It never holds a code, reference, token, cookie or secret.

// Audit events.
const (
	auditSignIn     = "signin"
	auditSignOut    = "signout"
	auditSignOutAll = "signout_everywhere"
	auditRevocation = "revocation"
	auditRefusal    = "refusal"
)

// Values of audit_log_address.
const (
	auditAddressMasked = "masked"
	auditAddressFull   = "full"
)

// validateAuditAddress checks an audit_log_address value ("" is masked).
func validateAuditAddress(v string) error {
	if v != "" && v != auditAddressMasked && v != auditAddressFull {
		return fmt.Errorf("audit_log_address %q: want masked or full", v)
	}
	return nil
}

// auditLog writes the audit lines of one module.
type auditLog struct {
	logger *zap.Logger
	full   bool
}

func newAuditLog(logger *zap.Logger, mode string) auditLog {
	if logger == nil {
		logger = zap.NewNop()
	}
	return auditLog{logger: logger.Named("audit"), full: mode == auditAddressFull}
}

// write logs one event. addr is a normalized address or ""; route is
// "host/path"; reason says why, for a refusal or a revocation.
func (a auditLog) write(event, route, addr, reason string, fields ...zap.Field) {
	if a.logger == nil {
		return // a module built outside Provision (benchmarks)
	}
	ce := a.logger.Check(zapcore.InfoLevel, event)
	if ce == nil {
		return
	}
	ce.Write(append([]zap.Field{
		zap.String("event", event),
		zap.String("route", route),
		zap.String("address", a.address(addr)),
		zap.String("reason", reason),
	}, fields...)...)
}

// address is addr as the audit line shows it: whole, or masked.
func (a auditLog) address(addr string) string {
	if addr == "" || a.full {
		return addr
	}
	p, err := parseAddress(addr)
	if err != nil {
		return "***"
	}
	return p.masked()
}

// requestRoute is the route of a request for an audit line: host and path,
// never the query.
func requestRoute(r *http.Request) string {
	return r.Host + r.URL.Path
}
