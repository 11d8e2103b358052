package emailotp

// The mailpit runner lives in internal/testenv (mailpit.go, with its
// self-test); these are its names in this package's tests.

import (
	"testing"

	"github.com/caddy-email-otp/emailotp/internal/testenv"
)

type (
	mailpit    = testenv.Mailpit
	mpMessage  = testenv.MailpitMessage
	mpFull     = testenv.MailpitFull
	syncBuffer = testenv.SyncBuffer
)

func startMailpit(t testing.TB, extraArgs ...string) *mailpit {
	t.Helper()
	return testenv.StartMailpit(t, extraArgs...)
}

func mailpitBinary(t testing.TB) string   { t.Helper(); return testenv.MailpitBinary(t) }
func freePort(t testing.TB) int           { t.Helper(); return testenv.FreePort(t) }
func freePorts(t testing.TB, n int) []int { t.Helper(); return testenv.FreePorts(t, n) }
func codeFrom(t testing.TB, text string, n int) string {
	t.Helper()
	return testenv.CodeFrom(t, text, n)
}
