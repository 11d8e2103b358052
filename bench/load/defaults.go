package main

// -defaults: what the defaults of issue 10 cost. The ledger of consumed
// references in Caddy's storage and the limits counted through it against
// the volatile memory ledger, in one Caddy with one handler per setup, all
// mailing to the null sink, their cells interleaved in slices so that each
// ratio compares the same moments of a shared machine. With -instances N,
// also whole flows spread round-robin over N Caddy processes sharing one
// file storage (initiate at one, validate at the next) against the same
// flows at one process, interleaved too.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// setup is one email_otp handler of the -defaults Caddy.
type setup struct {
	name, path, extra string
}

// setups: the defaults, the memory ledger with the same limits, and the
// memory ledger without limits (the volatile setup before issue 10). The
// client limit is raised in the first two because its default (1000 a
// minute) would throttle a load test within a second; the address limit
// keeps its default (5 per 15 minutes) and every request has its own
// address, so each initiate is an address's first code and is coordinated
// through the storage (a claim written, the instances listed and read).
var setups = []setup{
	{"defaults: `ledger storage`, limits shared through storage", "def", "limit client 100000000 1m"},
	{"`ledger memory`, the same limits", "mem", "ledger memory\n\t\tlimit client 100000000 1m"},
	{"`ledger memory`, `limit address off`, `limit client off`", "memoff", "ledger memory\n\t\tlimit address off\n\t\tlimit client off"},
}

const setupTmpl = `
	email_otp {
		token_path /%s/oauth2/token
		signing_alg %s
		smtp {
			host 127.0.0.1
			port %d
			tls none
			from "Bench <no-reply@example.com>"
			timeout 10s
		}
		template {
			subject "Your code"
			body "Your code is {0}"
		}
		client bench bench-secret
		%s
	}
`

func setupHandlers(alg string, sinkPort int) string {
	var b strings.Builder
	for _, s := range setups {
		fmt.Fprintf(&b, setupTmpl, s.path, alg, sinkPort, s.extra)
	}
	return b.String()
}

func endpoint(base, path string) string { return base + "/" + path + "/oauth2/token" }

func compareDefaults(cfg config, dir string) error {
	sink, err := startNullSink()
	if err != nil {
		return err
	}
	defer sink.close()
	storage := filepath.Join(dir, "shared-storage")
	n := max(1, cfg.instances)
	procs := make([]*caddyProc, n)
	for i := range procs {
		d := filepath.Join(dir, fmt.Sprintf("instance%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		progress("starting Caddy instance %d of %d on %s …", i+1, n, storage)
		procs[i], err = startCaddy(cfg.caddyBin, d, caddyfileVars{Alg: cfg.alg, Storage: storage,
			Handlers: setupHandlers(cfg.alg, sink.port), NullPort: sink.port, MailpitPort: sink.port})
		if err != nil {
			return err
		}
		defer procs[i].stop()
	}
	caddyCPU := func() time.Duration {
		var t time.Duration
		for _, p := range procs {
			t += p.cpu()
		}
		return t
	}
	m := meters{"caddy": caddyCPU, "load": selfCPU}
	base := procs[0].base
	// warm up every handler, at every instance
	for _, s := range setups {
		for _, p := range procs[1:] {
			if _, err := initiate(endpoint(p.base, s.path), fmt.Sprintf("warm%d@bench.example", seq.next())); err != nil {
				return err
			}
		}
		refs, err := makeRefs(endpoint(base, s.path), sink, 20)
		if err != nil {
			return err
		}
		for ref, code, ok := refs.take(); ok; ref, code, ok = refs.take() {
			if err := validate(endpoint(base, s.path), ref, code); err != nil {
				return err
			}
		}
	}

	if !cfg.cells {
		return clusterFlows(cfg, procs, sink, m)
	}
	type cell struct{ setup, step string }
	var cells []cell
	for _, s := range setups {
		cells = append(cells, cell{s.name, "validate"}, cell{s.name, "initiate"})
	}
	all := map[cell]map[int][]result{}
	for _, c := range cells {
		all[c] = map[int][]result{}
	}
	for round := 1; round <= cfg.rounds; round++ {
		for _, conc := range cfg.conc {
			ops := map[cell]func(int) error{}
			for _, s := range setups {
				ep := endpoint(base, s.path)
				// enough for the cell at 900 validations a second
				want := min(8000, int(cfg.duration.Seconds()*900)+100)
				progress("round %d, c=%d: making %d references at /%s …", round, conc, want, s.path)
				refs, err := makeRefs(ep, sink, want)
				if err != nil {
					return err
				}
				ops[cell{s.name, "validate"}] = func(int) error {
					ref, code, ok := refs.take()
					if !ok {
						return errStop
					}
					return validate(ep, ref, code)
				}
				ops[cell{s.name, "initiate"}] = func(int) error {
					_, err := initiate(ep, fmt.Sprintf("load%d@bench.example", seq.next()))
					return err
				}
			}
			progress("round %d, c=%d: %d cells interleaved in %v slices", round, conc, len(cells), cfg.slice)
			acc := interleave(cells, ops, conc, cfg, m)
			for c, r := range acc {
				all[c][conc] = append(all[c][conc], r)
			}
			if err := procs[0].alive(); err != nil {
				return err
			}
		}
	}

	host, _ := os.Hostname()
	fmt.Printf("## email_otp defaults against `ledger memory`\n\n%s, %d CPUs, %s, %s; signing_alg %s; %v per cell in %v slices, median of %d round(s); Caddy log level INFO to a file; null SMTP sink\n\n",
		host, runtime.NumCPU(), runtime.Version(), time.Now().Format(time.RFC3339), cfg.alg, cfg.duration, cfg.slice, cfg.rounds)
	head := "| setup | step |"
	sep := "|---|---|"
	for _, c := range cfg.conc {
		head += fmt.Sprintf(" c=%d req/s | c=%d p50 ms | c=%d / memory |", c, c, c)
		sep += "--:|--:|--:|"
	}
	fmt.Println(head)
	fmt.Println(sep)
	for _, step := range []string{"validate", "initiate"} {
		for _, s := range setups {
			line := fmt.Sprintf("| %s | %s |", s.name, step)
			for _, conc := range cfg.conc {
				r := median(all[cell{s.name, step}][conc])
				ref := median(all[cell{setups[1].name, step}][conc])
				ratio := 0.0
				if ref.rate() > 0 {
					ratio = r.rate() / ref.rate()
				}
				line += fmt.Sprintf(" %.0f | %s | %.2f |", r.rate(), ms(r.pct(0.5)), ratio)
			}
			fmt.Println(line)
		}
	}
	for _, c := range cells {
		for _, conc := range cfg.conc {
			if r := median(all[c][conc]); r.errs > 0 {
				fmt.Printf("\n%s %s at c=%d: %d errors, the first: %s\n", c.setup, c.step, conc, r.errs, r.firstErr)
			}
		}
	}
	if n > 1 {
		return clusterFlows(cfg, procs, sink, m)
	}
	return nil
}

// interleave runs the cells at one concurrency in slices taken in turn.
func interleave[C comparable](cells []C, ops map[C]func(int) error, conc int, cfg config, m meters) map[C]result {
	slicesN := max(1, int(cfg.duration/cfg.slice))
	acc := map[C]*result{}
	for _, c := range cells {
		acc[c] = &result{cpu: map[string]time.Duration{}}
	}
	for range slicesN {
		for _, c := range cells {
			acc[c].add(run(conc, cfg.duration/time.Duration(slicesN), m, ops[c]))
		}
	}
	out := map[C]result{}
	for c, r := range acc {
		slices.Sort(r.lat)
		out[c] = *r
	}
	return out
}

// clusterFlows runs whole flows with the defaults at one instance and spread
// over all of them, interleaved: each flow initiates at one instance, takes
// the code from the null sink and validates at the next instance.
func clusterFlows(cfg config, procs []*caddyProc, sink *nullSink, m meters) error {
	path := setups[0].path
	flowAt := func(at []*caddyProc) func(int) error {
		return func(int) error {
			i := int(seq.next())
			addr := fmt.Sprintf("%sflow%d@bench.example", keepPrefix, i)
			ref, err := initiate(endpoint(at[i%len(at)].base, path), addr)
			if err != nil {
				return err
			}
			code, ok := sink.take(addr)
			if !ok {
				return fmt.Errorf("null sink has no code for %s", addr)
			}
			return validate(endpoint(at[(i+1)%len(at)].base, path), ref, code)
		}
	}
	one, all := "1 instance", fmt.Sprintf("%d instances, shared file storage, round-robin", len(procs))
	cells := []string{one, all}
	ops := map[string]func(int) error{one: flowAt(procs[:1]), all: flowAt(procs)}
	res := map[string]map[int][]result{one: {}, all: {}}
	for round := 1; round <= cfg.rounds; round++ {
		for _, conc := range cfg.conc {
			progress("round %d, c=%d: whole flows at 1 and %d instances, interleaved", round, conc, len(procs))
			for c, r := range interleave(cells, ops, conc, cfg, m) {
				res[c][conc] = append(res[c][conc], r)
			}
		}
	}
	fmt.Printf("\n### Whole flows (initiate, code from the null sink, validate at the next instance), defaults\n\n")
	head, sep := "| instances |", "|---|"
	for _, c := range cfg.conc {
		head += fmt.Sprintf(" c=%d flows/s | c=%d p50 ms | c=%d Caddy CPU ms/flow (all instances) |", c, c, c)
		sep += "--:|--:|--:|"
	}
	fmt.Println(head)
	fmt.Println(sep)
	for _, c := range cells {
		line := "| " + c + " |"
		for _, conc := range cfg.conc {
			r := median(res[c][conc])
			line += fmt.Sprintf(" %.0f | %s | %s |", r.rate(), ms(r.pct(0.5)), ms(r.cpuPerOp("caddy")))
			if r.errs > 0 {
				defer fmt.Printf("\n%s at c=%d: %d errors, the first: %s\n", c, conc, r.errs, r.firstErr)
			}
		}
		fmt.Println(line)
	}
	return nil
}
