package emailotp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	gomail "github.com/wneessen/go-mail"
)

// SMTPConfig is the mail server the codes are handed to.
type SMTPConfig struct {
	// Host of the SMTP server. Required.
	Host string `json:"host,omitempty"`

	// Port of the SMTP server. Default: 587, 465 when tls is "tls", 25 when
	// it is "none".
	Port int `json:"port,omitempty"`

	// TLS is "starttls" (required, never downgraded to plaintext), "tls"
	// (implicit TLS) or "none" (plaintext, for a local sink only).
	// Default: starttls
	TLS string `json:"tls,omitempty"`

	// CAFile is a PEM bundle of the CAs trusted for the server's certificate.
	// Default: the system roots.
	CAFile string `json:"ca_file,omitempty"`

	// ServerName is the name checked in the SMTP server's certificate.
	// Default: Host.
	ServerName string `json:"server_name,omitempty"`

	// Username for SMTP AUTH, placeholders resolved at provision.
	// Default: no authentication.
	Username string `json:"username,omitempty"`

	// Password for SMTP AUTH, placeholders such as {env.SMTP_PASSWORD}
	// resolved at provision. Default: none (required with username).
	Password string `json:"password,omitempty"`

	// From is the sender, optionally with a display name:
	// "Example <no-reply@example.com>". Required.
	From string `json:"from,omitempty"`

	// Timeout bounds one delivery: connect, TLS, AUTH and DATA.
	// Default: 15s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// IdleConns is how many connections to the server are kept open (30s at
	// most) between mails, 0 to dial for each mail. Default: 4
	IdleConns *int `json:"idle_conns,omitempty"`
}

// Defaults of SMTPConfig. Idle connections: enough for the bursts of a
// login path, few enough that a quiet site holds nothing for long; kept
// connections save the TCP, TLS and AUTH handshakes (BENCHMARKS.md). A kept
// connection the server closed, or one that refuses MAIL FROM, is replaced
// and the mail sent once more; a failure after the hand-over is never retried.
const (
	defaultIdleConns   = 4
	defaultSMTPTimeout = 15 * time.Second
)

// fillDefaults sets every field left out to its default; it is the only
// place that knows them, and running it twice changes nothing.
func (s *SMTPConfig) fillDefaults() {
	if s.TLS == "" {
		s.TLS = "starttls"
	}
	if s.Port == 0 {
		s.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[s.TLS]
	}
	if s.Timeout == 0 {
		s.Timeout = caddy.Duration(defaultSMTPTimeout)
	}
	if s.IdleConns == nil {
		n := defaultIdleConns
		s.IdleConns = &n
	}
}

func (s *SMTPConfig) validate() error {
	if s.Host == "" {
		return errors.New("smtp: host is required")
	}
	switch s.TLS {
	case "", "starttls", "tls", "none":
	default:
		return fmt.Errorf("smtp: tls %q: want starttls, tls or none", s.TLS)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("smtp: port %d out of range", s.Port)
	}
	if s.From == "" {
		return errors.New("smtp: from is required")
	}
	if !strings.Contains(s.From, "{") {
		if _, err := mail.ParseAddress(s.From); err != nil {
			return fmt.Errorf("smtp: from %q: %v", s.From, err)
		}
	}
	if (s.Username == "") != (s.Password == "") {
		return errors.New("smtp: username and password go together")
	}
	if s.Timeout < 0 {
		return errors.New("smtp: timeout must be positive")
	}
	if s.IdleConns != nil && (*s.IdleConns < 0 || *s.IdleConns > 100) {
		return fmt.Errorf("smtp: idle_conns %d out of range 0-100", *s.IdleConns)
	}
	return nil
}

// mailer hands messages to the SMTP server through one go-mail client made
// at provision; DialAndSendWithContext is safe for concurrent use.
type mailer struct {
	client  *gomail.Client
	from    string
	timeout time.Duration
	host    string
	pool    *smtpPool // nil when IdleConns is 0
}

// newMailer builds the client for cfg, its defaults filled (in place).
func newMailer(cfg *SMTPConfig, repl *caddy.Replacer) (*mailer, error) {
	cfg.fillDefaults()
	host := repl.ReplaceAll(cfg.Host, "")
	timeout := time.Duration(cfg.Timeout)
	opts := []gomail.Option{gomail.WithTimeout(timeout)}
	// No NOOP before and after each mail and no RSET after it: a fresh
	// connection needs neither, and a kept one starts its next mail with
	// MAIL FROM, which fails as plainly as a NOOP would when the server has
	// closed it (smtpPool then dials again). Three round trips fewer a mail.
	opts = append(opts, gomail.WithoutNoop(), gomail.WithoutRset())
	tlsCfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.ServerName != "" {
		tlsCfg.ServerName = cfg.ServerName
	}
	if cfg.CAFile != "" {
		pemBytes, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("smtp: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	switch cfg.TLS {
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(tlsCfg),
			gomail.WithDialContextFunc(trackingDial))
	case "tls":
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSConfig(tlsCfg))
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS), gomail.WithDialContextFunc(trackingDial))
	}
	opts = append(opts, gomail.WithPort(cfg.Port))
	if cfg.Username != "" {
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(repl.ReplaceAll(cfg.Username, "")),
			gomail.WithPassword(repl.ReplaceAll(cfg.Password, "")))
	}
	client, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	from := repl.ReplaceAll(cfg.From, "")
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("smtp: from %q: %v", from, err)
	}
	m := &mailer{client: client, from: from, timeout: timeout, host: host}
	if n := *cfg.IdleConns; n > 0 {
		m.pool = newSMTPPool(client, n, timeout)
	}
	return m, nil
}

// message builds the go-mail message: headers that mark it as automatic,
// a UTF-8 text part and the HTML alternative when there is one.
func (m *mailer) message(o outgoing) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP))
	if err := msg.From(m.from); err != nil {
		return nil, err
	}
	if err := msg.To(o.to); err != nil {
		return nil, err
	}
	msg.Subject(o.subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(gomail.Header("X-Auto-Response-Suppress"), "All")
	msg.SetBodyString(gomail.TypeTextPlain, o.text)
	if o.html != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, o.html)
	}
	return msg, nil
}

// send delivers one message within the configured timeout.
func (m *mailer) send(ctx context.Context, o outgoing) error {
	msg, err := m.message(o)
	if err != nil {
		return err
	}
	if m.pool != nil {
		return m.pool.send(ctx, msg)
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	slot := new(connSlot)
	err = m.client.DialAndSendWithContext(context.WithValue(ctx, connSlotKey{}, slot), msg)
	if slot.conn != nil {
		_ = slot.conn.Close() // already closed after QUIT; not after a dial-phase failure
	}
	return err
}

// recipientRefused tells a permanent refusal of the recipient (5xx to RCPT
// TO), where the address itself is the problem, from every other failure
// (server down, slow, TLS or AUTH failure, dropped connection, temporary
// refusal), which a later try may overcome.
func recipientRefused(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp() && se.ErrorCode() >= 500
}

// close ends the mailer's kept connections, if it keeps any; Cleanup calls
// it, and it is safe on a mailer that Provision never finished.
func (m *mailer) close() {
	if m != nil && m.pool != nil {
		m.pool.close()
	}
}
