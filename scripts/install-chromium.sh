#!/usr/bin/env bash
# Installs Debian's chromium package (used by the browser-driven end-to-end
# tests via chromedp) if /usr/bin/chromium is not present. Fails loudly if it
# cannot install it.
set -euo pipefail

CHROMIUM="/usr/bin/chromium"

if [[ -x "${CHROMIUM}" ]]; then
	echo "${CHROMIUM}"
	exit 0
fi

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo_cmd=(sudo)
	else
		echo "install-chromium.sh: not root and sudo is not available; cannot install chromium" >&2
		exit 1
	fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium.sh: apt-get not found; install chromium manually so that ${CHROMIUM} exists" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" apt-get install -y --no-install-recommends chromium

if [[ ! -x "${CHROMIUM}" ]]; then
	echo "install-chromium.sh: apt-get finished but ${CHROMIUM} is still missing" >&2
	exit 1
fi

"${CHROMIUM}" --version || true
echo "${CHROMIUM}"
