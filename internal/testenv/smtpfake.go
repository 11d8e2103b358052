package testenv

// In-process fake SMTP server for unit and fault-injection tests.
//
// The server is built on github.com/emersion/go-smtp and can be told to
// misbehave, either at start (WithMode) or at runtime (SetMode), so a test can
// break it, observe the plugin's failure handling, heal it, and check that the
// next request works again.
//
//	srv := StartFakeSMTP(t)                       // 127.0.0.1:<random>, closed in t.Cleanup
//	srv.SetMode(ModeRejectRcpt)                   // next RCPT TO -> 550 5.1.1
//	srv.SetMode(ModeOK)                           // healed
//	msgs := srv.WaitCount(1, 5*time.Second)       // fails the test on timeout
//
// Behaviour summary (decision is taken when the relevant SMTP step happens, so a
// SetMode call affects connections that are already open):
//
//	ModeOK           normal delivery; the message is recorded just before "250".
//	ModeRejectRcpt   RCPT TO -> 550 5.1.1 (permanent, address-level)
//	ModeTempFailRcpt RCPT TO -> 451 4.3.0 (temporary)
//	ModeAuthFail     AUTH PLAIN -> 535 5.7.8; MAIL FROM without AUTH -> 530 5.7.0
//	ModeDropData     after DATA's 354 the server reads a few bytes of the message,
//	                 then resets the TCP connection (SO_LINGER 0, no reply)
//	ModeSlow         the greeting (or, with implicit TLS, the ServerHello) is held
//	                 back for the configured delay (WithDelay / SetDelay); the mode
//	                 is sampled when the connection is accepted
//	ModeSlowData     the message is read completely, then the final DATA reply is
//	                 held back for the delay; it is recorded (and 250 sent) only
//	                 if the delay runs out, not when the server is closed
//	ModeRejectData   final DATA reply 554 5.7.1 (permanent, message-level, NOT an
//	                 address problem)
//	ModeTempFailData final DATA reply 451 4.3.0 (temporary, message-level)
//	ModeRefuse       the listener is closed: new connections get ECONNREFUSED.
//	                 Connections that are already open keep their behaviour.
//	                 Leaving ModeRefuse (SetMode(other) or Restart()) listens
//	                 again on the same port.
//
// All delays end as soon as the server is closed (t.Cleanup), so tests do not hang.
//
// AUTH PLAIN is always advertised (AllowInsecureAuth is on, so it also works on
// plain-text connections). Without WithAuth any credentials are accepted and
// authentication is optional; with WithAuth(user, pass) the credentials must
// match and MAIL FROM without a successful AUTH is refused with 530 5.7.0.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// FakeMsg is one message the fake server accepted (answered 250 to DATA).
type FakeMsg struct {
	From     string
	To       []string
	Data     []byte // raw message as received (dot-unstuffed, CRLF line endings)
	TLS      bool   // connection was TLS (STARTTLS or implicit) when DATA was sent
	AuthUser string // username of a successful AUTH PLAIN, "" if none
}

type fakeConfig struct {
	mode        FakeMode
	delay       time.Duration
	authUser    string
	authPass    string
	requireAuth bool
	startTLS    *tls.Config
	implicitTLS *tls.Config
}

// FakeOpt configures StartFakeSMTP.
type FakeOpt func(*fakeConfig)

// WithMode sets the initial behaviour (default ModeOK).
func WithMode(m FakeMode) FakeOpt { return func(c *fakeConfig) { c.mode = m } }

// WithDelay sets the delay used by ModeSlow / ModeSlowData (default 10s).
func WithDelay(d time.Duration) FakeOpt { return func(c *fakeConfig) { c.delay = d } }

// WithAuth requires AUTH PLAIN with exactly these credentials before MAIL FROM.
func WithAuth(user, pass string) FakeOpt {
	return func(c *fakeConfig) { c.authUser, c.authPass, c.requireAuth = user, pass, true }
}

// WithSTARTTLS makes the server advertise and accept STARTTLS with cfg.
func WithSTARTTLS(cfg *tls.Config) FakeOpt { return func(c *fakeConfig) { c.startTLS = cfg } }

// WithImplicitTLS makes the server speak TLS from the first byte (SMTPS, port-465 style).
func WithImplicitTLS(cfg *tls.Config) FakeOpt { return func(c *fakeConfig) { c.implicitTLS = cfg } }

// FakeSMTP is a running fake SMTP server. Create it with StartFakeSMTP.
type FakeSMTP struct {
	Host string // always "127.0.0.1"
	Port int

	t     testing.TB
	cfg   fakeConfig
	srv   *smtp.Server
	mode  atomic.Int32
	delay atomic.Int64
	done  chan struct{} // closed when the server is shut down

	msgMu  sync.Mutex
	msgs   []FakeMsg
	msgSig chan struct{} // closed and replaced whenever msgs grows

	lnMu      sync.Mutex
	ln        net.Listener // current raw listener; nil while refusing
	closed    bool
	serveWG   sync.WaitGroup
	conns     map[*fakeConn]struct{}
	connWG    sync.WaitGroup
	logMu     sync.Mutex
	logClosed bool
}

// Addr returns "127.0.0.1:<port>".
func (f *FakeSMTP) Addr() string { return net.JoinHostPort(f.Host, strconv.Itoa(f.Port)) }

// StartFakeSMTP starts a fake SMTP server on 127.0.0.1:0. It is shut down in t.Cleanup.
func StartFakeSMTP(t testing.TB, opts ...FakeOpt) *FakeSMTP {
	t.Helper()
	cfg := fakeConfig{mode: ModeOK, delay: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.startTLS != nil && cfg.implicitTLS != nil {
		t.Fatal("StartFakeSMTP: WithSTARTTLS and WithImplicitTLS are mutually exclusive")
	}

	f := &FakeSMTP{
		Host:   "127.0.0.1",
		t:      t,
		cfg:    cfg,
		done:   make(chan struct{}),
		msgSig: make(chan struct{}),
		conns:  make(map[*fakeConn]struct{}),
	}
	f.mode.Store(int32(cfg.mode))
	f.delay.Store(int64(cfg.delay))

	s := smtp.NewServer(smtp.BackendFunc(f.newSession))
	s.Domain = "fake-smtp.test"
	s.AllowInsecureAuth = true
	s.MaxMessageBytes = 10 << 20
	s.MaxRecipients = 50
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.ErrorLog = fakeLogger{f}
	if cfg.startTLS != nil {
		s.TLSConfig = cfg.startTLS
	}
	f.srv = s

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("StartFakeSMTP: listen: %v", err)
	}
	f.Port = ln.Addr().(*net.TCPAddr).Port
	t.Cleanup(f.close)

	if cfg.mode == ModeRefuse {
		ln.Close() // port is reserved for Restart; nothing listens until then
	} else {
		f.lnMu.Lock()
		f.serveLocked(ln)
		f.lnMu.Unlock()
	}
	return f
}

// Mode returns the current behaviour.
func (f *FakeSMTP) Mode() FakeMode { return FakeMode(f.mode.Load()) }

// SetMode changes the behaviour at runtime. Switching to ModeRefuse closes the
// listener; switching from ModeRefuse to anything else listens again on the
// same port. Safe to call from any goroutine.
func (f *FakeSMTP) SetMode(m FakeMode) {
	f.mode.Store(int32(m))
	if m == ModeRefuse {
		f.stopListening()
		return
	}
	if err := f.listen(); err != nil {
		f.t.Errorf("FakeSMTP.SetMode(%v): %v", m, err)
	}
}

// SetDelay changes the delay used by ModeSlow / ModeSlowData.
func (f *FakeSMTP) SetDelay(d time.Duration) { f.delay.Store(int64(d)) }

// Restart makes the server accept connections again on the same port after
// ModeRefuse (mode becomes ModeOK). It is a no-op when already listening.
// Call it from the test goroutine (it uses t.Fatalf).
func (f *FakeSMTP) Restart() {
	f.t.Helper()
	f.mode.CompareAndSwap(int32(ModeRefuse), int32(ModeOK))
	if err := f.listen(); err != nil {
		f.t.Fatalf("FakeSMTP.Restart: %v", err)
	}
}

// DropConns closes every open connection, as a server restarting or timing
// out idle clients does; clients keeping connections must dial again.
func (f *FakeSMTP) DropConns() {
	f.lnMu.Lock()
	open := make([]*fakeConn, 0, len(f.conns))
	for c := range f.conns {
		open = append(open, c)
	}
	f.lnMu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// OpenConns returns the number of server-side connections currently open
// (useful to detect clients that leak connections).
func (f *FakeSMTP) OpenConns() int {
	f.lnMu.Lock()
	defer f.lnMu.Unlock()
	return len(f.conns)
}

// Messages returns a copy of all accepted messages, oldest first.
func (f *FakeSMTP) Messages() []FakeMsg {
	f.msgMu.Lock()
	defer f.msgMu.Unlock()
	return cloneMsgs(f.msgs)
}

// WaitCount waits until at least n messages have been accepted and returns
// them. It fails the test (t.Fatalf) if that does not happen within timeout.
func (f *FakeSMTP) WaitCount(n int, timeout time.Duration) []FakeMsg {
	f.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.msgMu.Lock()
		if len(f.msgs) >= n {
			out := cloneMsgs(f.msgs)
			f.msgMu.Unlock()
			return out
		}
		sig, have := f.msgSig, len(f.msgs)
		f.msgMu.Unlock()
		select {
		case <-sig:
		case <-deadline.C:
			f.t.Fatalf("FakeSMTP.WaitCount: got %d message(s), want %d within %v", have, n, timeout)
			return nil
		}
	}
}

func cloneMsgs(in []FakeMsg) []FakeMsg {
	out := make([]FakeMsg, len(in))
	for i, m := range in {
		out[i] = m
		out[i].To = append([]string(nil), m.To...)
		out[i].Data = append([]byte(nil), m.Data...)
	}
	return out
}

func (f *FakeSMTP) record(m FakeMsg) {
	f.msgMu.Lock()
	f.msgs = append(f.msgs, m)
	close(f.msgSig)
	f.msgSig = make(chan struct{})
	f.msgMu.Unlock()
}

// sleep waits for the current delay; it returns false if interrupted by
// server shutdown or by the given connection being closed.
func (f *FakeSMTP) sleep(connClosed <-chan struct{}) bool {
	tm := time.NewTimer(time.Duration(f.delay.Load()))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-f.done:
		return false
	case <-connClosed:
		return false
	}
}

// --- listener lifecycle ---

func (f *FakeSMTP) listen() error {
	f.lnMu.Lock()
	defer f.lnMu.Unlock()
	if f.closed {
		return errors.New("server is closed")
	}
	if f.ln != nil {
		return nil
	}
	var (
		ln  net.Listener
		err error
	)
	// Go sets SO_REUSEADDR, so re-binding right after close works; retry a
	// little in case the kernel still holds the port briefly.
	for i := 0; i < 50; i++ {
		ln, err = net.Listen("tcp", f.Addr())
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("re-listen on %s: %w", f.Addr(), err)
	}
	f.serveLocked(ln)
	return nil
}

// serveLocked starts serving on ln. f.lnMu must be held.
func (f *FakeSMTP) serveLocked(ln net.Listener) {
	f.ln = ln
	var l net.Listener = &fakeListener{Listener: ln, f: f}
	if f.cfg.implicitTLS != nil {
		l = tls.NewListener(l, f.cfg.implicitTLS)
	}
	f.serveWG.Add(1)
	go func() {
		defer f.serveWG.Done()
		// Returns net.ErrClosed-ish error when we close ln ourselves
		// (ModeRefuse) and nil after srv.Close; both are expected.
		_ = f.srv.Serve(l)
	}()
}

func (f *FakeSMTP) stopListening() {
	f.lnMu.Lock()
	defer f.lnMu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
}

func (f *FakeSMTP) close() {
	f.lnMu.Lock()
	if f.closed {
		f.lnMu.Unlock()
		return
	}
	f.closed = true
	close(f.done) // ends all sleeps
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	f.lnMu.Unlock()

	_ = f.srv.Close() // closes listeners and registered connections

	// Connections accepted but not (yet) registered by go-smtp.
	f.lnMu.Lock()
	left := make([]*fakeConn, 0, len(f.conns))
	for c := range f.conns {
		left = append(left, c)
	}
	f.lnMu.Unlock()
	for _, c := range left {
		c.Close()
	}

	waitTimeout(&f.serveWG, 5*time.Second)
	waitTimeout(&f.connWG, 5*time.Second)

	f.logMu.Lock()
	f.logClosed = true
	f.logMu.Unlock()
}
