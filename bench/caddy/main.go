// Command caddy is the load test's Caddy: cmd/caddy plus the benchmark-only
// bench_sign handler (bench/floor), the floor of the validate step.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-email-otp/emailotp"
	_ "github.com/caddy-email-otp/emailotp/bench/floor"
)

func main() {
	caddycmd.Main()
}
