package emailotp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTemplateSelection(t *testing.T) {
	ts, err := newTemplateSet(&Template{
		Subject: "Code", Body: "Code {0}",
		Locales: map[string]*Template{
			"fi":    {Subject: "Koodi", Body: "Koodi {0}"},
			"sv-SE": {Subject: "Kod", Body: "Kod {0}"},
			"pt-BR": {Subject: "Código"}, // body falls back to the default's
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ui, subject, body string }{
		{"", "Code", "Code {0}"},
		{"fi", "Koodi", "Koodi {0}"},
		{"fi-FI", "Koodi", "Koodi {0}"},
		{"sv", "Kod", "Kod {0}"},
		{"de-DE fi", "Koodi", "Koodi {0}"},
		{"de", "Code", "Code {0}"},
		{"en-US", "Code", "Code {0}"},
		{"pt-BR", "Código", "Code {0}"},
		{"!!! ??? sv-SE", "Kod", "Kod {0}"},
		{strings.Repeat("x-y-z ", 50), "Code", "Code {0}"},
	} {
		mt := ts.pick(c.ui)
		if mt.subject != c.subject || mt.body != c.body {
			t.Errorf("pick(%q) = %q/%q, want %q/%q", c.ui, mt.subject, mt.body, c.subject, c.body)
		}
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mail.html")
	if err := os.WriteFile(file, []byte(`<html><body><h1>{{.Subject}}</h1><p>{{.Body}}</p><b>{{.Code}}</b></body></html>`), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := newTemplateSet(&Template{HTMLFile: file})
	if err != nil {
		t.Fatal(err)
	}
	o, err := ts.pick("").render("a@example.com", "12345678", "Hi <b>", `<script>alert(1)</script> {0}`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if o.text != "<script>alert(1)</script> 12345678" || o.subject != "Hi <b>" {
		t.Errorf("text = %q subject = %q", o.text, o.subject)
	}
	if strings.Contains(o.html, "<script>") || !strings.Contains(o.html, "&lt;script&gt;") || !strings.Contains(o.html, "<b>12345678</b>") {
		t.Errorf("html = %q", o.html)
	}
}

func TestMessageHeaders(t *testing.T) {
	m := &mailer{from: "Example <no-reply@example.com>"}
	msg, err := m.message(outgoing{to: "a@example.com", subject: "Kertakäyttösalasana", text: "Koodi 123"})
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if _, err := msg.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.String()
	for _, want := range []string{"Auto-Submitted: auto-generated", "Message-ID: <", "Date: ", "To: <a@example.com>",
		"Subject: =?UTF-8?q?", "Content-Type: text/plain; charset=UTF-8"} {
		if !strings.Contains(raw, want) {
			t.Errorf("message lacks %q:\n%s", want, raw)
		}
	}
	if _, err := m.message(outgoing{to: "a@example.com\r\nBcc: b@example.com"}); err == nil {
		t.Error("CR/LF in recipient accepted")
	}
}
