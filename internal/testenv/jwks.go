package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrUnknownKID is returned when a token's kid is not in the JWKS.
var ErrUnknownKID = errors.New("kid not in the JWKS")

// ParseJWKS reads a JWKS document and refuses one that publishes a private
// key.
func ParseJWKS(doc []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		return set, fmt.Errorf("JWKS %s: %w", doc, err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return set, errors.New("JWKS publishes a private key")
		}
	}
	return set, nil
}

// KeyIDs lists the kids of a JWKS document, in order.
func KeyIDs(doc []byte) ([]string, error) {
	set, err := ParseJWKS(doc)
	if err != nil {
		return nil, err
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids, nil
}

// FetchJWKS GETs a JWKS document.
func FetchJWKS(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// Verify checks a token as a relying party does: one of algs, signed by the
// key of the JWKS its kid names, and decodes its claims into out (a
// jwt.Claims when out is empty). It returns the parsed token for header
// checks.
func Verify(doc []byte, tok string, algs []jose.SignatureAlgorithm, out ...any) (*jwt.JSONWebToken, error) {
	set, err := ParseJWKS(doc)
	if err != nil {
		return nil, err
	}
	parsed, err := jwt.ParseSigned(tok, algs)
	if err != nil {
		return nil, err
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) == 0 {
		return parsed, ErrUnknownKID
	}
	if len(out) == 0 {
		out = []any{new(jwt.Claims)}
	}
	return parsed, parsed.Claims(keys[0].Key, out...)
}
