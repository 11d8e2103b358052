// Command load measures the email_otp plugin in a real Caddy over loopback and
// prints, from one run on one machine, the plugin's two steps next to the
// floors they cannot beat:
//
//	cd bench && go run ./load            # bench is its own Go module
//	cd bench && go run ./load -duration 5s -rounds 3 -pprof /tmp/prof
//
// It builds bench/caddy, which is cmd/caddy plus the benchmark-only
// bench_sign handler (a separate process, so the server's CPU and memory
// are its own and a profile of it is a profile of the plugin in Caddy, not of
// this load generator), starts mailpit (scripts/install-mailpit.sh installs it
// when missing) and an in-process null SMTP sink, and measures, at each
// concurrency:
//
//  1. a bare Caddy route (respond) for a POST of a validation's size;
//  2. signing alone: the id_token and access token of a validation, in this
//     process, with Caddy's own key and the plugin's claims; and the same
//     signing inside a Caddy route (bench_sign, bench/floor), answering
//     the tokens as the plugin does;
//  3. raw go-mail sends of the plugin's message to the same sinks, one
//     connection per message and one kept-open connection per worker;
//  4. the plugin's validate step and initiate step through Caddy.
//
// A validation must do at least the work of (1) and of (2), on the same CPUs,
// one after the other; their costs per request add up, so the throughput it
// can reach is bound = 1/(1/T1 + 1/T2). The signing route is that bound
// measured in one cell: it also pays what a request that computes for
// milliseconds costs Caddy and the client beyond a bare one, which the sum of
// (1) and (2) leaves out; validate over it is the plugin's own share. The initiate step is compared with
// raw sends (3) to the same sink. Then it runs whole sign-ins one after the
// other (initiate, read the code from mailpit's API, validate) and reports
// the memory the server keeps per consumed reference and per rate-limit key
// (go test -run TestMemoryPerEntry).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type config struct {
	duration  time.Duration
	slice     time.Duration
	flows     time.Duration
	flowConc  []int
	conc      []int
	rounds    int
	alg       string
	atAlg     string
	ledger    string
	caddyBin  string
	mailpit   string
	pprofDir  string
	memory    bool
	cells     bool
	keep      bool
	defaults  bool // compare the defaults with `ledger memory` (defaults.go)
	instances int  // > 1: whole flows over this many instances against one (defaults.go)
}

func main() {
	var cfg config
	var conc, flowConc string
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each cell")
	flag.DurationVar(&cfg.slice, "slice", 500*time.Millisecond, "cells at one concurrency run interleaved in slices this long")
	flag.DurationVar(&cfg.flows, "flows", 5*time.Second, "length of the sequential whole-flow cell")
	flag.StringVar(&conc, "conc", "1,4,16", "concurrency levels, comma-separated")
	flag.StringVar(&flowConc, "flowconc", "1,4,16", "concurrency levels of the concurrent whole-flow cells, comma-separated (\"\": none)")
	flag.IntVar(&cfg.rounds, "rounds", 1, "repeat every cell this many times and keep the median")
	flag.StringVar(&cfg.alg, "alg", "RS256", "signing_alg of the plugin: RS256, ES256 or EdDSA")
	flag.StringVar(&cfg.atAlg, "atalg", "ES256", "access_token_alg of the plugin (written to the Caddyfile only when it differs from -alg; give -atalg equal to -alg for a Caddy without the option)")
	flag.StringVar(&cfg.ledger, "ledger", "", "ledger of the plugin: storage or memory (default: the plugin's default)")
	flag.StringVar(&cfg.caddyBin, "caddy", "", "Caddy binary with the plugin and the floors (default: build bench/caddy)")
	flag.StringVar(&cfg.mailpit, "mailpit", "", "mailpit binary (default: $MAILPIT_BIN, .bin/mailpit, else scripts/install-mailpit.sh)")
	flag.StringVar(&cfg.pprofDir, "pprof", "", "save CPU profiles of Caddy during the validate and initiate cells at the highest concurrency into this directory")
	flag.BoolVar(&cfg.memory, "memory", true, "measure memory per ledger entry and rate-limit key (go test -run TestMemoryPerEntry)")
	flag.BoolVar(&cfg.cells, "cells", true, "run the side-by-side cells (false: only the whole flows and the memory figures)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (Caddyfile, logs, storage)")
	flag.BoolVar(&cfg.defaults, "defaults", false, "instead of the cells: validate and initiate with the defaults (storage ledger, limits shared through storage) against `ledger memory`, interleaved")
	flag.IntVar(&cfg.instances, "instances", 1, "with -defaults, above 1: also (with -cells=false: only) concurrent whole flows (null sink) over this many Caddy processes sharing one file storage, round-robin, against one process, interleaved")
	flag.Parse()
	for _, f := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("-conc: %q is not a positive integer", f)
		}
		cfg.conc = append(cfg.conc, n)
	}
	for _, f := range strings.Split(flowConc, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("-flowconc: %q is not a positive integer", f)
		}
		cfg.flowConc = append(cfg.flowConc, n)
	}
	if cfg.rounds < 1 || cfg.duration <= 0 || cfg.slice <= 0 {
		fatalf("-rounds, -duration and -slice must be positive")
	}
	if err := benchmark(cfg); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", a...)
	os.Exit(1)
}

func progress(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

// dirs returns the bench module's directory (that of the go.mod go run
// uses) and the repository root above it, where the plugin's module,
// scripts/ and .bin/ are.
func dirs() (bench, root string, err error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", "", fmt.Errorf("run from inside bench/ (cd bench && go run ./load)")
	}
	bench = filepath.Dir(mod)
	root = filepath.Dir(bench)
	if _, err := os.Stat(filepath.Join(root, "scripts", "install-mailpit.sh")); err != nil {
		return "", "", fmt.Errorf("%s is not the repository's bench module (run: cd bench && go run ./load): %w", bench, err)
	}
	return bench, root, nil
}

func findMailpit(root, flagPath string) (string, error) {
	for _, p := range []string{flagPath, os.Getenv("MAILPIT_BIN"), filepath.Join(root, ".bin", "mailpit")} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	progress("installing mailpit (scripts/install-mailpit.sh)…")
	cmd := exec.Command(filepath.Join(root, "scripts", "install-mailpit.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/install-mailpit.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}
