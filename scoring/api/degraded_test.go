package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

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

// degradingLog is a decision log that says how it fails (as pipeline.DecisionLog does while Kafka
// does not take verdicts).
type degradingLog struct{ why string }

func (l *degradingLog) Record(schemas.CheckRequest, schemas.RiskCheck, []schemas.RuleHit, time.Duration) {
}
func (l *degradingLog) Degraded() string { return l.why }

// A decision log that cannot publish leaves the node ready — checks are answered, verdicts are
// dropped and counted — and /readyz names it after "degraded:"; it said a bare "ready" while every
// verdict was dropped (only riskflow_decisions_total told).
func TestReadyzNamesAFailingDecisionLog(t *testing.T) {
	dl := &degradingLog{why: "decisions: not published to Kafka since 2026-12-07T07:00:00Z, 40 verdicts dropped since: broker away"}
	f := newFixture(t, api.Config{}, api.WithDecisionLog(dl))
	w := f.do(t, http.MethodGet, "/readyz", "", noAuth())
	var eb schemas.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); w.Code != http.StatusOK || err != nil || eb.Content != "ready; degraded: "+dl.why {
		t.Errorf("readyz while the decision log fails: %d %s", w.Code, w.Body)
	}
	dl.why = ""
	w = f.do(t, http.MethodGet, "/readyz", "", noAuth())
	if err := json.Unmarshal(w.Body.Bytes(), &eb); w.Code != http.StatusOK || err != nil || eb.Content != "ready" {
		t.Errorf("readyz once it publishes: %d %s", w.Code, w.Body)
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

// The query parameters of /readyz and PUT /v1/rules are read whole: a pair net/url cannot read
// (a ';', a malformed escape), a parameter the route does not take and a repeated tests are 400s
// naming the parameter. url.Query dropped such a pair without a word: /readyz?exclude=fresh; was
// "ready" counting the check the probe meant to leave out, and PUT /v1/rules?tests=%zz&tests=skip
// loaded a pack without its tests.
func TestQueryParametersAreReadWhole(t *testing.T) {
	var excluded []string
	rules := &fakeRules{}
	f := newFixture(t, api.Config{}, api.WithReadiness(func(exclude ...string) error { excluded = exclude; return nil }),
		api.WithRulesAdmin(rules, map[string]string{"lead": "s3cret"}))
	if w := f.do(t, http.MethodGet, "/readyz?exclude=fresh&&exclude=archiver", "", noAuth()); w.Code != http.StatusOK || strings.Join(excluded, ",") != "fresh,archiver" {
		t.Errorf("readyz excluding two checks: %d %s, excluded %q", w.Code, w.Body, excluded)
	}
	for q, want := range map[string]string{
		"exclude=fresh;":               "exclude: holds a ';': separate query parameters with '&'",
		"exclude=archiver&exclude=%zz": `exclude: "%zz" is not valid percent-encoding`,
		"%zz=fresh":                    `query: parameter name "%zz" is not valid percent-encoding`,
		"exlude=fresh":                 "exlude: unknown query parameter (/readyz takes exclude)",
		"exclude=fresh&13812348000=x":  `"<phone>": unknown query parameter`,
	} {
		excluded = nil
		eb := errorBody(t, f.do(t, http.MethodGet, "/readyz?"+q, "", noAuth()), http.StatusBadRequest, "")
		if !strings.HasPrefix(eb.Content, want) || schemas.MaskPhones(eb.Content) != eb.Content {
			t.Errorf("readyz?%s: %q, want it to start with %q", q, eb.Content, want)
		}
	}
	admin := basic("lead", "s3cret")
	for q, want := range map[string]string{
		"tests=%zz&tests=skip": `tests: "%zz" is not valid percent-encoding`,
		"tests=skip;":          "tests: holds a ';'",
		"tests=skip&tests=run": "tests: is given more than once",
		"test=skip":            "test: unknown query parameter (/v1/rules takes tests)",
		"tests=bogus":          `tests: "bogus" is not run or skip`,
	} {
		eb := errorBody(t, f.do(t, http.MethodPut, "/v1/rules?"+q, "pack: p\n", admin, contentType("application/yaml")), http.StatusBadRequest, "")
		if !strings.HasPrefix(eb.Content, want) {
			t.Errorf("PUT /v1/rules?%s: %q, want it to start with %q", q, eb.Content, want)
		}
	}
	if rules.loaded != 0 {
		t.Errorf("%d packs loaded through refused queries", rules.loaded)
	}
	if w := f.do(t, http.MethodPut, "/v1/rules?tests=skip", "pack: p\n", admin, contentType("application/yaml")); w.Code != http.StatusOK {
		t.Errorf("PUT /v1/rules?tests=skip: %d %s", w.Code, w.Body)
	}
}

// A route that documents no query parameter refuses one with a 400 naming it, as /readyz and PUT
// /v1/rules refuse one they do not take (and the ops port its own): POST /v1/risk/check?dry_run=1
// scored and recorded the login all the same, the parameter ignored without a word. Nothing the
// route would have done is done: the checker is not asked, no event is published.
func TestRoutesWithoutParametersRefuseOne(t *testing.T) {
	rules := &fakeRules{}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(rules, map[string]string{"lead": "s3cret"}),
		api.WithInvestigation(&subjects{}, &recordedLabels{}), api.WithAdmins(map[string]string{"lead": "s3cret"}))
	admin := basic("lead", "s3cret")
	for _, c := range []struct {
		method, path, body string
		opts               []reqOpt
	}{
		{http.MethodPost, "/v1/risk/check", checkBody, nil},
		{http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4"), nil},
		{http.MethodGet, "/healthz", "", []reqOpt{noAuth()}},
		{http.MethodGet, "/v1/openapi.yaml", "", []reqOpt{noAuth()}},
		{http.MethodGet, "/v1/rules", "", []reqOpt{admin}},
		{http.MethodGet, "/v1/rules/versions", "", []reqOpt{admin}},
		{http.MethodPost, "/v1/rules/rollback", `{"version":"v1"}`, []reqOpt{admin}},
		{http.MethodPost, "/v1/admin/explain", `{"ip":"198.51.100.7"}`, []reqOpt{admin}},
		{http.MethodPost, "/v1/admin/labels", `{"app_id":"app1","event_id":"e1","label":"fraud"}`, []reqOpt{admin}},
	} {
		for q, want := range map[string]string{
			"dry_run=1":     "dry_run: unknown query parameter (" + c.path + " takes no query parameter)",
			"13812348000=x": `"<phone>": unknown query parameter`,
			"x=1;y=2":       "x: holds a ';'",
		} {
			eb := errorBody(t, f.do(t, c.method, c.path+"?"+q, c.body, c.opts...), http.StatusBadRequest, "")
			if !strings.HasPrefix(eb.Content, want) || strings.Contains(eb.Content, "13812348000") {
				t.Errorf("%s %s?%s: %q, want it to start with %q", c.method, c.path, q, eb.Content, want)
			}
		}
		// Without a query, or with an empty one, the route answers as ever.
		for _, p := range []string{c.path, c.path + "?"} {
			if w := f.do(t, c.method, p, c.body, c.opts...); w.Code >= 400 {
				t.Errorf("%s %s: %d %s", c.method, p, w.Code, w.Body)
			}
		}
	}
	if f.chk.calls() != 2 || len(f.pub.published()) != 2 || rules.rolledBack != 2 {
		t.Errorf("checks %d, batches published %d, rollbacks %d: want 2 each (the unrefused requests')", f.chk.calls(), len(f.pub.published()), rules.rolledBack)
	}
}
