#!/usr/bin/env bash
# Installs the mailpit SMTP test server used by the integration tests
# (mailpit_test.go) into <repo>/.bin/mailpit, built from the Go module proxy.
# Idempotent: does nothing if the pinned version is already installed.
set -euo pipefail

MAILPIT_VERSION="v1.33.1"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
bin_dir="${repo_root}/.bin"
bin="${bin_dir}/mailpit"

if ! command -v go >/dev/null 2>&1; then
	echo "install-mailpit.sh: 'go' not found in PATH" >&2
	exit 1
fi

# installed_version prints the mailpit version of ${bin}, or nothing.
# A binary built with `go install` reports "dev" from `mailpit version`
# (release builds set the version via -ldflags), so the module version is
# read from the embedded build info first; `mailpit version` is the fallback
# for release binaries dropped into .bin by hand.
installed_version() {
	[[ -x "${bin}" ]] || return 0
	local v
	v="$(go version -m "${bin}" 2>/dev/null |
		awk '$1 == "mod" && $2 == "github.com/axllent/mailpit" { print $3 }' || true)"
	if [[ -z "${v}" || "${v}" == "(devel)" ]]; then
		v="$("${bin}" version --no-release-check 2>/dev/null |
			grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)"
	fi
	echo "${v}"
}

if [[ "$(installed_version)" == "${MAILPIT_VERSION}" ]]; then
	echo "${bin}"
	exit 0
fi

mkdir -p "${bin_dir}"
echo "install-mailpit.sh: installing mailpit ${MAILPIT_VERSION} into ${bin_dir} ..." >&2
GOBIN="${bin_dir}" go install "github.com/axllent/mailpit@${MAILPIT_VERSION}"

got="$(installed_version)"
if [[ "${got}" != "${MAILPIT_VERSION}" ]]; then
	echo "install-mailpit.sh: ${bin} reports version '${got}', want ${MAILPIT_VERSION}" >&2
	exit 1
fi

echo "${bin}"
