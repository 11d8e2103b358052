package testenv

// Test harness around a real mailpit (https://github.com/axllent/mailpit)
// process. Integration tests send mail through the plugin's real SMTP code
// path and read it back over mailpit's HTTP API, instead of faking SMTP.
//
// The binary is pinned (scripts/install-mailpit.sh installs v1.33.1 into
// .bin/mailpit). A missing binary is a test failure, never a skip: a
// silently skipped e-mail suite would hide regressions.
//
// All helpers call t.Fatal and so must run on the test goroutine.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
