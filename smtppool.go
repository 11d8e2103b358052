package emailotp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// smtpPool keeps SMTP connections open between mails, so a mail costs no
// TCP, STARTTLS and AUTH handshake, only MAIL, RCPT and DATA. It is used
// unless SMTPConfig.IdleConns is 0, which falls back to go-mail's
// DialAndSend, a connection per message.
//
// Like http.Transport it bounds the idle connections, not the busy ones:
// every concurrent mail gets a connection, and at most max of them wait for
// the next mail. A connection idle for longer than idleTimeout is closed
// rather than reused, well before servers drop idle clients (RFC 5321 asks
// them to wait 5 minutes).
type smtpPool struct {
	client      *gomail.Client
	max         int
	idleTimeout time.Duration
	timeout     time.Duration // for QUIT

	mu      sync.Mutex
	idle    []pooledConn // the most recently used last
	janitor *time.Timer  // set while connections wait: closes them when they go stale
	closed  bool
}

type pooledConn struct {
	c    *smtp.Client
	used time.Time
}

const poolIdleTimeout = 30 * time.Second

func newSMTPPool(client *gomail.Client, max int, timeout time.Duration) *smtpPool {
	return &smtpPool{client: client, max: max, idleTimeout: poolIdleTimeout, timeout: timeout}
}

// send delivers msg on a kept connection, or on a new one. A kept connection
// that fails before the message was handed over (the server closed it while
// it was idle: go-mail's NOOP check fails; or it refuses MAIL FROM, as
// servers that cap the mails per connection do) is dropped and the message
// goes once more on a new connection. A failure after that point is
// returned, never retried: the server may have the mail already.
func (p *smtpPool) send(ctx context.Context, msg *gomail.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if c := p.get(); c != nil {
		err := p.deliver(c, msg)
		if err == nil || !beforeHandover(err) {
			return err
		}
	}
	slot := new(connSlot) // see connSlot: close what a failed dial leaves open
	c, err := p.client.DialToSMTPClientWithContext(context.WithValue(ctx, connSlotKey{}, slot))
	if err != nil {
		if slot.conn != nil {
			_ = slot.conn.Close()
		}
		return fmt.Errorf("dial failed: %w", err)
	}
	return p.deliver(c, msg)
}

// deliver sends msg on c and keeps c for the next mail if it is still sound.
// A mail the server accepted is delivered even if the RSET after it failed.
func (p *smtpPool) deliver(c *smtp.Client, msg *gomail.Msg) error {
	err := p.client.SendWithSMTPClient(c, msg)
	if err != nil {
		_ = c.Close()
		if msg.IsDelivered() {
			return nil
		}
		return fmt.Errorf("send failed: %w", err)
	}
	p.put(c)
	return nil
}

// beforeHandover reports whether a send failed before the message could
// have reached the server.
func beforeHandover(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && (se.Reason == gomail.ErrConnCheck || se.Reason == gomail.ErrSMTPMailFrom)
}

// get returns the most recently used connection that is not too old, closing
// the ones that are.
func (p *smtpPool) get() *smtp.Client {
	var stale []*smtp.Client
	defer func() {
		for _, c := range stale {
			_ = c.Close()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := time.Now().Add(-p.idleTimeout)
	for len(p.idle) > 0 {
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if pc.used.After(cutoff) {
			return pc.c
		}
		stale = append(stale, pc.c)
	}
	return nil
}

// put keeps c for the next mail, or says goodbye to the server when enough
// connections wait already or the pool is closed.
func (p *smtpPool) put(c *smtp.Client) {
	p.mu.Lock()
	if !p.closed && len(p.idle) < p.max {
		p.idle = append(p.idle, pooledConn{c: c, used: time.Now()})
		if p.janitor == nil {
			p.janitor = time.AfterFunc(p.idleTimeout, p.sweep)
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	go p.quit(c)
}

// sweep says goodbye to the connections idle for idleTimeout, so that a
// quiet site holds no socket for long and the server sees a QUIT rather
// than a dropped client, and comes back when the next one goes stale.
func (p *smtpPool) sweep() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	cutoff := time.Now().Add(-p.idleTimeout)
	n := 0
	for n < len(p.idle) && !p.idle[n].used.After(cutoff) {
		n++
	}
	stale := slices.Clone(p.idle[:n])
	p.idle = slices.Delete(p.idle, 0, n)
	if len(p.idle) > 0 {
		p.janitor.Reset(p.idle[0].used.Sub(cutoff))
	} else {
		p.janitor = nil
	}
	p.mu.Unlock()
	for _, pc := range stale {
		p.quit(pc.c)
	}
}

// quitTimeout bounds the goodbye to a server: it is a courtesy, and Cleanup
// waits for it during a config reload.
const quitTimeout = 2 * time.Second

// quit says goodbye within quitTimeout and closes the connection whatever
// the server answers (go-mail's Quit leaves it open when QUIT fails).
func (p *smtpPool) quit(c *smtp.Client) {
	_ = c.UpdateDeadline(min(p.timeout, quitTimeout))
	_ = c.Quit()
	_ = c.Close()
}

// close ends the kept connections with QUIT, all at once so that a server
// that stopped answering holds a reload up for quitTimeout at most; mails
// in flight end theirs when they finish.
func (p *smtpPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	if p.janitor != nil {
		p.janitor.Stop()
		p.janitor = nil
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pc := range idle {
		wg.Go(func() { p.quit(pc.c) })
	}
	wg.Wait()
}

// connSlot receives the connection of one delivery from trackingDial.
// go-mail v0.8.1 does not close the connection when the dial phase fails
// after the greeting (EHLO refused, STARTTLS missing under TLSMandatory, TLS
// handshake failed), leaving the socket to the garbage collector; send closes
// it itself. The slot travels in the dial context because the client is
// shared by concurrent deliveries.
type connSlot struct{ conn net.Conn }

type connSlotKey struct{}

// trackingDial dials TCP and records the connection in the context's slot.
// It is not used with implicit TLS: go-mail only knows the connection is
// encrypted (and so allows AUTH PLAIN) when it dials the TLS itself.
func trackingDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if s, ok := ctx.Value(connSlotKey{}).(*connSlot); ok && err == nil {
		s.conn = c
	}
	return c, err
}
