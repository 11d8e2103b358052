#!/usr/bin/env bash
# Runs Caddy with this plugin on Caddyfile.example (or the Caddyfile given as
# the first argument, e.g. Caddyfile.signin.example), on loopback, with mailpit
# as the SMTP sink. Open the mailpit URL it prints to read the mails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mailpit=$(scripts/install-mailpit.sh)
mkdir -p .bin .tmp
go build -o .bin/caddy ./cmd/caddy

export SMTP_HOST=${SMTP_HOST:-127.0.0.1}
export SMTP_PORT=${SMTP_PORT:-1025}
ui_port=${MAILPIT_UI_PORT:-8025}

"$mailpit" --listen "127.0.0.1:$ui_port" --smtp "127.0.0.1:$SMTP_PORT" \
	--smtp-auth-accept-any --smtp-auth-allow-insecure >.tmp/mailpit.log 2>&1 &
mp=$!
trap 'kill $mp 2>/dev/null || true' EXIT INT TERM

echo "mailpit: http://127.0.0.1:$ui_port  (SMTP 127.0.0.1:$SMTP_PORT)"
echo "caddy:   ${EMAIL_OTP_SITE:-http://localhost:8080}  (token endpoint /uas/oauth2/token)"
.bin/caddy run --config "${1:-Caddyfile.example}" --adapter caddyfile
