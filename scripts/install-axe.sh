#!/usr/bin/env bash
# Installs axe-core (the accessibility audit the browser tests inject into
# the sign-in pages) with npm into .bin/node_modules, if it is not there yet,
# and prints the path of axe.min.js. Fails loudly if it cannot.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version="${AXE_CORE_VERSION:-4.11.0}"
prefix="$root/.bin"
axe="$prefix/node_modules/axe-core/axe.min.js"

if [[ -f "$axe" ]] && grep -q "\"version\": \"$version\"" "$prefix/node_modules/axe-core/package.json"; then
	echo "$axe"
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "install-axe.sh: npm not found; install Node.js and npm, or put axe-core $version at $axe" >&2
	exit 1
fi
mkdir -p "$prefix"
echo "install-axe.sh: installing axe-core $version into $prefix ..." >&2
npm install --prefix "$prefix" --no-save --no-audit --no-fund --silent "axe-core@$version" >&2
if [[ ! -f "$axe" ]]; then
	echo "install-axe.sh: npm finished but $axe is missing" >&2
	exit 1
fi
echo "$axe"
