package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/schemas"
)

// heldKafka publishes once the test says how: each call signals called, then returns what result
// sends.
type heldKafka struct {
	called chan struct{}
	result chan error
}

func (k *heldKafka) Publish(ctx context.Context, evs []schemas.VerifyEvent) error {
	k.called <- struct{}{}
	return <-k.result
}

// A client that goes away while the node waits for Kafka (its timeout, a closed connection) is no
// failure of the node's: the request was answered 503 "publish to Kafka failed: … context
// canceled", which made /readyz say "degraded: events: … failed" and counted a 5xx towards
// RiskflowAPIErrors (a page) while Kafka took every event — any app key's client with a short
// timeout could raise it. What Kafka then does with the events is what the route reports.
func TestEventsOfAClientThatWentAwayAreNoFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	k := &heldKafka{called: make(chan struct{}), result: make(chan error)}
	s := New(Config{Keys: map[string]string{"app1": "secret1"}}, nil, k, WithRegistry(reg))
	post := func() int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/events", strings.NewReader(
			`{"event_id":"e1","ts":"2025-03-14T17:26:53+08:00","app_id":"app1","flow":"one_click_login","phone":"13812348000","ip":"1.1.1.1","outcome":"success"}`))
		r.SetBasicAuth("app1", "secret1")
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		go func() {
			<-k.called
			cancel() // the client hangs up while Kafka has the events
		}()
		s.ServeHTTP(w, r)
		return w.Code
	}
	served := func(code string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "riskflow_api_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["route"] == "events" && labels["code"] == code {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}

	if code := post(); code >= 500 {
		t.Errorf("a client that went away: answered %d, want no 5xx", code)
	}
	if d := s.fails.degraded(); len(d) != 0 {
		t.Errorf("/readyz degraded %q after a client went away, want nothing", d)
	}
	if n := served("503"); n != 0 {
		t.Errorf("riskflow_api_requests_total{route=events,code=503} = %v, want 0", n)
	}
	k.result <- nil // Kafka takes them
	if d := s.fails.degraded(); len(d) != 0 {
		t.Errorf("/readyz degraded %q once Kafka took the events, want nothing", d)
	}

	// Kafka refusing the events of a client that went away is the route failing all the same.
	post()
	k.result <- errors.New("kafka: leader not available")
	for len(s.fails.degraded()) == 0 {
		runtime.Gosched()
	}
	if d := strings.Join(s.fails.degraded(), "; "); !strings.Contains(d, "events: 1 failed") || !strings.Contains(d, "leader not available") {
		t.Errorf("/readyz degraded %q, want the events route failing with Kafka's error", d)
	}
}
