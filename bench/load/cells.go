package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	emailotp "github.com/caddy-email-otp/emailotp"
	"github.com/caddy-email-otp/emailotp/bench/floor"

	gomail "github.com/wneessen/go-mail"
)

// result is one cell: one kind of operation at one concurrency.
type result struct {
	ops      int
	errs     int
	firstErr string
	elapsed  time.Duration
	lat      []time.Duration // sorted
	cpu      map[string]time.Duration
}

func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p)
	return r.lat[i]
}

// cpuPerOp is the CPU time the named process spent per successful operation.
func (r result) cpuPerOp(name string) time.Duration {
	if r.ops == 0 {
		return 0
	}
	return r.cpu[name] / time.Duration(r.ops)
}

// add merges a slice of the same cell.
func (r *result) add(o result) {
	r.ops += o.ops
	r.errs += o.errs
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	for k, v := range o.cpu {
		r.cpu[k] += v
	}
}

// errStop ends a worker without counting an error (its supply ran out).
var errStop = errors.New("stop")

// meters are the processes whose CPU time each cell records.
type meters map[string]func() time.Duration

func (m meters) read() map[string]time.Duration {
	out := make(map[string]time.Duration, len(m))
	for k, f := range m {
		out[k] = f()
	}
	return out
}

// run calls op from conc workers until d has passed, and times every call.
func run(conc int, d time.Duration, m meters, op func(worker int) error) result {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		res   result
		stop  atomic.Bool
		start = time.Now()
		cpu0  = m.read()
	)
	deadline := start.Add(d)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			ops, errs, first := 0, 0, ""
			for !stop.Load() && time.Now().Before(deadline) {
				t := time.Now()
				err := op(w)
				if errors.Is(err, errStop) {
					stop.Store(true)
					break
				}
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t))
				ops++
			}
			mu.Lock()
			res.ops += ops
			res.errs += errs
			if res.firstErr == "" {
				res.firstErr = first
			}
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	cpu1 := m.read()
	res.cpu = make(map[string]time.Duration, len(cpu1))
	for k, v := range cpu1 {
		res.cpu[k] = v - cpu0[k]
	}
	slices.Sort(res.lat)
	return res
}

// httpClient keeps connections open to Caddy, one or more per worker.
var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
		DisableCompression: true,
	},
}

// postForm posts a form with HTTP Basic client authentication and returns
// the status and body.
func postForm(u string, form url.Values) (int, []byte, error) {
	return postBody(u, form.Encode())
}

// postBody posts an encoded form with HTTP Basic client authentication.
func postBody(u, body string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bench", "bench-secret")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func initiateForm(addr string) url.Values {
	return url.Values{"grant_type": {emailotp.DefaultGrantType}, "scope": {"openid"}, "username": {addr}}
}

func validateForm(ref, code string) url.Values {
	return url.Values{"grant_type": {emailotp.DefaultGrantType}, "scope": {"openid"},
		"x_globalsign_iam_reference_id": {ref}, "x_globalsign_iam_otp_code": {code}}
}

// initiate asks the endpoint to mail a code to addr and returns the reference.
func initiate(endpoint, addr string) (string, error) {
	status, body, err := postForm(endpoint, initiateForm(addr))
	if err != nil {
		return "", err
	}
	var a struct {
		Challenge struct {
			Reference string `json:"reference"`
		} `json:"x_globalsign_iam_challenge"`
	}
	if status != 200 || json.Unmarshal(body, &a) != nil || a.Challenge.Reference == "" {
		return "", fmt.Errorf("initiate: %d %.200s", status, body)
	}
	return a.Challenge.Reference, nil
}

// validate trades a reference and code for tokens.
func validate(endpoint, ref, code string) error {
	status, body, err := postForm(endpoint, validateForm(ref, code))
	if err != nil {
		return err
	}
	if status != 200 || !bytes.Contains(body, []byte(`"id_token"`)) {
		return fmt.Errorf("validate: %d %.200s", status, body)
	}
	return nil
}

// floorRoute posts body to one of the floor routes (bare, signing, mailing)
// as the steps are posted, and checks the answer is a 200 holding want.
func floorRoute(u, body, want string) error {
	status, b, err := postBody(u, body)
	if err != nil {
		return err
	}
	if status != 200 || !strings.Contains(string(b), want) {
		return fmt.Errorf("%s: %d %.200s", u, status, b)
	}
	return nil
}

// refSupply is a stock of (reference, code) pairs made through the null-sink
// endpoint before a validate cell, so the cell measures validation alone.
type refSupply struct {
	refs, codes []string
	next        atomic.Int64
}

func (s *refSupply) take() (string, string, bool) {
	i := int(s.next.Add(1)) - 1
	if i >= len(s.refs) {
		return "", "", false
	}
	return s.refs[i], s.codes[i], true
}

var refSeq atomic.Int64

// makeRefs initiates n challenges through the null sink with 8 workers and
// collects their references and the codes the sink saw.
func makeRefs(endpoint string, sink *nullSink, n int) (*refSupply, error) {
	s := &refSupply{refs: make([]string, n), codes: make([]string, n)}
	var (
		wg    sync.WaitGroup
		idx   atomic.Int64
		errMu sync.Mutex
		first error
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(idx.Add(1)) - 1
				if i >= n {
					return
				}
				addr := fmt.Sprintf("%s%d@bench.example", keepPrefix, refSeq.Add(1))
				ref, err := initiate(endpoint, addr)
				var code string
				if err == nil {
					var ok bool
					if code, ok = sink.take(addr); !ok {
						err = fmt.Errorf("null sink has no code for %s", addr)
					}
				}
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
				s.refs[i], s.codes[i] = ref, code
			}
		}()
	}
	wg.Wait()
	return s, first
}

// rawSender sends the plugin's message with go-mail directly: either one
// connection per message (DialAndSendWithContext, as the plugin did before
// its pool), or one kept-open connection per worker.
type rawSender struct {
	port     int
	keepOpen bool
	shared   *gomail.Client
	mu       sync.Mutex
	perW     map[int]*gomail.Client
}

func newRawSender(port int, keepOpen bool) (*rawSender, error) {
	c, err := floor.MailClient(port)
	if err != nil {
		return nil, err
	}
	return &rawSender{port: port, keepOpen: keepOpen, shared: c, perW: map[int]*gomail.Client{}}, nil
}

func (r *rawSender) send(worker int, to string) error {
	msg, err := floor.Message(to)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !r.keepOpen {
		return r.shared.DialAndSendWithContext(ctx, msg)
	}
	r.mu.Lock()
	c := r.perW[worker]
	r.mu.Unlock()
	if c == nil {
		if c, err = floor.MailClient(r.port); err != nil {
			return err
		}
		if err = c.DialWithContext(ctx); err != nil {
			return err
		}
		r.mu.Lock()
		r.perW[worker] = c
		r.mu.Unlock()
	}
	if err = c.Send(msg); err != nil {
		_ = c.Close()
		r.mu.Lock()
		delete(r.perW, worker)
		r.mu.Unlock()
	}
	return err
}

func (r *rawSender) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.perW {
		_ = c.Close()
	}
}

// flow is one whole sign-in as an application and a person do it, one after
// the other: initiate through mailpit, read the code from mailpit's API,
// validate. It returns the time spent in each of the three parts.
func flow(endpoint string, mp *mailpitProc, addr string) ([3]time.Duration, int, error) {
	var parts [3]time.Duration
	t0 := time.Now()
	ref, err := initiate(endpoint, addr)
	if err != nil {
		return parts, 0, err
	}
	t1 := time.Now()
	code, polls, err := mp.waitCode(addr, 10*time.Second)
	if err != nil {
		return parts, polls, err
	}
	t2 := time.Now()
	if err := validate(endpoint, ref, code); err != nil {
		return parts, polls, err
	}
	parts[0], parts[1], parts[2] = t1.Sub(t0), t2.Sub(t1), time.Since(t2)
	return parts, polls, nil
}

// waitCode polls mailpit's message list until the newest mail is the one to
// addr, and returns the code from its snippet (the first 250 characters of
// the text). The flows run one after the other, so the newest mail is the
// flow's own once mailpit has stored it; mailpit stores a mail before it
// answers the final "250" to DATA, so the first poll usually finds it. The
// poll interval starts at 1 ms and doubles to 16 ms.
func (m *mailpitProc) waitCode(addr string, timeout time.Duration) (string, int, error) {
	u := m.api + "/api/v1/messages?limit=1"
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for polls := 1; ; polls++ {
		resp, err := m.client.Get(u)
		if err != nil {
			return "", polls, err
		}
		var l struct {
			Messages []struct {
				To []struct {
					Address string `json:"Address"`
				} `json:"To"`
				Snippet string `json:"Snippet"`
			} `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err != nil {
			return "", polls, err
		}
		for _, msg := range l.Messages {
			if len(msg.To) == 1 && strings.EqualFold(msg.To[0].Address, addr) {
				if c := codeRE.FindString(msg.Snippet); c != "" {
					return c, polls, nil
				}
				return "", polls, fmt.Errorf("no code in mailpit snippet %q", msg.Snippet)
			}
		}
		if time.Now().After(deadline) {
			return "", polls, fmt.Errorf("no mail to %s in mailpit within %v", addr, timeout)
		}
		time.Sleep(wait)
		wait = min(2*wait, 16*time.Millisecond)
	}
}

// atomicCounter numbers the addresses of a run, so every mail has its own.
type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int64 { return c.n.Add(1) }
