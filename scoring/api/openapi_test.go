package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/scoringtest"
)

type oaRules struct{}

func (oaRules) Current() api.RulesInfo {
	return api.RulesInfo{Pack: "default", Version: "v1", Rules: 29, LoadedBy: "startup", Persisted: true, Recorded: true}
}
func (oaRules) Update(_ context.Context, pack []byte, who string, _ api.UpdateOptions) (api.RulesInfo, error) {
	if !bytes.Contains(pack, []byte("rules:")) {
		return api.RulesInfo{}, fmt.Errorf("%w: line 1: rules: is required", api.ErrRejected)
	}
	if bytes.Contains(pack, []byte("# after another promotion")) {
		return api.RulesInfo{}, fmt.Errorf("%w: the pack file was changed to version v3, which this node has not loaded yet", api.ErrConflict)
	}
	return api.RulesInfo{Pack: "p", Version: "v2", Rules: 1, LoadedBy: "api:" + who}, nil
}
func (oaRules) Versions(context.Context) ([]api.RulesInfo, error) {
	return []api.RulesInfo{{Pack: "default", Version: "v1", Rules: 29, LoadedBy: "startup@n1", LoadedAt: "2026-03-14T09:00:00Z", Recorded: true}}, nil
}
func (oaRules) Rollback(_ context.Context, version, who, _ string) (api.RulesInfo, error) {
	if version == "v3" {
		return api.RulesInfo{}, fmt.Errorf("%w: the pack file was changed to version v4, which this node has not loaded yet", api.ErrConflict)
	}
	if version != "v1" {
		return api.RulesInfo{}, fmt.Errorf("%w: version %s is not recorded", api.ErrNotFound, version)
	}
	return api.RulesInfo{Pack: "default", Version: "v1", Rules: 29, LoadedBy: "api:" + who, Persisted: true, Recorded: true}, nil
}

// oaRulesNoHistory is a rules administration whose history store (ClickHouse) cannot be reached.
type oaRulesNoHistory struct{ oaRules }

func (oaRulesNoHistory) Versions(context.Context) ([]api.RulesInfo, error) {
	return nil, errors.New("rule_versions: dial tcp 127.0.0.1:9000: connect: connection refused")
}

type recordedLabels struct {
	mu     sync.Mutex
	labels []schemas.Label
	err    error
}

func (r *recordedLabels) Label(_ context.Context, ls []schemas.Label) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.labels = append(r.labels, ls...)
	return nil
}

// UnknownTargets holds every decision and event whose id does not start with "missing".
func (r *recordedLabels) UnknownTargets(_ context.Context, ls []schemas.Label) ([]schemas.Label, error) {
	var out []schemas.Label
	for _, l := range ls {
		if _, id := l.Target(); strings.HasPrefix(id, "missing") {
			out = append(out, l)
		}
	}
	return out, nil
}

type recordedDecisions struct {
	mu   sync.Mutex
	reqs []schemas.CheckRequest
	rcs  []schemas.RiskCheck
	hits [][]schemas.RuleHit
	lat  []time.Duration
}

func (r *recordedDecisions) Record(req schemas.CheckRequest, rc schemas.RiskCheck, hits []schemas.RuleHit, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs, r.rcs, r.hits, r.lat = append(r.reqs, req), append(r.rcs, rc), append(r.hits, hits), append(r.lat, latency)
}

// realScorer is the default pack over a state where one datacenter address already served many
// numbers, so checks from it earn tags.
func realScorer(t *testing.T) *scoring.Scorer {
	t.Helper()
	now := time.Now().UTC()
	s := scoringtest.DefaultPack(t, scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("k"))), scoring.WithClock(func() time.Time { return now }))
	for i := range 30 {
		ev := schemas.VerifyEvent{EventID: fmt.Sprintf("e%d", i), TS: now.Add(-time.Minute), AppID: "app1", Flow: "one_click_login",
			Phone: fmt.Sprintf("1370000%04d", i), IP: netip.MustParseAddr("223.104.3.7"), Carrier: "CM", DeviceID: "farm-1", Outcome: "success"}
		s.Apply(&ev)
	}
	return s
}

// Every route and every error status, answered by the real handler, checked against the embedded
// OpenAPI document: the document is valid, each response's status, headers and body are what it
// says, and each accepted request is one it describes.
func TestOpenAPIMatchesResponses(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	errSchema := doc.Components.Schemas["Error"].Value

	labels := &recordedLabels{}
	decisions := &recordedDecisions{}
	sc := realScorer(t)
	admins := map[string]string{"lead": "lead-secret"}
	srv := api.New(api.Config{Keys: keys, RatePerApp: 1000, Burst: 1000}, sc, &fakePublisher{},
		api.WithLogger(slog.New(slog.DiscardHandler)), api.WithRulesAdmin(oaRules{}, admins),
		api.WithInvestigation(sc, labels), api.WithDecisionLog(decisions))
	limited := api.New(api.Config{Keys: keys, RatePerApp: 0.001, Burst: 1}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)))
	notReady := api.New(api.Config{Keys: keys}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)),
		api.WithReadiness(func(exclude ...string) error {
			for _, x := range exclude {
				if x != "state" {
					return fmt.Errorf("%w: %s (this process checks state)", api.ErrUnknownCheck, x)
				}
				return nil // the one check left out
			}
			return errors.New("state: catching up")
		}))
	noAdmin := api.New(api.Config{Keys: keys}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)))
	noHistory := api.New(api.Config{Keys: keys}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)),
		api.WithRulesAdmin(oaRulesNoHistory{}, admins))

	const (
		app   = "app1:secret1"
		admin = "lead:lead-secret"
		json_ = "application/json"
	)
	ev := `{"event_id":"ev-1","ts":"2025-03-14T17:26:53+08:00","app_id":"app1","flow":"one_click_login","phone":"13812348000","ip":"223.104.3.7","outcome":"success","decision_id":"n-1"}`
	cases := []struct {
		name           string
		srv            *api.Server
		method, path   string
		body, ct, auth string
		status         int
	}{
		{"check", srv, "POST", "/v1/risk/check", `{"phone":"13700009999","ip":"223.104.3.7","app_id":"app1","carrier":"CM","device_id":"farm-1","ex_id":"x-1"}`, json_, app, 200},
		{"check clean", srv, "POST", "/v1/risk/check", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app1"}`, json_, app, 200},
		{"check, optional members null", srv, "POST", "/v1/risk/check", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app1","carrier":null,"flow":null,"platform":null,"device_id":null,"token_digest":null,"ex_id":null}`, json_, app, 200},
		{"check bad phone", srv, "POST", "/v1/risk/check", `{"phone":"12","ip":"1.2.3.4","app_id":"app1"}`, json_, app, 400},
		{"check no auth", srv, "POST", "/v1/risk/check", `{}`, json_, "", 401},
		{"check other app", srv, "POST", "/v1/risk/check", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app2"}`, json_, app, 403},
		{"check wrong method", srv, "GET", "/v1/risk/check", ``, "", app, 405},
		{"check too large", srv, "POST", "/v1/risk/check", `{"ex_id":"` + strings.Repeat("x", 2<<20) + `"}`, json_, app, 413},
		{"check form", srv, "POST", "/v1/risk/check", `a=b`, "application/x-www-form-urlencoded", app, 415},
		{"check within the rate", limited, "POST", "/v1/risk/check", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app1"}`, json_, app, 200},
		{"check rate", limited, "POST", "/v1/risk/check", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app1"}`, json_, app, 429},
		{"check not ready", notReady, "POST", "/v1/risk/check", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app1"}`, json_, app, 503},
		{"events one", srv, "POST", "/v1/events", ev, json_, app, 202},
		{"events array", srv, "POST", "/v1/events", "[" + ev + "]", json_, app, 202},
		{"events bad", srv, "POST", "/v1/events", `{"event_id":""}`, json_, app, 400},
		{"events no publisher", noAdmin, "POST", "/v1/events", ev, json_, app, 503},
		{"healthz", srv, "GET", "/healthz", ``, "", "", 200},
		{"readyz", srv, "GET", "/readyz", ``, "", "", 200},
		{"readyz not ready", notReady, "GET", "/readyz", ``, "", "", 503},
		{"readyz without the failing check", notReady, "GET", "/readyz?exclude=state", ``, "", "", 200},
		{"readyz excluding an unknown check", notReady, "GET", "/readyz?exclude=archivr", ``, "", "", 400},
		{"metrics", srv, "GET", "/metrics", ``, "", "", 200},
		{"openapi", srv, "GET", "/v1/openapi.yaml", ``, "", "", 200},
		{"rules get", srv, "GET", "/v1/rules", ``, "", admin, 200},
		{"rules put", srv, "PUT", "/v1/rules", "pack: p\nrules: []\n", "application/yaml", admin, 200},
		{"rules put rejected", srv, "PUT", "/v1/rules", "pack: p\n", "application/yaml", admin, 400},
		{"rules put, tests skipped", srv, "PUT", "/v1/rules?tests=skip", "pack: p\nrules: []\n", "application/yaml", admin, 200},
		{"rules put, tests neither run nor skip", srv, "PUT", "/v1/rules?tests=no", "pack: p\nrules: []\n", "application/yaml", admin, 400},
		{"rules put over an unseen promotion", srv, "PUT", "/v1/rules", "# after another promotion\npack: p\nrules: []\n", "application/yaml", admin, 409},
		{"rules versions", srv, "GET", "/v1/rules/versions", ``, "", admin, 200},
		{"rules versions, ClickHouse away", noHistory, "GET", "/v1/rules/versions", ``, "", admin, 503},
		{"rules rollback", srv, "POST", "/v1/rules/rollback", `{"version":"v1"}`, json_, admin, 200},
		{"rules rollback over an unseen promotion", srv, "POST", "/v1/rules/rollback", `{"version":"v3"}`, json_, admin, 409},
		{"rules rollback unknown", srv, "POST", "/v1/rules/rollback", `{"version":"v9"}`, json_, admin, 404},
		{"rules rollback bad body", srv, "POST", "/v1/rules/rollback", `{}`, json_, admin, 400},
		{"rules rollback unknown member", srv, "POST", "/v1/rules/rollback", `{"version":"v1","force":true}`, json_, admin, 400},
		{"rules as app", srv, "GET", "/v1/rules", ``, "", app, 403},
		{"rules versions as app", srv, "GET", "/v1/rules/versions", ``, "", app, 403},
		{"explain as app", srv, "POST", "/v1/admin/explain", `{"device_id":"farm-1"}`, json_, app, 403},
		{"rules wrong admin secret", srv, "GET", "/v1/rules", ``, "", "lead:guess", 401},
		{"rules off", noAdmin, "GET", "/v1/rules", ``, "", admin, 404},
		{"explain phone", srv, "POST", "/v1/admin/explain", `{"phone":"13700000001"}`, json_, admin, 200},
		{"explain ip", srv, "POST", "/v1/admin/explain", `{"ip":"223.104.3.7","app_id":"app1"}`, json_, admin, 200},
		{"explain device", srv, "POST", "/v1/admin/explain", `{"device_id":"farm-1"}`, json_, admin, 200},
		{"explain, other members null", srv, "POST", "/v1/admin/explain", `{"ip":"223.104.3.7","phone":null,"device_id":null,"app_id":null}`, json_, admin, 200},
		{"explain two subjects", srv, "POST", "/v1/admin/explain", `{"device_id":"farm-1","ip":"1.2.3.4"}`, json_, admin, 400},
		{"explain off", noAdmin, "POST", "/v1/admin/explain", `{"device_id":"farm-1"}`, json_, admin, 404},
		{"labels", srv, "POST", "/v1/admin/labels", `[{"app_id":"app1","decision_id":"n-1","label":"fraud","note":"farm"},{"app_id":"app1","event_id":"ev-1","label":"legit"}]`, json_, admin, 200},
		{"labels one", srv, "POST", "/v1/admin/labels", `{"app_id":"app1","event_id":"ev-2","label":"fraud"}`, json_, admin, 200},
		{"labels of ids not stored", srv, "POST", "/v1/admin/labels", `[{"app_id":"app1","decision_id":"missing-1","label":"fraud"},{"app_id":"app1","event_id":"missing-ev","label":"legit"}]`, json_, admin, 200},
		{"labels, optional members null", srv, "POST", "/v1/admin/labels", `{"app_id":"app1","event_id":"ev-3","decision_id":null,"note":null,"label":"legit"}`, json_, admin, 200},
		{"labels bad", srv, "POST", "/v1/admin/labels", `{"app_id":"app1","event_id":"ev-2","label":"maybe"}`, json_, admin, 400},
		{"labels text", srv, "POST", "/v1/admin/labels", `x`, "text/plain", admin, 415},
		{"explain too large", srv, "POST", "/v1/admin/explain", `{"device_id":"` + strings.Repeat("x", 2<<20) + `"}`, json_, admin, 413},
		{"labels too large", srv, "POST", "/v1/admin/labels", `{"note":"` + strings.Repeat("x", 2<<20) + `"}`, json_, admin, 413},
		{"explain unknown member", srv, "POST", "/v1/admin/explain", `{"device_id":"farm-1","colour":"red"}`, json_, admin, 400},
		{"rollback too large", srv, "POST", "/v1/rules/rollback", `{"version":"` + strings.Repeat("x", 2<<20) + `"}`, json_, admin, 413},
		{"unknown route", srv, "GET", "/v2/nothing", ``, "", app, 404},
		{"check, a query parameter", srv, "POST", "/v1/risk/check?dry_run=1", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app1"}`, json_, app, 400},
		{"events, a query parameter", srv, "POST", "/v1/events?async=1", ev, json_, app, 400},
		{"healthz, a query parameter", srv, "GET", "/healthz?verbose=1", ``, "", "", 400},
		{"openapi, a query parameter", srv, "GET", "/v1/openapi.yaml?format=json", ``, "", "", 400},
		{"rules get, a query parameter", srv, "GET", "/v1/rules?version=v1", ``, "", admin, 400},
		{"rules versions, a query parameter", srv, "GET", "/v1/rules/versions?limit=5", ``, "", admin, 400},
		{"rules rollback, a query parameter", srv, "POST", "/v1/rules/rollback?force=1", `{"version":"v1"}`, json_, admin, 400},
		{"explain, a query parameter", srv, "POST", "/v1/admin/explain?app_id=app1", `{"device_id":"farm-1"}`, json_, admin, 400},
		{"labels, a query parameter", srv, "POST", "/v1/admin/labels?dry_run=1", `{"app_id":"app1","event_id":"ev-2","label":"fraud"}`, json_, admin, 400},
		// Found against a real node: how the check route takes what clients send.
		{"check, charset utf-8", srv, "POST", "/v1/risk/check", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app1"}`, "application/json; charset=UTF-8", app, 200},
		{"check, latin1", srv, "POST", "/v1/risk/check", `{"phone":"13912345678","ip":"10.1.2.3","app_id":"app1"}`, "application/json; charset=latin1", app, 415},
		{"check, gzip", srv, "POST", "/v1/risk/check", "\x1f\x8b", json_ + "|gzip", app, 415},
		{"check HEAD", srv, "HEAD", "/v1/risk/check", ``, "", app, 405},
		{"check OPTIONS", srv, "OPTIONS", "/v1/risk/check", ``, "", app, 405},
		{"check CONNECT to a host", srv, "CONNECT", "riskflow.example:443", ``, "", "", 404},
	}
	seenOps := map[string]bool{}
	seenStatus := map[int]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			ct, enc, _ := strings.Cut(c.ct, "|") // "type|content-coding"
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			if enc != "" {
				r.Header.Set("Content-Encoding", enc)
			}
			if c.auth != "" {
				name, secret, _ := strings.Cut(c.auth, ":")
				r.SetBasicAuth(name, secret)
			}
			w := httptest.NewRecorder()
			c.srv.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			seenStatus[w.Code] = true
			if c.name == "labels of ids not stored" && !strings.Contains(w.Body.String(), `"unknown":[{"app_id":"app1","decision_id":"missing-1"},{"app_id":"app1","event_id":"missing-ev"}]`) {
				t.Errorf("the answer does not list the ids not stored: %s", w.Body)
			}
			if c.name == "labels" && strings.Contains(w.Body.String(), "unknown") {
				t.Errorf("stored ids listed as unknown: %s", w.Body)
			}
			var (
				route  *routers.Route
				params map[string]string
				err    = errors.New("CONNECT names a host, not a route")
			)
			if c.method != http.MethodConnect {
				route, params, err = router.FindRoute(httptest.NewRequest(c.method, "http://127.0.0.1:8080"+c.path, nil))
			}
			if err != nil {
				// No documented route (an unknown path): the answer is still an Error.
				var v any
				if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
					t.Fatalf("body %q: %v", w.Body, err)
				}
				if err := errSchema.VisitJSON(v); err != nil {
					t.Fatalf("undocumented route answered %s, not an Error: %v", w.Body, err)
				}
				if c.status != 404 && c.status != 405 {
					t.Fatalf("route %s %s is not in the document: %v", c.method, c.path, err)
				}
				return
			}
			// A 405 on a path documented for other methods finds the path's route of another method.
			seenOps[route.Method+" "+route.Path] = seenOps[route.Method+" "+route.Path] || w.Code < 300
			in := &openapi3filter.RequestValidationInput{
				Request: httptest.NewRequest(c.method, "http://127.0.0.1:8080"+c.path, strings.NewReader(c.body)), PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
			}
			if ct != "" {
				in.Request.Header.Set("Content-Type", ct)
			}
			if w.Code < 300 {
				if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
					t.Errorf("an accepted request the document does not describe: %v", err)
				}
			}
			if c.method != route.Method {
				return // 405: checked as an Error below through the response of a documented operation
			}
			out := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in, Status: w.Code, Header: w.Header(),
				Options: &openapi3filter.Options{IncludeResponseStatus: true},
			}
			out.SetBodyBytes(w.Body.Bytes())
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Errorf("response %d %s does not match the document: %v", w.Code, clip(w.Body.String()), err)
			}
		})
	}
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !seenOps[method+" "+path] {
				missing = append(missing, method+" "+path)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented operations no case answered with success: %v", missing)
	}
	for _, st := range []int{400, 401, 403, 404, 405, 413, 415, 429, 503} {
		if !seenStatus[st] {
			t.Errorf("no case answered %d", st)
		}
	}
	// The admin routes did their work: labels stored with who and when, decisions recorded.
	if len(labels.labels) != 6 || labels.labels[0].LabeledBy != "api:lead" || labels.labels[0].LabeledAt.IsZero() {
		t.Errorf("labels stored: %+v", labels.labels)
	}
	if len(decisions.rcs) != 4 {
		t.Errorf("%d decisions recorded for 4 answered checks", len(decisions.rcs))
	}
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// The decision log gets every answered check — with the id answered, every hit and the latency —
// and nothing else.
func TestDecisionLogRecordsAnsweredChecks(t *testing.T) {
	sc := realScorer(t)
	rec := &recordedDecisions{}
	srv := api.New(api.Config{Keys: keys, NodeID: "n1-"}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)), api.WithDecisionLog(rec))
	var ids []string
	for i := range 3 {
		r := httptest.NewRequest("POST", "/v1/risk/check", strings.NewReader(fmt.Sprintf(`{"phone":"1370000%04d","ip":"223.104.3.7","app_id":"app1","device_id":"farm-1"}`, 100+i)))
		r.SetBasicAuth("app1", "secret1")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		var rc schemas.RiskCheck
		if err := json.Unmarshal(w.Body.Bytes(), &rc); err != nil || w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		ids = append(ids, rc.ID)
	}
	r := httptest.NewRequest("POST", "/v1/risk/check", strings.NewReader(`{"phone":"1","ip":"223.104.3.7","app_id":"app1"}`))
	r.SetBasicAuth("app1", "secret1")
	srv.ServeHTTP(httptest.NewRecorder(), r)
	if len(rec.rcs) != 3 {
		t.Fatalf("%d decisions for 3 answered checks and one refused", len(rec.rcs))
	}
	for i, rc := range rec.rcs {
		if rc.ID != ids[i] || rc.Score == 0 || len(rec.hits[i]) == 0 || rec.lat[i] <= 0 || rec.reqs[i].DeviceID != "farm-1" {
			t.Errorf("decision %d: id %q (answered %q), score %d, hits %v, latency %v", i, rc.ID, ids[i], rc.Score, rec.hits[i], rec.lat[i])
		}
	}

}

// An investigation's device_id or app_id holding a phone number is refused like an event's (400
// naming the field), so that the number reaches neither the answer nor the node's log; a bad
// member is named as in every other body.
func TestExplainRefusesPhoneInIDs(t *testing.T) {
	sc := realScorer(t)
	logOpt, logs := captureLogs()
	srv := api.New(api.Config{Keys: keys}, sc, nil, logOpt,
		api.WithAdmins(map[string]string{"lead": "lead-secret"}), api.WithInvestigation(sc, nil))
	for _, c := range []struct{ body, want string }{
		{`{"device_id":"138-1234-5678"}`, "device_id: looks like it contains a mobile phone number"},
		{`{"device_id":"tel13812345678"}`, "device_id: looks like it contains a mobile phone number"},
		{`{"ip":"223.104.3.7","app_id":"app 13812345678"}`, "app_id: looks like it contains a mobile phone number"},
		{`{"device_id":"farm-1","colour":1}`, "colour: unknown field"},
		{`{"device_id":5}`, "device_id: must be a string, got number"}, // as a check's decoder says it
	} {
		r := httptest.NewRequest("POST", "/v1/admin/explain", strings.NewReader(c.body))
		r.SetBasicAuth("lead", "lead-secret")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != 400 || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s: %d %s, want 400 %q", c.body, w.Code, w.Body, c.want)
		}
		if strings.Contains(w.Body.String(), "5678") {
			t.Errorf("%s: the answer shows the number: %s", c.body, w.Body)
		}
	}
	// A hex device id may hold eleven digits that read as a number: accepted, as an event's is,
	// but the node's log line of the explanation masks them.
	r := httptest.NewRequest("POST", "/v1/admin/explain", strings.NewReader(`{"device_id":"d13812345678"}`))
	r.SetBasicAuth("lead", "lead-secret")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(logs.String(), "state explained") {
		t.Errorf("explain a hex device id: %d %s; log:\n%s", w.Code, w.Body, logs)
	}
	if strings.Contains(logs.String(), "5678") {
		t.Errorf("the log shows the number:\n%s", logs)
	}
}

// While the node cannot answer checks (its feature state still replaying Kafka after a start), an
// explanation would show windows that are merely not filled yet — "0 verifications, no rule
// near" of a number in the middle of an attack. It answers 503 as a check does, saying why.
func TestExplainWaitsForTheState(t *testing.T) {
	sc := realScorer(t)
	catching := errors.New("state: catching up with Kafka")
	srv := api.New(api.Config{Keys: keys}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)),
		api.WithAdmins(map[string]string{"lead": "lead-secret"}), api.WithInvestigation(sc, nil),
		api.WithServing(func() error { return catching }))
	r := httptest.NewRequest("POST", "/v1/admin/explain", strings.NewReader(`{"ip":"223.104.3.7"}`))
	r.SetBasicAuth("lead", "lead-secret")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != 503 || !strings.Contains(w.Body.String(), "catching up") {
		t.Errorf("explain while the state catches up: %d %s; want 503 saying so", w.Code, w.Body)
	}
	catching = nil
	w = httptest.NewRecorder()
	r = httptest.NewRequest("POST", "/v1/admin/explain", strings.NewReader(`{"ip":"223.104.3.7"}`))
	r.SetBasicAuth("lead", "lead-secret")
	srv.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("explain once caught up: %d %s", w.Code, w.Body)
	}
}

// During a Kafka outage checks are answered from the state there is, and so is an explanation —
// but an investigator must not read a state minutes old as the subject's live state: the answer
// says that it is not current, and why (TestExplainWaitsForTheState: before the first catch-up it
// is a 503 instead).
func TestExplainSaysTheStateIsNotCurrent(t *testing.T) {
	sc := realScorer(t)
	stale := errors.New("state: feature replica is 37s stale (allowed 20s)")
	srv := api.New(api.Config{Keys: keys}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)),
		api.WithAdmins(map[string]string{"lead": "lead-secret"}), api.WithInvestigation(sc, nil),
		api.WithStateHealth(func() error { return stale }))
	explain := func() api.ExplainResponse {
		t.Helper()
		r := httptest.NewRequest("POST", "/v1/admin/explain", strings.NewReader(`{"ip":"223.104.3.7"}`))
		r.SetBasicAuth("lead", "lead-secret")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("explain: %d %s; want 200 (the state there is, explained)", w.Code, w.Body)
		}
		var x api.ExplainResponse
		if err := json.Unmarshal(w.Body.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	x := explain()
	if !strings.Contains(x.Stale, "37s stale") || !strings.Contains(x.Content, "not current") {
		t.Errorf("explain of a stale state: stale %q, content %q; want both to say it is not current, and why", x.Stale, x.Content)
	}
	stale = nil
	if x := explain(); x.Stale != "" || x.Content != "live state" {
		t.Errorf("explain of a current state: stale %q, content %q; want none", x.Stale, x.Content)
	}
}

// An admin body that is not a JSON object is named as such: not "invalid JSON: EOF" for an empty
// body, nor the Go type the server decodes into.
func TestAdminBodiesMustBeObjects(t *testing.T) {
	sc := realScorer(t)
	srv := api.New(api.Config{Keys: keys}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)),
		api.WithRulesAdmin(oaRules{}, map[string]string{"lead": "lead-secret"}), api.WithInvestigation(sc, nil))
	for _, path := range []string{"/v1/admin/explain", "/v1/rules/rollback"} {
		for body, want := range map[string]string{
			"":                "body is empty: expected a JSON object",
			" \n":             "body is empty: expected a JSON object",
			"[]":              "expected a JSON object, got an array",
			`"13812345678"`:   "expected a JSON object, got a string",
			"\"\x94\"":        "expected a JSON object, got a string", // not "is not valid UTF-8", naming nothing
			"null":            "expected a JSON object, got null",
			"42":              "expected a JSON object, got a number",
			`{"ip":"1.2.3.4"`: "invalid JSON: unexpected end of input",
			`{} {}`:           "invalid JSON: data after the object",
			`{}}`:             "invalid JSON: data after the object",
			`{}]`:             "invalid JSON: data after the object",
		} {
			r := httptest.NewRequest("POST", path, strings.NewReader(body))
			r.SetBasicAuth("lead", "lead-secret")
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != 400 || !strings.Contains(w.Body.String(), want) || strings.Contains(w.Body.String(), "Go value") || strings.Contains(w.Body.String(), "5678") {
				t.Errorf("%s %q: %d %s; want 400 %q", path, body, w.Code, w.Body, want)
			}
		}
	}
}

// An admin body that stops being JSON inside a member's value names the member, as an event's,
// a check's and a label's do: 'invalid JSON: invalid character '\t' in string literal' named
// nothing; the phone's names the phone and quotes nothing of its value.
func TestAdminBodySyntaxErrorsNameTheMember(t *testing.T) {
	sc := realScorer(t)
	srv := api.New(api.Config{Keys: keys}, sc, nil, api.WithLogger(slog.New(slog.DiscardHandler)),
		api.WithRulesAdmin(oaRules{}, map[string]string{"lead": "lead-secret"}), api.WithInvestigation(sc, nil))
	for _, c := range []struct{ path, body, want string }{
		{"/v1/admin/explain", `{"ip":"1.2.3.4`, "ip: invalid JSON: unexpected end of input"},
		{"/v1/admin/explain", "{\"app_id\":\"a\",\"device_id\":\"d\tx\"}", `device_id: invalid JSON at byte 29: invalid character '\t' in string literal`},
		{"/v1/admin/explain", "{\"phone\":\"138123\t45678\"}", "phone: invalid JSON: its value stops being JSON (send the number as a JSON string)"},
		{"/v1/admin/explain", `{"phone":"1381234567`, "phone: invalid JSON: its value stops being JSON (send the number as a JSON string)"},
		{"/v1/rules/rollback", `{"version":"abc`, "version: invalid JSON: unexpected end of input"},
		{"/v1/rules/rollback", `{"version":tru}`, "version: invalid JSON at byte 15: invalid character '}' in literal true (expecting 'e')"},
	} {
		r := httptest.NewRequest("POST", c.path, strings.NewReader(c.body))
		r.SetBasicAuth("lead", "lead-secret")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		var got struct{ Content string }
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 400 || got.Content != c.want || strings.Contains(w.Body.String(), "567") {
			t.Errorf("%s %q: %d %s; want 400 %q", c.path, c.body, w.Code, w.Body, c.want)
		}
	}
}

// Statuses every operation of a kind can answer, whatever its handler does, are in the document:
// a generated client types each answer it may get. Every body is read under the server's read
// timeout (408) and api.max_body_bytes (413) and may be malformed (400); every authenticated
// operation answers 401 to wrong credentials (with its Basic challenge) and 429 to an address
// that failed too often; every operation but /metrics may answer 500 (a handler that panicked).
func TestOpenAPIListsTheStatusesEveryOperationCanAnswer(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			var want []int
			if op.RequestBody != nil {
				want = append(want, 408, 413)
			}
			if path != "/metrics" {
				want = append(want, 400) // a query parameter the operation does not list
			}
			if op.Security == nil || len(*op.Security) > 0 { // nil: the document's default (appKey)
				want = append(want, 401, 429)
				if method != http.MethodGet || securedBy(op, "adminKey") {
					// a browser's request from another site (crossSite); an app key at an admin route
					want = append(want, 403)
				}
			}
			if path != "/metrics" {
				want = append(want, 500)
			}
			// A starting node answers 503 on every route but these (cmd/riskflow's
			// startingHandler): GET /v1/rules did not list it.
			switch path {
			case "/healthz", "/readyz", "/metrics", "/v1/openapi.yaml":
			default:
				want = append(want, 503)
			}
			for _, st := range want {
				if op.Responses.Status(st) == nil {
					t.Errorf("%s %s: no %d response", method, path, st)
				}
			}
		}
	}
	for name, header := range map[string]string{"Unauthorized": "WWW-Authenticate", "TooManyRequests": "Retry-After", "MethodNotAllowed": "Allow"} {
		h := doc.Components.Responses[name].Value.Headers[header]
		if h == nil || !h.Value.Required {
			t.Errorf("response %s: header %s is not required; the server always sends it", name, header)
		}
	}
}

// No enum lists null: a nullable member says so with nullable: true. Generators read a null
// enum value as one more constant — oapi-codegen made CheckRequestCarrierLessThannil = "<nil>", a
// string a generated client would send and the server refuse.
func TestOpenAPIEnumsHoldNoNull(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var visit func(where string, s *openapi3.SchemaRef)
	visit = func(where string, s *openapi3.SchemaRef) {
		if s == nil || s.Value == nil || s.Ref != "" {
			return
		}
		for _, v := range s.Value.Enum {
			if v == nil {
				t.Errorf("%s: enum lists null", where)
			}
		}
		for name, p := range s.Value.Properties {
			visit(where+"."+name, p)
		}
		visit(where+"[]", s.Value.Items)
		for i, o := range s.Value.OneOf {
			visit(fmt.Sprintf("%s.oneOf[%d]", where, i), o)
		}
	}
	for name, s := range doc.Components.Schemas {
		visit(name, s)
	}
}

// A request body that is one of several shapes (an event or an array of them) is a named schema:
// oapi-codegen gives a named oneOf its From/As methods, while an inline one became a struct with
// an unexported member that a generated client could not fill (only the raw-body call could send
// events or labels).
func TestOpenAPIAlternativeBodiesAreNamed(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil {
				continue
			}
			for ct, mt := range op.RequestBody.Value.Content {
				if s := mt.Schema; s != nil && s.Ref == "" && len(s.Value.OneOf) > 0 {
					t.Errorf("%s %s (%s): the body's oneOf is inline; name it in components.schemas", method, path, ct)
				}
			}
		}
	}
}

// uncheckableLabels stores labels but cannot tell which ids are stored (ClickHouse failed that
// query).
type uncheckableLabels struct{ recordedLabels }

func (*uncheckableLabels) UnknownTargets(context.Context, []schemas.Label) ([]schemas.Label, error) {
	return nil, errors.New("find labelled decisions: read tcp 127.0.0.1:19000: i/o timeout")
}

// Labels stored whose ids could not be checked: the answer says so (unchecked, and why), as the
// CLI warns. It said "labels stored" with no unknown list, which reads as every id found.
func TestLabelsAnswerSaysWhenTheIDsWereNotChecked(t *testing.T) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	router, _ := gorillamux.NewRouter(doc)
	labels := &uncheckableLabels{}
	srv := api.New(api.Config{Keys: keys}, realScorer(t), nil, api.WithLogger(slog.New(slog.DiscardHandler)),
		api.WithAdmins(map[string]string{"lead": "s"}), api.WithInvestigation(nil, labels))
	body := `{"app_id":"app1","decision_id":"mistyped-1","label":"fraud"}`
	r := httptest.NewRequest("POST", "/v1/admin/labels", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth("lead", "s")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	var resp api.LabelsResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 200 || resp.Labeled != 1 || !resp.Unchecked ||
		!strings.HasPrefix(resp.Content, "label stored; could not check that its decision or event is stored: ") || !strings.Contains(resp.Content, "i/o timeout") || len(labels.labels) != 1 {
		t.Fatalf("answer %d %s (%v); want the label stored and the answer saying its id was not checked", w.Code, w.Body, err)
	}
	route, params, _ := router.FindRoute(httptest.NewRequest("POST", "http://127.0.0.1:8080/v1/admin/labels", nil))
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: httptest.NewRequest("POST", "http://127.0.0.1:8080/v1/admin/labels", nil), PathParams: params, Route: route},
		Status:                 w.Code, Header: w.Header(), Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(w.Body.Bytes())
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("the answer does not match the document: %v", err)
	}
}

// The labels answer counts the labels, and those of ids not stored, in the right number: one said
// "1 of them mark a decision or event not stored (yet)", and one label all found "labels stored".
func TestLabelsAnswerCountsUnknownIDsInTheRightNumber(t *testing.T) {
	for body, want := range map[string]string{
		`[{"app_id":"app1","decision_id":"missing-1","label":"fraud"},{"app_id":"app1","event_id":"ev-1","label":"legit"}]`:       "labels stored; 1 of them marks a decision or event not stored (yet): see unknown",
		`[{"app_id":"app1","decision_id":"missing-1","label":"fraud"},{"app_id":"app1","event_id":"missing-ev","label":"legit"}]`: "labels stored; 2 of them mark a decision or event not stored (yet): see unknown",
		`{"app_id":"app1","decision_id":"missing-1","label":"fraud"}`:                                                             "label stored; it marks a decision or event not stored (yet): see unknown",
		// All found: one label is a label, several are labels (one was "labels stored").
		`{"app_id":"app1","event_id":"ev-1","label":"legit"}`:                                                       "label stored",
		`[{"app_id":"app1","event_id":"ev-1","label":"legit"}]`:                                                     "label stored",
		`[{"app_id":"app1","event_id":"ev-1","label":"legit"},{"app_id":"app1","event_id":"ev-2","label":"fraud"}]`: "labels stored",
	} {
		srv := api.New(api.Config{Keys: keys}, realScorer(t), nil, api.WithLogger(slog.New(slog.DiscardHandler)),
			api.WithAdmins(map[string]string{"lead": "s"}), api.WithInvestigation(nil, &recordedLabels{}))
		r := httptest.NewRequest("POST", "/v1/admin/labels", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth("lead", "s")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		var resp api.LabelsResponse
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 200 || resp.Content != want {
			t.Errorf("labels %s: answer %d %s (%v), want content %q", body, w.Code, w.Body, err, want)
		}
	}
}

// /metrics answers in the format the scraper asks for: Prometheus asks for the protobuf exposition
// format first (native histograms, or scrape_protocols listing it), and that answer is one the
// document describes too — it said text/plain only, and a generated client or a gateway validating
// answers refused what Prometheus itself gets.
func TestOpenAPIDescribesMetricsAsScraped(t *testing.T) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{Keys: keys}, realScorer(t), nil, api.WithLogger(slog.New(slog.DiscardHandler)))
	for _, accept := range []string{
		"", "text/plain",
		// Prometheus 3's default scrape_protocols, in its order.
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
		"application/openmetrics-text;version=1.0.0",
	} {
		r := httptest.NewRequest("GET", "http://127.0.0.1:8080/metrics", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		route, params, err := router.FindRoute(r)
		if err != nil {
			t.Fatal(err)
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: w.Code, Header: w.Header(),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(w.Body.Bytes())
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("Accept %.60q: answered %d %s, not as the document says: %v", accept, w.Code, w.Header().Get("Content-Type"), err)
		}
	}
}

// securedBy reports whether op names the security scheme.
func securedBy(op *openapi3.Operation, scheme string) bool {
	if op.Security == nil {
		return false
	}
	for _, req := range *op.Security {
		if _, ok := req[scheme]; ok {
			return true
		}
	}
	return false
}
