package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// allocMeter is the meter that carries Caddy's count of heap allocations
// (runtime.MemStats.Mallocs, read through the admin API's /debug/vars) in
// the cells' CPU map: a count, not a duration, so cpuPerOp of it is the
// number of allocations per operation.
const allocMeter = "caddy-allocs"

// mallocs reads Caddy's cumulative heap allocations; 0 if the admin API
// does not answer (the cells then show no figure rather than a wrong one).
func (c *caddyProc) mallocs() time.Duration {
	resp, err := adminClient.Get("http://" + c.admin + "/debug/vars")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var v struct {
		Memstats struct {
			Mallocs uint64 `json:"Mallocs"`
		} `json:"memstats"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&v) != nil {
		return 0
	}
	return time.Duration(v.Memstats.Mallocs)
}

var adminClient = &http.Client{Timeout: 10 * time.Second}

// allocsPerOp is the allocations Caddy made per successful operation.
func (r result) allocsPerOp() float64 {
	if r.ops == 0 || r.cpu[allocMeter] <= 0 {
		return 0
	}
	return float64(r.cpu[allocMeter]) / float64(r.ops)
}

// loadAvg is the 1-, 5- and 15-minute load average of the machine, which
// other work shares: the figures are read next to it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// concFlow is one whole-flow cell at a concurrency: through the null sink
// (the code taken from the sink as soon as the initiate answers: Caddy's
// own share of a flow) or through mailpit (the code read with mailpit's
// search API, as concurrent flows cannot take the newest mail).
type concFlow struct {
	conc    int
	mailpit bool
	result
}

// concFlows runs whole flows at each concurrency of -flowconc, through
// the null sink and through mailpit, on the handlers with kept
// connections (the default).
func (e *env) concFlows() ([]concFlow, error) {
	var out []concFlow
	for _, conc := range e.cfg.flowConc {
		for _, viaMP := range []bool{false, true} {
			if viaMP {
				if err := e.mp.deleteAll(); err != nil {
					return nil, err
				}
			}
			progress("whole flows at concurrency %d (mailpit %t) …", conc, viaMP)
			tag := "flow-null"
			if viaMP {
				tag = "flow-mailpit"
			}
			stop := e.profile(conc == slices.Max(e.cfg.flowConc), fmt.Sprintf("%s-c%d", tag, conc))
			r := run(conc, e.cfg.flows, e.meters, func(int) error {
				return e.concFlow(viaMP)
			})
			stop()
			if r.errs > 0 {
				return nil, fmt.Errorf("%d of the flows at c=%d failed, the first with: %s", r.errs, conc, r.firstErr)
			}
			out = append(out, concFlow{conc: conc, mailpit: viaMP, result: r})
		}
	}
	return out, nil
}

func (e *env) concFlow(viaMP bool) error {
	if !viaMP {
		addr := fmt.Sprintf("%s-flow%d@bench.example", keepPrefix, seq.next())
		endpoint := e.caddy.base + epNullPool
		ref, err := initiate(endpoint, addr)
		if err != nil {
			return err
		}
		code, ok := e.sink.take(addr)
		if !ok {
			return fmt.Errorf("null sink has no code for %s", addr)
		}
		return validate(endpoint, ref, code)
	}
	addr := fmt.Sprintf("cflow%d@bench.example", seq.next())
	endpoint := e.caddy.base + epMPPool
	ref, err := initiate(endpoint, addr)
	if err != nil {
		return err
	}
	code, err := e.mp.searchCode(addr, 10*time.Second)
	if err != nil {
		return err
	}
	return validate(endpoint, ref, code)
}

// searchCode finds the mail to addr with mailpit's search API and returns
// its code; polls start at once, then every 1, 2, 4 … 16 ms.
func (m *mailpitProc) searchCode(addr string, timeout time.Duration) (string, error) {
	u := m.api + "/api/v1/search?limit=1&query=" + url.QueryEscape("to:"+addr)
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		resp, err := m.client.Get(u)
		if err != nil {
			return "", err
		}
		var l struct {
			Messages []struct {
				Snippet string `json:"Snippet"`
			} `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err != nil {
			return "", err
		}
		if len(l.Messages) > 0 {
			if c := codeRE.FindString(l.Messages[0].Snippet); c != "" {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no mail to %s in mailpit within %v", addr, timeout)
		}
		time.Sleep(wait)
		wait = min(2*wait, 16*time.Millisecond)
	}
}

// reportConcFlows prints the concurrent whole flows next to the goals.
func reportConcFlows(cfs []concFlow) {
	if len(cfs) == 0 {
		return
	}
	fmt.Printf("\n### Whole flows at concurrency (initiate → code → validate; kept SMTP connections; limits off)\n\n")
	fmt.Println("| c | mail sink | flows | flows/s | p50 ms | p99 ms | CPU ms/flow: Caddy / mailpit / load | Caddy allocs/flow |")
	fmt.Println("|--:|---|--:|--:|--:|--:|--:|--:|")
	slices.SortStableFunc(cfs, func(a, b concFlow) int { return a.conc - b.conc })
	for _, f := range cfs {
		sink := "null sink"
		if f.mailpit {
			sink = "mailpit"
		}
		fmt.Printf("| %d | %s | %d | **%.1f** | %s | %s | **%s** / %s / %s | %.0f |\n", f.conc, sink, f.ops, f.rate(),
			ms(f.pct(0.5)), ms(f.pct(0.99)), ms(f.cpuPerOp("caddy")), ms(f.cpuPerOp("mailpit")), ms(f.cpuPerOp("load")), f.allocsPerOp())
	}
}
