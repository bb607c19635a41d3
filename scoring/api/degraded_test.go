package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// A node whose POST /v1/events cannot publish (the broker away, its events topic without a
// leader) stays ready — its checks are answered, and every node shares the broker — but /readyz
// says which route fails, since when and why, and riskflow_api_failing_seconds{route="events"}
// counts it; both clear once the route answers again. /readyz answered a bare "ready" while every
// event was refused with 503.
func TestReadyzNamesAFailingRoute(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, api.Config{}, api.WithRegistry(reg))
	f.pub.err = errors.New("kafka: leader not available for the partition of 13812348000")
	errorBody(t, f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.1.1.1")), http.StatusServiceUnavailable, "publish")
	errorBody(t, f.do(t, http.MethodPost, "/v1/events", event("e2", "app1", "1.1.1.1")), http.StatusServiceUnavailable, "publish")

	ready := func() string {
		t.Helper()
		w := f.do(t, http.MethodGet, "/readyz", "", noAuth())
		var eb schemas.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); w.Code != http.StatusOK || err != nil || eb.Code != 0 {
			t.Fatalf("readyz: %d %s, want 200 (checks are answered)", w.Code, w.Body)
		}
		return eb.Content
	}
	got := ready()
	if !strings.HasPrefix(got, "ready; degraded: events: 2 failed since ") || !strings.Contains(got, "with 503: ") || !strings.Contains(got, "leader not available") {
		t.Errorf("readyz while events fail: %q, want it to name the route, how many failed, the status and the cause", got)
	}
	if schemas.MaskPhones(got) != got {
		t.Errorf("readyz shows a phone number: %q", got)
	}
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
		t.Errorf("check while events fail: %d %s", w.Code, w.Body)
	}
	const failing = `riskflow_api_failing_seconds{route="events"}`
	for _, route := range []string{"check", "events", "rules", "explain", "labels"} {
		if v := gauge(t, reg, route); route != "events" && v != 0 {
			t.Errorf("riskflow_api_failing_seconds{route=%q} = %v, want 0", route, v)
		}
	}
	if v := gauge(t, reg, "events"); v <= 0 {
		t.Errorf("%s = %v while the route fails, want how long it has", failing, v)
	}

	f.pub.err = nil
	if w := f.do(t, http.MethodPost, "/v1/events", event("e3", "app1", "1.1.1.1")); w.Code != http.StatusAccepted {
		t.Fatalf("events once Kafka takes them: %d %s", w.Code, w.Body)
	}
	if got := ready(); got != "ready" {
		t.Errorf("readyz once events are published: %q, want ready", got)
	}
	if v := gauge(t, reg, "events"); v != 0 {
		t.Errorf("%s = %v once the route answers, want 0", failing, v)
	}
}

// gauge reads riskflow_api_failing_seconds{route}.
func gauge(t *testing.T, reg *prometheus.Registry, route string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "riskflow_api_failing_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no riskflow_api_failing_seconds{route=%q}", route)
	return 0
}
