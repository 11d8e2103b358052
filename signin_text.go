package emailotp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// pageLocales picks the page language from Accept-Language among English
// and the mail template locales that have page strings.
type pageLocales struct {
	matcher language.Matcher
	tags    []language.Tag
	texts   []*pageText
}

// newPageLocales offers English (the default) and each template locale whose
// base language has shipped page strings or whose tag or base language has
// texts configured; a template locale "sv-SE" gets the Swedish strings and is
// announced as sv-SE. texts overrides strings by locale (a base language's
// overrides apply to its regional tags too; "en" to the default); a string
// not overridden is the shipped one, else the English one.
func newPageLocales(templateLocales []string, texts map[string]map[string]string) (*pageLocales, error) {
	if err := validateTexts(texts); err != nil {
		return nil, err
	}
	build := func(tag language.Tag, shipped *pageText) *pageText {
		t := *shipped
		base, _ := tag.Base()
		for _, key := range []string{base.String(), tag.String()} {
			if kv, ok := texts[key]; ok {
				b, _ := json.Marshal(kv)
				_ = json.Unmarshal(b, &t) // keys and values checked by validateTexts
			}
		}
		return &t
	}
	pl := &pageLocales{tags: []language.Tag{language.English}, texts: []*pageText{build(language.English, pageTexts["en"])}}
	for _, l := range slices.Sorted(slices.Values(templateLocales)) {
		tag, err := language.Parse(l)
		if err != nil {
			continue
		}
		base, _ := tag.Base()
		shipped, ok := pageTexts[base.String()]
		_, own := texts[tag.String()]
		_, ownBase := texts[base.String()]
		if !ok && (own || ownBase) {
			shipped, ok = pageTexts["en"], true
		}
		if ok {
			pl.tags = append(pl.tags, tag)
			pl.texts = append(pl.texts, build(tag, shipped))
		}
	}
	pl.matcher = language.NewMatcher(pl.tags)
	return pl, nil
}

// textKeys are the names the texts option accepts: pageText's JSON names.
var textKeys = func() map[string]bool {
	m := map[string]bool{}
	b, _ := json.Marshal(pageTexts["en"])
	var kv map[string]string
	_ = json.Unmarshal(b, &kv)
	for k := range kv {
		m[k] = true
	}
	return m
}()

// validateTexts checks configured page strings: a language tag, known keys,
// one line of at most 500 bytes, and exactly one %d (and no other verb) in
// the two strings that are formatted with a number.
func validateTexts(texts map[string]map[string]string) error {
	for tag, kv := range texts {
		if _, err := language.Parse(tag); err != nil {
			return fmt.Errorf("signin: texts %q: not a BCP 47 language tag", tag)
		}
		for k, v := range kv {
			if !textKeys[k] {
				return fmt.Errorf("signin: texts %s: unknown key %q", tag, k)
			}
			if len(v) > 500 || strings.ContainsFunc(v, isControl) {
				return fmt.Errorf("signin: texts %s %s: one line of at most 500 bytes", tag, k)
			}
			pct, verbs := strings.Count(v, "%"), strings.Count(v, "%d")
			if k == "code_valid" || k == "resend_wait" {
				if verbs != 1 || pct != 1 {
					return fmt.Errorf("signin: texts %s %s: needs exactly one %%d and no other %%", tag, k)
				}
			}
		}
	}
	return nil
}

// pick returns the best language for an Accept-Language header, English when
// nothing matches or the header is unusable.
func (pl *pageLocales) pick(acceptLanguage string) (language.Tag, *pageText) {
	if len(acceptLanguage) > 1024 {
		acceptLanguage = acceptLanguage[:1024]
	}
	want, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(want) == 0 {
		return pl.tags[0], pl.texts[0]
	}
	_, idx, conf := pl.matcher.Match(want...)
	if conf == language.No {
		return pl.tags[0], pl.texts[0]
	}
	return pl.tags[idx], pl.texts[idx]
}

// uiLocales turns the request's Accept-Language into the space-separated
// list the mail templates are picked by, best first, as the grant's
// ui_locales parameter.
func uiLocales(r *http.Request) string {
	al := r.Header.Get("Accept-Language")
	if len(al) > 1024 {
		al = al[:1024]
	}
	tags, _, err := language.ParseAcceptLanguage(al)
	if err != nil {
		return ""
	}
	var out []string
	for i, t := range tags {
		if i == 10 {
			break
		}
		out = append(out, t.String())
	}
	return strings.Join(out, " ")
}
