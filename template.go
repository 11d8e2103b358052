package emailotp

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"os"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/language"
)

// Template is a mail: subject and text body, with `{0}` where the code goes,
// and optionally an HTML alternative. Locales holds variants by BCP 47 tag,
// chosen by the request's ui_locales.
type Template struct {
	// Subject of the mail. Default: "Your one-time password"
	Subject string `json:"subject,omitempty"`

	// Body of the text part, with {0} where the code goes.
	// Default: "Your one-time password is {0}"
	Body string `json:"body,omitempty"`

	// HTMLFile is an html/template file, given .Subject, .Body (the text body
	// with the code, escaped) and .Code, for an HTML alternative.
	// Default: no HTML part.
	HTMLFile string `json:"html_file,omitempty"`

	// Locales are variants by language tag (fi, sv-SE…), whose empty fields
	// are the default template's. Default: none.
	Locales map[string]*Template `json:"locale,omitempty"`
}

const (
	defaultSubject  = "Your one-time password"
	defaultBody     = "Your one-time password is {0}"
	maxTitleLength  = 255
	maxBodyLength   = 8192
	codePlaceholder = "{0}"
)

func (t *Template) validate() error {
	if t == nil {
		return nil
	}
	check := func(where string, v *Template) error {
		if v.Body != "" && !strings.Contains(v.Body, codePlaceholder) {
			return fmt.Errorf("template%s: body must contain {0} where the code goes", where)
		}
		if strings.ContainsAny(v.Subject, "\r\n") {
			return fmt.Errorf("template%s: subject must be one line", where)
		}
		return nil
	}
	if err := check("", t); err != nil {
		return err
	}
	for tag, v := range t.Locales {
		if _, err := language.Parse(tag); err != nil {
			return fmt.Errorf("template locale %q: not a BCP 47 language tag", tag)
		}
		if v == nil {
			return fmt.Errorf("template locale %q: empty", tag)
		}
		if err := check(" locale "+tag, v); err != nil {
			return err
		}
	}
	return nil
}

// mailTemplate is a Template ready to render: HTML parsed once.
type mailTemplate struct {
	subject string
	body    string
	html    *htmltemplate.Template
}

// templateSet picks the template for a request's ui_locales.
type templateSet struct {
	matcher language.Matcher
	tags    []string
	byIndex []*mailTemplate // index 0 is the default template
}

func newTemplateSet(t *Template) (*templateSet, error) {
	if t == nil {
		t = &Template{}
	}
	def, err := prepareTemplate(t, &mailTemplate{subject: defaultSubject, body: defaultBody})
	if err != nil {
		return nil, err
	}
	ts := &templateSet{byIndex: []*mailTemplate{def}}
	supported := []language.Tag{language.Und}
	for _, tag := range slices.Sorted(maps.Keys(t.Locales)) {
		v := t.Locales[tag]
		mt, err := prepareTemplate(v, def)
		if err != nil {
			return nil, fmt.Errorf("template locale %s: %w", tag, err)
		}
		lt := language.Make(tag)
		supported = append(supported, lt)
		ts.tags = append(ts.tags, lt.String())
		ts.byIndex = append(ts.byIndex, mt)
	}
	ts.matcher = language.NewMatcher(supported)
	return ts, nil
}

func prepareTemplate(t *Template, fallback *mailTemplate) (*mailTemplate, error) {
	mt := *fallback
	if t.Subject != "" {
		mt.subject = t.Subject
	}
	if t.Body != "" {
		mt.body = t.Body
	}
	if t.HTMLFile != "" {
		src, err := os.ReadFile(t.HTMLFile)
		if err != nil {
			return nil, fmt.Errorf("html_file: %w", err)
		}
		if mt.html, err = htmltemplate.New(t.HTMLFile).Parse(string(src)); err != nil {
			return nil, fmt.Errorf("html_file: %w", err)
		}
	}
	return &mt, nil
}

// pick returns the template for the best match of the space-separated
// ui_locales; unparseable tags are ignored, and no match gives the default.
func (ts *templateSet) pick(uiLocales string) *mailTemplate {
	if len(ts.byIndex) == 1 || uiLocales == "" {
		return ts.byIndex[0]
	}
	var want []language.Tag
	for i, f := range strings.Fields(uiLocales) {
		if i == 10 {
			break
		}
		if t, err := language.Parse(f); err == nil {
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		return ts.byIndex[0]
	}
	_, idx, conf := ts.matcher.Match(want...)
	if conf == language.No {
		return ts.byIndex[0]
	}
	return ts.byIndex[idx]
}

func (ts *templateSet) locales() []string { return ts.tags }

// outgoing is one rendered mail.
type outgoing struct {
	to      string
	subject string
	text    string
	html    string
}

// linkPlaceholder is where a body puts the sign-in link, when the sign-in
// page mails one (signin mail_link); a body without it gets the link in a
// paragraph of its own at the end.
const linkPlaceholder = "{1}"

// render fills the code (and the link, if any) into the text (and HTML)
// body. A request-supplied title or body replaces the template's, still
// inside the template's HTML, which sees the link as .Link.
func (mt *mailTemplate) render(to, code, title, body, link, linkIntro string) (outgoing, error) {
	o := outgoing{to: to, subject: mt.subject, text: mt.body}
	if title != "" {
		o.subject = title
	}
	if body != "" {
		o.text = body
	}
	o.text = strings.ReplaceAll(o.text, codePlaceholder, code)
	linkURL := link
	if link != "" {
		if strings.Contains(o.text, linkPlaceholder) {
			o.text = strings.ReplaceAll(o.text, linkPlaceholder, link)
		} else {
			if linkIntro != "" {
				link = linkIntro + "\n" + link
			}
			o.text += "\n\n" + link
		}
	}
	if mt.html != nil {
		var buf bytes.Buffer
		err := mt.html.Execute(&buf, struct{ Subject, Body, Code, Link string }{o.subject, o.text, code, linkURL})
		if err != nil {
			return o, err
		}
		o.html = buf.String()
	}
	return o, nil
}

// isControl refuses C0 and C1 controls and the Unicode line and paragraph
// separators, which some mail clients render as line breaks.
func isControl(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }
