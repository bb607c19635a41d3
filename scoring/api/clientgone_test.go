package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

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

	// Kafka refusing the events of a client that went away is the route failing all the same. On
	// a node of its own: the first publication's success is recorded by a goroutine of its own,
	// which may run after this failure and clear it (CI under -race, seen once: this loop then
	// waited for ever).
	k = &heldKafka{called: make(chan struct{}), result: make(chan error)}
	s = New(Config{Keys: map[string]string{"app1": "secret1"}}, nil, k, WithRegistry(prometheus.NewRegistry()))
	post()
	k.result <- errors.New("kafka: leader not available")
	for deadline := time.Now().Add(time.Minute); len(s.fails.degraded()) == 0; { // a bound on the test
		if time.Now().After(deadline) {
			t.Fatal("/readyz never said the events route failed after Kafka refused the events")
		}
		runtime.Gosched()
	}
	if d := strings.Join(s.fails.degraded(), "; "); !strings.Contains(d, "events: 1 failed") || !strings.Contains(d, "leader not available") {
		t.Errorf("/readyz degraded %q, want the events route failing with Kafka's error", d)
	}
}

// heldStore is a Labeler and RulesAdmin whose store answers nothing: each call signals called and
// returns when its context ends.
type heldStore struct{ called chan struct{} }

func (h *heldStore) wait(ctx context.Context) error {
	h.called <- struct{}{}
	<-ctx.Done()
	return fmt.Errorf("clickhouse: %w", ctx.Err())
}

func (h *heldStore) Label(ctx context.Context, _ []schemas.Label) error { return h.wait(ctx) }
func (h *heldStore) Current() RulesInfo                                 { return RulesInfo{Version: "v1"} }
func (h *heldStore) Update(ctx context.Context, _ []byte, _ string, _ UpdateOptions) (RulesInfo, error) {
	return RulesInfo{}, h.wait(ctx)
}
func (h *heldStore) Versions(ctx context.Context) ([]RulesInfo, error) { return nil, h.wait(ctx) }
func (h *heldStore) Rollback(ctx context.Context, _, _, _ string) (RulesInfo, error) {
	return RulesInfo{}, h.wait(ctx)
}

// The same for the admin routes that wait on ClickHouse: an admin's client that gave up made
// /readyz say "degraded: labels: 1 failed … context canceled".
func TestAdminRequestsOfAClientThatWentAwayAreNoFailure(t *testing.T) {
	st := &heldStore{called: make(chan struct{})}
	admins := map[string]string{"lead": "s1"}
	s := New(Config{Keys: map[string]string{"app1": "secret1"}}, nil, nil,
		WithRulesAdmin(st, admins), WithInvestigation(nil, st))
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/admin/labels", `{"app_id":"app1","event_id":"e1","label":"fraud"}`},
		{http.MethodGet, "/v1/rules/versions", ""},
		{http.MethodPost, "/v1/rules/rollback", `{"version":"v0"}`},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		r := httptest.NewRequestWithContext(ctx, c.method, c.path, strings.NewReader(c.body))
		r.SetBasicAuth("lead", "s1")
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		go func() {
			<-st.called
			cancel() // the admin's client gives up while ClickHouse does not answer
		}()
		s.ServeHTTP(w, r)
		cancel()
		if w.Code >= 500 {
			t.Errorf("%s %s of a client that went away: answered %d %s, want no 5xx", c.method, c.path, w.Code, w.Body)
		}
	}
	if d := s.fails.degraded(); len(d) != 0 {
		t.Errorf("/readyz degraded %q after clients went away, want nothing", d)
	}
	// A store that times out while the client still waits is a failure all the same.
	st2 := &heldStore{called: make(chan struct{}, 1)}
	s2 := New(Config{Keys: map[string]string{"app1": "secret1"}}, nil, nil, WithRulesAdmin(&timingOut{st2}, admins))
	r := httptest.NewRequest(http.MethodGet, "/v1/rules/versions", nil)
	r.SetBasicAuth("lead", "s1")
	w := httptest.NewRecorder()
	s2.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || len(s2.fails.degraded()) != 1 {
		t.Errorf("a store that timed out: %d %s, degraded %q; want 503 and the route failing", w.Code, w.Body, s2.fails.degraded())
	}
}

// timingOut is a rules history whose store does not answer within the route's own deadline.
type timingOut struct{ *heldStore }

func (t *timingOut) Versions(ctx context.Context) ([]RulesInfo, error) {
	return nil, fmt.Errorf("clickhouse: %w", context.DeadlineExceeded)
}
