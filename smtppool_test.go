package emailotp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	gomail "github.com/wneessen/go-mail"
)

// poolMailer is a mailer keeping up to idle connections to srv.
func poolMailer(t *testing.T, srv *fakeSMTP, idle int) *mailer {
	t.Helper()
	m, err := newMailer(&SMTPConfig{Host: "127.0.0.1", Port: srv.Port, TLS: "none", From: "Test <no-reply@example.com>",
		Timeout: caddy.Duration(2 * time.Second), IdleConns: &idle}, caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.close)
	if m.pool == nil {
		t.Fatal("idle_conns set but no pool")
	}
	return m
}

func mailTo(addr string) outgoing {
	return outgoing{to: addr, subject: "Your code", text: "Your code is 12345678"}
}

// waitConns waits until the fake server has n connections open.
func waitConns(t *testing.T, srv *fakeSMTP, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for srv.OpenConns() != n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := srv.OpenConns(); got != n {
		t.Fatalf("%d SMTP connections open, want %d", got, n)
	}
}

func TestSMTPPoolReusesOneConnection(t *testing.T) {
	srv := startFakeSMTP(t)
	m := poolMailer(t, srv, 2)
	for i := range 5 {
		if err := m.send(context.Background(), mailTo(fmt.Sprintf("u%d@example.com", i))); err != nil {
			t.Fatalf("mail %d: %v", i, err)
		}
		if n := srv.OpenConns(); n != 1 {
			t.Fatalf("after mail %d: %d connections open, want the one kept", i, n)
		}
	}
	if got := len(srv.WaitCount(5, 5*time.Second)); got != 5 {
		t.Fatalf("%d mails delivered, want 5", got)
	}
	m.close()
	waitConns(t, srv, 0)
	if err := m.send(context.Background(), mailTo("late@example.com")); err != nil {
		t.Fatalf("a mail after close: %v", err)
	}
	waitConns(t, srv, 0) // a closed pool keeps nothing
}

func TestSMTPPoolReconnectsAfterServerClose(t *testing.T) {
	srv := startFakeSMTP(t)
	m := poolMailer(t, srv, 1)
	if err := m.send(context.Background(), mailTo("a@example.com")); err != nil {
		t.Fatal(err)
	}
	srv.DropConns()
	waitConns(t, srv, 0)
	if err := m.send(context.Background(), mailTo("b@example.com")); err != nil {
		t.Fatalf("mail on a connection the server closed was not sent again on a new one: %v", err)
	}
	msgs := srv.WaitCount(2, 5*time.Second)
	if len(msgs) != 2 || msgs[1].To[0] != "b@example.com" {
		t.Fatalf("delivered %d mails: %+v", len(msgs), msgs)
	}
	waitConns(t, srv, 1)
}

func TestSMTPPoolDropsStaleConnections(t *testing.T) {
	srv := startFakeSMTP(t)
	m := poolMailer(t, srv, 1)
	m.pool.idleTimeout = 50 * time.Millisecond
	if err := m.send(context.Background(), mailTo("a@example.com")); err != nil {
		t.Fatal(err)
	}
	waitConns(t, srv, 1)
	// No mail follows: the janitor says goodbye on its own.
	waitConns(t, srv, 0)
	if n := m.pool.len(); n != 0 {
		t.Errorf("%d stale connection(s) still kept", n)
	}
	if err := m.send(context.Background(), mailTo("b@example.com")); err != nil {
		t.Fatal(err)
	}
	waitConns(t, srv, 1) // a new one, kept
	srv.WaitCount(2, 5*time.Second)
}

// TestSMTPPoolErrors checks that failures reach the caller as go-mail
// reports them, so recipientRefused still tells 400 from 503, and that a
// broken connection is not kept.
func TestSMTPPoolErrors(t *testing.T) {
	srv := startFakeSMTP(t)
	m := poolMailer(t, srv, 2)
	if err := m.send(context.Background(), mailTo("a@example.com")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode   fakeMode
		status int
	}{
		{modeRejectRcpt, 400}, {modeTempFailRcpt, 503}, {modeRejectData, 503},
		{modeAuthFail, 503}, // MAIL FROM refused: retried once on a new connection, refused again
		{modeDropData, 503},
	} {
		srv.SetMode(c.mode)
		err := m.send(context.Background(), mailTo("x@example.com"))
		if err == nil {
			t.Fatalf("%v: no error", c.mode)
		}
		got := http.StatusServiceUnavailable
		if recipientRefused(err) {
			got = sendError(errMailRefused).status
		}
		if got != c.status {
			t.Errorf("%v: %v classified %d, want %d", c.mode, err, got, c.status)
		}
		srv.SetMode(modeOK)
		if err := m.send(context.Background(), mailTo("ok@example.com")); err != nil {
			t.Fatalf("after %v: %v", c.mode, err)
		}
	}
	if n := srv.OpenConns(); n > 2 {
		t.Errorf("%d connections open, at most 2 may idle", n)
	}
}

func TestSMTPPoolConcurrent(t *testing.T) {
	srv := startFakeSMTP(t)
	m := poolMailer(t, srv, 2)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- m.send(context.Background(), mailTo(fmt.Sprintf("w%d-%d@example.com", w, i)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(srv.WaitCount(workers*each, 10*time.Second)); got != workers*each {
		t.Fatalf("%d mails, want %d", got, workers*each)
	}
	deadline := time.Now().Add(3 * time.Second)
	for srv.OpenConns() > 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.OpenConns(); n > 2 || m.pool.len() > 2 {
		t.Errorf("%d connections open, %d idle in the pool; at most 2 may idle", n, m.pool.len())
	}
}

func TestBeforeHandover(t *testing.T) {
	for _, c := range []struct {
		reason gomail.SendErrReason
		want   bool
	}{
		{gomail.ErrConnCheck, true}, {gomail.ErrSMTPMailFrom, true},
		{gomail.ErrSMTPRcptTo, false}, {gomail.ErrSMTPData, false},
		{gomail.ErrWriteContent, false}, {gomail.ErrSMTPDataClose, false}, {gomail.ErrSMTPReset, false},
	} {
		err := fmt.Errorf("send failed: %w", &gomail.SendError{Reason: c.reason})
		if got := beforeHandover(err); got != c.want {
			t.Errorf("%v: beforeHandover = %v, want %v", c.reason, got, c.want)
		}
	}
	if beforeHandover(fmt.Errorf("dial failed: refused")) {
		t.Error("a plain error counted as before handover")
	}
}

func TestCaddyfileIdleConns(t *testing.T) {
	const site = `email_otp {
		smtp {
			host 127.0.0.1
			from "T <t@example.com>"
			idle_conns %s
		}
		client app app-secret
	}`
	h := new(Handler)
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(fmt.Sprintf(site, "4"))); err != nil {
		t.Fatal(err)
	}
	if h.SMTP.IdleConns == nil || *h.SMTP.IdleConns != 4 {
		t.Errorf("idle_conns = %v, want 4", h.SMTP.IdleConns)
	}
	h.fillDefaults()
	if err := h.checkConfig(); err != nil {
		t.Errorf("checkConfig: %v", err)
	}
	many := 101
	h.SMTP.IdleConns = &many
	if err := h.checkConfig(); err == nil || !strings.Contains(err.Error(), "idle_conns") {
		t.Errorf("idle_conns 101: %v", err)
	}
	if err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(fmt.Sprintf(site, "many"))); err == nil {
		t.Error("idle_conns many: accepted")
	}
	// Left out, the pool is on with 4 kept connections; 0 turns it off.
	for _, c := range []struct {
		cfg  *SMTPConfig
		want int // 0: no pool
	}{{&SMTPConfig{}, defaultIdleConns}, {&SMTPConfig{IdleConns: new(0)}, 0}, {&SMTPConfig{IdleConns: new(2)}, 2}} {
		c.cfg.Host, c.cfg.Port, c.cfg.TLS, c.cfg.From = "127.0.0.1", 2525, "none", "T <t@example.com>"
		m, err := newMailer(c.cfg, caddy.NewReplacer())
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c.want == 0 && m.pool != nil:
			t.Errorf("idle_conns %v: a pool, want none", *c.cfg.IdleConns)
		case c.want > 0 && (m.pool == nil || m.pool.max != c.want):
			t.Errorf("idle_conns %v: pool %+v, want %d kept connections", c.cfg.IdleConns, m.pool, c.want)
		}
		m.close()
	}
}
