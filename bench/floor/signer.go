// Package floor holds the floors of the plugin's two steps for the load
// program (bench/load): Signer signs the two tokens of a validation with
// the plugin's key and claims, Message builds the plugin's mail, and the
// benchmark-only Caddy handlers bench_sign and bench_mail do each inside a
// Caddy request, with nothing of the plugin's own work around it. They are
// built into the load test's Caddy (bench/caddy) only, never into a
// production one.
package floor

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	emailotp "github.com/caddy-email-otp/emailotp"
	"github.com/caddy-email-otp/emailotp/internal/claims"
	"github.com/caddy-email-otp/emailotp/internal/keys"
)

// Signer signs an id_token and an access token as the plugin does
// (idtoken.go): the id_token with the key of signing_alg, the access token
// with the key of access_token_alg, each payload marshalled once with
// encoding/json and signed as is, the cheapest way go-jose offers. The
// plugin's rules (key files, kid, claim set) are imported; its signing code
// is not called, since this is the floor it is measured against.
type Signer struct {
	id, at jose.Signer
	method string
}

// NewSigner reads the two PEM keys as the plugin keeps them in storage
// (keys.Prefix/keys.SigningKeyName(alg)) and prepares the two signers with
// the kids the plugin gives them (keys.ParseKeyFor: the RFC 7638
// thumbprint). The two may be the same key.
func NewSigner(idPEM []byte, idAlg string, atPEM []byte, atAlg string) (*Signer, error) {
	s := &Signer{method: emailotp.DefaultMethod}
	var err error
	if s.id, err = newSigner(idPEM, idAlg, claims.TypID); err != nil {
		return nil, err
	}
	if s.at, err = newSigner(atPEM, atAlg, claims.TypAccess); err != nil {
		return nil, err
	}
	return s, nil
}

func newSigner(keyPEM []byte, alg, typ string) (jose.Signer, error) {
	jwk, err := keys.ParseKeyFor(keyPEM, alg)
	if err != nil {
		return nil, err
	}
	sk := jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jwk}
	return jose.NewSigner(sk, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// idPayload is the plugin's id_token claim set. The grant-type claim, whose
// name the plugin builds per handler (claims.GrantTypeClaim of its method),
// is a struct tag here so the payload is one json.Marshal; TestSigner holds
// the tag to the plugin's rule for the default method.
type idPayload struct {
	jwt.Claims
	claims.ID
	GrantType []string `json:"smtp.1.grant_type"`
}

// Sign makes the id_token and the access token of a validation for addr,
// with the plugin's claim set.
func (s *Signer) Sign(addr string) (idToken, accessToken string, err error) {
	const iss, client = "http://127.0.0.1/uas", "bench"
	t := time.Now()
	std := jwt.Claims{Issuer: iss, Subject: addr, Audience: jwt.Audience{client},
		IssuedAt: jwt.NewNumericDate(t), Expiry: jwt.NewNumericDate(t.Add(time.Hour))}
	id, err := json.Marshal(idPayload{std, claims.ID{
		AuthTime:      t.Unix(),
		AMR:           []string{claims.AMR(iss, s.method)},
		AZP:           client,
		SessionIndex:  randomID(),
		Email:         addr,
		EmailVerified: true,
	}, []string{emailotp.DefaultGrantType}})
	if err != nil {
		return "", "", err
	}
	if idToken, err = signCompact(s.id, id); err != nil {
		return "", "", err
	}
	std.ID = randomID()
	at, err := json.Marshal(struct {
		jwt.Claims
		claims.Access
	}{std, claims.Access{ClientID: client, Scope: "openid", AuthTime: t.Unix()}})
	if err != nil {
		return "", "", err
	}
	accessToken, err = signCompact(s.at, at)
	return idToken, accessToken, err
}

func signCompact(s jose.Signer, payload []byte) (string, error) {
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
