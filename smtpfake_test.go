package emailotp

// The fake SMTP server lives in internal/testenv (smtpfake.go, with its
// self-test); these are its names in this package's tests.

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/caddy-email-otp/emailotp/internal/testenv"
)

type (
	fakeSMTP = testenv.FakeSMTP
	fakeMode = testenv.FakeMode
	fakeMsg  = testenv.FakeMsg
	fakeOpt  = testenv.FakeOpt
)

const (
	modeOK           = testenv.ModeOK
	modeRejectRcpt   = testenv.ModeRejectRcpt
	modeTempFailRcpt = testenv.ModeTempFailRcpt
	modeAuthFail     = testenv.ModeAuthFail
	modeDropData     = testenv.ModeDropData
	modeSlow         = testenv.ModeSlow
	modeSlowData     = testenv.ModeSlowData
	modeRejectData   = testenv.ModeRejectData
	modeTempFailData = testenv.ModeTempFailData
	modeRefuse       = testenv.ModeRefuse
)

func startFakeSMTP(t testing.TB, opts ...fakeOpt) *fakeSMTP {
	t.Helper()
	return testenv.StartFakeSMTP(t, opts...)
}

func withMode(m fakeMode) fakeOpt             { return testenv.WithMode(m) }
func withDelay(d time.Duration) fakeOpt       { return testenv.WithDelay(d) }
func withAuth(user, pass string) fakeOpt      { return testenv.WithAuth(user, pass) }
func withSTARTTLS(cfg *tls.Config) fakeOpt    { return testenv.WithSTARTTLS(cfg) }
func withImplicitTLS(cfg *tls.Config) fakeOpt { return testenv.WithImplicitTLS(cfg) }

// testCert is a fresh CA and a localhost certificate it signed
// (testenv.SelfSignedCert).
func testCert(t testing.TB) (serverTLS *tls.Config, caPEM []byte, certPEMFile, keyPEMFile string) {
	t.Helper()
	return testenv.SelfSignedCert(t)
}
