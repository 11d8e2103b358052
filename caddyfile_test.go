package emailotp

// The Caddyfile syntax, as golden files: testdata/caddyfile/*.txt each hold
// a directive block, a line "-----", then the JSON the block adapts to, or
// "error: " and what the error must say. `go test -run Caddyfile -update`
// rewrites the JSON of the files that adapt (never an expected error).

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

var updateGolden = flag.Bool("update", false, "rewrite the JSON of testdata/caddyfile's golden files")

// minimalSMTP is an smtp block and a client, for email_otp blocks that
// need them to get as far as the line under test.
const minimalSMTP = `smtp {
		host smtp.example.com
		from no-reply@example.com
	}
	client app secret`

// goldenCase is one file of testdata/caddyfile.
type goldenCase struct {
	path, input, want string
}

func readGolden(t *testing.T, pattern string) []goldenCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "caddyfile", pattern))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files %s: %v", pattern, err)
	}
	var cases []goldenCase
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		input, want, ok := strings.Cut(string(b), "\n-----\n")
		if !ok {
			t.Fatalf("%s: no ----- line", p)
		}
		cases = append(cases, goldenCase{path: p, input: input, want: want})
	}
	return cases
}

// adapt returns the JSON a block adapts to, indented as in the golden
// files: email_otp's handler, or the authentication handler email_otp_gate
// becomes, with the gate as its one provider.
func adapt(input string) ([]byte, error) {
	var v any
	if strings.HasPrefix(strings.TrimSpace(stripComments(input)), "email_otp_gate") {
		mh, err := parseGateCaddyfile(httpcaddyfile.Helper{Dispenser: caddyfile.NewTestDispenser(input)})
		if err != nil {
			return nil, err
		}
		v = mh
	} else {
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			return nil, err
		}
		v = h
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "\t")
	err := enc.Encode(v)
	return buf.Bytes(), err
}

func stripComments(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// runGolden checks each file: the block adapts to the JSON given, or fails
// with an error that says what is given.
func runGolden(t *testing.T, pattern string) {
	for _, c := range readGolden(t, pattern) {
		t.Run(strings.TrimSuffix(filepath.Base(c.path), ".txt"), func(t *testing.T) {
			got, err := adapt(c.input)
			if wantErr, isErr := strings.CutPrefix(c.want, "error: "); isErr {
				wantErr = strings.TrimSuffix(wantErr, "\n")
				if err == nil {
					t.Fatalf("accepted: %s", c.input)
				}
				if !strings.Contains(err.Error(), wantErr) {
					t.Errorf("error %q does not say %q", err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", c.input, err)
			}
			if *updateGolden {
				if err := os.WriteFile(c.path, []byte(c.input+"\n-----\n"+string(got)), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if string(got) != c.want {
				t.Errorf("adapted JSON:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestCaddyfileAllOptions: every option of email_otp reaches the JSON field
// of the same name, with the value written.
func TestCaddyfileAllOptions(t *testing.T) { runGolden(t, "email_otp_all_options.txt") }

// TestCaddyfileErrors: each bad email_otp block fails to adapt, with an error
// naming the option and what is wrong.
func TestCaddyfileErrors(t *testing.T) { runGolden(t, "email_otp_error_*.txt") }
