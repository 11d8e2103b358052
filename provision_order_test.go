package emailotp

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// TestRejectedConfigTouchesNoStorage: provision fills the defaults and
// checks the configuration once, before anything is opened, so a rejected
// config writes nothing to the storage (no key, no rotation started).
func TestRejectedConfigTouchesNoStorage(t *testing.T) {
	h := &Handler{
		SMTP:        &SMTPConfig{Host: "127.0.0.1", TLS: "none", From: "a@example.com"},
		Clients:     []*Client{{ID: "app", Secret: "app-secret-long-enough-for-no-warning"}},
		KeyRotation: caddy.Duration(30 * time.Minute),
	}
	st := &certmagic.FileStorage{Path: t.TempDir()}
	err := h.provision(context.Background(), st, nil, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "key_rotation") {
		t.Fatalf("provision: %v, want the key_rotation error", err)
	}
	if err := h.Cleanup(); err != nil {
		t.Errorf("Cleanup after the refusal: %v", err)
	}
	if keys, _ := st.List(context.Background(), "", true); len(keys) != 0 {
		t.Errorf("a refused config wrote %v", keys)
	}
	// Not a caddy.Validator: Caddy would check once more after Provision.
	if _, ok := any(h).(caddy.Validator); ok {
		t.Error("Handler is a caddy.Validator: its checks would run twice")
	}
}

// TestFillDefaultsOnce: the defaults of every block are filled by one call,
// and a second call changes nothing.
func TestFillDefaultsOnce(t *testing.T) {
	h := &Handler{SMTP: &SMTPConfig{Host: "h", From: "a@example.com"},
		Clients: []*Client{{ID: "app", Secret: "s"}}, SignIn: &SignInConfig{}}
	h.fillDefaults()
	first, _ := json.Marshal(h)
	h.fillDefaults()
	if second, _ := json.Marshal(h); string(first) != string(second) {
		t.Errorf("second fill changed:\n%s\n%s", first, second)
	}
	if h.SMTP.Port != 587 || h.SMTP.TLS != "starttls" || *h.SMTP.IdleConns != defaultIdleConns ||
		time.Duration(h.SMTP.Timeout) != defaultSMTPTimeout {
		t.Errorf("smtp defaults: %+v", h.SMTP)
	}
	if *h.Limits.PerAddress != defaultPerAddress || h.Limits.MaxKeys != defaultMaxKeys {
		t.Errorf("limit defaults: %+v", h.Limits)
	}
	if h.SignIn.Path != DefaultSignInPath || h.SignIn.Client != "app" ||
		time.Duration(h.SignIn.SessionLifetime) != DefaultSessionLifetime {
		t.Errorf("signin defaults: %+v", h.SignIn)
	}
	if err := h.checkConfig(); err != nil {
		t.Errorf("the defaults do not pass the check: %v", err)
	}
}

// TestAdaptLeavesDefaultsOut: the Caddyfile check fills the defaults of a
// copy, so the adapted JSON holds only what the Caddyfile says.
func TestAdaptLeavesDefaultsOut(t *testing.T) {
	got, err := adapt("email_otp {\n" + minimalSMTP + "\nsignin\n}")
	if err != nil {
		t.Fatal(err)
	}
	for _, def := range []string{"token_path", "port", "idle_conns", "max_keys", "session_lifetime", "limit"} {
		if strings.Contains(string(got), `"`+def+`"`) {
			t.Errorf("adapted JSON holds the default %s:\n%s", def, got)
		}
	}
}
