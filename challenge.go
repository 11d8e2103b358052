package emailotp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// newCode returns n uniformly random decimal digits from crypto/rand.
// It draws 64-bit numbers and rejects those at or above the largest multiple
// of 10^n, so no digit string is more likely than another (no modulo bias).
func newCode(n int) string {
	mod := uint64(1)
	for range n {
		mod *= 10
	}
	limit := (^uint64(0) / mod) * mod
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
		v := binary.LittleEndian.Uint64(b[:])
		if v < limit {
			s := strconv.FormatUint(v%mod, 10)
			for len(s) < n {
				s = "0" + s
			}
			return s
		}
	}
}

// challenge is what a reference carries. The reference is the only place it
// lives: a pending challenge costs the server nothing.
type challenge struct {
	ID          [16]byte // random; the same along the chain of retries
	Attempt     int      // 0 for the first reference, +1 per wrong code
	MaxAttempts int      // max_attempts when the code was mailed; 0: none sealed
	Dead        deadEnd  // set on a reference that can never yield tokens
	Issued      time.Time
	Expires     time.Time
	Binding     [16]byte // the handler that issued it: see bindingOf
	ClientID    string
	Address     string   // normalized: what limits, allow lists and email use
	Username    string   // as the client sent it, when that differs from Address
	Nonce       string   // OpenID nonce given at initiation, if any
	Verifier    [32]byte // HMAC(key, ID || code): checks a code, never reveals it
}

// deadEnd marks a reference given with an error that no retry can mend
// (the code expired, the attempts are used up). It answers that error
// again, at any instance, and is never consumed: it cannot yield tokens, so
// there is nothing to spend.
type deadEnd byte

const (
	alive deadEnd = iota
	deadExpired
	deadExhausted
)

// subject is the username exactly as the client sent it at initiation.
func (c *challenge) subject() string {
	if c.Username != "" {
		return c.Username
	}
	return c.Address
}

// bindingOf names the handler a reference belongs to: its issuer as this
// request resolves it (the `iss` of the tokens it would yield) and its token
// path. Instances of one server share both, a reload keeps both, and another
// site has another issuer (the default one holds the scheme, host and port),
// so another site's handler refuses the reference even when it shares the
// storage, and so the reference key, and a client id.
func bindingOf(issuer, tokenPath string) (b [16]byte) {
	h := sha256.New()
	h.Write([]byte("email_otp reference binding v1\x00"))
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	h.Write([]byte(tokenPath))
	copy(b[:], h.Sum(nil))
	return b
}

// ledgerKey names this reference in the consumed-reference ledger. Each link
// of the retry chain has its own key, so every reference is single-use.
func (c *challenge) ledgerKey() string {
	return fmt.Sprintf("%x.%d", c.ID, c.Attempt)
}

// logID is the short, non-secret id prefix that log lines may carry.
func (c *challenge) logID() string { return fmt.Sprintf("%x", c.ID[:4]) }

const (
	refVersion   = 2    // 1 lacked the binding, the username and max_attempts
	maxRefLength = 2048 // base64 characters; with every field at its 255 bytes a reference is 1,515
	maxFieldLen  = 255
)

var (
	errRefMalformed = errors.New("reference malformed")
	errRefForged    = errors.New("reference not issued here or altered")
)

// sealer seals challenges into references with AES-256-GCM and verifies codes
// with HMAC-SHA-256. Both keys derive from one 256-bit secret kept in storage,
// so every instance sharing the storage opens every reference.
type sealer struct {
	aead   cipher.AEAD
	macKey []byte
	macs   sync.Pool
}

func newSealer(secret []byte) (*sealer, error) {
	encKey, err := hkdf.Key(sha256.New, secret, nil, "email_otp reference encryption v1", 32)
	if err != nil {
		return nil, err
	}
	macKey, err := hkdf.Key(sha256.New, secret, nil, "email_otp code verifier v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &sealer{aead: aead, macKey: macKey}
	s.macs.New = func() any { return hmac.New(sha256.New, s.macKey) }
	return s, nil
}

// verifier computes the code verifier of a challenge id.
func (s *sealer) verifier(id [16]byte, code string) (v [32]byte) {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(id[:])
	m.Write([]byte(code))
	m.Sum(v[:0])
	s.macs.Put(m)
	return v
}

// checkCode reports in constant time whether code is the challenge's code.
func (s *sealer) checkCode(c *challenge, code string) bool {
	v := s.verifier(c.ID, code)
	return hmac.Equal(v[:], c.Verifier[:])
}

// refAD binds the ciphertext to this format, so a blob sealed for another
// purpose with the same key cannot be passed off as a reference.
var refAD = []byte("email_otp reference v2")

// refFixed is the length of a payload's fixed-size part: id, attempt,
// max_attempts, dead end, issued, expires, verifier, binding.
const refFixed = 16 + 1 + 1 + 1 + 8 + 8 + 32 + 16

// seal encodes the challenge: version | nonce | AES-GCM(payload).
func (s *sealer) seal(c *challenge) string {
	p := make([]byte, 0, refFixed+4+len(c.ClientID)+len(c.Address)+len(c.Username)+len(c.Nonce))
	p = append(p, c.ID[:]...)
	p = append(p, byte(c.Attempt), byte(c.MaxAttempts), byte(c.Dead))
	p = binary.BigEndian.AppendUint64(p, uint64(c.Issued.Unix()))
	p = binary.BigEndian.AppendUint64(p, uint64(c.Expires.Unix()))
	p = append(p, c.Verifier[:]...)
	p = append(p, c.Binding[:]...)
	for _, f := range []string{c.ClientID, c.Address, c.Username, c.Nonce} {
		p = append(p, byte(len(f)))
		p = append(p, f...)
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(p)+s.aead.Overhead())
	out[0] = refVersion
	_, _ = rand.Read(out[1:])
	out = s.aead.Seal(out, out[1:], p, refAD)
	return base64.RawURLEncoding.EncodeToString(out)
}

// open decodes and authenticates a reference. It does not check the
// binding, expiry or the ledger: those are the core's decisions (otp.go).
func (s *sealer) open(ref string) (*challenge, error) {
	// Strict decoding and no line breaks: the decoder would otherwise
	// ignore CR/LF and the spare bits of the last character, so several
	// strings would open as the same reference.
	if len(ref) == 0 || len(ref) > maxRefLength || strings.ContainsAny(ref, "\r\n") {
		return nil, errRefMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(ref)
	if err != nil {
		return nil, errRefMalformed
	}
	ns := s.aead.NonceSize()
	if len(raw) < 1+ns+s.aead.Overhead() || raw[0] != refVersion {
		return nil, errRefMalformed
	}
	p, err := s.aead.Open(nil, raw[1:1+ns], raw[1+ns:], refAD)
	if err != nil {
		return nil, errRefForged
	}
	if len(p) < refFixed {
		return nil, errRefMalformed
	}
	c := &challenge{}
	copy(c.ID[:], p[:16])
	c.Attempt, c.MaxAttempts, c.Dead = int(p[16]), int(p[17]), deadEnd(p[18])
	c.Issued = time.Unix(int64(binary.BigEndian.Uint64(p[19:27])), 0)
	c.Expires = time.Unix(int64(binary.BigEndian.Uint64(p[27:35])), 0)
	copy(c.Verifier[:], p[35:67])
	copy(c.Binding[:], p[67:refFixed])
	rest := p[refFixed:]
	fields := [4]*string{&c.ClientID, &c.Address, &c.Username, &c.Nonce}
	for _, f := range fields {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, errRefMalformed
		}
		*f = string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
	}
	if len(rest) != 0 {
		return nil, errRefMalformed
	}
	return c, nil
}

// newChallenge starts a chain for a freshly mailed code.
func (s *sealer) newChallenge(clientID, address, nonce, code string, now time.Time, ttl time.Duration) *challenge {
	c := &challenge{
		Issued:   now,
		Expires:  now.Add(ttl),
		ClientID: clientID,
		Address:  address,
		Nonce:    nonce,
	}
	_, _ = rand.Read(c.ID[:])
	c.Verifier = s.verifier(c.ID, code)
	return c
}
