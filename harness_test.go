package emailotp

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// testCaddy is a real Caddy running in the test process, loaded from a
// Caddyfile the way `caddy run` loads one. Caddy's state is global, so these
// tests never run in parallel.
type testCaddy struct {
	Base      string // http://127.0.0.1:port
	AdminAddr string
	Storage   string
	LogFile   string
	port      int
}

// caddyOpts tune the global options of a test server.
type caddyOpts struct {
	storage string // storage directory; default: a new temp dir
}

// startCaddy loads site (the body of one site block on the returned port)
// with admin, storage and logs confined to the test.
func startCaddy(t testing.TB, site string, o ...caddyOpts) *testCaddy {
	t.Helper()
	var opt caddyOpts
	if len(o) > 0 {
		opt = o[0]
	}
	dir := t.TempDir()
	tc := &testCaddy{port: freePort(t), Storage: opt.storage, LogFile: filepath.Join(dir, "caddy.log")}
	if tc.Storage == "" {
		tc.Storage = filepath.Join(dir, "storage")
	}
	tc.AdminAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	tc.Base = fmt.Sprintf("http://127.0.0.1:%d", tc.port)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	tc.load(t, site)
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Logf("stopping caddy: %v", err)
		}
	})
	return tc
}

// caddyfile is the whole Caddyfile of a test server around site.
func (tc *testCaddy) caddyfile(site string) string {
	return fmt.Sprintf(`{
	admin %s
	storage file_system %s
	persist_config off
	auto_https off
	log {
		output file %s
		format json
		level DEBUG
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
%s
}
`, tc.AdminAddr, tc.Storage, tc.LogFile, tc.port, site)
}

// load adapts and (re)loads the Caddyfile, failing the test on any error.
func (tc *testCaddy) load(t testing.TB, site string) {
	t.Helper()
	if err := tc.tryLoad(site); err != nil {
		t.Fatalf("loading Caddy config: %v", err)
	}
	tc.waitReady(t)
}

func (tc *testCaddy) tryLoad(site string) error {
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warn, err := adapter.Adapt([]byte(tc.caddyfile(site)), nil)
	if err != nil {
		return err
	}
	for _, w := range warn {
		if !strings.Contains(w.Message, "formatted") {
			return fmt.Errorf("caddyfile warning: %s", w.String())
		}
	}
	return caddy.Load(cfg, true)
}

func (tc *testCaddy) waitReady(t testing.TB) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(tc.Base + "/__ready")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("caddy did not answer on %s", tc.Base)
}

// Logs returns what Caddy logged so far.
func (tc *testCaddy) Logs(t testing.TB) string {
	b, err := os.ReadFile(tc.LogFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// answer is a decoded HTTP response.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// str returns a top-level string field of the JSON body.
func (a answer) str(k string) string {
	s, _ := a.JSON[k].(string)
	return s
}

// reference returns x_globalsign_iam_challenge.reference, or "".
func (a answer) reference() string {
	ch, _ := a.JSON["x_globalsign_iam_challenge"].(map[string]any)
	s, _ := ch["reference"].(string)
	return s
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s", a.Status, a.Body)
}

// post sends a form to the URL. basic, when non-nil, is {id, secret} for
// HTTP Basic client authentication.
func post(t testing.TB, u string, form url.Values, basic []string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &a.JSON); err != nil {
			t.Fatalf("bad JSON %q: %v", body, err)
		}
	}
	return a
}

// httpGet fetches a URL.
func httpGet(t testing.TB, u string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}
