package emailotp

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestOldJSONNamesRefused: the JSON names that differed from the Caddyfile's
// before they were made equal are refused, as Caddy refuses any unknown
// field, rather than silently ignored.
func TestOldJSONNamesRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		into any
		json string
	}{
		{"gate sign_in_path", new(Gate), `{"sign_in_path": "/email-otp/signin"}`},
		{"clients", new(Handler), `{"clients": [{"id": "app", "secret": "s"}]}`},
		{"limits", new(Handler), `{"limits": {"max_keys": 10}}`},
		{"per_address", new(RateLimits), `{"per_address": {"count": 1, "window": 60000000000}}`},
		{"per_client", new(RateLimits), `{"per_client": {"count": 1, "window": 60000000000}}`},
		{"per_user_ip", new(RateLimits), `{"per_user_ip": {"count": 1, "window": 60000000000}}`},
		{"claims", new(Client), `{"claims": {"role": "admin"}}`},
		{"deny_request_template", new(Client), `{"deny_request_template": true}`},
		{"pass_user_ip_param", new(Client), `{"pass_user_ip_param": "ip"}`},
		{"locales", new(Template), `{"locales": {"fi": {"subject": "Koodi"}}}`},
	} {
		err := caddy.StrictUnmarshalJSON([]byte(c.json), c.into)
		if err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%s: %v, want an unknown field error", c.name, err)
		}
	}
}

// TestNewJSONNamesAccepted: the same settings under their Caddyfile names.
func TestNewJSONNamesAccepted(t *testing.T) {
	var g Gate
	if err := caddy.StrictUnmarshalJSON([]byte(`{"signin": "/login"}`), &g); err != nil || g.SignInPath != "/login" {
		t.Errorf("gate signin: %v %q", err, g.SignInPath)
	}
	var h Handler
	err := caddy.StrictUnmarshalJSON([]byte(`{"client": [{"id": "app", "secret": "s", "claim": {"role": "admin"},
		"request_template": "deny", "user_ip_param": "ip"}],
		"limit": {"address": {"count": 1, "window": 60000000000}, "client": {"count": 2, "window": 60000000000},
		"user_ip": {"count": 3, "window": 60000000000}, "max_keys": 10},
		"template": {"locale": {"fi": {"subject": "Koodi"}}}}`), &h)
	if err != nil {
		t.Fatal(err)
	}
	c := h.Clients[0]
	if c.Claims["role"] != "admin" || c.RequestTemplate != "deny" || c.PassUserIPParam != "ip" {
		t.Errorf("client: %+v", c)
	}
	if h.Limits.PerAddress.Count != 1 || h.Limits.PerClient.Count != 2 || h.Limits.PerUserIP.Count != 3 || h.Limits.MaxKeys != 10 {
		t.Errorf("limit: %+v", h.Limits)
	}
	if h.Template.Locales["fi"].Subject != "Koodi" {
		t.Errorf("template locale: %+v", h.Template.Locales)
	}
}
