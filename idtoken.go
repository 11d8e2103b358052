package emailotp

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-email-otp/emailotp/internal/claims"
)

// grantResult is what a successful validation knows about the person.
type grantResult struct {
	issuer   string
	client   *Client
	subject  string // the username as the client sent it
	address  string // normalized: the email claim
	scope    string
	nonce    string
	authTime time.Time
}

// tokenResponse is the RFC 6749 §5.1 answer of a successful validation.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	IDToken     string `json:"id_token"`
}

// newSessionIndex is the session_index shared by the id_token and the
// access token of one validation: "_" and 40 hex digits, as in the seed.
func newSessionIndex() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return "_" + hex.EncodeToString(b[:])
}

// mint signs the id_token and the access token. Each payload is marshalled
// once and signed as is: go-jose's jwt builder would marshal every Claims
// value, decode it into a map and marshal the map again, a third of a
// validation's CPU time with EdDSA (see BENCHMARKS.md).
func (h *Handler) mint(g grantResult) (*tokenResponse, error) {
	life := time.Duration(h.TokenLifetime)
	iat := jwt.NewNumericDate(g.authTime)
	exp := jwt.NewNumericDate(g.authTime.Add(life))
	std := jwt.Claims{
		Issuer:   g.issuer,
		Subject:  g.subject,
		IssuedAt: iat,
		Expiry:   exp,
	}
	if std.Subject == "" { // a caller that only knows the normalized address
		std.Subject = g.address
	}
	session := newSessionIndex()
	extra := make(map[string]any, 2+len(g.client.Claims))
	extra[claims.GrantTypeClaim(h.Method)] = []string{h.GrantType}
	// aud always an array, as in the seed's example: go-jose's jwt.Audience
	// marshals one value as a string, which RFC 7519 allows and a client
	// parsing the seed's shape does not expect. The access token keeps
	// RFC 9068's form.
	extra["aud"] = []string{g.client.ID}
	for k, v := range g.client.Claims {
		extra[k] = v
	}
	idPayload := struct {
		jwt.Claims
		claims.ID
	}{std, claims.ID{
		AuthTime:      g.authTime.Unix(),
		AMR:           []string{claims.AMR(g.issuer, h.Method)},
		AZP:           g.client.ID,
		SessionIndex:  session,
		Email:         g.address,
		EmailVerified: true,
		Nonce:         g.nonce,
	}}
	std.ID = randomID()
	std.Audience = jwt.Audience{g.client.ID}
	atPayload := struct {
		jwt.Claims
		claims.Access
	}{std, claims.Access{
		ClientID:     g.client.ID,
		Scope:        g.scope,
		AuthTime:     g.authTime.Unix(),
		Email:        g.address,
		SessionIndex: session,
	}}
	var id, at string
	err := h.keys.signBoth(
		func() (err error) { id, err = signClaims(h.keys.signID, idPayload, extra); return err },
		func() (err error) { at, err = signClaims(h.keys.signAT, atPayload, nil); return err })
	if err != nil {
		return nil, err
	}
	return &tokenResponse{
		AccessToken: at,
		TokenType:   "Bearer",
		ExpiresIn:   int64(life / time.Second),
		Scope:       g.scope,
		IDToken:     id,
	}, nil
}

// signClaims marshals claims, adds the extra claims (the id_token's aud and
// those whose names are configured) in sorted order (Validate keeps them
// apart from the struct's), and returns the compact JWS.
func signClaims(sign func([]byte) (string, error), payload any, extra map[string]any) (string, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	if len(extra) > 0 {
		p = p[:len(p)-1] // the closing brace
		for _, k := range slices.Sorted(maps.Keys(extra)) {
			kb, err := json.Marshal(k)
			if err != nil {
				return "", err
			}
			vb, err := json.Marshal(extra[k])
			if err != nil {
				return "", err
			}
			if len(p) > 1 {
				p = append(p, ',')
			}
			p = append(append(append(p, kb...), ':'), vb...)
		}
		p = append(p, '}')
	}
	return sign(p)
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
