// Package floor holds the floors of the plugin's two steps for the load
// program (bench/load): Signer signs the two tokens of a validation with
// the plugin's key and claims, Message builds the plugin's mail, and the
// benchmark-only Caddy handlers bench_sign and bench_mail do each inside a
// Caddy request, with nothing of the plugin's own work around it. They are
// built into the load test's Caddy (bench/caddy) only, never into a
// production one.
package floor

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	emailotp "github.com/caddy-email-otp/emailotp"
)

// Signer signs an id_token and an access token with one key, as the plugin
// does (idtoken.go): each payload marshalled once with encoding/json and
// signed as is, the cheapest way go-jose offers.
type Signer struct {
	id, at jose.Signer
	method string
}

// NewSigner reads a PKCS#8 PEM key, as the plugin keeps it in storage
// (email_otp/keys/signing-<alg>.pem), and prepares the two signers with the
// kid the plugin gives it (the RFC 7638 thumbprint of the public key).
func NewSigner(keyPEM []byte, alg string) (*Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	jwk := &jose.JSONWebKey{Key: k, Algorithm: alg, Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	sk := jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jwk}
	s := &Signer{method: emailotp.DefaultMethod}
	if s.id, err = jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT")); err != nil {
		return nil, err
	}
	if s.at, err = jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("at+jwt")); err != nil {
		return nil, err
	}
	return s, nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Sign makes the id_token and the access token of a validation for addr,
// with the claims the plugin puts in them.
func (s *Signer) Sign(addr string) (idToken, accessToken string, err error) {
	const iss, client = "http://127.0.0.1/uas", "bench"
	t := time.Now()
	std := jwt.Claims{Issuer: iss, Subject: addr, Audience: jwt.Audience{client},
		IssuedAt: jwt.NewNumericDate(t), Expiry: jwt.NewNumericDate(t.Add(time.Hour))}
	id, err := json.Marshal(struct {
		jwt.Claims
		AuthTime      int64    `json:"auth_time"`
		AMR           []string `json:"amr"`
		AZP           string   `json:"azp"`
		SessionIndex  string   `json:"session_index"`
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		GrantType     []string `json:"smtp.1.grant_type"`
	}{std, t.Unix(), []string{iss + "/saml2/names/ac/" + s.method}, client, randomID(), addr, true, []string{emailotp.DefaultGrantType}})
	if err != nil {
		return "", "", err
	}
	if idToken, err = signCompact(s.id, id); err != nil {
		return "", "", err
	}
	std.ID = randomID()
	at, err := json.Marshal(struct {
		jwt.Claims
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
		AuthTime int64  `json:"auth_time"`
	}{std, client, "openid", t.Unix()})
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
