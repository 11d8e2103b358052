#!/usr/bin/env bash
# Runs the whole test suite as CI does: installs mailpit (Go module proxy),
# Chromium (apt) and axe-core (npm) when missing, checks formatting and vet, runs every test with
# the race detector (the plugin's module, then bench/'s), then a short fuzz
# run of each fuzz target.
# FUZZTIME=0 skips the fuzz runs (the seed corpus still runs in go test).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export MAILPIT_BIN
MAILPIT_BIN=$(scripts/install-mailpit.sh)
if [ -x scripts/install-chromium.sh ]; then scripts/install-chromium.sh; fi
# axe-core for the sign-in pages' accessibility audit (signin_look_test.go).
export AXE_JS
AXE_JS=$(scripts/install-axe.sh)

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$bad" ]; then echo "gofmt needed: $bad"; exit 1; fi

echo "== go vet"
go vet ./...
# bench/ is its own module (bench/go.mod): ./... above does not reach it.
(cd bench && go vet ./...)

echo "== build cmd/caddy (with -race, for the multi-process tests)"
mkdir -p .bin
go build -race -o .bin/caddy-race ./cmd/caddy
export CADDY_BIN="$root/.bin/caddy-race"

echo "== go test -race"
# -short is never passed: no test may skip in CI.
go test -race -count=1 -timeout 30m ./...
echo "== bench module: go test -race"
(cd bench && go test -race -count=1 -timeout 10m ./...)

fuzztime=${FUZZTIME:-20s}
if [ "$fuzztime" != "0" ]; then
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' *_test.go | sed 's/^func //'); do
		echo "== fuzz $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" .; then
			# A failing input is written to testdata/fuzz: that is a bug, and
			# fails the run. Without one the fuzzing engine itself gave up (a
			# worker killed on an overloaded machine): try once more.
			if [ -n "$(git status --porcelain -- "testdata/fuzz/$target")" ]; then
				git status --porcelain -- "testdata/fuzz/$target"
				exit 1
			fi
			echo "== fuzz $target: engine failure without a failing input; once more"
			go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" .
		fi
	done
fi
echo "== all tests passed"
