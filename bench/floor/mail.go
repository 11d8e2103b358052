package floor

import (
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is the mail the plugin sends, built the same way (mail.go).
func Message(to string) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP))
	if err := msg.From("Bench <no-reply@example.com>"); err != nil {
		return nil, err
	}
	if err := msg.To(to); err != nil {
		return nil, err
	}
	msg.Subject("Your code")
	msg.SetDate()
	msg.SetMessageID()
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(gomail.Header("X-Auto-Response-Suppress"), "All")
	msg.SetBodyString(gomail.TypeTextPlain, "Your code is 12345678")
	return msg, nil
}

// MailClient is a go-mail client set up as the plugin's (mail.go): no NOOP
// and no RSET around each mail, so raw sends and the plugin's sends speak
// the same SMTP.
func MailClient(port int) (*gomail.Client, error) {
	return gomail.NewClient("127.0.0.1", gomail.WithPort(port), gomail.WithTLSPolicy(gomail.NoTLS),
		gomail.WithTimeout(10*time.Second), gomail.WithoutNoop(), gomail.WithoutRset())
}
