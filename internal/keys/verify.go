package keys

import (
	"errors"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxTokenBytes bounds what is parsed: email_otp's tokens are about 1 KiB.
const MaxTokenBytes = 8 << 10

// Reasons a token is refused by Verify. None holds any part of the token.
var (
	ErrMalformed   = errors.New("not a compact JWS with an accepted algorithm")
	ErrTooLong     = errors.New("token too long")
	ErrWrongTyp    = errors.New("wrong typ header")
	ErrUnknownKey  = errors.New("unknown kid")
	ErrAlgMismatch = errors.New("alg does not fit the key")
	ErrSignature   = errors.New("bad signature or claims")
	ErrNoExpiry    = errors.New("no exp claim")
)

// verifyAlgs are the only JWS algorithms parsed: those email_otp signs
// with. "none" and the HMAC algorithms are never accepted, so a public key
// cannot be used as an HMAC secret.
var verifyAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256}

// Verify is the part of token checking that the issuer (introspection,
// sign-in sessions) and the gate share: a compact JWS no larger than
// MaxTokenBytes, one of email_otp's algorithms, the expected typ, a key
// found by kid whose algorithm is the header's, a valid signature, and an
// exp claim. It fills extra with the claims beyond the registered ones; the
// callers check issuer, audience, time and subject, which differ between
// them.
func Verify(raw, typ string, lookup func(kid string) (jose.JSONWebKey, error), extra any) (jwt.Claims, error) {
	var std jwt.Claims
	if len(raw) > MaxTokenBytes {
		return std, ErrTooLong
	}
	tok, err := jwt.ParseSigned(raw, verifyAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return std, ErrMalformed
	}
	hdr := tok.Headers[0]
	if t, _ := hdr.ExtraHeaders[jose.HeaderType].(string); !TypIs(t, typ) {
		return std, ErrWrongTyp
	}
	key, err := lookup(hdr.KeyID)
	if err != nil {
		return std, err
	}
	if key.Algorithm != hdr.Algorithm {
		return std, ErrAlgMismatch
	}
	if err := tok.Claims(key.Key, &std, extra); err != nil {
		return std, ErrSignature
	}
	if std.Expiry == nil {
		return std, ErrNoExpiry
	}
	return std, nil
}

// TypIs compares a JOSE typ with the expected media type, with or without
// the "application/" prefix and ignoring case (RFC 7515 §4.1.9).
func TypIs(typ, want string) bool {
	typ = strings.ToLower(typ)
	return typ == want || typ == "application/"+want
}
