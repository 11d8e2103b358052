package emailotp

import (
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{"alice@example.com", "alice@example.com", nil},
		{"Alice.Smith+tag@Example.COM", "Alice.Smith+tag@example.com", nil},
		{"o'brien@example.ie", "o'brien@example.ie", nil},
		{"user@bücher.example", "user@xn--bcher-kva.example", nil},
		{"user@BÜCHER.example", "user@xn--bcher-kva.example", nil},
		{"user@xn--bcher-kva.example", "user@xn--bcher-kva.example", nil},
		{"", "", errAddrEmpty},
		{"Alice <alice@example.com>", "", errAddrName},
		{"<alice@example.com>", "", errAddrName},
		{`"alice smith"@example.com`, "", errAddrQuoted},
		{"alice@example.com\r\nBcc: x@example.com", "", errAddrControl},
		{"alice@example.com\n", "", errAddrControl},
		{"alice\x00@example.com", "", errAddrControl},
		{"alice@example.com (comment)", "", errAddrSyntax},
		{"alice@example.com, bob@example.com", "", errAddrSyntax},
		{"alice", "", errAddrSyntax},
		{"alice@", "", errAddrSyntax},
		{"@example.com", "", errAddrSyntax},
		{"alice@@example.com", "", errAddrSyntax},
		{"a..b@example.com", "", errAddrSyntax},
		{"alice@localhost", "", errAddrDomain},
		{"alice@exa_mple.com", "", errAddrDomain},
		{"0@Xn--.0", "", errAddrDomain},          // an empty punycode label vanishes
		{"alice@example.123", "", errAddrDomain}, // numeric TLD
		{"alice@-example.com", "", errAddrDomain},
		{"jöhn@example.com", "", errAddrLocalASCII},
		{strings.Repeat("a", 65) + "@example.com", "", errAddrLocalLong},
		{strings.Repeat("a", 1000) + "@example.com", "", errAddrTooLong},
	} {
		got, err := parseAddress(c.in)
		if err != c.err {
			t.Errorf("parseAddress(%q) error = %v, want %v", c.in, err, c.err)
			continue
		}
		if err == nil && got.String() != c.want {
			t.Errorf("parseAddress(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAddressKeyAndMask(t *testing.T) {
	a, _ := parseAddress("John.Doe@Example.com")
	b, _ := parseAddress("john.doe@example.COM")
	if a.key() != b.key() {
		t.Errorf("keys differ: %q %q", a.key(), b.key())
	}
	if m := a.masked(); m != "J***@example.com" || strings.Contains(m, "Doe") {
		t.Errorf("masked = %q", m)
	}
}
