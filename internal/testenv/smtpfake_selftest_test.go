package testenv

// Self-test of the fake SMTP server (smtpfake.go), using go-mail v0.8.1 as
// the client, and a record of how go-mail v0.8.1 surfaces each failure. The
// assertions below pin these shapes, so a go-mail upgrade that changes them
// fails here first.
//
// HOW go-mail v0.8.1 REPORTS FAILURES (Client.DialAndSendWithContext)
//
// Two families, decided by the phase in which the failure happens:
//
// A) Dial phase (TCP connect, 220 greeting, EHLO, STARTTLS, AUTH):
//    err = fmt.Errorf("dial failed: %w", cause)            -> *fmt.wrapError
//    There is NO *mail.SendError; errors.As(err, &*mail.SendError) is false.
//    The cause is reachable with errors.Is/As:
//    - connection refused: "dial failed: dial tcp 127.0.0.1:P: connect: connection refused"
//        errors.Is(err, syscall.ECONNREFUSED); errors.As(err, **net.OpError) (Op "dial").
//    - timeout (greeting or TLS handshake too slow, WithTimeout elapsed):
//        "dial failed: read tcp ...: i/o timeout"
//        errors.Is(err, os.ErrDeadlineExceeded) == true; net.Error.Timeout() == true;
//        errors.Is(err, context.DeadlineExceeded) == false.
//      For implicit TLS (WithSSL) the handshake runs inside tls.Dialer.DialContext,
//      so a slow server gives "dial failed: context deadline exceeded" instead:
//        errors.Is(err, context.DeadlineExceeded) == true,
//        errors.Is(err, os.ErrDeadlineExceeded) == false. Check both.
//    - AUTH rejected (535): "dial failed: SMTP AUTH failed: 535 \"5.7.8 Authentication failed\""
//        errors.As(err, **textproto.Error) -> Code 535, Msg "5.7.8 Authentication failed".
//        (go-mail sends "*" and QUIT, so the connection is closed.)
//    - TLS certificate not trusted (STARTTLS or implicit TLS):
//        "dial failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"
//        errors.As(err, **tls.CertificateVerificationError) and errors.As(err, *x509.UnknownAuthorityError).
//    - TLSMandatory but server does not offer STARTTLS:
//        "dial failed: STARTTLS mode set to: \"TLSMandatory\", but target host does not support STARTTLS"
//        a plain fmt.Errorf string: NO sentinel, no type -> only strings.Contains(err.Error(), "STARTTLS").
//    - WithTLSConfig(cfg) REPLACES go-mail's default config (which had ServerName = host).
//      With STARTTLS and cfg.ServerName == "" every attempt fails:
//        "dial failed: tls: either ServerName or InsecureSkipVerify must be specified in the tls.Config"
//      (implicit TLS infers ServerName from the address, STARTTLS does not). Always set ServerName.
//    - WithSSL client against a plain-text server:
//        "dial failed: tls: first record does not look like a TLS handshake" (*tls.RecordHeaderError).
//    - plain client against an implicit-TLS server: both sides wait -> i/o timeout as above.
//    - The dial phase does NOT close the TCP connection when EHLO/STARTTLS/TLS-policy
//      fails (only AUTH failure sends QUIT): the socket lingers until GC. See
//      the "LeakOnTLSPolicyError" sub-test.
//
// B) Send phase (MAIL, RCPT, DATA, message body, final "." reply):
//    err = fmt.Errorf("send failed: %w", errors.Join(*mail.SendError...)), possibly
//    errors.Join'ed again with "failed to close connection: ..." from the QUIT.
//    errors.As(err, &se) with se *mail.SendError works through both wrappers.
//    SendError has NO Unwrap: the underlying *textproto.Error / net error is NOT
//    reachable with errors.Is/As. Use its methods:
//      se.Reason              ErrSMTPMailFrom / ErrSMTPRcptTo / ErrSMTPData /
//                             ErrWriteContent / ErrSMTPDataClose / ...
//      se.IsTemp()            true iff the server reply text starts with '4'
//      se.ErrorCode()         SMTP reply code (550, 451, ...), 0 if not a server reply
//      se.EnhancedStatusCode() "5.1.1" etc. ("" when not a server reply)
//    errors.Is(err, &mail.SendError{Reason: mail.ErrSMTPRcptTo}) matches only
//    when the sentinel's isTemp (always false) also matches -> prefer errors.As.
//    Observed:
//    - RCPT 550 5.1.1:  Reason ErrSMTPRcptTo, IsTemp false, ErrorCode 550, "5.1.1"
//        "send failed: sending SMTP RCPT TO command: 550 \"5.1.1 Mailbox unavailable\", affected recipient(s): <user@example.test>"
//    - RCPT 451 4.3.0:  Reason ErrSMTPRcptTo, IsTemp true,  ErrorCode 451, "4.3.0"
//    - MAIL 530 5.7.0 (server requires AUTH, client did not AUTH):
//                       Reason ErrSMTPMailFrom, IsTemp false, ErrorCode 530, "5.7.0"
//    - DATA final 554 5.7.1: Reason ErrSMTPDataClose, IsTemp false, ErrorCode 554, "5.7.1"
//    - DATA final 451 4.3.0: Reason ErrSMTPDataClose, IsTemp true,  ErrorCode 451, "4.3.0"
//      (a rejection of the message after "." is ErrSMTPDataClose, not ErrSMTPData;
//      ErrSMTPData is only the reply to the DATA command itself.)
//    - connection reset during DATA: Reason ErrSMTPDataClose (or ErrWriteContent if
//      the reset arrives while the body is still being written), IsTemp false,
//      ErrorCode 0, "" ; text "...: read tcp ...: read: connection reset by peer".
//      errors.Is(err, syscall.ECONNRESET) is FALSE (hidden inside SendError).
//    - timeout waiting for the final DATA reply: Reason ErrSMTPDataClose,
//      IsTemp false, ErrorCode 0; text "...: i/o timeout". errors.Is(err,
//      os.ErrDeadlineExceeded) happens to be true only because the joined QUIT
//      error ("failed to close connection: ... i/o timeout") is wrapped with %w.
//      Don't rely on it.
//
// Mapping hint for the plugin: SendError with Reason ErrSMTPRcptTo and
// ErrorCode 5xx (enhanced 5.1.x) is an address-level permanent refusal; every
// other failure (dial-phase errors, 4xx, DATA-stage 5xx, ErrorCode 0) is a
// delivery/infrastructure problem. IsTemp() is false for all non-SMTP-reply
// errors (timeouts, resets), so "not temp" does NOT mean "permanent address
// problem" - check Reason and ErrorCode.
//
// Contexts: the ctx passed to DialAndSendWithContext only bounds the TCP dial
// (and the TLS handshake for implicit TLS). Everything afterwards is bounded
// solely by WithTimeout (a per-connection deadline, refreshed per step), so a
// cancelled/expired ctx does not abort a stalled SMTP conversation. See the
// "ContextOnlyBoundsDial" sub-test.
//
// Other go-mail gotchas seen here: WithTLSPortPolicy / WithSSLPort only
// change the port while it is still 25, so WithPort(p) wins in either order;
// SMTPAuthPlain refuses to send credentials over a non-TLS connection unless
// the host is "localhost", "127.0.0.1" or "::1" (mail.SMTPAuthPlainNoEnc
// skips that check).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wneessen/go-mail"
)

const (
	selfFrom = "otp@sender.test"
	selfTo   = "user@example.test"
)

func selfMsg(t *testing.T) *mail.Msg {
	t.Helper()
	m := mail.NewMsg()
	if err := m.From(selfFrom); err != nil {
		t.Fatal(err)
	}
	if err := m.To(selfTo); err != nil {
		t.Fatal(err)
	}
	m.Subject("Your code")
	m.SetBodyString(mail.TypeTextPlain, "123456")
	return m
}

// selfClient builds a plain-text client for srv; opts are applied after the
// defaults and may override them.
func selfClient(t *testing.T, srv *FakeSMTP, opts ...mail.Option) *mail.Client {
	t.Helper()
	base := []mail.Option{
		mail.WithPort(srv.Port),
		mail.WithTLSPortPolicy(mail.NoTLS),
		mail.WithTimeout(3 * time.Second),
	}
	c, err := mail.NewClient(srv.Host, append(base, opts...)...)
	if err != nil {
		t.Fatalf("mail.NewClient: %v", err)
	}
	return c
}

func selfSendCtx(t *testing.T, ctx context.Context, c *mail.Client) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	err := c.DialAndSendWithContext(ctx, selfMsg(t))
	d := time.Since(start)
	t.Logf("after %v: %s", d.Round(time.Millisecond), describeErr(err))
	return d, err
}

func selfSend(t *testing.T, c *mail.Client) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	return selfSendCtx(t, ctx, c)
}

func describeErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%T %q", err, err.Error())
	var se *mail.SendError
	if errors.As(err, &se) {
		fmt.Fprintf(&b, "\n  SendError: Reason=%d(%s) IsTemp=%v ErrorCode=%d Enhanced=%q",
			se.Reason, se.Reason, se.IsTemp(), se.ErrorCode(), se.EnhancedStatusCode())
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		fmt.Fprintf(&b, "\n  textproto.Error: Code=%d Msg=%q", tp.Code, tp.Msg)
	}
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	fmt.Fprintf(&b, "\n  Is: os.ErrDeadlineExceeded=%v context.DeadlineExceeded=%v ECONNREFUSED=%v ECONNRESET=%v; As: CertificateVerificationError=%v UnknownAuthorityError=%v",
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &cve), errors.As(err, &uae))
	return b.String()
}

// wantSendError asserts err carries a *mail.SendError with these properties.
func wantSendError(t *testing.T, err error, reasons []mail.SendErrReason, temp bool, code int, enhanced string) *mail.SendError {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	if !strings.HasPrefix(err.Error(), "send failed: ") {
		t.Errorf("error %q: want prefix \"send failed: \"", err)
	}
	var se *mail.SendError
	if !errors.As(err, &se) {
		t.Fatalf("errors.As(*mail.SendError) failed for %T %v", err, err)
	}
	okReason := false
	for _, r := range reasons {
		okReason = okReason || se.Reason == r
	}
	if !okReason {
		t.Errorf("Reason = %v, want one of %v", se.Reason, reasons)
	}
	if se.IsTemp() != temp {
		t.Errorf("IsTemp() = %v, want %v", se.IsTemp(), temp)
	}
	if se.ErrorCode() != code {
		t.Errorf("ErrorCode() = %d, want %d", se.ErrorCode(), code)
	}
	if se.EnhancedStatusCode() != enhanced {
		t.Errorf("EnhancedStatusCode() = %q, want %q", se.EnhancedStatusCode(), enhanced)
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		t.Errorf("textproto.Error unexpectedly reachable: %v", tp)
	}
	return se
}

// wantDialError asserts err is a dial-phase error (no SendError).
func wantDialError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	if !strings.HasPrefix(err.Error(), "dial failed: ") {
		t.Errorf("error %q: want prefix \"dial failed: \"", err)
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		t.Errorf("unexpected *mail.SendError in dial-phase error: %v", se)
	}
}

func wantDelivered(t *testing.T, srv *FakeSMTP, n int) FakeMsg {
	t.Helper()
	msgs := srv.WaitCount(n, 3*time.Second)
	if len(msgs) != n {
		t.Fatalf("got %d messages, want %d", len(msgs), n)
	}
	m := msgs[n-1]
	if m.From != selfFrom {
		t.Errorf("From = %q, want %q", m.From, selfFrom)
	}
	if len(m.To) != 1 || m.To[0] != selfTo {
		t.Errorf("To = %q, want [%q]", m.To, selfTo)
	}
	if !strings.Contains(string(m.Data), "Subject: Your code") || !strings.Contains(string(m.Data), "123456") {
		t.Errorf("Data does not look like the sent message:\n%s", m.Data)
	}
	return m
}

func wantNoMessages(t *testing.T, srv *FakeSMTP) {
	t.Helper()
	if msgs := srv.Messages(); len(msgs) != 0 {
		t.Errorf("got %d recorded message(s), want 0", len(msgs))
	}
}

func TestFakeSMTP(t *testing.T) {
	serverTLS, caPEM, certFile, keyFile := SelfSignedCert(t)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("caPEM not parseable")
	}
	clientTLS := func() *tls.Config {
		return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}

	t.Run("OK", func(t *testing.T) {
		srv := StartFakeSMTP(t)
		_, err := selfSend(t, selfClient(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		m := wantDelivered(t, srv, 1)
		if m.TLS || m.AuthUser != "" {
			t.Errorf("TLS=%v AuthUser=%q, want false/\"\"", m.TLS, m.AuthUser)
		}
	})

	t.Run("RejectRcpt", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithMode(ModeRejectRcpt))
		_, err := selfSend(t, selfClient(t, srv))
		wantSendError(t, err, []mail.SendErrReason{mail.ErrSMTPRcptTo}, false, 550, "5.1.1")
		if !strings.Contains(err.Error(), "<"+selfTo+">") {
			t.Errorf("error does not name the recipient: %v", err)
		}
		if !errors.Is(err, &mail.SendError{Reason: mail.ErrSMTPRcptTo}) {
			t.Error("errors.Is(err, &SendError{Reason: ErrSMTPRcptTo}) = false")
		}
		wantNoMessages(t, srv)

		// Heal: the next request is delivered.
		srv.SetMode(ModeOK)
		if _, err := selfSend(t, selfClient(t, srv)); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, srv, 1)
	})

	t.Run("TempFailRcpt", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithMode(ModeTempFailRcpt))
		_, err := selfSend(t, selfClient(t, srv))
		wantSendError(t, err, []mail.SendErrReason{mail.ErrSMTPRcptTo}, true, 451, "4.3.0")
		if errors.Is(err, &mail.SendError{Reason: mail.ErrSMTPRcptTo}) {
			t.Error("errors.Is with a non-temp sentinel unexpectedly matched a temp error")
		}
		wantNoMessages(t, srv)
	})

	t.Run("AuthFail", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithAuth("alice", "secret"), WithMode(ModeAuthFail))
		authOpts := []mail.Option{mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername("alice"), mail.WithPassword("secret")}

		_, err := selfSend(t, selfClient(t, srv, authOpts...))
		wantDialError(t, err)
		var tp *textproto.Error
		if !errors.As(err, &tp) || tp.Code != 535 || !strings.HasPrefix(tp.Msg, "5.7.8") {
			t.Errorf("want *textproto.Error 535 5.7.8, got %v", err)
		}
		if !strings.Contains(err.Error(), "SMTP AUTH failed") {
			t.Errorf("error text: %v", err)
		}
		wantNoMessages(t, srv)

		// Heal: correct credentials now work.
		srv.SetMode(ModeOK)
		if _, err := selfSend(t, selfClient(t, srv, authOpts...)); err != nil {
			t.Fatal(err)
		}
		if m := wantDelivered(t, srv, 1); m.AuthUser != "alice" {
			t.Errorf("AuthUser = %q, want alice", m.AuthUser)
		}
	})

	t.Run("AuthWrongPassword", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithAuth("alice", "secret"))
		_, err := selfSend(t, selfClient(t, srv,
			mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername("alice"), mail.WithPassword("wrong")))
		wantDialError(t, err)
		var tp *textproto.Error
		if !errors.As(err, &tp) || tp.Code != 535 {
			t.Errorf("want *textproto.Error 535, got %v", err)
		}
		wantNoMessages(t, srv)
	})

	t.Run("AuthRequiredButNotSent", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithAuth("alice", "secret"))
		_, err := selfSend(t, selfClient(t, srv))
		wantSendError(t, err, []mail.SendErrReason{mail.ErrSMTPMailFrom}, false, 530, "5.7.0")
		wantNoMessages(t, srv)
	})

	t.Run("DropData", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithMode(ModeDropData))
		_, err := selfSend(t, selfClient(t, srv))
		wantSendError(t, err, []mail.SendErrReason{mail.ErrSMTPDataClose, mail.ErrWriteContent}, false, 0, "")
		wantNoMessages(t, srv)

		srv.SetMode(ModeOK)
		if _, err := selfSend(t, selfClient(t, srv)); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, srv, 1)
	})

	t.Run("Slow", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithMode(ModeSlow), WithDelay(5*time.Second))
		d, err := selfSend(t, selfClient(t, srv, mail.WithTimeout(400*time.Millisecond)))
		wantDialError(t, err)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("errors.Is(err, os.ErrDeadlineExceeded) = false: %v", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("want net.Error with Timeout(), got %v", err)
		}
		if d > 2*time.Second {
			t.Errorf("client took %v, want ~400ms", d)
		}

		// Heal: new connections get an immediate greeting.
		srv.SetMode(ModeOK)
		if _, err := selfSend(t, selfClient(t, srv)); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, srv, 1)
	})

	t.Run("ContextOnlyBoundsDial", func(t *testing.T) {
		// ctx expires after 150ms, but go-mail only uses it for net.Dial; the
		// stalled greeting is cut by WithTimeout (1.2s) instead.
		srv := StartFakeSMTP(t, WithMode(ModeSlow), WithDelay(5*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		d, err := selfSendCtx(t, ctx, selfClient(t, srv, mail.WithTimeout(1200*time.Millisecond)))
		wantDialError(t, err)
		if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("want os.ErrDeadlineExceeded and not context.DeadlineExceeded: %v", err)
		}
		if d < time.Second {
			t.Errorf("returned after %v: ctx now bounds the conversation (go-mail behaviour changed?)", d)
		}
	})

	t.Run("SlowData", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithMode(ModeSlowData), WithDelay(5*time.Second))
		d, err := selfSend(t, selfClient(t, srv, mail.WithTimeout(400*time.Millisecond)))
		wantSendError(t, err, []mail.SendErrReason{mail.ErrSMTPDataClose}, false, 0, "")
		if !strings.Contains(err.Error(), "i/o timeout") {
			t.Errorf("error text: %v", err)
		}
		if d > 2*time.Second {
			t.Errorf("client took %v, want ~400ms", d)
		}
		wantNoMessages(t, srv) // reply (and recording) still pending

		// A delay shorter than the client timeout delivers normally.
		srv.SetDelay(200 * time.Millisecond)
		if _, err := selfSend(t, selfClient(t, srv)); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, srv, 1)
	})

	t.Run("RejectData", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithMode(ModeRejectData))
		_, err := selfSend(t, selfClient(t, srv))
		wantSendError(t, err, []mail.SendErrReason{mail.ErrSMTPDataClose}, false, 554, "5.7.1")
		wantNoMessages(t, srv)
	})

	t.Run("TempFailData", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithMode(ModeTempFailData))
		_, err := selfSend(t, selfClient(t, srv))
		wantSendError(t, err, []mail.SendErrReason{mail.ErrSMTPDataClose}, true, 451, "4.3.0")
		wantNoMessages(t, srv)
	})

	t.Run("Refuse", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithMode(ModeRefuse))
		_, err := selfSend(t, selfClient(t, srv))
		wantDialError(t, err)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("errors.Is(err, syscall.ECONNREFUSED) = false: %v", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("want *net.OpError Op=dial, got %v", err)
		}

		srv.Restart()
		if srv.Mode() != ModeOK {
			t.Errorf("mode after Restart = %v, want OK", srv.Mode())
		}
		if _, err := selfSend(t, selfClient(t, srv)); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, srv, 1)

		// Runtime round trip: refuse, then heal via SetMode, same port.
		port := srv.Port
		srv.SetMode(ModeRefuse)
		_, err = selfSend(t, selfClient(t, srv))
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("after SetMode(ModeRefuse): want ECONNREFUSED, got %v", err)
		}
		srv.SetMode(ModeOK)
		if srv.Port != port {
			t.Errorf("port changed %d -> %d", port, srv.Port)
		}
		if _, err := selfSend(t, selfClient(t, srv)); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, srv, 2)
	})

	t.Run("STARTTLS", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithSTARTTLS(serverTLS))
		_, err := selfSend(t, selfClient(t, srv,
			mail.WithTLSPortPolicy(mail.TLSMandatory), mail.WithTLSConfig(clientTLS())))
		if err != nil {
			t.Fatal(err)
		}
		if m := wantDelivered(t, srv, 1); !m.TLS {
			t.Error("message was not sent over TLS")
		}
	})

	t.Run("STARTTLSWithAuth", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithSTARTTLS(serverTLS), WithAuth("alice", "secret"))
		_, err := selfSend(t, selfClient(t, srv,
			mail.WithTLSPortPolicy(mail.TLSMandatory), mail.WithTLSConfig(clientTLS()),
			mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername("alice"), mail.WithPassword("secret")))
		if err != nil {
			t.Fatal(err)
		}
		if m := wantDelivered(t, srv, 1); !m.TLS || m.AuthUser != "alice" {
			t.Errorf("TLS=%v AuthUser=%q", m.TLS, m.AuthUser)
		}
	})

	t.Run("STARTTLSUntrustedCA", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithSTARTTLS(serverTLS))
		_, err := selfSend(t, selfClient(t, srv, mail.WithTLSPortPolicy(mail.TLSMandatory),
			mail.WithTLSConfig(&tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})))
		wantDialError(t, err)
		var cve *tls.CertificateVerificationError
		var uae x509.UnknownAuthorityError
		if !errors.As(err, &cve) || !errors.As(err, &uae) {
			t.Errorf("want *tls.CertificateVerificationError + x509.UnknownAuthorityError, got %v", err)
		}
		wantNoMessages(t, srv)
	})

	t.Run("STARTTLSConfigWithoutServerName", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithSTARTTLS(serverTLS))
		_, err := selfSend(t, selfClient(t, srv, mail.WithTLSPortPolicy(mail.TLSMandatory),
			mail.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})))
		wantDialError(t, err)
		if !strings.Contains(err.Error(), "ServerName") {
			t.Errorf("want the missing-ServerName error, got %v", err)
		}
	})

	t.Run("STARTTLSMandatoryNotOffered", func(t *testing.T) {
		srv := StartFakeSMTP(t) // no STARTTLS
		_, err := selfSend(t, selfClient(t, srv,
			mail.WithTLSPortPolicy(mail.TLSMandatory), mail.WithTLSConfig(clientTLS())))
		wantDialError(t, err)
		if !strings.Contains(err.Error(), "does not support STARTTLS") {
			t.Errorf("error text: %v", err)
		}
		if errors.Unwrap(errors.Unwrap(err)) != nil {
			t.Errorf("expected a plain string cause with nothing to unwrap: %v", err)
		}
		// Opportunistic falls back to plain text and delivers.
		if _, err := selfSend(t, selfClient(t, srv,
			mail.WithTLSPortPolicy(mail.TLSOpportunistic), mail.WithTLSConfig(clientTLS()))); err != nil {
			t.Fatal(err)
		}
		if m := wantDelivered(t, srv, 1); m.TLS {
			t.Error("TLS = true, want plain text")
		}
	})

	t.Run("LeakOnTLSPolicyError", func(t *testing.T) {
		// Documents that go-mail does not close the connection when the dial
		// phase fails after the greeting (here: TLS policy check).
		srv := StartFakeSMTP(t)
		_, err := selfSend(t, selfClient(t, srv, mail.WithTLSPortPolicy(mail.TLSMandatory)))
		wantDialError(t, err)
		time.Sleep(100 * time.Millisecond)
		t.Logf("server-side connections still open after the failed send: %d", srv.OpenConns())
		if srv.OpenConns() != 1 {
			t.Logf("go-mail now closes the connection (OpenConns=%d); update the notes", srv.OpenConns())
		}
	})

	t.Run("ImplicitTLS", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithImplicitTLS(serverTLS))
		// WithSSLPort keeps the explicit port because WithPort ran first.
		_, err := selfSend(t, selfClient(t, srv, mail.WithSSLPort(false), mail.WithTLSConfig(clientTLS())))
		if err != nil {
			t.Fatal(err)
		}
		if m := wantDelivered(t, srv, 1); !m.TLS {
			t.Error("message was not sent over TLS")
		}
		// WithSSL + a config without ServerName also works (inferred from the address).
		if _, err := selfSend(t, selfClient(t, srv, mail.WithSSL(),
			mail.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, srv, 2)
	})

	t.Run("ImplicitTLSUntrustedCA", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithImplicitTLS(serverTLS))
		_, err := selfSend(t, selfClient(t, srv, mail.WithSSL()))
		wantDialError(t, err)
		var cve *tls.CertificateVerificationError
		if !errors.As(err, &cve) {
			t.Errorf("want *tls.CertificateVerificationError, got %v", err)
		}
	})

	t.Run("ImplicitTLSSlow", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithImplicitTLS(serverTLS), WithMode(ModeSlow), WithDelay(5*time.Second))
		d, err := selfSend(t, selfClient(t, srv, mail.WithSSL(), mail.WithTLSConfig(clientTLS()),
			mail.WithTimeout(400*time.Millisecond)))
		wantDialError(t, err)
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("want a deadline error, got %v", err)
		}
		if d > 2*time.Second {
			t.Errorf("client took %v, want ~400ms", d)
		}
		srv.SetMode(ModeOK)
		if _, err := selfSend(t, selfClient(t, srv, mail.WithSSL(), mail.WithTLSConfig(clientTLS()))); err != nil {
			t.Fatal(err)
		}
		wantDelivered(t, srv, 1)
	})

	t.Run("SSLClientPlainServer", func(t *testing.T) {
		srv := StartFakeSMTP(t)
		_, err := selfSend(t, selfClient(t, srv, mail.WithSSL(), mail.WithTLSConfig(clientTLS())))
		wantDialError(t, err)
		var rhe tls.RecordHeaderError
		if !errors.As(err, &rhe) {
			t.Errorf("want tls.RecordHeaderError, got %T %v", err, err)
		}
	})

	t.Run("PlainClientTLSServer", func(t *testing.T) {
		srv := StartFakeSMTP(t, WithImplicitTLS(serverTLS))
		_, err := selfSend(t, selfClient(t, srv, mail.WithTimeout(400*time.Millisecond)))
		wantDialError(t, err)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("want i/o timeout, got %v", err)
		}
	})

	t.Run("CertFiles", func(t *testing.T) {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
				t.Errorf("leaf does not verify for %s: %v", host, err)
			}
		}
	})
}
