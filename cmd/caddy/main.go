// Command caddy is Caddy with its standard modules and the email_otp plugin,
// for `go run ./cmd/caddy` and the tests without xcaddy. For production
// builds use `xcaddy build --with github.com/caddy-email-otp/emailotp`.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-email-otp/emailotp"
)

func main() {
	caddycmd.Main()
}
