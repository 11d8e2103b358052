// Package testenv holds what the plugin's tests share and do not specify,
// each with its self-test: a clock the test moves (clock.go), the JWKS
// checker a relying party would be (jwks.go), a real mailpit process
// (mailpit.go, its API in mailpit_api.go), a fake SMTP server that fails on
// demand (smtpfake*.go, with throw-away certificates in selfsigned.go) and
// the Caddy under test as its own process, the real binary (caddyproc.go,
// caddyproc_config.go, caddybinary.go); free ports (ports.go) and process
// output (syncbuffer.go) serve them all.
// The specs stay in the root package's _test.go files; the thin wrappers
// there (mailpit_test.go, smtpfake_test.go, process_test.go, …) keep the
// helpers' old names.
//
// It is imported only by tests: nothing in the plugin depends on it.
package testenv
