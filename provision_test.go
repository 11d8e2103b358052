package emailotp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// provisionSite is a valid email_otp site with room for one more line in the
// smtp block, the template block and the handler block each.
func provisionSite(smtpExtra, templateExtra, extra string) string {
	return fmt.Sprintf(`
	email_otp {
		smtp 127.0.0.1 {
			port 1025
			tls none
			from a@example.com
			%s
		}
		template {
			subject "Code"
			body "Code {0}"
			%s
		}
		client app app-secret
		%s
	}
	respond "app" 299
`, smtpExtra, templateExtra, extra)
}

// provisionErr loads site in this process as startCaddy would and returns
// the error, which comes from Provision for the files read there: the
// Caddyfile adapter never opens them.
func provisionErr(t *testing.T, site string) error {
	t.Helper()
	dir := t.TempDir()
	tc := &testCaddy{port: freePort(t), Storage: filepath.Join(dir, "storage"), LogFile: filepath.Join(dir, "caddy.log")}
	tc.AdminAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	err := tc.tryLoad(site)
	if err == nil {
		t.Cleanup(func() { _ = caddy.Stop() })
	}
	return err
}

// provisionFileCases are files named in the config that are missing or
// unusable; each error must name the option, the file and the problem.
func provisionFileCases(t *testing.T) []struct{ name, site, file, want string } {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "not-a-cert.pem")
	badHTML := filepath.Join(dir, "bad.html")
	for f, body := range map[string]string{notPEM: "this is no certificate\n", badHTML: "<p>{{.Code</p>\n"} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []struct{ name, site, file, want string }{
		{"ca_file missing", provisionSite("ca_file "+missing, "", ""), missing, "smtp: ca_file: open " + missing + ": no such file"},
		{"ca_file without certificate", provisionSite("ca_file "+notPEM, "", ""), notPEM, "smtp: ca_file " + notPEM + " holds no PEM certificate"},
		{"html_file missing", provisionSite("", "html_file "+missing, ""), missing, "html_file: open " + missing + ": no such file"},
		{"locale html_file missing", provisionSite("", `locale fi "Koodi" "Koodi {0}" `+missing, ""), missing, "template locale fi: html_file: open " + missing},
		{"html_file bad template", provisionSite("", "html_file "+badHTML, ""), badHTML, "html_file: template: " + badHTML},
		{"signing_key_file missing", provisionSite("", "", "signing_key_file "+missing), missing, "signing_key_file " + missing + ": "},
		{"signing_key_file not PEM", provisionSite("", "", "signing_key_file "+notPEM), notPEM, "signing_key_file " + notPEM + ": no PEM block found"},
	}
}

// TestProvisionErrors: a config naming a missing or unusable file fails to
// load, with an error naming the option, the file and what is wrong.
func TestProvisionErrors(t *testing.T) {
	for _, c := range provisionFileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			err := provisionErr(t, c.site)
			if err == nil {
				t.Fatal("config loaded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// TestProvisionErrorsValidate: `caddy validate`, the command the README
// points to, exits non-zero with the same message for each of these.
func TestProvisionErrorsValidate(t *testing.T) {
	for _, c := range provisionFileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cf := filepath.Join(dir, "Caddyfile")
			src := fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %s\n}\n\nhttp://127.0.0.1:%d {\n%s\n}\n",
				filepath.Join(dir, "storage"), freePort(t), c.site)
			if err := os.WriteFile(cf, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := runCaddyCommand(t, "validate", "--config", cf, "--adapter", "caddyfile")
			if err == nil {
				t.Fatalf("caddy validate accepted it:\n%s", out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("caddy validate does not say %q:\n%s", c.want, out)
			}
		})
	}
}
