package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// The two mail sinks: mailpit in its own process (the realistic one) and a
// null SMTP sink in this process that keeps only the codes it is asked for.

// mailpitProc is a running mailpit with its SMTP port and HTTP API.
type mailpitProc struct {
	*process
	smtpPort int
	api      string
	client   *http.Client
}

func startMailpit(bin, dir string) (*mailpitProc, error) {
	uiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	smtpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--listen", fmt.Sprintf("127.0.0.1:%d", uiPort),
		"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
		"--database", filepath.Join(dir, "mailpit.db"),
		"--disable-version-check", "--smtp-disable-rdns")
	p, err := startProcess("mailpit", filepath.Join(dir, "mailpit.log"), cmd)
	if err != nil {
		return nil, err
	}
	m := &mailpitProc{process: p, smtpPort: smtpPort, api: fmt.Sprintf("http://127.0.0.1:%d", uiPort),
		client: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := p.alive(); err != nil {
			return nil, err
		}
		if resp, err := m.client.Get(m.api + "/api/v1/messages?limit=1"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && waitTCP(fmt.Sprintf("127.0.0.1:%d", smtpPort), time.Second) == nil {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("mailpit did not come up within 20s; see " + p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deleteAll empties mailpit's mailbox.
func (m *mailpitProc) deleteAll() error {
	req, err := http.NewRequest(http.MethodDelete, m.api+"/api/v1/messages", nil)
	if err != nil {
		return err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("mailpit DELETE /api/v1/messages: %s", resp.Status)
	}
	return nil
}

// nullSink is an SMTP server in this process that accepts every message and
// keeps only the code it carries, by recipient: the sink for the benchmark
// cells that must not measure a mail store, and the source of codes for the
// references the validate cells consume.
type nullSink struct {
	srv   *smtp.Server
	port  int
	mu    sync.Mutex
	codes map[string]string
	count int
}

var codeRE = regexp.MustCompile(`\b[0-9]{8}\b`)

func startNullSink() (*nullSink, error) {
	n := &nullSink{codes: make(map[string]string)}
	n.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &nullSession{sink: n}, nil }))
	n.srv.Domain = "null-sink.test"
	n.srv.ReadTimeout, n.srv.WriteTimeout = 30*time.Second, 30*time.Second
	n.srv.MaxMessageBytes = 1 << 20
	n.srv.ErrorLog = log0{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = n.srv.Serve(l) }()
	return n, nil
}

type log0 struct{}

func (log0) Printf(string, ...any) {}

func (log0) Println(...any) {}

func (n *nullSink) close() { _ = n.srv.Close() }

// take returns and forgets the code last mailed to addr.
func (n *nullSink) take(addr string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.codes[addr]
	delete(n.codes, addr)
	return c, ok
}

// keepPrefix starts the recipients whose codes the sink keeps: those of the
// reference-making initiations, so the sink's map does not grow during the
// initiate cells.
const keepPrefix = "ref"

type nullSession struct {
	sink *nullSink
	to   string
}

func (s *nullSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *nullSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}

func (s *nullSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	s.sink.count++
	if strings.HasPrefix(s.to, keepPrefix) {
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			if c := codeRE.Find(b[i:]); c != nil {
				s.sink.codes[s.to] = string(c)
			}
		}
	}
	return nil
}

func (s *nullSession) Reset() { s.to = "" }

func (s *nullSession) Logout() error { return nil }
