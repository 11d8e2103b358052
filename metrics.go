package emailotp

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the plugin's Prometheus collectors. Labels are the client id
// and an outcome or scope, never an address: series stay few and say nothing
// about a person.
type metrics struct {
	challenges  *prometheus.CounterVec
	validations *prometheus.CounterVec
	limited     *prometheus.CounterVec
	sendSeconds *prometheus.HistogramVec
	sendErrors  *prometheus.CounterVec
	refusals    *prometheus.CounterVec
}

var (
	collectorsOnce sync.Once
	collectors     *metrics
)

// registerMetrics creates the collectors once per process and registers them
// on the registry of each config, as Caddy's reverse proxy does.
func registerMetrics(reg *prometheus.Registry) (*metrics, error) {
	collectorsOnce.Do(func() {
		const ns, sub = "caddy", "email_otp"
		collectors = &metrics{
			challenges: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: ns, Subsystem: sub, Name: "challenges_total",
				Help: "Codes mailed, by client.",
			}, []string{"client"}),
			validations: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: ns, Subsystem: sub, Name: "validations_total",
				Help: "Validation requests by client and outcome (ok, invalid_code, expired, replayed, exhausted, bad_reference, wrong_handler, wrong_client, domain_refused).",
			}, []string{"client", "outcome"}),
			limited: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: ns, Subsystem: sub, Name: "rate_limited_total",
				Help: "Requests refused by a rate limit, by client and scope.",
			}, []string{"client", "scope"}),
			sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Namespace: ns, Subsystem: sub, Name: "smtp_send_duration_seconds",
				Help:    "Time to hand one mail to the SMTP server.",
				Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			}, []string{"client"}),
			sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: ns, Subsystem: sub, Name: "smtp_send_failures_total",
				Help: "Mails the SMTP server did not accept, by client.",
			}, []string{"client"}),
			refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: ns, Subsystem: sub, Name: "refused_total",
				Help: "Addresses refused by the client's allow_domains (domain_refused) or by the mail server (recipient_refused), by client and outcome.",
			}, []string{"client", "outcome"}),
		}
	})
	if reg == nil {
		return collectors, nil
	}
	for _, c := range []prometheus.Collector{collectors.challenges, collectors.validations,
		collectors.limited, collectors.sendSeconds, collectors.sendErrors, collectors.refusals} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return collectors, nil
}

func (m *metrics) challenge(client string) { m.challenges.WithLabelValues(client).Inc() }

func (m *metrics) validated(client, outcome string) {
	m.validations.WithLabelValues(client, outcome).Inc()
}

func (m *metrics) rateLimited(client, scope string) { m.limited.WithLabelValues(client, scope).Inc() }

func (m *metrics) sent(client string, d time.Duration, err error) {
	m.sendSeconds.WithLabelValues(client).Observe(d.Seconds())
	if err != nil {
		m.sendErrors.WithLabelValues(client).Inc()
	}
}

func (m *metrics) refused(client, outcome string) { m.refusals.WithLabelValues(client, outcome).Inc() }
