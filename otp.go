package emailotp

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// otp is the core: the life of a code, from sending it to checking it. The
// grant and the sign-in page are adapters between their protocol and it.
type otp struct {
	codeLength  int
	ttl         time.Duration
	maxAttempts int
	tokenPath   string // with the issuer, binds references to this handler

	refs    *sealer
	ledger  ledger
	mailer  *mailer
	tmpl    *templateSet
	limiter *limiter
	metrics *metrics
	logger  *zap.Logger
}

// sendRequest asks for a code to be mailed to addr for client.
type sendRequest struct {
	client    *Client
	issuer    string // this request's issuer: binds the reference (bindingOf)
	addr      address
	username  string // as the client sent it, the tokens' sub; empty: addr
	userIP    string // ipKey form; empty when unknown
	nonce     string
	uiLocales string
	title     string // request-supplied mail text, checked by the adapter
	body      string
	// link, when set, builds the sign-in link the mail carries besides the
	// code, from the reference and the code; linkIntro is the sentence
	// before it when the template has no {1}.
	link      func(reference, code string) string
	linkIntro string
}

// sent is a mailed code's first reference and its address. After a refusal
// of the domain or the recipient, unsent is the challenge whose code was
// never mailed (see decoy).
type sent struct {
	reference string
	address   string
	unsent    *challenge
}

// checkRequest tries a code against a reference for client.
type checkRequest struct {
	client    *Client
	issuer    string // this request's issuer: must be the one that sent
	reference string
	code      string
	username  string // when given, must be the reference's address
}

// checked is a decided attempt: outcome is one of the outcome constants;
// next is the reference to answer with after outcomeInvalid (the next link
// of the chain), outcomeExpired or outcomeExhausted (a dead end that
// answers the same again).
type checked struct {
	outcome  string
	address  string // normalized
	subject  string // the username as the client sent it
	nonce    string
	next     string
	authTime time.Time
}

// Outcomes of an attempt at a code; they are also the log and metric labels.
const (
	outcomeOK        = "ok"
	outcomeInvalid   = "invalid_code"
	outcomeExpired   = "expired"
	outcomeExhausted = "exhausted"
	outcomeReplayed  = "replayed"
	// outcomeDomainRefused: the right code for an address the client's
	// current allow_domains no longer admits.
	outcomeDomainRefused = "domain_refused"
)

// Errors of send and check; the adapters turn them into their answers.
var (
	errDomainRefused    = errors.New("client may not verify addresses of this domain")
	errMailRender       = errors.New("the mail could not be rendered")
	errMailRefused      = errors.New("the mail server refused the address")
	errMailUnavailable  = errors.New("the mail could not be sent")
	errBadReference     = errors.New("reference is invalid")
	errWrongClient      = errors.New("reference was issued to another client")
	errUsernameMismatch = errors.New("username does not match the reference")
	errCodeFormat       = errors.New("code must be 6 to 12 digits")
	errLedger           = errors.New("the reference could not be checked")
)

// limitedError is a refusal by a rate limit: the scope that refused and how
// long until its window ends.
type limitedError struct {
	Scope      string
	RetryAfter time.Duration
}

func (e *limitedError) Error() string { return "rate limit per " + e.Scope + " reached" }

// validCode tells whether a code has the shape of one: 6 to 12 digits.
func validCode(code string) bool { return isDigits(code) && len(code) >= 6 && len(code) <= 12 }

// send checks the limits and the client's domains, then mails a new code and
// returns the first reference of its chain. The limits come first and count
// refused addresses too, so a refused domain reaches 429 as soon as an
// allowed address would: the uniform answer (decoy) holds under the limits. A refusal of the domain or of the
// recipient returns its plain error together with the unsent challenge, so
// an adapter that must not tell refusals apart can answer with decoy.
func (o *otp) send(ctx context.Context, req sendRequest) (sent, error) {
	c, addr := req.client, req.addr
	code := newCode(o.codeLength)
	ch := o.refs.newChallenge(c.ID, addr.String(), req.nonce, code, now(), o.ttl)
	ch.MaxAttempts, ch.Binding = o.maxAttempts, bindingOf(req.issuer, o.tokenPath)
	if req.username != ch.Address {
		ch.Username = req.username
	}
	if err := o.limit(c.ID, addr, req.userIP); err != nil {
		return sent{}, err
	}
	if !c.allows(addr.Domain) {
		o.metrics.refused(c.ID, "domain_refused")
		o.logChallenge(c.ID, addr, "", "domain_refused", nil)
		return sent{unsent: ch}, errDomainRefused
	}
	return o.deliver(ctx, ch, code, addr, req, "sent")
}

// limit counts a mail against the limits; a refusal is a *limitedError.
func (o *otp) limit(clientID string, addr address, userIP string) error {
	if scope, wait := o.limiter.allow(clientID, addr.key(), userIP); scope != "" {
		o.metrics.rateLimited(clientID, scope)
		o.logChallenge(clientID, addr, "", "rate_limited", nil)
		return &limitedError{Scope: scope, RetryAfter: wait}
	}
	return nil
}

// deliver renders the mail of ch's code and hands it to the SMTP server;
// outcome is the log line's word for a success (sent, resent).
func (o *otp) deliver(ctx context.Context, ch *challenge, code string, addr address, req sendRequest, outcome string) (sent, error) {
	c := req.client
	ref := o.refs.seal(ch)
	link := ""
	if req.link != nil {
		link = req.link(ref, code)
	}
	out, err := o.tmpl.pick(req.uiLocales).render(addr.String(), code, req.title, req.body, link, req.linkIntro)
	if err != nil {
		o.logChallenge(c.ID, addr, ch.logID(), "template_error", err)
		return sent{}, errMailRender
	}
	start := time.Now()
	err = o.mailer.send(ctx, out)
	o.metrics.sent(c.ID, time.Since(start), err)
	if err != nil {
		o.logChallenge(c.ID, addr, ch.logID(), "smtp_failed", err)
		if recipientRefused(err) {
			o.metrics.refused(c.ID, "recipient_refused")
			return sent{unsent: ch}, errMailRefused
		}
		return sent{}, errMailUnavailable
	}
	o.metrics.challenge(c.ID)
	o.logChallenge(c.ID, addr, ch.logID(), outcome, nil)
	return sent{reference: ref, address: ch.Address}, nil
}

// check opens the reference and spends it on the code. Checks that do not
// involve the code (handler, client, the client's current domains, address,
// shape of the code) come first and do not consume the reference: a request
// that cannot be an attempt costs nothing. A decided attempt, right or
// wrong, returns a nil error.
//
// A reference another handler issued (another site sharing the storage, so
// the reference key) opens but is refused as if forged: it tells nothing
// about the other site. The client's allow_domains, otp_timeout and
// max_attempts are this handler's as configured now, the stricter of them
// and what was sealed: a reload that tightens them applies to references
// already out.
func (o *otp) check(ctx context.Context, req checkRequest) (checked, error) {
	c := req.client
	ch, err := o.refs.open(req.reference)
	if err != nil {
		o.logValidation(c.ID, nil, "bad_reference")
		o.metrics.validated(c.ID, "bad_reference")
		return checked{}, errBadReference
	}
	if ch.Binding != bindingOf(req.issuer, o.tokenPath) {
		o.logValidation(c.ID, ch, "wrong_handler")
		o.metrics.validated(c.ID, "wrong_handler")
		return checked{}, errBadReference
	}
	if ch.ClientID != c.ID {
		o.logValidation(c.ID, ch, "wrong_client")
		o.metrics.validated(c.ID, "wrong_client")
		return checked{}, errWrongClient
	}
	res := checked{address: ch.Address, subject: ch.subject(), nonce: ch.Nonce}
	if req.username != "" {
		a, err := parseAddress(req.username)
		if err != nil || !strings.EqualFold(a.String(), ch.Address) {
			return res, errUsernameMismatch
		}
		res.subject = req.username // as sent in this request
	}
	if !validCode(req.code) {
		return res, errCodeFormat
	}
	res.authTime = now()
	// The client's allow_domains as configured now: a reload may have
	// narrowed it since the code was mailed. Only a right code is refused
	// for it; a wrong one stays a wrong one, so a decoy reference (a refused
	// domain on the sign-in page) answers like any other.
	allowed := c.allows(ch.Address[strings.LastIndexByte(ch.Address, '@')+1:])
	res.outcome, res.next, err = o.attempt(ctx, c.ID, ch, req.code, res.authTime, allowed)
	if err != nil {
		return res, errLedger
	}
	if res.outcome == outcomeDomainRefused {
		return res, errDomainRefused
	}
	return res, nil
}

// attempt spends one reference on one code. It is the single place where
// a dead end, expiry, the attempt limit, the ledger and the code are
// checked, and it logs and counts the outcome. next is the sealed reference
// to answer with: the next link when the code was wrong and attempts remain,
// a dead end when the code expired or the attempts are used up. An error
// means the ledger could not be asked: nothing was decided, and the
// reference may be tried again.
func (o *otp) attempt(ctx context.Context, clientID string, ch *challenge, code string, t time.Time, allowed bool) (outcome, next string, err error) {
	expires := ch.Expires
	if cur := ch.Issued.Add(o.ttl); cur.Before(expires) { // otp_timeout shortened
		expires = cur
	}
	maxAttempts := o.attemptsFor(ch)
	switch {
	case ch.Dead == deadExpired:
		outcome, next = outcomeExpired, o.deadEnd(ch, deadExpired)
	case ch.Dead != alive:
		outcome, next = outcomeExhausted, o.deadEnd(ch, deadExhausted)
	case !t.Before(expires):
		outcome, next = outcomeExpired, o.deadEnd(ch, deadExpired)
	case ch.Attempt >= maxAttempts: // only after max_attempts was lowered
		outcome, next = outcomeExhausted, o.deadEnd(ch, deadExhausted)
	default:
		fresh, err := o.ledger.consume(ctx, ch.ledgerKey(), ch.Expires)
		if err != nil {
			o.logger.Error("ledger unavailable", zap.String("client", clientID), zap.String("challenge", ch.logID()), zap.Error(err))
			return "", "", err
		}
		switch {
		case !fresh:
			outcome = outcomeReplayed
		case o.refs.checkCode(ch, code) && !allowed:
			outcome = outcomeDomainRefused
		case o.refs.checkCode(ch, code):
			outcome = outcomeOK
		case ch.Attempt+1 >= maxAttempts:
			outcome, next = outcomeExhausted, o.deadEnd(ch, deadExhausted)
		default:
			outcome = outcomeInvalid
			n := *ch
			n.Attempt++
			next = o.refs.seal(&n)
		}
	}
	o.logValidation(clientID, ch, outcome)
	o.metrics.validated(clientID, outcome)
	return outcome, next, nil
}

// deadEnd seals a reference of ch's chain that answers why with every code.
func (o *otp) deadEnd(ch *challenge, why deadEnd) string {
	n := *ch
	n.Dead = why
	return o.refs.seal(&n)
}

// logChallenge writes the one line of an initiate request. It carries the
// client, a masked address and the challenge id prefix, never the code, the
// reference or a secret.
func (o *otp) logChallenge(client string, addr address, id, outcome string, err error) {
	lvl := zapcore.InfoLevel
	if err != nil {
		lvl = zapcore.WarnLevel
	}
	if ce := o.logger.Check(lvl, "otp challenge"); ce != nil {
		fields := []zap.Field{zap.String("client", client), zap.String("address", addr.masked()),
			zap.String("challenge", id), zap.String("outcome", outcome)}
		if err != nil {
			fields = append(fields, zap.String("reason", sanitizeError(err, addr)))
		}
		ce.Write(fields...)
	}
}

// logValidation writes the one line of a validate request.
func (o *otp) logValidation(client string, ch *challenge, outcome string) {
	if ce := o.logger.Check(zapcore.InfoLevel, "otp validation"); ce != nil {
		fields := []zap.Field{zap.String("client", client), zap.String("outcome", outcome)}
		if ch != nil {
			a, _ := parseAddress(ch.Address)
			fields = append(fields, zap.String("address", a.masked()),
				zap.String("challenge", ch.logID()), zap.Int("attempt", ch.Attempt+1))
		}
		ce.Write(fields...)
	}
}

// sanitizeError is the error text a log line may carry. SMTP replies often
// quote the recipient: it is masked like the address field. They never hold
// the message body, so no code leaks through them.
func sanitizeError(err error, addr address) string {
	s := err.Error()
	if addr.Domain == "" {
		return s
	}
	s = strings.ReplaceAll(s, addr.String(), addr.masked())
	return strings.ReplaceAll(s, addr.key(), addr.masked())
}

// attemptsFor is the attempt budget of ch's chain: the stricter of the
// max_attempts sealed in it and the one configured now.
func (o *otp) attemptsFor(ch *challenge) int {
	if ch.MaxAttempts > 0 {
		return min(o.maxAttempts, ch.MaxAttempts)
	}
	return o.maxAttempts
}
