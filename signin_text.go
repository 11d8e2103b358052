package emailotp

import (
	"net/http"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// pageText is every string the sign-in pages show, in one language.
type pageText struct {
	SignIn, EmailLabel, EmailHint, SendCode                     string
	CodeSentTo, CodeValid, CodeLabel, CodeHint, Verify          string
	UseAnother, SignedInAs, Continue, SignOut, SignedOut, Again string
	ErrAddress, ErrDomain, ErrRefused, ErrRateLimit, ErrMail    string
	ErrCode, ErrCodeFormat, ErrStale, ErrUnavailable            string
	ErrCSRF, ErrForm, ErrNotFound, ErrMethod                    string
	SignOutAsk, StaySignedIn                                    string
	SignOutAll, SignOutAllHint, SignedOutAll                    string
}

// pageTexts are the shipped languages, by base language. The pages offer a
// language only when the mail templates have a locale for it too, so the
// page and the mail speak the same language; English is the default.
var pageTexts = map[string]*pageText{
	"en": {
		SignIn:         "Sign in",
		EmailLabel:     "Email address",
		EmailHint:      "We will send a one-time code to this address.",
		SendCode:       "Send code",
		CodeSentTo:     "We sent a one-time code to",
		CodeValid:      "Enter it below. It is valid for %d minutes.",
		CodeLabel:      "One-time code",
		CodeHint:       "Digits only, as in the mail.",
		Verify:         "Sign in",
		UseAnother:     "Use another address",
		SignedInAs:     "You are signed in as",
		Continue:       "Continue",
		SignOut:        "Sign out",
		SignedOut:      "You are signed out.",
		Again:          "Sign in again",
		ErrAddress:     "Enter a valid email address, like name@example.com.",
		ErrDomain:      "This address cannot be used to sign in here.",
		ErrRefused:     "The mail server refused this address. Check it and try again.",
		ErrRateLimit:   "Too many codes were requested. Try again later.",
		ErrMail:        "The code could not be sent. Try again in a moment.",
		ErrCode:        "The code is not correct. Check it and try again.",
		ErrCodeFormat:  "Enter the code from the mail, digits only.",
		ErrStale:       "This code can no longer be used. Request a new one.",
		ErrUnavailable: "Sign-in is unavailable for a moment. Try again.",
		ErrCSRF:        "This form has expired. Go back to the sign-in page and try again.",
		ErrForm:        "The form could not be read. Go back to the sign-in page and try again.",
		ErrNotFound:    "There is no such page.",
		ErrMethod:      "This page cannot be used that way.",
		SignOutAsk:     "Do you want to sign out?",
		StaySignedIn:   "Stay signed in",
		SignOutAll:     "Sign out everywhere",
		SignOutAllHint: "Signing out everywhere ends your sessions in every browser and on every device.",
		SignedOutAll:   "You are signed out in every browser and on every device.",
	},
	"fi": {
		SignIn:         "Kirjaudu sisään",
		EmailLabel:     "Sähköpostiosoite",
		EmailHint:      "Lähetämme tähän osoitteeseen kertakäyttöisen koodin.",
		SendCode:       "Lähetä koodi",
		CodeSentTo:     "Lähetimme kertakäyttöisen koodin osoitteeseen",
		CodeValid:      "Kirjoita se alle. Koodi on voimassa %d minuuttia.",
		CodeLabel:      "Kertakäyttöinen koodi",
		CodeHint:       "Pelkät numerot, kuten viestissä.",
		Verify:         "Kirjaudu",
		UseAnother:     "Käytä toista osoitetta",
		SignedInAs:     "Olet kirjautunut sisään osoitteella",
		Continue:       "Jatka",
		SignOut:        "Kirjaudu ulos",
		SignedOut:      "Olet kirjautunut ulos.",
		Again:          "Kirjaudu uudelleen",
		ErrAddress:     "Anna kelvollinen sähköpostiosoite, esimerkiksi nimi@example.com.",
		ErrDomain:      "Tällä osoitteella ei voi kirjautua tähän palveluun.",
		ErrRefused:     "Sähköpostipalvelin ei hyväksynyt osoitetta. Tarkista se ja yritä uudelleen.",
		ErrRateLimit:   "Koodeja on pyydetty liian monta. Yritä myöhemmin uudelleen.",
		ErrMail:        "Koodia ei voitu lähettää. Yritä hetken kuluttua uudelleen.",
		ErrCode:        "Koodi ei ole oikein. Tarkista se ja yritä uudelleen.",
		ErrCodeFormat:  "Kirjoita viestissä saamasi koodi, pelkät numerot.",
		ErrStale:       "Tätä koodia ei voi enää käyttää. Pyydä uusi koodi.",
		ErrUnavailable: "Kirjautuminen ei juuri nyt onnistu. Yritä uudelleen.",
		ErrCSRF:        "Lomake on vanhentunut. Palaa kirjautumissivulle ja yritä uudelleen.",
		ErrForm:        "Lomaketta ei voitu lukea. Palaa kirjautumissivulle ja yritä uudelleen.",
		ErrNotFound:    "Sivua ei ole.",
		ErrMethod:      "Tätä sivua ei voi käyttää näin.",
		SignOutAsk:     "Haluatko kirjautua ulos?",
		StaySignedIn:   "Pysy kirjautuneena",
		SignOutAll:     "Kirjaudu ulos kaikkialta",
		SignOutAllHint: "Uloskirjautuminen kaikkialta päättää istuntosi kaikissa selaimissa ja laitteissa.",
		SignedOutAll:   "Olet kirjautunut ulos kaikista selaimista ja laitteista.",
	},
	"sv": {
		SignIn:         "Logga in",
		EmailLabel:     "E-postadress",
		EmailHint:      "Vi skickar en engångskod till den här adressen.",
		SendCode:       "Skicka kod",
		CodeSentTo:     "Vi skickade en engångskod till",
		CodeValid:      "Skriv in den nedan. Den gäller i %d minuter.",
		CodeLabel:      "Engångskod",
		CodeHint:       "Endast siffror, som i meddelandet.",
		Verify:         "Logga in",
		UseAnother:     "Använd en annan adress",
		SignedInAs:     "Du är inloggad som",
		Continue:       "Fortsätt",
		SignOut:        "Logga ut",
		SignedOut:      "Du är utloggad.",
		Again:          "Logga in igen",
		ErrAddress:     "Ange en giltig e-postadress, till exempel namn@example.com.",
		ErrDomain:      "Den här adressen kan inte användas för att logga in här.",
		ErrRefused:     "E-postservern godtog inte adressen. Kontrollera den och försök igen.",
		ErrRateLimit:   "För många koder har begärts. Försök igen senare.",
		ErrMail:        "Koden kunde inte skickas. Försök igen om en stund.",
		ErrCode:        "Koden är inte korrekt. Kontrollera den och försök igen.",
		ErrCodeFormat:  "Skriv koden från meddelandet, endast siffror.",
		ErrStale:       "Den här koden kan inte längre användas. Begär en ny kod.",
		ErrUnavailable: "Inloggningen är inte tillgänglig just nu. Försök igen.",
		ErrCSRF:        "Formuläret har gått ut. Gå tillbaka till inloggningssidan och försök igen.",
		ErrForm:        "Formuläret kunde inte läsas. Gå tillbaka till inloggningssidan och försök igen.",
		ErrNotFound:    "Sidan finns inte.",
		ErrMethod:      "Sidan kan inte användas så.",
		SignOutAsk:     "Vill du logga ut?",
		StaySignedIn:   "Förbli inloggad",
		SignOutAll:     "Logga ut överallt",
		SignOutAllHint: "Att logga ut överallt avslutar dina sessioner i alla webbläsare och på alla enheter.",
		SignedOutAll:   "Du är utloggad i alla webbläsare och på alla enheter.",
	},
}

// pageLocales picks the page language from Accept-Language among English
// and the mail template locales that have shipped page strings.
type pageLocales struct {
	matcher language.Matcher
	tags    []language.Tag
	texts   []*pageText
}

// newPageLocales offers English (the default) and each template locale whose
// base language has page strings; a template locale "sv-SE" gets the Swedish
// strings and is announced as sv-SE.
func newPageLocales(templateLocales []string) *pageLocales {
	pl := &pageLocales{tags: []language.Tag{language.English}, texts: []*pageText{pageTexts["en"]}}
	sorted := slices.Sorted(slices.Values(templateLocales))
	for _, l := range sorted {
		tag, err := language.Parse(l)
		if err != nil {
			continue
		}
		base, _ := tag.Base()
		if txt, ok := pageTexts[base.String()]; ok {
			pl.tags = append(pl.tags, tag)
			pl.texts = append(pl.texts, txt)
		}
	}
	pl.matcher = language.NewMatcher(pl.tags)
	return pl
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
