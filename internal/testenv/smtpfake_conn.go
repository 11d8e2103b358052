package testenv

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The fake's listener and connections: what lets it refuse, reset and
// count connections, and its log.

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
	}
}

type fakeLogger struct{ f *FakeSMTP }

func (l fakeLogger) Printf(format string, v ...interface{}) {
	l.f.logMu.Lock()
	defer l.f.logMu.Unlock()
	if !l.f.logClosed {
		l.f.t.Logf("FakeSMTP: "+format, v...)
	}
}

func (l fakeLogger) Println(v ...interface{}) { l.Printf("%s", fmt.Sprintln(v...)) }

// fakeListener wraps accepted connections in fakeConn.
type fakeListener struct {
	net.Listener
	f *FakeSMTP
}

func (l *fakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &fakeConn{
		Conn:      c,
		f:         l.f,
		closedCh:  make(chan struct{}),
		slowStart: l.f.Mode() == ModeSlow,
	}
	l.f.lnMu.Lock()
	if l.f.closed {
		l.f.lnMu.Unlock()
		c.Close()
		return nil, net.ErrClosed
	}
	l.f.conns[fc] = struct{}{}
	l.f.connWG.Add(1)
	l.f.lnMu.Unlock()
	return fc, nil
}

// fakeConn is the raw TCP connection with hooks for ModeSlow and ModeDropData.
type fakeConn struct {
	net.Conn
	f         *FakeSMTP
	slowStart bool
	wroteOnce atomic.Bool
	closeOnce sync.Once
	closedCh  chan struct{}
}

func (c *fakeConn) Write(p []byte) (int, error) {
	if c.slowStart && c.wroteOnce.CompareAndSwap(false, true) {
		// First server write = the 220 greeting (or the TLS ServerHello).
		if !c.f.sleep(c.closedCh) {
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Write(p)
}

func (c *fakeConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closedCh)
		err = c.Conn.Close()
		c.f.lnMu.Lock()
		delete(c.f.conns, c)
		c.f.lnMu.Unlock()
		c.f.connWG.Done()
	})
	return err
}

// abort resets the TCP connection (RST, no SMTP reply).
func (c *fakeConn) abort() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// rawFakeConn digs the fakeConn out of what go-smtp holds (possibly *tls.Conn).
func rawFakeConn(c net.Conn) *fakeConn {
	for {
		switch v := c.(type) {
		case *fakeConn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}
