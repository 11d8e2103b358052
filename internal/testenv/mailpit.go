package testenv

// Test harness around a real mailpit (https://github.com/axllent/mailpit)
// process. Integration tests send mail through the plugin's real SMTP code
// path and read it back over mailpit's HTTP API, instead of faking SMTP.
//
// The binary is pinned (scripts/install-mailpit.sh installs v1.33.1 into
// .bin/mailpit). A missing binary is a test failure, never a skip: a
// silently skipped e-mail suite would hide regressions.
//
// JSON shapes below were taken from live v1.33.1 responses, not from docs.
// All helpers call t.Fatal and so must run on the test goroutine.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// mailpitStartTimeout bounds how long startMailpit waits for the API and
// SMTP listeners to come up.
const mailpitStartTimeout = 15 * time.Second

// Mailpit is a running mailpit process owned by one test.
type Mailpit struct {
	SMTPHost string // always "127.0.0.1"
	SMTPPort int
	APIURL   string // e.g. "http://127.0.0.1:40123", no trailing slash

	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited
	out      *SyncBuffer   // combined stdout/stderr of the process
	stopOnce sync.Once
	client   *http.Client
	started  bool // startup succeeded; output is dumped on test failure
}

// MailpitMessage is one entry of the message summary list.
type MailpitMessage struct {
	ID      string
	Subject string
	From    string   // address only
	To      []string // addresses of the To header only
	Created time.Time
}

// MailpitFull is a fully fetched message.
type MailpitFull struct {
	ID        string
	MessageID string // Message-ID without angle brackets
	Subject   string
	From      string   // address only
	To        []string // addresses of the To header only
	Username  string   // SMTP AUTH username, "" if the client did not authenticate
	Text      string
	HTML      string
	Headers   map[string][]string // raw headers, keys canonicalized by mailpit
}

// Header returns the first value of the named header ("" if absent),
// matching the name case-insensitively.
func (m MailpitFull) Header(name string) string {
	if v := m.Headers[textproto.CanonicalMIMEHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	for k, v := range m.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Wire formats of mailpit v1.33.1 (GET /api/v1/messages, /api/v1/search,
// /api/v1/message/{ID}). Only the fields used here are declared.
type mpAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

type mpSummaryJSON struct {
	ID       string      `json:"ID"`
	Subject  string      `json:"Subject"`
	From     mpAddress   `json:"From"`
	To       []mpAddress `json:"To"`
	Created  time.Time   `json:"Created"`
	Username string      `json:"Username"`
}

type mpListJSON struct {
	Total         int             `json:"total"`
	MessagesCount int             `json:"messages_count"`
	Messages      []mpSummaryJSON `json:"messages"`
}

type mpMessageJSON struct {
	ID        string      `json:"ID"`
	MessageID string      `json:"MessageID"`
	Subject   string      `json:"Subject"`
	From      mpAddress   `json:"From"`
	To        []mpAddress `json:"To"`
	Username  string      `json:"Username"`
	Text      string      `json:"Text"`
	HTML      string      `json:"HTML"`
}

func addresses(as []mpAddress) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Address)
	}
	return out
}

// SyncBuffer is a bytes.Buffer safe for the exec package's copy goroutine
// writing while the test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct free ports. All listeners are held open until
// every port has been picked so the kernel cannot hand out the same one twice.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("freePort: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// MailpitBinary locates the mailpit executable: $MAILPIT_BIN, then
// <repo>/.bin/mailpit (the package sits at the repo root, which is the test
// working directory), then $PATH.
func MailpitBinary(t testing.TB) string {
	t.Helper()
	const hint = "run scripts/install-mailpit.sh to install mailpit v1.33.1 into .bin/mailpit"
	if p := os.Getenv("MAILPIT_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("MAILPIT_BIN=%q: %v (%s)", p, err, hint)
		}
		return p
	}
	if p, err := filepath.Abs(filepath.Join(repoRoot(), ".bin", "mailpit")); err == nil {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	t.Fatalf("mailpit binary not found (MAILPIT_BIN unset, no .bin/mailpit, not in PATH): %s", hint)
	return ""
}

// StartMailpit starts a private mailpit on fresh loopback ports and stops it
// when the test ends. SMTP accepts unauthenticated mail, and also accepts any
// credentials if a client authenticates (over plain text too, unless TLS is
// required). extraArgs are appended, e.g. "--smtp-tls-cert", f,
// "--smtp-tls-key", k, "--smtp-require-starttls" or "--smtp-require-tls".
// If mailpit fails to bind (another process took a port between pick and
// bind) it is retried on new ports.
func StartMailpit(t testing.TB, extraArgs ...string) *Mailpit {
	t.Helper()
	bin := MailpitBinary(t)
	const attempts = 3
	var lastErr error
	for range attempts {
		m, err := tryStartMailpit(t, bin, extraArgs)
		if err == nil {
			return m
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) {
			break
		}
	}
	t.Fatalf("startMailpit: %v", lastErr)
	return nil
}

var errPortInUse = errors.New("mailpit could not bind its port")

// requiresTLS reports whether args make mailpit require (STARTTLS or
// implicit) TLS on SMTP. mailpit v1.33.1 refuses to start when that is
// combined with --smtp-auth-allow-insecure ("TLS cannot be required with
// --smtp-auth-allow-insecure"), so that flag is left out in this case; it is
// not needed then, AUTH always happens inside TLS.
func requiresTLS(args []string) bool {
	for _, a := range args {
		name, val, _ := strings.Cut(a, "=")
		if (name == "--smtp-require-starttls" || name == "--smtp-require-tls") && val != "false" {
			return true
		}
	}
	return false
}

func tryStartMailpit(t testing.TB, bin string, extraArgs []string) (*Mailpit, error) {
	t.Helper()
	ports := FreePorts(t, 2)
	m := &Mailpit{
		SMTPHost: "127.0.0.1",
		SMTPPort: ports[1],
		APIURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		done:     make(chan struct{}),
		out:      &SyncBuffer{},
		client:   &http.Client{Timeout: 5 * time.Second},
	}
	args := []string{
		"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--smtp", net.JoinHostPort(m.SMTPHost, strconv.Itoa(m.SMTPPort)),
		"--smtp-auth-accept-any", // no AUTH required; any credentials accepted
		// No in-memory mode exists; a TempDir file is removed with the test.
		"--database", filepath.Join(t.TempDir(), "mailpit.db"),
		"--disable-version-check", // no network calls to GitHub
		"--smtp-disable-rdns",     // no reverse DNS lookup per connection
	}
	if !requiresTLS(extraArgs) {
		args = append(args, "--smtp-auth-allow-insecure") // AUTH PLAIN/LOGIN without TLS
	}
	args = append(args, extraArgs...)
	m.cmd = exec.Command(bin, args...)
	m.cmd.Stdout = m.out
	m.cmd.Stderr = m.out
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() {
		m.Stop()
		if m.started && t.Failed() {
			t.Logf("mailpit %v output:\n%s", args, m.out.String())
		}
	})

	smtpAddr := net.JoinHostPort(m.SMTPHost, strconv.Itoa(m.SMTPPort))
	deadline := time.Now().Add(mailpitStartTimeout)
	for {
		select {
		case <-m.done:
			out := m.out.String()
			err := fmt.Errorf("mailpit exited during startup (%v)", m.cmd.ProcessState)
			if strings.Contains(out, "address already in use") {
				err = fmt.Errorf("%w: %w", errPortInUse, err)
			}
			return nil, fmt.Errorf("%w; args %v; output:\n%s", err, args, out)
		default:
		}
		if m.ready(smtpAddr) {
			m.started = true
			return m, nil
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, fmt.Errorf("mailpit not ready after %v; args %v; output:\n%s",
				mailpitStartTimeout, args, m.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether both the API answers and the SMTP port accepts TCP
// connections (no banner is read: with --smtp-require-tls it is TLS-only).
func (m *Mailpit) ready(smtpAddr string) bool {
	resp, err := m.client.Get(m.APIURL + "/api/v1/messages")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", smtpAddr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop kills mailpit and waits for it to exit, so tests can simulate the SMTP
// server being down. Safe to call more than once.
func (m *Mailpit) Stop() {
	m.stopOnce.Do(func() {
		_ = m.cmd.Process.Kill()
		<-m.done
	})
}

// api performs an API request and decodes a JSON response into out (if
// non-nil). Any transport error or non-2xx status fails the test.
func (m *Mailpit) api(t testing.TB, method, path string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, m.APIURL+path, nil)
	if err != nil {
		t.Fatalf("mailpit %s %s: %v", method, path, err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatalf("mailpit %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("mailpit %s %s: reading body: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("mailpit %s %s: %s: %s", method, path, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("mailpit %s %s: decoding %q: %v", method, path, body, err)
		}
	}
}

// DeleteAll removes every stored message.
func (m *Mailpit) DeleteAll(t testing.TB) {
	t.Helper()
	m.api(t, http.MethodDelete, "/api/v1/messages", nil)
}

// Messages returns the stored messages, newest first (first 500).
func (m *Mailpit) Messages(t testing.TB) []MailpitMessage {
	t.Helper()
	var l mpListJSON
	m.api(t, http.MethodGet, "/api/v1/messages?limit=500", &l)
	return summaries(l.Messages)
}

func summaries(in []mpSummaryJSON) []MailpitMessage {
	out := make([]MailpitMessage, 0, len(in))
	for _, s := range in {
		out = append(out, MailpitMessage{
			ID:      s.ID,
			Subject: s.Subject,
			From:    s.From.Address,
			To:      addresses(s.To),
			Created: s.Created,
		})
	}
	return out
}

// MessagesTo returns messages whose To header contains exactly addr
// (case-insensitive), newest first. mailpit's to: search is a substring
// match ("bob@x" also finds "jimbob@x") so results are filtered here.
// Envelope-only recipients show up as Bcc and are not matched.
func (m *Mailpit) MessagesTo(t testing.TB, addr string) []MailpitMessage {
	t.Helper()
	q := url.Values{
		"query": {fmt.Sprintf("to:%q", addr)},
		"limit": {"500"},
	}
	var l mpListJSON
	m.api(t, http.MethodGet, "/api/v1/search?"+q.Encode(), &l)
	var out []MailpitMessage
	for _, s := range summaries(l.Messages) {
		for _, to := range s.To {
			if strings.EqualFold(to, addr) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Count returns how many stored messages are addressed (To) exactly to addr.
func (m *Mailpit) Count(t testing.TB, to string) int {
	t.Helper()
	return len(m.MessagesTo(t, to))
}

// WaitFor polls until a message addressed (To) to the given address exists,
// then returns the newest such message in full. It fails the test after
// timeout. Delivery is asynchronous from the sender's point of view, hence
// polling rather than a single lookup.
func (m *Mailpit) WaitFor(t testing.TB, to string, timeout time.Duration) MailpitFull {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if msgs := m.MessagesTo(t, to); len(msgs) > 0 {
			newest := msgs[0] // API order is newest first; Created breaks ties safely
			for _, s := range msgs[1:] {
				if s.Created.After(newest.Created) {
					newest = s
				}
			}
			return m.Fetch(t, newest.ID)
		}
		if time.Now().After(deadline) {
			var have []string
			for _, s := range m.Messages(t) {
				have = append(have, fmt.Sprintf("%v %q", s.To, s.Subject))
			}
			t.Fatalf("mailpit: no message to %q within %v; stored: %v", to, timeout, have)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Fetch returns one message with its raw headers.
func (m *Mailpit) Fetch(t testing.TB, id string) MailpitFull {
	t.Helper()
	var msg mpMessageJSON
	m.api(t, http.MethodGet, "/api/v1/message/"+url.PathEscape(id), &msg)
	var hdr map[string][]string
	m.api(t, http.MethodGet, "/api/v1/message/"+url.PathEscape(id)+"/headers", &hdr)
	return MailpitFull{
		ID:        msg.ID,
		MessageID: msg.MessageID,
		Subject:   msg.Subject,
		From:      msg.From.Address,
		To:        addresses(msg.To),
		Username:  msg.Username,
		Text:      msg.Text,
		HTML:      msg.HTML,
		Headers:   hdr,
	}
}

// CodeFrom returns the first run of exactly n consecutive ASCII digits in
// text: digits that are part of a longer run (an order number, a timestamp)
// are skipped. It fails the test if there is none.
func CodeFrom(t testing.TB, text string, n int) string {
	t.Helper()
	for i := 0; i < len(text); {
		if text[i] < '0' || text[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j-i == n {
			return text[i:j]
		}
		i = j
	}
	t.Fatalf("codeFrom: no run of exactly %d digits in %q", n, text)
	return ""
}

// repoRoot is the nearest directory at or above the working directory that
// holds a go.mod: the plugin's root for its tests and for this package's.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
