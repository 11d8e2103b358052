package emailotp

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pageAssets are one sign-in page's markup, stylesheet and logo, read at
// provision: the operator's files, else the built-in ones. Serving them
// touches no disk.
type pageAssets struct {
	page     *template.Template
	style    []byte
	logo     []byte
	logoType string
}

// maxAssetBytes bounds each file the page reads (logo, CSS, template).
const maxAssetBytes = 512 << 10

// logoTypes are the image types a logo may have, by file extension.
var logoTypes = map[string]string{
	".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
	".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
}

// pageLook names the files and colour a page's look comes from, as
// SignInConfig gives them.
type pageLook struct {
	Path, Logo, TemplateFile, AccentColor, CSS string
}

// loadPageAssets reads the configured logo, CSS and template files.
func loadPageAssets(s pageLook) (*pageAssets, error) {
	a := &pageAssets{page: signinPage, style: signinStyle}
	read := func(what, name string) ([]byte, error) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("signin: %s: %w", what, err)
		}
		if len(b) > maxAssetBytes {
			return nil, fmt.Errorf("signin: %s %s: larger than %d bytes", what, name, maxAssetBytes)
		}
		return b, nil
	}
	if s.Logo != "" {
		typ, ok := logoTypes[strings.ToLower(filepath.Ext(s.Logo))]
		if !ok {
			return nil, fmt.Errorf("signin: logo %s: want a .png, .svg, .jpg, .webp or .gif file", s.Logo)
		}
		b, err := read("logo", s.Logo)
		if err != nil {
			return nil, err
		}
		a.logo, a.logoType = b, typ
	}
	if s.TemplateFile != "" {
		b, err := read("template_file", s.TemplateFile)
		if err != nil {
			return nil, err
		}
		if a.page, err = template.New(filepath.Base(s.TemplateFile)).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("signin: template_file: %w", err)
		}
		// Render every view once, so a template that fails on the data
		// model fails at provision, not in front of a person.
		for _, v := range []string{viewAddress, viewCode, viewSignedIn, viewSignOut, viewSignedOut, viewFailed, viewLink, viewLinkCode} {
			p := &page{Lang: "en", T: pageTexts["en"], Title: "t", Base: s.Path, View: v, Return: "/"}
			if err := a.page.Execute(&bytes.Buffer{}, p); err != nil {
				return nil, fmt.Errorf("signin: template_file, view %s: %w", v, err)
			}
		}
	}
	var css bytes.Buffer
	css.Write(signinStyle)
	if s.AccentColor != "" {
		fg := "#ffffff"
		if contrast(s.AccentColor, "#000000") > contrast(s.AccentColor, "#ffffff") {
			fg = "#000000"
		}
		fmt.Fprintf(&css, "\n/* accent_color */\n:root { --accent: %s; --accent-fg: %s; }\n"+
			"@media (prefers-color-scheme: dark) { :root { --accent: %[1]s; --accent-fg: %[2]s; } }\n", s.AccentColor, fg)
	}
	if s.CSS != "" {
		b, err := read("css", s.CSS)
		if err != nil {
			return nil, err
		}
		css.WriteString("\n/* css " + filepath.Base(s.CSS) + " */\n")
		css.Write(b)
	}
	a.style = css.Bytes()
	return a, nil
}

// validColor accepts #rrggbb only, so the value cannot break out of the CSS
// rule it is written into.
func validColor(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	_, err := strconv.ParseUint(s[1:], 16, 32)
	return err == nil
}

// contrast is the WCAG contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

func luminance(c string) float64 {
	v, _ := strconv.ParseUint(c[1:], 16, 32)
	lin := func(x uint64) float64 {
		s := float64(x) / 255
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(v>>16&0xff) + 0.7152*lin(v>>8&0xff) + 0.0722*lin(v&0xff)
}

// validOrigin accepts an http(s) origin without path, query or user: the
// mail link's host is configured, never taken from the request's Host
// header, so a forged Host cannot send a person's code to another site.
func validOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		(u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// serveAsset serves a static asset of the page; it holds nothing personal,
// so it may be cached for a while.
func serveAsset(w http.ResponseWriter, typ string, b []byte) {
	hd := w.Header()
	hd.Set("Content-Type", typ)
	hd.Set("Cache-Control", "public, max-age=3600")
	hd.Set("X-Content-Type-Options", "nosniff")
	// An SVG opened on its own is a document: it may run nothing.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(b)
}
