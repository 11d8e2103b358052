package emailotp

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// series is one scraped sample: the metric name and its labels.
type series struct {
	name   string
	labels map[string]string
}

// scrape reads Caddy's metrics endpoint in the Prometheus text format and
// returns every caddy_email_otp_* sample by its line key (name{labels}).
func scrape(t *testing.T, url string) (map[string]float64, []series) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	values := map[string]float64{}
	var all []series
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_email_otp_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		key := line[:i]
		values[key] = v
		s := series{name: key, labels: map[string]string{}}
		if name, rest, ok := strings.Cut(key, "{"); ok {
			s.name = name
			for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		all = append(all, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return values, all
}

// TestMetrics runs a flow through a whole server — a challenge, a refused
// second challenge (limit address 1 1m), a wrong code, the right code, a
// replay, a forged reference — and checks each counter moved by exactly what
// happened, and that no label holds an address.
func TestMetrics(t *testing.T) {
	mp := startMailpit(t)
	// handle, since the site's catch-all respond comes before metrics in
	// Caddy's directive order.
	tc := startCaddy(t, "\thandle /metrics {\n\t\tmetrics\n\t}\n"+otpSite(mp.SMTPPort, "\t\tlimit address 1 1m"))
	tokenURL, metricsURL := tc.Base+tokenPath, tc.Base+"/metrics"
	const addr = "metrics-alice@example.com"

	before, _ := scrape(t, metricsURL)

	ref, code, _ := initiate(t, tc, mp, addr, nil, appCreds)
	if a := post(t, tokenURL, initiateForm(addr), appCreds); a.Status != http.StatusTooManyRequests || a.str("error") != "slow_down" {
		t.Fatalf("second code within the address limit: %s", a)
	}
	a := post(t, tokenURL, validateForm(ref, wrong(code)), appCreds)
	if a.Status != 400 || a.reference() == "" {
		t.Fatalf("wrong code: %s", a)
	}
	ref = a.reference()
	if a := post(t, tokenURL, validateForm(ref, code), appCreds); a.Status != 200 {
		t.Fatalf("right code: %s", a)
	}
	if a := post(t, tokenURL, validateForm(ref, code), appCreds); a.Status != 400 || a.str("error") != "invalid_grant" {
		t.Fatalf("replay: %s", a)
	}
	if a := post(t, tokenURL, validateForm("forged-reference", code), appCreds); a.Status != 400 || a.str("error") != "invalid_grant" {
		t.Fatalf("forged reference: %s", a)
	}

	after, all := scrape(t, metricsURL)
	for key, want := range map[string]float64{
		`caddy_email_otp_challenges_total{client="app"}`:                            1,
		`caddy_email_otp_rate_limited_total{client="app",scope="address"}`:          1,
		`caddy_email_otp_smtp_send_duration_seconds_count{client="app"}`:            1,
		`caddy_email_otp_validations_total{client="app",outcome="invalid_code"}`:    1,
		`caddy_email_otp_validations_total{client="app",outcome="ok"}`:              1,
		`caddy_email_otp_validations_total{client="app",outcome="replayed"}`:        1,
		`caddy_email_otp_validations_total{client="app",outcome="bad_reference"}`:   1,
		`caddy_email_otp_validations_total{client="app",outcome="expired"}`:         0,
		`caddy_email_otp_rate_limited_total{client="app",scope="client"}`:           0,
		`caddy_email_otp_smtp_send_failures_total{client="app"}`:                    0,
		`caddy_email_otp_smtp_send_duration_seconds_bucket{client="app",le="+Inf"}`: 1,
		`caddy_email_otp_validations_total{client="other",outcome="ok"}`:            0,
		`caddy_email_otp_validations_total{client="app",outcome="wrong_client"}`:    0,
		`caddy_email_otp_challenges_total{client="strict"}`:                         0,
		`caddy_email_otp_rate_limited_total{client="app",scope="user_ip"}`:          0,
		`caddy_email_otp_validations_total{client="app",outcome="exhausted"}`:       0,
		`caddy_email_otp_smtp_send_duration_seconds_bucket{client="app",le="30"}`:   1,
	} {
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	if d := after[`caddy_email_otp_smtp_send_duration_seconds_sum{client="app"}`] -
		before[`caddy_email_otp_smtp_send_duration_seconds_sum{client="app"}`]; d <= 0 || d > 10 {
		t.Errorf("smtp send duration sum moved by %vs, want one delivery's time", d)
	}

	names := map[string]bool{}
	for _, s := range all {
		names[s.name] = true
		for k, v := range s.labels {
			if strings.Contains(v, "@") || strings.Contains(strings.ToLower(v), "alice") {
				t.Errorf("%s: label %s=%q holds an address", s.name, k, v)
			}
			if k != "client" && k != "outcome" && k != "scope" && k != "le" {
				t.Errorf("%s: unexpected label %s", s.name, k)
			}
		}
	}
	for _, n := range []string{"caddy_email_otp_challenges_total", "caddy_email_otp_validations_total",
		"caddy_email_otp_rate_limited_total", "caddy_email_otp_smtp_send_duration_seconds_count"} {
		if !names[n] {
			t.Errorf("metric %s not exposed", n)
		}
	}
}
