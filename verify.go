package emailotp

import (
	"errors"

	"github.com/caddy-email-otp/emailotp/internal/keys"
)

// Reasons a credential is refused. They are logged at debug level; none
// holds any part of the token. Those of the JWS itself come from
// keys.Verify, which the issuer and the gate share.
var (
	errNoCredential  = errors.New("no credential")
	errUnknownKey    = keys.ErrUnknownKey
	errTime          = errors.New("expired, not yet valid or issued in the future")
	errIssuer        = errors.New("wrong issuer")
	errAudience      = errors.New("wrong audience or client")
	errSubject       = errors.New("sub is not a normalized address")
	errEmailMismatch = errors.New("email differs from sub")
	errNotAllowed    = errors.New("address not allowed here")
)

// parseVerified is keys.Verify: the JWS, its typ, its key and signature.
var parseVerified = keys.Verify
