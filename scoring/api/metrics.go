package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/schemas"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	scores   *prometheus.CounterVec
}

// servedRoutes are the route labels of riskflow_api_requests_total and riskflow_api_request_seconds
// (instrument's route argument) that a node serves whatever its configuration.
var servedRoutes = []string{"check", "events", "healthz", "readyz", "rules", "explain", "labels", "openapi"}

// failingRoutes are the routes riskflow_api_failing_seconds reports: those whose failures are
// not the node's readiness (a check refused while the node is not ready is not counted).
var failingRoutes = []string{"check", "events", "rules", "explain", "labels"}

func newMetrics(reg prometheus.Registerer, fails *failureLog) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "riskflow_api_requests_total", Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "riskflow_api_request_seconds", Help: "API request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5},
		}, []string{"route"}),
		scores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "riskflow_api_scores_total", Help: "Verdicts returned by /v1/risk/check, by score.",
		}, []string{"score"}),
	}
	reg.MustRegister(m.requests, m.latency, m.scores)
	for _, route := range failingRoutes {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "riskflow_api_failing_seconds",
			Help:        "How long a route has answered its requests with 5xx (POST /v1/events: Kafka not taking events), 0 while it answers; a minute after its last failure it reads 0 again. /readyz names such routes after \"degraded:\".",
			ConstLabels: prometheus.Labels{"route": route},
		}, func() float64 { return fails.failingFor(route).Seconds() }))
	}
	// Every level from the start, at 0: a counter that appears at its first increment hides that
	// increment from rate(), and a share of 600 and 900 verdicts would read nothing, not 0.
	for _, s := range []int{schemas.ScorePass, schemas.ScoreObserve, schemas.ScoreStepUp, schemas.ScoreBlock} {
		m.scores.WithLabelValues(strconv.Itoa(s))
	}
	// Each route's requests and latency from the start, at 0, for the same reason: the first
	// request a node answers is counted where rate() sees it, and a scrape that follows an answer
	// (the counter is increased once the answer is written) finds the series already there.
	for _, route := range servedRoutes {
		m.requests.WithLabelValues(route, strconv.Itoa(http.StatusOK))
		m.latency.WithLabelValues(route)
	}
	return m
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}
