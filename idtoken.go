package emailotp

import (
	"crypto/rand"
	"encoding/base64"
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
	address  string
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
		Subject:  g.address,
		Audience: jwt.Audience{g.client.ID},
		IssuedAt: iat,
		Expiry:   exp,
	}
	extra := make(map[string]any, 1+len(g.client.Claims))
	extra[claims.GrantTypeClaim(h.Method)] = []string{h.GrantType}
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
		SessionIndex:  randomID(),
		Email:         g.address,
		EmailVerified: true,
		Nonce:         g.nonce,
	}}
	std.ID = randomID()
	atPayload := struct {
		jwt.Claims
		claims.Access
	}{std, claims.Access{
		ClientID: g.client.ID,
		Scope:    g.scope,
		AuthTime: g.authTime.Unix(),
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

// signClaims marshals claims, adds the extra claims whose names are
// configured (in sorted order; Validate keeps them apart from the struct's),
// and returns the compact JWS.
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
