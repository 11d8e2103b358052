package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/caddy-email-otp/emailotp/bench/floor"
	"github.com/caddy-email-otp/emailotp/internal/keys"
)

// One run of the benchmark: the processes under test, the warm-up, the
// cells at each concurrency interleaved in slices, the profiles, the whole
// flows, and the memory figures.

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
