package emailotp

import "time"

// Views into the plugin's state that only tests need, kept out of the
// production files.

// loaded is the key view the handler signs with now: its kids and JWKS.
func (k *signingKeys) loaded() *keyView { return k.ring.current() }

func (c *counters) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (l *memoryLedger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.used)
}

// len is the number of idle connections.
func (p *smtpPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// verifySession returns the address a session cookie proves: signed by one
// of the published keys (found by kid), typ session+jwt, the expected issuer,
// the session audience, and not expired.
func (k *signingKeys) verifySession(token, issuer string, t time.Time) (string, error) {
	std, err := k.verifySessionClaims(token, issuer, t)
	return std.Subject, err
}
