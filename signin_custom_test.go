package emailotp

// The operator's page (issue 13 item 4) without a browser: option names
// (Caddyfile = JSON), their validation, the languages and per-locale texts,
// a template file and its data model, and the routes the new features add.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignInAssetErrors(t *testing.T) {
	// Files are read at provision: a missing or unusable one fails there.
	dir := t.TempDir()
	bmp := filepath.Join(dir, "logo.bmp")
	bad := filepath.Join(dir, "bad.html")
	big := filepath.Join(dir, "big.css")
	must0(t, os.WriteFile(bmp, []byte("BM"), 0o644))
	must0(t, os.WriteFile(bad, []byte(`{{.NoSuchField}}`), 0o644))
	must0(t, os.WriteFile(big, make([]byte, maxAssetBytes+1), 0o644))
	for _, c := range []struct {
		cfg     pageLook
		wantErr string
	}{
		{pageLook{Logo: bmp}, "want a .png"},
		{pageLook{Logo: filepath.Join(dir, "none.png")}, "no such file"},
		{pageLook{TemplateFile: bad}, "NoSuchField"},
		{pageLook{CSS: big}, "larger than"},
	} {
		if _, err := loadPageAssets(c.cfg); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.wantErr)
		}
	}
}

func TestSignInLanguagesAndTexts(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, `
	email_otp {
		smtp {
			host 127.0.0.1
			port `+strconv.Itoa(mp.SMTPPort)+`
			tls none
			from "Test <no-reply@example.com>"
		}
		template {
			locale de "Ihr Code" "Ihr Code: {0}"
			locale fr "Votre code" "Votre code : {0}"
			locale es "Su código" "Su código: {0}"
			locale nl-BE "Uw code" "Uw code: {0}"
			locale fi "Koodi" "Koodi: {0}"
			locale it "Codice" "Codice: {0}"
		}
		client app app-secret
		signin {
			texts fi {
				sign_in "Tervetuloa"
			}
			texts it {
				send_code "Invia il codice"
			}
			texts en {
				email_hint "Use your work address."
			}
		}
	}
`)
	b := newBrowserless(t, tc.Base)
	for _, c := range []struct{ accept, lang, want, not string }{
		{"de-DE,de;q=0.9", "de", "<h1>Anmelden</h1>", ""},
		{"fr", "fr", "<h1>Se connecter</h1>", ""},
		{"es-ES", "es", "<h1>Iniciar sesión</h1>", ""},
		{"nl", "nl-BE", "<h1>Inloggen</h1>", ""},
		{"fi", "fi", "<h1>Tervetuloa</h1>", "Kirjaudu sisään</h1>"},
		{"fi", "fi", "Lähetä koodi", ""},                             // not overridden: shipped Finnish
		{"it", "it", "Invia il codice", ""},                          // no shipped Italian: overrides over English
		{"it", "it", "<h1>Sign in</h1>", ""},                         // ... and English for the rest
		{"en", "en", "Use your work address.", "We will send"},       // English overridden
		{"sv", "en", "<h1>Sign in</h1>", ""},                         // no Swedish mail template: no Swedish page
		{"de", "de", "Wir senden einen Einmalcode", "Use your work"}, // en overrides stay English
	} {
		a := b.do(http.MethodGet, signinPath, nil, map[string]string{"Accept-Language": c.accept})
		if !strings.Contains(a.Body, `<html lang="`+c.lang+`">`) || !strings.Contains(a.Body, c.want) ||
			(c.not != "" && strings.Contains(a.Body, c.not)) {
			t.Errorf("Accept-Language %s: want lang %s with %q without %q:\n%s", c.accept, c.lang, c.want, c.not, a.Body)
		}
	}
	// Every shipped language has every string, and the formatted ones one %d.
	for _, lang := range []string{"en", "fi", "sv", "de", "fr", "es", "nl"} {
		txt := pageTexts[lang]
		if txt == nil {
			t.Fatalf("no %s texts", lang)
		}
		raw, _ := json.Marshal(txt)
		var kv map[string]string
		_ = json.Unmarshal(raw, &kv)
		if err := validateTexts(map[string]map[string]string{lang: kv}); err != nil {
			t.Errorf("%s: %v", lang, err)
		}
		for k, v := range kv {
			if v == "" {
				t.Errorf("%s %s is empty", lang, k)
			}
		}
	}
}

func TestSignInTemplateFile(t *testing.T) {
	mp := startMailpit(t)
	page := filepath.Join(t.TempDir(), "page.html")
	must0(t, os.WriteFile(page, []byte(`<!doctype html><html lang="{{.Lang}}"><title>{{.Title}}</title>
<p id="view">{{.View}}</p>
{{if eq .View "address"}}<form method="post" action="{{.Base}}/start"><input type="hidden" name="csrf" value="{{.CSRF}}"><input name="email"><button>{{.T.SendCode}}</button></form>{{end}}
{{if eq .View "code"}}<p id="to">{{.Email}}</p><p id="valid">{{.CodeValid}}</p><p id="resend">{{.Resend}} {{.ResendAfter}}</p><input type="hidden" name="reference" value="{{.Reference}}">{{end}}
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}</html>`), 0o644))
	tc := startCaddy(t, otpSite(mp.SMTPPort, `
		signin {
			client app
			template_file `+page+`
			resend_cooldown 40s
		}
`))
	b := newBrowserless(t, tc.Base)
	a := b.do(http.MethodGet, signinPath, nil, nil)
	if !strings.Contains(a.Body, `<p id="view">address</p>`) || !strings.Contains(a.Body, "<button>Send code</button>") || a.field("csrf") == "" {
		t.Fatalf("custom address page: %s", a.Body)
	}
	a = b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {"tpl@example.com"}, "csrf": {a.field("csrf")}}, nil)
	for _, want := range []string{`<p id="view">code</p>`, `<p id="to">tpl@example.com</p>`, `valid for 10 minutes`, `<p id="resend">true 40</p>`} {
		if !strings.Contains(a.Body, want) {
			t.Errorf("custom code page lacks %s:\n%s", want, a.Body)
		}
	}
	if a.field("reference") == "" {
		t.Error("custom code page has no reference")
	}
}

func TestSignInNewRoutes(t *testing.T) {
	mp := startMailpit(t)
	tc := startCaddy(t, "")
	tc.load(t, otpSite(mp.SMTPPort, `
		signin {
			client app
			mail_link `+tc.Base+`
		}
`))
	b := newBrowserless(t, tc.Base)
	js := b.do(http.MethodGet, signinPath+"/page.js", nil, nil)
	if js.Status != 200 || js.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(js.Body, "resend-wait") {
		t.Errorf("page.js: %d %s", js.Status, js.Header.Get("Content-Type"))
	}
	if a := b.do(http.MethodGet, signinPath+"/logo", nil, nil); a.Status != 404 {
		t.Errorf("logo without a logo: %d", a.Status)
	}
	if a := b.do(http.MethodDelete, signinPath+"/link", nil, nil); a.Status != 405 || a.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("DELETE link: %d Allow %q", a.Status, a.Header.Get("Allow"))
	}
	if a := b.do(http.MethodGet, signinPath+"/resend", nil, nil); a.Status != 405 {
		t.Errorf("GET resend: %d", a.Status)
	}
	csrf := b.do(http.MethodGet, signinPath, nil, nil).field("csrf")
	start := b.do(http.MethodPost, signinPath+"/start", url.Values{"email": {"route@example.com"}, "csrf": {csrf}}, nil)
	bind := b.cookie(DefaultSessionCookie + "_link")
	if start.Status != 200 || bind == nil {
		t.Fatalf("start: %d, binding cookie %v", start.Status, bind)
	}
	link := mailedLink(t, mp.WaitFor(t, "route@example.com", 10*time.Second).Text)
	lu, _ := url.Parse(link)
	form := url.Values{"reference": {lu.Query().Get("reference")}, "code": {lu.Query().Get("code")}}

	// Another client (no binding cookie, its own CSRF): refused, nothing spent.
	o := newBrowserless(t, tc.Base)
	ocsrf := o.do(http.MethodGet, signinPath, nil, nil).field("csrf")
	form.Set("csrf", ocsrf)
	if a := o.do(http.MethodPost, signinPath+"/link", form, nil); a.Status != http.StatusForbidden || !strings.Contains(a.Body, `id="link-code"`) {
		t.Errorf("link POST without the binding: %d", a.Status)
	}
	// Without the CSRF token the binding browser is refused too.
	form.Del("csrf")
	if a := b.do(http.MethodPost, signinPath+"/link", form, nil); a.Status != http.StatusForbidden {
		t.Errorf("link POST without CSRF: %d", a.Status)
	}
	form.Set("csrf", csrf)
	a := b.do(http.MethodPost, signinPath+"/link", form, nil)
	if a.Status != http.StatusSeeOther || b.cookie(DefaultSessionCookie) == nil {
		t.Fatalf("link POST in the binding browser: %d %s", a.Status, a.Body)
	}
}
