package emailotp

import (
	"errors"
	"net/mail"
	"strings"

	"golang.org/x/net/idna"
)

// address is a parsed, normalized mailbox: the local part as given and the
// domain lower-cased and IDNA-encoded (A-labels), so one mailbox has one
// spelling in tokens, limits and mails.
type address struct {
	Local  string
	Domain string
}

func (a address) String() string { return a.Local + "@" + a.Domain }

// key is the case-insensitive form used to count codes per address.
func (a address) key() string { return strings.ToLower(a.String()) }

// masked is the address as logs show it: j***@example.com.
func (a address) masked() string {
	if a.Local == "" {
		return "***@" + a.Domain
	}
	return a.Local[:1] + "***@" + a.Domain
}

var (
	errAddrEmpty      = errors.New("username is empty")
	errAddrControl    = errors.New("username contains control characters")
	errAddrTooLong    = errors.New("username is longer than 254 characters")
	errAddrSyntax     = errors.New("username is not an email address")
	errAddrName       = errors.New("username must be a bare address, without display name or angle brackets")
	errAddrQuoted     = errors.New("username with a quoted local part is not accepted")
	errAddrLocalLong  = errors.New("local part of username is longer than 64 characters")
	errAddrLocalASCII = errors.New("local part of username must be ASCII")
	errAddrDomain     = errors.New("domain of username is not a valid domain name")
)

// parseAddress accepts a bare addr-spec (RFC 5322 dot-atom local part) and
// nothing else: no display name, no comments, no quoted local part, no
// control characters. It refuses rather than guesses, since the result is
// both a mail recipient and a token subject.
func parseAddress(s string) (address, error) {
	if s == "" {
		return address{}, errAddrEmpty
	}
	if len(s) > 254 {
		return address{}, errAddrTooLong
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return address{}, errAddrControl
		}
	}
	if strings.ContainsAny(s, "<>()\" ,;") {
		if strings.ContainsAny(s, "<>") {
			return address{}, errAddrName
		}
		if strings.Contains(s, `"`) {
			return address{}, errAddrQuoted
		}
		return address{}, errAddrSyntax
	}
	parsed, err := mail.ParseAddress(s)
	if err != nil || parsed.Name != "" || parsed.Address != s {
		return address{}, errAddrSyntax
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 {
		return address{}, errAddrLocalLong
	}
	for i := 0; i < len(local); i++ {
		if local[i] >= 0x80 {
			return address{}, errAddrLocalASCII
		}
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil || !hostname(ascii) {
		return address{}, errAddrDomain
	}
	// The A-label form is what is mailed and signed: it, not the input,
	// must fit the 254 characters of an SMTP path.
	if len(local)+1+len(ascii) > 254 {
		return address{}, errAddrTooLong
	}
	return address{Local: local, Domain: strings.ToLower(ascii)}, nil
}

// hostname checks the A-label form the IDNA mapping produced: at least two
// labels of 1-63 letters, digits and inner hyphens, a TLD that is not all
// digits, 253 characters at most. The mapping alone lets through forms such
// as an empty punycode label ("xn--") that vanish on encoding.
func hostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if (c < 'a' || c > 'z') && (l[i] < '0' || l[i] > '9') && l[i] != '-' {
				return false
			}
		}
	}
	return !isDigits(labels[len(labels)-1])
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
