package emailotp

import (
	"context"
	"errors"
	"time"
)

// Errors of resend besides those of send.
var (
	// errSpent: the reference can no longer get a new code (expired,
	// exhausted, or already used or resent).
	errSpent = errors.New("reference is spent")
)

// cooldownError refuses a resend asked for before the cooldown ended.
type cooldownError struct{ Wait time.Duration }

func (e *cooldownError) Error() string { return "a new code can be sent in " + e.Wait.String() }

// refusal tells whether err is a refusal of the address, by the client's
// domains or by the mail server: the answers a public page must not tell
// apart from a mailed code (issue: mailbox enumeration).
func refusal(err error) bool {
	return errors.Is(err, errDomainRefused) || errors.Is(err, errMailRefused)
}

// decoy turns a refusal into the answer a mailed code gets: the sealed
// reference of the challenge whose code was never mailed. It looks like any
// other reference, spends attempts the same way, and no code opens it. Only
// an adapter that decided to hide refusals calls it, after send or resend
// returned an error for which refusal is true.
func (o *otp) decoy(s sent) sent {
	return sent{reference: o.refs.seal(s.unsent), address: s.unsent.Address}
}

// resendRequest asks for a new code in place of the one a reference stands
// for, once cooldown has passed since that code was sent.
type resendRequest struct {
	sendRequest // client, userIP, uiLocales, link; addr and nonce come from the reference
	reference   string
	cooldown    time.Duration
}

// resend mails a new code that replaces the reference's. The reference is
// spent in the ledger, so the old code and every copy of the reference are
// dead; the new reference carries the old attempt count (resending does not
// refill max_attempts) and the old nonce, and the mail counts against the
// limits like any other. Checks that need neither the ledger nor the mail
// (shape, client, expiry, cooldown, limits) come first and leave the
// reference usable.
func (o *otp) resend(ctx context.Context, req resendRequest) (sent, error) {
	c := req.client
	ch, err := o.refs.open(req.reference)
	if err != nil {
		return sent{}, errBadReference
	}
	if ch.Binding != bindingOf(req.issuer, o.tokenPath) {
		return sent{}, errBadReference // issued by another site: as if forged
	}
	if ch.ClientID != c.ID {
		return sent{}, errWrongClient
	}
	addr, err := parseAddress(ch.Address)
	if err != nil {
		return sent{}, errBadReference
	}
	t := now()
	if ch.Dead != alive || !t.Before(ch.Expires) || ch.Attempt >= o.attemptsFor(ch) {
		return sent{}, errSpent
	}
	if wait := ch.Issued.Add(req.cooldown).Sub(t); wait > 0 {
		return sent{}, &cooldownError{Wait: wait}
	}
	if err := o.limit(c.ID, addr, req.userIP); err != nil {
		return sent{}, err
	}
	fresh, err := o.ledger.consume(ctx, ch.ledgerKey(), ch.Expires)
	if err != nil {
		return sent{}, errLedger
	}
	if !fresh {
		o.logChallenge(c.ID, addr, ch.logID(), "resend_replayed", nil)
		return sent{}, errSpent
	}
	code := newCode(o.codeLength)
	n := o.refs.newChallenge(c.ID, ch.Address, ch.Nonce, code, t, o.ttl)
	n.Attempt, n.MaxAttempts, n.Binding, n.Username = ch.Attempt, ch.MaxAttempts, ch.Binding, ch.Username
	if !c.allows(addr.Domain) { // the configuration changed since the first code
		o.metrics.refused(c.ID, "domain_refused")
		o.logChallenge(c.ID, addr, "", "domain_refused", nil)
		return sent{unsent: n}, errDomainRefused
	}
	req.addr = addr
	return o.deliver(ctx, n, code, addr, req.sendRequest, "resent")
}

// resendWait is how long until the reference may ask for a new code, zero
// when it may now; ok is false when it never may (see resend).
func (o *otp) resendWait(reference string, cooldown time.Duration) (wait time.Duration, ok bool) {
	ch, err := o.refs.open(reference)
	if err != nil {
		return 0, false
	}
	t := now()
	if ch.Dead != alive || !t.Before(ch.Expires) || ch.Attempt >= o.attemptsFor(ch) {
		return 0, false
	}
	return max(0, ch.Issued.Add(cooldown).Sub(t)), true
}

// peek opens a reference for client without spending it, for what a page
// shows around it (the address, the link binding); nil if it is not one.
func (o *otp) peek(reference string, c *Client) *challenge {
	ch, err := o.refs.open(reference)
	if err != nil || ch.ClientID != c.ID {
		return nil
	}
	return ch
}

// addressOf is the address a reference stands for, "" if it is not one.
func (o *otp) addressOf(reference string) string {
	ch, err := o.refs.open(reference)
	if err != nil {
		return ""
	}
	return ch.Address
}
