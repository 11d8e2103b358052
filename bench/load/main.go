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
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-email-otp/emailotp/bench/floor"
	"github.com/caddy-email-otp/emailotp/internal/keys"
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

// cellNames in the order they run and print.
const (
	cBare      = "bare Caddy `respond`, POST /bare"
	cSign      = "signing alone, in-process (id_token + access token)"
	cSignRoute = "Caddy route that signs them (`bench_sign`), POST /sign"
	cValidate  = "**validate step** through Caddy"
	cRawNullD  = "raw go-mail → null sink, a connection per message"
	cRawNullK  = "raw go-mail → null sink, kept-open connection per worker"
	cMailNull  = "Caddy route that mails on kept-open connections (`bench_mail`) → null sink"
	cMailMP    = "Caddy route that mails on kept-open connections (`bench_mail`) → mailpit"
	cInitNull  = "**initiate step** → null sink, `idle_conns 0`"
	cInitNullP = "**initiate step** → null sink, kept connections (default)"
	cRawMPD    = "raw go-mail → mailpit, a connection per message"
	cRawMPK    = "raw go-mail → mailpit, kept-open connection per worker"
	cInitMP    = "**initiate step** → mailpit, `idle_conns 0`"
	cInitMPP   = "**initiate step** → mailpit, kept connections (default)"
)

var cellOrder = []string{cBare, cSign, cSignRoute, cValidate, cRawNullD, cRawNullK, cMailNull, cInitNull, cInitNullP, cRawMPD, cRawMPK, cMailMP, cInitMP, cInitMPP}

type env struct {
	cfg    config
	caddy  *caddyProc
	mp     *mailpitProc
	sink   *nullSink
	sign   *floor.Signer
	meters meters
}

func benchmark(cfg config) error {
	benchDir, root, err := dirs()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "email-otp-load-")
	if err != nil {
		return err
	}
	if cfg.keep {
		progress("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if cfg.caddyBin == "" {
		progress("building bench/caddy …")
		cfg.caddyBin = filepath.Join(dir, "caddy")
		build := exec.Command("go", "build", "-o", cfg.caddyBin, "./caddy")
		build.Dir, build.Stdout, build.Stderr = benchDir, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./caddy in %s: %w", benchDir, err)
		}
	}
	mpBin, err := findMailpit(root, cfg.mailpit)
	if err != nil {
		return err
	}
	if cfg.defaults {
		return compareDefaults(cfg, dir)
	}
	e := &env{cfg: cfg}
	if e.mp, err = startMailpit(mpBin, dir); err != nil {
		return err
	}
	defer e.mp.stop()
	if e.sink, err = startNullSink(); err != nil {
		return err
	}
	defer e.sink.close()
	e.caddy, err = startCaddy(cfg.caddyBin, dir, caddyfileVars{Alg: cfg.alg, ATAlg: cfg.atAlg, Ledger: cfg.ledger, MailpitPort: e.mp.smtpPort, NullPort: e.sink.port})
	if err != nil {
		return err
	}
	defer e.caddy.stop()
	var pems [2][]byte
	for i, alg := range []string{cfg.alg, cfg.atAlg} {
		keyFile := filepath.Join(e.caddy.storage, filepath.FromSlash(keys.Prefix), keys.SigningKeyName(alg))
		if pems[i], err = os.ReadFile(keyFile); err != nil {
			return fmt.Errorf("reading Caddy's signing key: %w", err)
		}
	}
	if e.sign, err = floor.NewSigner(pems[0], cfg.alg, pems[1], cfg.atAlg); err != nil {
		return fmt.Errorf("the floor's signer: %w", err)
	}
	e.meters = meters{"caddy": e.caddy.cpu, "mailpit": e.mp.cpu, "load": selfCPU, allocMeter: e.caddy.mallocs}

	if err := e.warmUp(); err != nil {
		return err
	}
	all := map[string]map[int][]result{}
	for _, c := range cellOrder {
		all[c] = map[int][]result{}
	}
	perValidate, err := e.calibrate()
	if err != nil {
		return err
	}
	for round := 1; round <= cfg.rounds && cfg.cells; round++ {
		for _, conc := range cfg.conc {
			progress("round %d/%d, concurrency %d: %d cells interleaved in %v slices", round, cfg.rounds, conc, len(cellOrder), cfg.slice)
			rs, err := e.interleaved(conc, perValidate)
			if err != nil {
				return fmt.Errorf("concurrency %d: %w", conc, err)
			}
			for name, r := range rs {
				all[name][conc] = append(all[name][conc], r)
			}
		}
	}
	if cfg.pprofDir != "" && cfg.cells {
		if err := e.profiles(slices.Max(cfg.conc), perValidate); err != nil {
			return err
		}
	}
	// The flows start from an empty mailbox: mailpit's message list costs
	// it more as the mailbox fills (about 7 ms a read with the 500 messages
	// it keeps by default, against 1.6 ms empty), and the cells above filled it.
	if err := e.mp.deleteAll(); err != nil {
		return err
	}
	var fl [2]flowResult
	for i, ep := range []string{epMP, epMPPool} {
		progress("whole flows, one after the other, through mailpit (%s) …", ep)
		if fl[i], err = e.flows(ep); err != nil {
			return err
		}
	}
	cfs, err := e.concFlows()
	if err != nil {
		return err
	}
	var mem string
	if cfg.memory {
		progress("memory per entry (go test -run TestMemoryPerEntry) …")
		if mem, err = memory(root); err != nil {
			return err
		}
	}
	report(cfg, all, fl, cfs, mem)
	return nil
}

// warmUp sends a few requests of every kind so connections, keys and the
// JIT-free but cache-cold paths are ready before the first timed cell.
func (e *env) warmUp() error {
	s, err := makeRefs(e.caddy.base+epNull, e.sink, 20)
	if err != nil {
		return err
	}
	for {
		ref, code, ok := s.take()
		if !ok {
			break
		}
		if err := validate(e.caddy.base+epNull, ref, code); err != nil {
			return err
		}
	}
	for i := range 10 {
		for _, ep := range []string{epMP, epMPPool, epNullPool} {
			if _, err := initiate(e.caddy.base+ep, fmt.Sprintf("warm%d@bench.example", i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateBody is a validation's form, for the bare route's requests.
var validateBody = validateForm(strings.Repeat("A", 170), "12345678").Encode()

// initiateBody is an initiate's form, for the mailing routes' requests.
var initiateBody = initiateForm("load0@bench.example").Encode()

var seq atomicCounter

// workload is one cell's operation, ready to run in slices.
type workload struct {
	op    func(worker int) error
	close func()
}

// workloads prepares every cell for one concurrency; validate consumes refs.
func (e *env) workloads(refs *refSupply) (map[string]workload, error) {
	base := e.caddy.base
	w := map[string]workload{
		cBare: {op: func(int) error { return floorRoute(base+"/bare", validateBody, "ok") }},
		cSign: {op: func(int) error {
			_, _, err := e.sign.Sign("alice@example.com")
			return err
		}},
		cSignRoute: {op: func(int) error { return floorRoute(base+"/sign", validateBody, `"id_token"`) }},
		cMailNull:  {op: func(int) error { return floorRoute(base+"/mail-null", initiateBody, "reference") }},
		cMailMP:    {op: func(int) error { return floorRoute(base+"/mail-mp", initiateBody, "reference") }},
		cValidate: {op: func(int) error {
			ref, code, ok := refs.take()
			if !ok {
				return errStop
			}
			return validate(base+epNull, ref, code)
		}},
	}
	for name, ep := range map[string]string{cInitNull: epNull, cInitNullP: epNullPool, cInitMP: epMP, cInitMPP: epMPPool} {
		w[name] = workload{op: func(int) error {
			_, err := initiate(base+ep, fmt.Sprintf("load%d@bench.example", seq.next()))
			return err
		}}
	}
	for name, port := range map[string]int{cRawNullD: e.sink.port, cRawNullK: e.sink.port, cRawMPD: e.mp.smtpPort, cRawMPK: e.mp.smtpPort} {
		rs, err := newRawSender(port, name == cRawNullK || name == cRawMPK)
		if err != nil {
			return nil, err
		}
		w[name] = workload{op: func(worker int) error {
			return rs.send(worker, fmt.Sprintf("raw%d@bench.example", seq.next()))
		}, close: rs.close}
	}
	return w, nil
}

// interleaved runs every cell at one concurrency for the cell duration, cut
// into slices taken in turn (bare, signing, validate, …, bare, signing, …),
// so that the cells compared in a ratio share the same moments of a machine
// whose other load changes from second to second.
func (e *env) interleaved(conc int, perValidate time.Duration) (map[string]result, error) {
	d := e.cfg.duration
	refs, err := e.refsFor(d, perValidate)
	if err != nil {
		return nil, err
	}
	ws, err := e.workloads(refs)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, w := range ws {
			if w.close != nil {
				w.close()
			}
		}
	}()
	n := max(1, int(d/e.cfg.slice))
	acc := map[string]*result{}
	for _, name := range cellOrder {
		acc[name] = &result{cpu: map[string]time.Duration{}}
	}
	for range n {
		for _, name := range cellOrder {
			acc[name].add(run(conc, d/time.Duration(n), e.meters, ws[name].op))
			if err := e.caddy.alive(); err != nil {
				return nil, err
			}
		}
	}
	out := map[string]result{}
	for name, r := range acc {
		slices.Sort(r.lat)
		out[name] = *r
	}
	return out, nil
}

// calibrate measures the CPU time of one validation's signing in this
// process, to size the stock of references a validate cell needs.
func (e *env) calibrate() (time.Duration, error) {
	start, n := selfCPU(), 0
	for selfCPU()-start < 200*time.Millisecond && n < 5000 {
		if _, _, err := e.sign.Sign("alice@example.com"); err != nil {
			return 0, err
		}
		n++
	}
	// A validation also costs about a bare request: 0.4 ms of CPU here.
	return (selfCPU()-start)/time.Duration(n) + 400*time.Microsecond, nil
}

// refsFor makes enough references for d of validations if the CPUs did
// nothing else (at most 8000; the cell ends early if they run out).
func (e *env) refsFor(d, perValidate time.Duration) (*refSupply, error) {
	n := min(8000, int(float64(runtime.NumCPU())*d.Seconds()/perValidate.Seconds()*1.2)+100)
	progress("  making %d references through the null sink …", n)
	return makeRefs(e.caddy.base+epNull, e.sink, n)
}

// profiles takes CPU profiles of Caddy, one step at a time, outside the
// measured cells.
func (e *env) profiles(conc int, perValidate time.Duration) error {
	refs, err := e.refsFor(e.cfg.duration, perValidate)
	if err != nil {
		return err
	}
	ws, err := e.workloads(refs)
	if err != nil {
		return err
	}
	for _, p := range []struct{ cell, tag string }{
		{cValidate, "validate"}, {cInitMP, "initiate-mailpit"}, {cInitMPP, "initiate-mailpit-pool"},
		{cInitNull, "initiate-null"}, {cInitNullP, "initiate-null-pool"},
	} {
		stop := e.profile(true, p.tag)
		run(conc, e.cfg.duration, e.meters, ws[p.cell].op)
		stop()
	}
	return nil
}

// profile takes a CPU profile of Caddy over the next cell when asked to.
func (e *env) profile(on bool, tag string) func() {
	if !on || e.cfg.pprofDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(e.cfg.pprofDir, 0o755); err != nil {
		progress("  pprof: %v", err)
		return func() {}
	}
	file := filepath.Join(e.cfg.pprofDir, tag+".pprof")
	self, err := os.Create(filepath.Join(e.cfg.pprofDir, tag+"-load.pprof"))
	if err == nil {
		if err = pprof.StartCPUProfile(self); err != nil {
			self.Close()
			self = nil
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.caddy.profile(context.Background(), e.cfg.duration, file); err != nil {
			progress("  pprof %s: %v", tag, err)
			return
		}
		progress("  CPU profile of Caddy: %s (go tool pprof -top %s %s)", file, e.cfg.caddyBin, file)
	}()
	return func() {
		<-done
		if self != nil {
			pprof.StopCPUProfile()
			self.Close()
		}
	}
}

// flowResult is the sequential whole-flow cell.
type flowResult struct {
	result
	parts [3][]time.Duration // initiate, mail visible in mailpit, validate
	polls int                // requests to mailpit's API
}

func (e *env) flows(ep string) (flowResult, error) {
	var fr flowResult
	endpoint := e.caddy.base + ep
	fr.result = run(1, e.cfg.flows, e.meters, func(int) error {
		parts, polls, err := flow(endpoint, e.mp, fmt.Sprintf("flow%d@bench.example", seq.next()))
		fr.polls += polls
		for k := range parts {
			fr.parts[k] = append(fr.parts[k], parts[k])
		}
		return err
	})
	for k := range fr.parts {
		slices.Sort(fr.parts[k])
	}
	if fr.errs > 0 {
		return fr, fmt.Errorf("%d of the flows failed, the first with: %s", fr.errs, fr.firstErr)
	}
	return fr, nil
}

// memory runs the plugin's memory measurement, a test of the plugin's
// module at the repository root, and returns its figures.
func memory(root string) (string, error) {
	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestMemoryPerEntry$", "-v", ".")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go test -run TestMemoryPerEntry: %w\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, ": "); i >= 0 && strings.Contains(l, "B/entry") {
			lines = append(lines, "- "+strings.TrimSpace(l[i+2:]))
		}
	}
	return strings.Join(lines, "\n"), nil
}

func boundRate(t1, t2 float64) float64 {
	if t1 <= 0 || t2 <= 0 {
		return 0
	}
	return 1 / (1/t1 + 1/t2)
}

// median is the result with the median rate.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int {
		switch {
		case a.rate() < b.rate():
			return -1
		case a.rate() > b.rate():
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func report(cfg config, all map[string]map[int][]result, fls [2]flowResult, cfs []concFlow, mem string) {
	host, _ := os.Hostname()
	fmt.Printf("## email_otp load run\n\n%s, %d CPUs (GOMAXPROCS %d), %s, %s; signing_alg %s, access_token_alg %s; %v per cell, median of %d round(s); load average %s\n\n",
		host, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), time.Now().Format(time.RFC3339), cfg.alg, cfg.atAlg, cfg.duration, cfg.rounds, loadAvg())

	med := map[string]map[int]result{}
	for c, byConc := range all {
		med[c] = map[int]result{}
		for n, rs := range byConc {
			med[c][n] = median(rs)
		}
	}
	// Two readings of the same cells: the rates measured, and the rate the
	// CPUs could sustain if this benchmark had them to itself (NumCPU over
	// the CPU time one operation took in every process involved).
	wall := func(c string, n int) float64 { return med[c][n].rate() }
	capacity := func(c string, n int) float64 {
		r := med[c][n]
		t := r.cpuPerOp("caddy") + r.cpuPerOp("mailpit") + r.cpuPerOp("load")
		if t <= 0 {
			return 0
		}
		return float64(runtime.NumCPU()) / t.Seconds()
	}
	table("Throughput and latency, measured", cfg.conc, med, wall, true)
	table(fmt.Sprintf("CPU capacity: %d CPUs / CPU time per operation in Caddy, mailpit and this program", runtime.NumCPU()),
		cfg.conc, med, capacity, false)
	for _, c := range cellOrder {
		for _, n := range cfg.conc {
			if r := med[c][n]; r.errs > 0 {
				fmt.Printf("\n%s at c=%d: %d errors, the first: %s\n", c, n, r.errs, r.firstErr)
			}
			if r := med[c][n]; r.elapsed < cfg.duration*8/10 {
				fmt.Printf("\n%s at c=%d: ran %v only (its references ran out)\n", c, n, r.elapsed.Round(time.Millisecond))
			}
		}
	}

	fmt.Print("### CPU time per operation (ms): Caddy / mailpit / this load generator (incl. the null sink)\n\n")
	header, sep := "| cell |", "|---|"
	for _, n := range cfg.conc {
		header += fmt.Sprintf(" c=%d |", n)
		sep += "--:|"
	}
	fmt.Println(header + "\n" + sep)
	for _, c := range cellOrder {
		line := "| " + c + " |"
		for _, n := range cfg.conc {
			r := med[c][n]
			line += fmt.Sprintf(" %s / %s / %s |", ms(r.cpuPerOp("caddy")), ms(r.cpuPerOp("mailpit")), ms(r.cpuPerOp("load")))
		}
		fmt.Println(line)
	}

	fmt.Print("\n### Caddy's heap allocations per operation (runtime.MemStats.Mallocs through /debug/vars)\n\n")
	fmt.Println(header + "\n" + sep)
	for _, c := range cellOrder {
		line := "| " + c + " |"
		for _, n := range cfg.conc {
			line += fmt.Sprintf(" %.0f |", med[c][n].allocsPerOp())
		}
		fmt.Println(line)
	}

	fmt.Printf("\n### Whole flows, one after the other (initiate → read the code from mailpit's API → validate)\n\n")
	fmt.Println("| SMTP connections | flows | flows/s | p50 ms | p99 ms | initiate p50 | reading the code p50 | API polls/flow | validate p50 | CPU ms/flow: Caddy / mailpit / load | Caddy allocs/flow |")
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for i, fl := range fls {
		name := "a connection per mail (`idle_conns 0`)"
		if i == 1 {
			name = "kept connections (default)"
		}
		fmt.Printf("| %s | %d | **%.1f** | %s | %s | %s | %s | %.1f | %s | %s / %s / %s | %.0f |\n", name, fl.ops, fl.rate(),
			ms(fl.pct(0.5)), ms(fl.pct(0.99)), ms(pct(fl.parts[0], 0.5)), ms(pct(fl.parts[1], 0.5)),
			float64(fl.polls)/float64(max(1, fl.ops)), ms(pct(fl.parts[2], 0.5)),
			ms(fl.cpuPerOp("caddy")), ms(fl.cpuPerOp("mailpit")), ms(fl.cpuPerOp("load")), fl.allocsPerOp())
	}
	reportConcFlows(cfs)
	if mem != "" {
		fmt.Printf("\n### Server memory (runtime.ReadMemStats after GC, before/after N entries)\n\n%s\n", mem)
	}
}

func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[int(float64(len(s)-1)*p)]
}

// table prints the side-by-side table of one reading (rate per cell), with
// the bound and the ratios; lat adds the latency columns.
func table(title string, conc []int, med map[string]map[int]result, rate func(string, int) float64, lat bool) {
	header, sep := "| cell |", "|---|"
	for _, n := range conc {
		if lat {
			header += fmt.Sprintf(" c=%d req/s | p50 ms | p99 ms |", n)
			sep += "--:|--:|--:|"
		} else {
			header += fmt.Sprintf(" c=%d ops/s |", n)
			sep += "--:|"
		}
	}
	fmt.Printf("### %s\n\n%s\n%s\n", title, header, sep)
	blank := ""
	if lat {
		blank = " | |"
	}
	line := func(label string, f func(n int) string) {
		l := "| " + label + " |"
		for _, n := range conc {
			l += " " + f(n) + blank + " |"
		}
		fmt.Println(l)
	}
	row := func(c string) {
		if !lat {
			line(c, func(n int) string { return fmt.Sprintf("%.0f", rate(c, n)) })
			return
		}
		l := "| " + c + " |"
		for _, n := range conc {
			r := med[c][n]
			l += fmt.Sprintf(" %.0f | %s | %s |", rate(c, n), ms(r.pct(0.5)), ms(r.pct(0.99)))
		}
		fmt.Println(l)
	}
	ratio := func(label, a, b string) {
		line(label, func(n int) string { return fmt.Sprintf("**%.2f**", rate(a, n)/rate(b, n)) })
	}
	bound := func(n int) float64 { return boundRate(rate(cBare, n), rate(cSign, n)) }
	row(cBare)
	row(cSign)
	line("bound = 1/(1/bare + 1/signing)", func(n int) string { return fmt.Sprintf("%.0f", bound(n)) })
	row(cValidate)
	line("validate / bound (target ≥ 0.9)", func(n int) string { return fmt.Sprintf("**%.2f**", rate(cValidate, n)/bound(n)) })
	row(cSignRoute)
	ratio("validate / Caddy route that signs (target ≥ 0.9)", cValidate, cSignRoute)
	for _, g := range [][5]string{{cRawNullD, cRawNullK, cMailNull, cInitNull, cInitNullP}, {cRawMPD, cRawMPK, cMailMP, cInitMP, cInitMPP}} {
		row(g[0])
		row(g[1])
		row(g[2])
		row(g[3])
		ratio("initiate / raw, both a connection per message (target ≥ 0.8)", g[3], g[0])
		row(g[4])
		ratio("initiate, kept connections / raw, a connection per message (target ≥ 0.8)", g[4], g[0])
		ratio("initiate, kept connections / raw, kept-open", g[4], g[1])
		ratio("initiate, kept connections / Caddy route that mails, kept-open", g[4], g[2])
	}
	fmt.Println()
}
