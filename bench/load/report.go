package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

// The report: the Markdown tables BENCHMARKS.md quotes, from the medians
// of the rounds.

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
