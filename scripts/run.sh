#!/usr/bin/env bash
# Runs Caddy with this plugin on Caddyfile.example (or the Caddyfile given as
# the first argument, e.g. Caddyfile.signin.example), on loopback, with mailpit
# as the SMTP sink. Open the mailpit URL it prints to read the mails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mailpit=$(scripts/install-mailpit.sh)
mkdir -p .bin .tmp

export SMTP_HOST=${SMTP_HOST:-127.0.0.1}
# The examples read client secrets as {env.…} placeholders at load time (never
# pasted into the config); these demo values are the README's curl session's.
export EMAIL_OTP_CLIENT_SECRET=${EMAIL_OTP_CLIENT_SECRET:-demo-secret}
export EMAIL_OTP_API_SECRET=${EMAIL_OTP_API_SECRET:-api-demo-secret}
export SMTP_PORT=${SMTP_PORT:-1025}
ui_port=${MAILPIT_UI_PORT:-8025}
log=.tmp/mailpit.log

# port_open succeeds when something accepts connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# mailpit_answers succeeds once mailpit's HTTP API answers on $ui_port.
mailpit_answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$ui_port/api/v1/info" 2>/dev/null
	else
		port_open "$ui_port"
	fi
}

# A port already taken (often by an earlier mailpit) would make our mailpit
# exit while Caddy ran on, answering 503 to every initiate, or send the mails
# to someone else's sink: refuse before starting anything.
for p in "$ui_port:mailpit web UI (MAILPIT_UI_PORT)" "$SMTP_PORT:SMTP (SMTP_PORT)"; do
	if port_open "${p%%:*}"; then
		echo "run.sh: port 127.0.0.1:${p%%:*} for ${p#*:} is already in use; stop what listens there or choose another port" >&2
		exit 1
	fi
done

"$mailpit" --listen "127.0.0.1:$ui_port" --smtp "127.0.0.1:$SMTP_PORT" \
	--smtp-auth-accept-any --smtp-auth-allow-insecure >"$log" 2>&1 &
mp=$!
trap 'kill $mp 2>/dev/null || true' EXIT INT TERM

# Wait, bounded, for mailpit to answer on both ports before starting Caddy.
deadline=$((SECONDS + 20))
while :; do
	if ! kill -0 "$mp" 2>/dev/null; then
		echo "run.sh: mailpit exited before answering on 127.0.0.1:$ui_port (SMTP 127.0.0.1:$SMTP_PORT); see $root/$log:" >&2
		tail -n 5 "$log" >&2 || true
		exit 1
	fi
	if mailpit_answers && port_open "$SMTP_PORT"; then
		break
	fi
	if ((SECONDS >= deadline)); then
		echo "run.sh: mailpit did not answer on 127.0.0.1:$ui_port (SMTP 127.0.0.1:$SMTP_PORT) within 20 s; see $root/$log" >&2
		exit 1
	fi
	sleep 0.2
done

go build -o .bin/caddy ./cmd/caddy

echo "mailpit: http://127.0.0.1:$ui_port  (SMTP 127.0.0.1:$SMTP_PORT)"
echo "caddy:   ${EMAIL_OTP_SITE:-http://localhost:8080}  (token endpoint /uas/oauth2/token)"
.bin/caddy run --config "${1:-Caddyfile.example}" --adapter caddyfile
