package testenv

import (
	"strconv"

	"github.com/emersion/go-smtp"
)

// How the fake SMTP server misbehaves, and the replies it misbehaves with.

// FakeMode selects how the fake SMTP server behaves.
type FakeMode int32

const (
	ModeOK FakeMode = iota
	ModeRejectRcpt
	ModeTempFailRcpt
	ModeAuthFail
	ModeDropData
	ModeSlow
	ModeSlowData
	ModeRejectData
	ModeTempFailData
	ModeRefuse
)

func (m FakeMode) String() string {
	switch m {
	case ModeOK:
		return "OK"
	case ModeRejectRcpt:
		return "RejectRcpt"
	case ModeTempFailRcpt:
		return "TempFailRcpt"
	case ModeAuthFail:
		return "AuthFail"
	case ModeDropData:
		return "DropData"
	case ModeSlow:
		return "Slow"
	case ModeSlowData:
		return "SlowData"
	case ModeRejectData:
		return "RejectData"
	case ModeTempFailData:
		return "TempFailData"
	case ModeRefuse:
		return "Refuse"
	}
	return "FakeMode(" + strconv.Itoa(int(m)) + ")"
}

// Replies used by the misbehaving modes.
var (
	fakeErrRejectRcpt = &smtp.SMTPError{
		Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "Mailbox unavailable",
	}
	fakeErrTempFailRcpt = &smtp.SMTPError{
		Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary local problem, try again later",
	}
	fakeErrAuthRequired = &smtp.SMTPError{
		Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required",
	}
	fakeErrRejectData = &smtp.SMTPError{
		Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Message rejected by policy",
	}
	fakeErrTempFailData = &smtp.SMTPError{
		Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary failure storing message, try again later",
	}
	// smtp.ErrAuthFailed is 535 5.7.8 "Authentication failed".
)
