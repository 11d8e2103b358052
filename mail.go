package emailotp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"net"
	"net/mail"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	gomail "github.com/wneessen/go-mail"
	"golang.org/x/text/language"
)

// SMTPConfig is the mail server the codes are handed to.
type SMTPConfig struct {
	// Host of the SMTP server. Required.
	Host string `json:"host,omitempty"`

	// Port of the SMTP server. Default: 587, or 465 when TLS is "tls".
	Port int `json:"port,omitempty"`

	// TLS is "starttls" (STARTTLS required: a server that does not offer it
	// is refused, never used in plaintext), "tls" (implicit TLS, usually port
	// 465) or "none" (plaintext; only for a local sink). Default: starttls
	TLS string `json:"tls,omitempty"`

	// CAFile is a PEM bundle of CAs to trust for the SMTP server's
	// certificate instead of the system roots. Default: the system roots.
	CAFile string `json:"ca_file,omitempty"`

	// ServerName is the name checked in the SMTP server's certificate.
	// Default: Host.
	ServerName string `json:"server_name,omitempty"`

	// Username for SMTP AUTH. Placeholders are resolved at provision.
	// Default: no authentication.
	Username string `json:"username,omitempty"`

	// Password for SMTP AUTH. Placeholders such as {env.SMTP_PASSWORD} are
	// resolved at provision.
	Password string `json:"password,omitempty"`

	// From is the sender, optionally with a display name:
	// "Example <no-reply@example.com>". Required.
	From string `json:"from,omitempty"`

	// Timeout bounds one delivery: connect, TLS, AUTH and DATA.
	// Default: 15s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// IdleConns is how many connections to the SMTP server are kept open
	// between mails, so that a mail costs no TCP, TLS and AUTH handshake;
	// a connection idle for 30s is closed, well before servers drop idle
	// clients. With STARTTLS an initiate costs a tenth of the CPU and
	// against a real server the step sends a quarter more mails per second
	// (BENCHMARKS.md), so it is on by default. A kept connection the server
	// closed, or one that refuses MAIL FROM, is replaced and the mail sent
	// once more; a failure after the hand-over is never retried. 0 dials
	// per mail, as go-mail's DialAndSend does. Default: 4
	IdleConns *int `json:"idle_conns,omitempty"`
}

// defaultIdleConns is IdleConns when the config leaves it out: enough for
// the bursts of a login path, few enough that a quiet site holds nothing
// for long (idle connections close after 30s).
const defaultIdleConns = 4

// idleConns is IdleConns with its default applied.
func (s *SMTPConfig) idleConns() int {
	if s.IdleConns == nil {
		return defaultIdleConns
	}
	return *s.IdleConns
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
	if n := s.idleConns(); n < 0 || n > 100 {
		return fmt.Errorf("smtp: idle_conns %d out of range 0-100", n)
	}
	return nil
}

// Template is a mail: subject and text body, with `{0}` where the code goes,
// and optionally an HTML alternative. Locales holds variants by BCP 47 tag,
// chosen by the request's ui_locales.
type Template struct {
	// Subject of the mail. Default: "Your one-time password"
	Subject string `json:"subject,omitempty"`

	// Body of the text part; must contain {0}.
	// Default: "Your one-time password is {0}"
	Body string `json:"body,omitempty"`

	// HTMLFile is an html/template file for an HTML alternative. It sees
	// .Subject, .Body (the text body with the code, escaped) and .Code.
	// Default: no HTML part.
	HTMLFile string `json:"html_file,omitempty"`

	// Locales are variants by language tag (fi, sv-SE…). A variant's empty
	// fields fall back to the default template's.
	Locales map[string]*Template `json:"locales,omitempty"`
}

const (
	defaultSubject  = "Your one-time password"
	defaultBody     = "Your one-time password is {0}"
	maxTitleLength  = 255
	maxBodyLength   = 8192
	codePlaceholder = "{0}"
)

func (t *Template) validate() error {
	if t == nil {
		return nil
	}
	check := func(where string, v *Template) error {
		if v.Body != "" && !strings.Contains(v.Body, codePlaceholder) {
			return fmt.Errorf("template%s: body must contain {0} where the code goes", where)
		}
		if strings.ContainsAny(v.Subject, "\r\n") {
			return fmt.Errorf("template%s: subject must be one line", where)
		}
		return nil
	}
	if err := check("", t); err != nil {
		return err
	}
	for tag, v := range t.Locales {
		if _, err := language.Parse(tag); err != nil {
			return fmt.Errorf("template locale %q: not a BCP 47 language tag", tag)
		}
		if v == nil {
			return fmt.Errorf("template locale %q: empty", tag)
		}
		if err := check(" locale "+tag, v); err != nil {
			return err
		}
	}
	return nil
}

// mailTemplate is a Template ready to render: HTML parsed once.
type mailTemplate struct {
	subject string
	body    string
	html    *htmltemplate.Template
}

// templateSet picks the template for a request's ui_locales.
type templateSet struct {
	matcher language.Matcher
	tags    []string
	byIndex []*mailTemplate // index 0 is the default template
}

func newTemplateSet(t *Template) (*templateSet, error) {
	if t == nil {
		t = &Template{}
	}
	def, err := prepareTemplate(t, &mailTemplate{subject: defaultSubject, body: defaultBody})
	if err != nil {
		return nil, err
	}
	ts := &templateSet{byIndex: []*mailTemplate{def}}
	supported := []language.Tag{language.Und}
	for _, tag := range slices.Sorted(maps.Keys(t.Locales)) {
		v := t.Locales[tag]
		mt, err := prepareTemplate(v, def)
		if err != nil {
			return nil, fmt.Errorf("template locale %s: %w", tag, err)
		}
		lt := language.Make(tag)
		supported = append(supported, lt)
		ts.tags = append(ts.tags, lt.String())
		ts.byIndex = append(ts.byIndex, mt)
	}
	ts.matcher = language.NewMatcher(supported)
	return ts, nil
}

func prepareTemplate(t *Template, fallback *mailTemplate) (*mailTemplate, error) {
	mt := *fallback
	if t.Subject != "" {
		mt.subject = t.Subject
	}
	if t.Body != "" {
		mt.body = t.Body
	}
	if t.HTMLFile != "" {
		src, err := os.ReadFile(t.HTMLFile)
		if err != nil {
			return nil, fmt.Errorf("html_file: %w", err)
		}
		if mt.html, err = htmltemplate.New(t.HTMLFile).Parse(string(src)); err != nil {
			return nil, fmt.Errorf("html_file: %w", err)
		}
	}
	return &mt, nil
}

// pick returns the template for the best match of the space-separated
// ui_locales; unparseable tags are ignored, and no match gives the default.
func (ts *templateSet) pick(uiLocales string) *mailTemplate {
	if len(ts.byIndex) == 1 || uiLocales == "" {
		return ts.byIndex[0]
	}
	var want []language.Tag
	for i, f := range strings.Fields(uiLocales) {
		if i == 10 {
			break
		}
		if t, err := language.Parse(f); err == nil {
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		return ts.byIndex[0]
	}
	_, idx, conf := ts.matcher.Match(want...)
	if conf == language.No {
		return ts.byIndex[0]
	}
	return ts.byIndex[idx]
}

func (ts *templateSet) locales() []string { return ts.tags }

// outgoing is one rendered mail.
type outgoing struct {
	to      string
	subject string
	text    string
	html    string
}

// render fills the code into the text (and HTML) body. A request-supplied
// title or body replaces the template's, still inside the template's HTML.
func (mt *mailTemplate) render(to, code, title, body string) (outgoing, error) {
	o := outgoing{to: to, subject: mt.subject, text: mt.body}
	if title != "" {
		o.subject = title
	}
	if body != "" {
		o.text = body
	}
	o.text = strings.ReplaceAll(o.text, codePlaceholder, code)
	if mt.html != nil {
		var buf bytes.Buffer
		err := mt.html.Execute(&buf, struct{ Subject, Body, Code string }{o.subject, o.text, code})
		if err != nil {
			return o, err
		}
		o.html = buf.String()
	}
	return o, nil
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

func newMailer(cfg *SMTPConfig, repl *caddy.Replacer) (*mailer, error) {
	host := repl.ReplaceAll(cfg.Host, "")
	opts := []gomail.Option{gomail.WithTimeout(15 * time.Second)}
	timeout := 15 * time.Second
	if cfg.Timeout > 0 {
		timeout = time.Duration(cfg.Timeout)
		opts[0] = gomail.WithTimeout(timeout)
	}
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
	port := cfg.Port
	switch cfg.TLS {
	case "", "starttls":
		if port == 0 {
			port = 587
		}
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(tlsCfg),
			gomail.WithDialContextFunc(trackingDial))
	case "tls":
		if port == 0 {
			port = 465
		}
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSConfig(tlsCfg))
	case "none":
		if port == 0 {
			port = 25
		}
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS), gomail.WithDialContextFunc(trackingDial))
	}
	opts = append(opts, gomail.WithPort(port))
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
	if n := cfg.idleConns(); n > 0 {
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

// errAddressRefused marks a permanent refusal of the recipient (5xx to RCPT
// TO): the address itself is the problem, so the client hears 400.
var errAddressRefused = errors.New("the mail server refused the address")

// classifySendError maps a delivery failure to the answer: 400 when the
// server permanently refused the recipient, else 503 with Retry-After (server
// down, slow, TLS or AUTH failure, dropped connection, temporary refusal).
func classifySendError(err error) *oauthError {
	var se *gomail.SendError
	if errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp() && se.ErrorCode() >= 500 {
		return errInvalidRequest("%s", errAddressRefused)
	}
	return errUnavailable("the mail could not be sent; try again later", 30*time.Second)
}
