package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
)

// Changing a running Caddy's config, as operators do: the admin API's /load
// and `caddy reload`.

// errWholeFile refuses Load and Reload of a site body on a Caddyfile run as
// is: there is no template to wrap it in.
var errWholeFile = errors.New("a Caddyfile run as is takes whole files: use LoadCaddyfile")

// Load replaces the running config of a StartCaddy process by site through
// the admin API (POST /load with the Caddyfile adapter) and returns the
// admin API's error, if any.
func (p *CaddyProc) Load(site string) error {
	if !p.wraps {
		return errWholeFile
	}
	return p.LoadCaddyfile(p.caddyfile(site))
}

// LoadCaddyfile posts a whole Caddyfile to the admin API's /load and
// returns the admin API's error, if any.
func (p *CaddyProc) LoadCaddyfile(caddyfile string) error {
	ctx, cancel := context.WithTimeout(context.Background(), CaddyStartTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.AdminAddr+"/load",
		strings.NewReader(caddyfile))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin /load: %s: %s", resp.Status, body)
	}
	DropIdleConns()
	return nil
}

// Reload rewrites the Caddyfile of a StartCaddy process around site and
// runs `caddy reload` against it, as an operator does; the admin address
// comes from the Caddyfile.
func (p *CaddyProc) Reload(site string) error {
	if !p.wraps {
		return errWholeFile
	}
	if err := os.WriteFile(p.Config, []byte(p.caddyfile(site)), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), CaddyStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "reload", "--config", p.Config, "--adapter", "caddyfile")
	cmd.Env, cmd.Dir = p.env, p.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("caddy reload: %w\n%s", err, out)
	}
	DropIdleConns()
	return nil
}

// DropIdleConns forgets http.DefaultClient's kept-alive connections after a
// reload: the old server closes them as it shuts down, and a POST sent on
// one that is being closed fails with EOF (the client retries only
// idempotent requests).
func DropIdleConns() { http.DefaultClient.CloseIdleConnections() }
