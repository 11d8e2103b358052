package testenv

import (
	"errors"
	"io"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// One SMTP conversation with the fake: AUTH, MAIL, RCPT, DATA by mode.

type fakeSession struct {
	f        *FakeSMTP
	conn     *smtp.Conn
	raw      *fakeConn
	authUser string
	authed   bool
	from     string
	to       []string
}

func (f *FakeSMTP) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &fakeSession{f: f, conn: c, raw: rawFakeConn(c.Conn())}, nil
}

var _ smtp.AuthSession = (*fakeSession)(nil)

func (s *fakeSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *fakeSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if s.f.Mode() == ModeAuthFail {
			return smtp.ErrAuthFailed
		}
		if s.f.cfg.requireAuth && (username != s.f.cfg.authUser || password != s.f.cfg.authPass) {
			return smtp.ErrAuthFailed
		}
		s.authed, s.authUser = true, username
		return nil
	}), nil
}

func (s *fakeSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed && (s.f.cfg.requireAuth || s.f.Mode() == ModeAuthFail) {
		return fakeErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch s.f.Mode() {
	case ModeRejectRcpt:
		return fakeErrRejectRcpt
	case ModeTempFailRcpt:
		return fakeErrTempFailRcpt
	}
	s.to = append(s.to, to)
	return nil
}

func (s *fakeSession) Data(r io.Reader) error {
	switch s.f.Mode() {
	case ModeDropData:
		buf := make([]byte, 16)
		_, _ = io.ReadAtLeast(r, buf, 1)
		if s.raw != nil {
			s.raw.abort()
		} else {
			s.conn.Conn().Close()
		}
		return errors.New("FakeSMTP: connection dropped during DATA")
	}

	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}

	switch s.f.Mode() {
	case ModeRejectData:
		return fakeErrRejectData
	case ModeTempFailData:
		return fakeErrTempFailData
	case ModeSlowData:
		var closed <-chan struct{}
		if s.raw != nil {
			closed = s.raw.closedCh
		}
		if !s.f.sleep(closed) {
			return errors.New("FakeSMTP: server closed during delayed DATA reply")
		}
	}

	_, isTLS := s.conn.TLSConnectionState()
	s.f.record(FakeMsg{
		From:     s.from,
		To:       append([]string(nil), s.to...),
		Data:     data,
		TLS:      isTLS,
		AuthUser: s.authUser,
	})
	return nil
}

func (s *fakeSession) Reset() { s.from, s.to = "", nil }

func (s *fakeSession) Logout() error { return nil }
