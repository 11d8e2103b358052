package emailotp

import (
	"errors"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxTokenBytes bounds what is parsed: our tokens are about 1 KiB.
const maxTokenBytes = 8 << 10

// Reasons a credential is refused. They are logged at debug level; none
// holds any part of the token.
var (
	errNoCredential  = errors.New("no credential")
	errMalformed     = errors.New("not a compact JWS with an accepted algorithm")
	errTooLong       = errors.New("token too long")
	errWrongTyp      = errors.New("wrong typ header")
	errUnknownKey    = errors.New("unknown kid")
	errAlgMismatch   = errors.New("alg does not fit the key")
	errSignature     = errors.New("bad signature or claims")
	errNoExpiry      = errors.New("no exp claim")
	errTime          = errors.New("expired, not yet valid or issued in the future")
	errIssuer        = errors.New("wrong issuer")
	errAudience      = errors.New("wrong audience or client")
	errSubject       = errors.New("sub is not a normalized address")
	errEmailMismatch = errors.New("email differs from sub")
	errNotAllowed    = errors.New("address not allowed here")
)

// gateAlgs are the only JWS algorithms the gate parses: those email_otp
// signs with. "none" and the HMAC algorithms are never accepted, so a
// public key cannot be used as an HMAC secret.
var gateAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// parseVerified is the part of token checking that the gate and the
// sign-in page share: a compact JWS no larger than maxTokenBytes, one of our
// algorithms, the expected typ, a key found by kid whose algorithm is the
// header's, a valid signature, and an exp claim. It fills extra with the
// claims beyond the registered ones; the callers check issuer, audience,
// time and subject, which differ between them.
func parseVerified(raw, typ string, lookup func(kid string) (jose.JSONWebKey, error), extra any) (jwt.Claims, error) {
	var std jwt.Claims
	if len(raw) > maxTokenBytes {
		return std, errTooLong
	}
	tok, err := jwt.ParseSigned(raw, gateAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return std, errMalformed
	}
	hdr := tok.Headers[0]
	if t, _ := hdr.ExtraHeaders[jose.HeaderType].(string); !typIs(t, typ) {
		return std, errWrongTyp
	}
	key, err := lookup(hdr.KeyID)
	if err != nil {
		return std, err
	}
	if key.Algorithm != hdr.Algorithm {
		return std, errAlgMismatch
	}
	if err := tok.Claims(key.Key, &std, extra); err != nil {
		return std, errSignature
	}
	if std.Expiry == nil {
		return std, errNoExpiry
	}
	return std, nil
}

// typIs compares a JOSE typ with the expected media type, with or without
// the "application/" prefix and ignoring case (RFC 7515 §4.1.9).
func typIs(typ, want string) bool {
	typ = strings.ToLower(typ)
	return typ == want || typ == "application/"+want
}
