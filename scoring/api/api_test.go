package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// fakeChecker answers with a fixed verdict (or error, or panic) and remembers what it was asked.
type fakeChecker struct {
	mu    sync.Mutex
	rc    schemas.RiskCheck
	err   error
	panic any
	got   []schemas.CheckRequest
}

func (f *fakeChecker) Check(req *schemas.CheckRequest) (schemas.RiskCheck, error) {
	f.mu.Lock()
	f.got = append(f.got, *req)
	f.mu.Unlock()
	if f.panic != nil {
		panic(f.panic)
	}
	rc := f.rc
	if rc.ExID == "" {
		rc.ExID = req.ExID
	}
	return rc, f.err
}

func (f *fakeChecker) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// fakePublisher records published batches or fails with err.
type fakePublisher struct {
	mu      sync.Mutex
	err     error
	batches [][]schemas.VerifyEvent
}

func (f *fakePublisher) Publish(ctx context.Context, evs []schemas.VerifyEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.batches = append(f.batches, append([]schemas.VerifyEvent(nil), evs...))
	return nil
}

func (f *fakePublisher) published() [][]schemas.VerifyEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batches
}

var keys = map[string]string{"app1": "secret1", "app2": "secret2"}

func verdict() schemas.RiskCheck {
	return schemas.RiskCheck{
		Code: 0, Content: "success", Score: 600, Tags: []string{"ip_many_phones"},
		Detail:       map[string]schemas.TagDetail{"ip_many_phones": {Score: 600, Reason: "38 phones from this IP in 1h"}},
		RulesVersion: "v-test",
	}
}

type fixture struct {
	srv *api.Server
	chk *fakeChecker
	pub *fakePublisher
}

func newFixture(t *testing.T, cfg api.Config, opts ...api.Option) *fixture {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = keys
	}
	f := &fixture{chk: &fakeChecker{rc: verdict()}, pub: &fakePublisher{}}
	opts = append([]api.Option{api.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	f.srv = api.New(cfg, f.chk, f.pub, opts...)
	return f
}

type reqOpt func(*http.Request)

func basic(key, secret string) reqOpt {
	return func(r *http.Request) { r.SetBasicAuth(key, secret) }
}

func noAuth() reqOpt { return func(r *http.Request) { r.Header.Del("Authorization") } }

// do sends one request; unless told otherwise it authenticates as app1.
func (f *fixture) do(t *testing.T, method, path, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.SetBasicAuth("app1", "secret1")
	r.Header.Set("Content-Type", "application/json")
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

// errorBody asserts an error answer: the status, a JSON body {"code":non-zero,"content":…} and
// nothing else, and a content starting with wantPrefix.
func errorBody(t *testing.T, w *httptest.ResponseRecorder, status int, wantPrefix string) schemas.ErrorBody {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var eb schemas.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %q is not {code, content} JSON: %v", w.Body, err)
	}
	if eb.Code == 0 {
		t.Errorf("error body %s has code 0", w.Body)
	}
	if eb.Code != status {
		t.Errorf("error body code %d, want the status %d", eb.Code, status)
	}
	if eb.Content == "" {
		t.Errorf("error body %s has no content", w.Body)
	}
	if !strings.HasPrefix(eb.Content, wantPrefix) {
		t.Errorf("content %q, want it to start with %q", eb.Content, wantPrefix)
	}
	return eb
}

const checkBody = `{"phone":"+8613800138000","ip":"223.104.3.7","carrier":"CM","app_id":"app1","flow":"one_click_login","platform":"android","device_id":"d-1","ex_id":"ex-42"}`

func event(id, app, ip string) string {
	return fmt.Sprintf(`{"event_id":%q,"ts":"2025-03-14T17:26:53+08:00","app_id":%q,"flow":"one_click_login","phone":"13812348000","ip":%q,"outcome":"success"}`, id, app, ip)
}

func TestCheckReturnsVerdict(t *testing.T) {
	f := newFixture(t, api.Config{NodeID: "n1-"})
	w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got schemas.RiskCheck
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	if got.Code != 0 || got.Content != "success" || got.Score != 600 || got.RulesVersion != "v-test" {
		t.Errorf("verdict %+v", got)
	}
	if len(got.Tags) != 1 || got.Tags[0] != "ip_many_phones" || got.Detail["ip_many_phones"].Score != 600 {
		t.Errorf("tags/detail %v %v", got.Tags, got.Detail)
	}
	if got.ExID != "ex-42" {
		t.Errorf("exID %q, want ex-42", got.ExID)
	}
	if !strings.HasPrefix(got.ID, "n1-") || len(got.ID) <= len("n1-") {
		t.Errorf("id %q, want the node prefix n1- and a sequence", got.ID)
	}
	if f.chk.calls() != 1 {
		t.Fatalf("checker called %d times", f.chk.calls())
	}
	req := f.chk.got[0]
	if req.Phone != "13800138000" || req.IP.String() != "223.104.3.7" || req.AppID != "app1" || req.DeviceID != "d-1" {
		t.Errorf("checker got %+v, want the decoded, normalized request", req)
	}
}

// The API owns the response envelope: a checker that leaves code/content/tags/detail unset still
// yields {"code":0,"content":"success","tags":[],"detail":{}}.
func TestCheckEnvelope(t *testing.T) {
	f := newFixture(t, api.Config{})
	f.chk.rc = schemas.RiskCheck{Score: 0, RulesVersion: "v"}
	w := f.do(t, http.MethodPost, "/v1/risk/check", `{"phone":"13800138000","ip":"2409:8900::1","app_id":"app1"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["code"] != float64(0) || m["content"] != "success" {
		t.Errorf("envelope %s", w.Body)
	}
	if tags, ok := m["tags"].([]any); !ok || len(tags) != 0 {
		t.Errorf("tags %v, want []", m["tags"])
	}
	if d, ok := m["detail"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("detail %v, want {}", m["detail"])
	}
}

func TestEventsAccepted(t *testing.T) {
	f := newFixture(t, api.Config{})
	w := f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4"))
	if w.Code != http.StatusAccepted {
		t.Fatalf("one event: status %d: %s", w.Code, w.Body)
	}
	arr := "[" + event("e2", "app1", "1.2.3.4") + ",\n" + event("e3", "app1", "2001:db8::1") + "]"
	w = f.do(t, http.MethodPost, "/v1/events", arr)
	if w.Code != http.StatusAccepted {
		t.Fatalf("array: status %d: %s", w.Code, w.Body)
	}
	var acc struct {
		Code     int    `json:"code"`
		Content  string `json:"content"`
		Accepted int    `json:"accepted"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &acc); err != nil || acc.Code != 0 || acc.Accepted != 2 {
		t.Errorf("answer %s (%v), want code 0 accepted 2", w.Body, err)
	}
	b := f.pub.published()
	if len(b) != 2 || len(b[0]) != 1 || len(b[1]) != 2 {
		t.Fatalf("published batches %v", b)
	}
	if b[1][1].EventID != "e3" || b[1][1].IP.String() != "2001:db8::1" || b[1][1].Phone != "13812348000" {
		t.Errorf("published %+v", b[1][1])
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var notReady error
	var mu sync.Mutex
	f := newFixture(t, api.Config{}, api.WithReadiness(func(...string) error {
		mu.Lock()
		defer mu.Unlock()
		return notReady
	}))
	for _, path := range []string{"/healthz", "/readyz"} {
		w := f.do(t, http.MethodGet, path, "", noAuth())
		if w.Code != http.StatusOK {
			t.Errorf("%s: status %d: %s", path, w.Code, w.Body)
		}
		var eb schemas.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Code != 0 {
			t.Errorf("%s: body %s", path, w.Body)
		}
	}

	mu.Lock()
	notReady = errors.New("feature replica is 5000 messages behind")
	mu.Unlock()
	eb := errorBody(t, f.do(t, http.MethodGet, "/readyz", "", noAuth()), http.StatusServiceUnavailable, "not ready")
	if !strings.Contains(eb.Content, "5000 messages behind") {
		t.Errorf("readyz content %q does not say why", eb.Content)
	}
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody), http.StatusServiceUnavailable, "not ready")
	if f.chk.calls() != 0 {
		t.Error("checker was called while not ready")
	}
	// Liveness does not depend on readiness.
	if w := f.do(t, http.MethodGet, "/healthz", "", noAuth()); w.Code != http.StatusOK {
		t.Errorf("healthz while not ready: %d", w.Code)
	}
}

func TestAuth(t *testing.T) {
	cases := []struct {
		name string
		opt  reqOpt
		want string
	}{
		{"missing", noAuth(), "authorization: HTTP Basic"},
		{"wrong secret", basic("app1", "secret2"), "authorization: unknown app key or wrong secret"},
		{"empty secret", basic("app1", ""), "authorization: unknown app key or wrong secret"},
		{"unknown key", basic("nobody", "secret1"), "authorization: unknown app key or wrong secret"},
		{"not basic", func(r *http.Request) { r.Header.Set("Authorization", "Bearer secret1") }, "authorization: HTTP Basic"},
	}
	f := newFixture(t, api.Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody, c.opt), http.StatusUnauthorized, c.want)
			errorBody(t, f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.1.1.1"), c.opt), http.StatusUnauthorized, c.want)
		})
	}
	if f.chk.calls() != 0 || len(f.pub.published()) != 0 {
		t.Error("an unauthenticated request reached the checker or the publisher")
	}
}

func TestOtherAppForbidden(t *testing.T) {
	f := newFixture(t, api.Config{})
	body := strings.Replace(checkBody, `"app_id":"app1"`, `"app_id":"app2"`, 1)
	eb := errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", body), http.StatusForbidden, "app_id: ")
	if !strings.Contains(eb.Content, `"app2"`) || !strings.Contains(eb.Content, `"app1"`) {
		t.Errorf("content %q should name both apps", eb.Content)
	}
	errorBody(t, f.do(t, http.MethodPost, "/v1/events", event("e1", "app2", "1.1.1.1")), http.StatusForbidden, "app_id: ")
	arr := "[" + event("e1", "app1", "1.1.1.1") + "," + event("e2", "app2", "1.1.1.1") + "]"
	errorBody(t, f.do(t, http.MethodPost, "/v1/events", arr), http.StatusForbidden, "[1].app_id: ")
	one := "  [" + event("e1", "app2", "1.1.1.1") + "]"
	errorBody(t, f.do(t, http.MethodPost, "/v1/events", one), http.StatusForbidden, "[0].app_id: ")
	if f.chk.calls() != 0 || len(f.pub.published()) != 0 {
		t.Error("a forbidden request reached the checker or the publisher")
	}
}

func TestBadCheckInput(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"bad ip", `{"phone":"13800138000","ip":"999.1.1.1","app_id":"app1"}`, "ip: "},
		{"missing ip", `{"phone":"13800138000","app_id":"app1"}`, "ip: "},
		{"bad phone", `{"phone":"12345","ip":"1.2.3.4","app_id":"app1"}`, "phone: "},
		{"landline", `{"phone":"01012345678","ip":"1.2.3.4","app_id":"app1"}`, "phone: "},
		{"missing app_id", `{"phone":"13800138000","ip":"1.2.3.4"}`, "app_id: "},
		{"bad carrier", `{"phone":"13800138000","ip":"1.2.3.4","app_id":"app1","carrier":"XX"}`, "carrier: "},
		{"bad flow", `{"phone":"13800138000","ip":"1.2.3.4","app_id":"app1","flow":"magic"}`, "flow: "},
		{"bad token digest", `{"phone":"13800138000","ip":"1.2.3.4","app_id":"app1","token_digest":"zz"}`, "token_digest: "},
		{"wrong type", `{"phone":13800138000,"ip":"1.2.3.4","app_id":"app1"}`, "phone: "},
		{"unknown field", `{"phone":"13800138000","ip":"1.2.3.4","app_id":"app1","colour":"red"}`, "colour: "},
		{"empty body", ``, "body is empty"},
		{"blank body", " \n\t", "body is empty"},
		{"invalid JSON", `{"phone":"13800138000",`, "invalid JSON"},
		{"not an object", `[1,2]`, "expected a JSON object"},
	}
	f := newFixture(t, api.Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eb := errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", c.body), http.StatusBadRequest, c.want)
			t.Logf("%s → %s", c.body, eb.Content)
		})
	}
	if f.chk.calls() != 0 {
		t.Error("bad input reached the checker")
	}
}

func TestBadEventsInput(t *testing.T) {
	good := event("e1", "app1", "1.2.3.4")
	cases := []struct {
		name, body, want string
	}{
		{"bad ip", event("e1", "app1", "1.2.3"), "ip: "},
		{"bad phone", strings.Replace(good, "13812348000", "2381234800", 1), "phone: "},
		{"missing event_id", strings.Replace(good, `"event_id":"e1",`, "", 1), "event_id: "},
		{"bad ts", strings.Replace(good, `"2025-03-14T17:26:53+08:00"`, `"yesterday"`, 1), "ts: "},
		{"unknown field", strings.Replace(good, `{`, `{"colour":"red",`, 1), "colour: "},
		{"array with one bad event", "[" + good + "," + event("e2", "app1", "300.1.1.1") + "]", "[1].ip: "},
		{"array with unknown field", "[" + good + "," + strings.Replace(good, `{`, `{"x":1,`, 1) + "]", "[1].x: "},
		{"empty array", "[]", "the array holds no events"},
		{"empty body", "", "body is empty"},
		{"invalid JSON", `{"event_id":`, "event_id: invalid JSON"},
		{"invalid JSON array", `[{"event_id":"e1"},`, "invalid JSON"},
	}
	f := newFixture(t, api.Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eb := errorBody(t, f.do(t, http.MethodPost, "/v1/events", c.body), http.StatusBadRequest, c.want)
			t.Logf("%s → %s", c.body, eb.Content)
		})
	}
	if len(f.pub.published()) != 0 {
		t.Error("bad input reached the publisher")
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, api.Config{MaxBodyBytes: 256})
	big := `{"phone":"13800138000","ip":"1.2.3.4","app_id":"app1","ex_id":"` + strings.Repeat("x", 400) + `"}`
	for _, path := range []string{"/v1/risk/check", "/v1/events"} {
		// Declared length over the limit.
		errorBody(t, f.do(t, http.MethodPost, path, big), http.StatusRequestEntityTooLarge, "body: is larger than 256 bytes (api.max_body_bytes)")
		// Unknown length (chunked): caught while reading.
		chunked := func(r *http.Request) {
			r.ContentLength = -1
			r.Body = io.NopCloser(strings.NewReader(big))
		}
		errorBody(t, f.do(t, http.MethodPost, path, "", chunked), http.StatusRequestEntityTooLarge, "body: is larger than 256 bytes (api.max_body_bytes)")
	}
	// Through a real server and client as well.
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/risk/check", strings.NewReader(big))
	req.SetBasicAuth("app1", "secret1")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !json.Valid(b) {
		t.Errorf("real server: %d %s", resp.StatusCode, b)
	}
	if f.chk.calls() != 0 {
		t.Error("an oversized body reached the checker")
	}
}

func TestRateLimit(t *testing.T) {
	// 0.001/s refills nothing during the test: exactly Burst requests pass.
	f := newFixture(t, api.Config{RatePerApp: 0.001, Burst: 3})
	for i := 0; i < 3; i++ {
		if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i+1, w.Code, w.Body)
		}
	}
	w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody)
	errorBody(t, w, http.StatusTooManyRequests, `rate limit: app key "app1" is over 0.001 requests/s on /v1/risk/check`)
	// At 0.001/s the next token is 1000 s away: Retry-After says so, in whole seconds.
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 999 || ra > 1000 {
		t.Errorf("Retry-After %q, want about 1000 (seconds)", w.Header().Get("Retry-After"))
	}
	// Events have a bucket of their own (unlimited here): exhausted checks do not stop them.
	if w := f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.1.1.1")); w.Code != http.StatusAccepted {
		t.Errorf("events are limited by the check bucket: %d %s", w.Code, w.Body)
	}
	// The bucket is per app key.
	other := strings.Replace(checkBody, `"app_id":"app1"`, `"app_id":"app2"`, 1)
	if w := f.do(t, http.MethodPost, "/v1/risk/check", other, basic("app2", "secret2")); w.Code != http.StatusOK {
		t.Errorf("app2 is limited by app1's traffic: %d %s", w.Code, w.Body)
	}
	// Failed authentication does not spend the app's tokens (nor get a 429).
	g := newFixture(t, api.Config{RatePerApp: 0.001, Burst: 1})
	for i := 0; i < 3; i++ {
		errorBody(t, g.do(t, http.MethodPost, "/v1/risk/check", checkBody, basic("app1", "wrong")), http.StatusUnauthorized, "authorization")
	}
	if w := g.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
		t.Errorf("after failed logins: %d %s", w.Code, w.Body)
	}
}

// One limit for every app held a large app's real traffic to what a small app's abuse is held to.
// api.app_limits sets an app key's own rates; a rate it leaves out is the section's.
func TestRateLimitPerApp(t *testing.T) {
	unlimited, tiny := 0.0, 0.001
	f := newFixture(t, api.Config{RatePerApp: 0.001, Burst: 1, AppLimits: map[string]api.AppLimit{
		"app2": {RatePerApp: &unlimited, EventsPerApp: &tiny},
	}})
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
		t.Fatalf("app1's first check: %d %s", w.Code, w.Body)
	}
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody), http.StatusTooManyRequests, `rate limit: app key "app1" is over 0.001 requests/s`)
	other := strings.Replace(checkBody, `"app_id":"app1"`, `"app_id":"app2"`, 1)
	for i := range 20 {
		if w := f.do(t, http.MethodPost, "/v1/risk/check", other, basic("app2", "secret2")); w.Code != http.StatusOK {
			t.Fatalf("app2's check %d, its own rate unlimited: %d %s", i+1, w.Code, w.Body)
		}
	}
	// app2's events are limited by its own events_per_app, named in the refusal; app1's are
	// not (the section sets none).
	two := "[" + event("e1", "app2", "1.1.1.1") + "," + event("e2", "app2", "1.1.1.2") + "]"
	errorBody(t, f.do(t, http.MethodPost, "/v1/events", two, basic("app2", "secret2")), http.StatusRequestEntityTooLarge, `rate limit: app key "app2" may send at most 1 events per request to /v1/events (api.app_limits.app2.events_per_app 0.001/s)`)
	many := "[" + event("e1", "app1", "1.1.1.1") + "," + event("e2", "app1", "1.1.1.2") + "]"
	if w := f.do(t, http.MethodPost, "/v1/events", many); w.Code != http.StatusAccepted {
		t.Errorf("app1's events, unlimited by the section: %d %s", w.Code, w.Body)
	}
}

func TestAppLimitsValidation(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Keys = map[string]string{"app1": "s1"}
	neg, inf := -1.0, math.Inf(1)
	cfg.AppLimits = map[string]api.AppLimit{"app1": {RatePerApp: &neg, EventsPerApp: &inf}, "gone": {}}
	err := cfg.Validate()
	for _, want := range []string{
		`app_limits: "gone" is not in keys`,
		"app_limits.app1.rate_per_app: -1 is not 0 (unlimited) or a positive rate",
		"app_limits.app1.events_per_app: +Inf is not 0 (unlimited) or a positive rate",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
}

func TestPublisherFailure(t *testing.T) {
	f := newFixture(t, api.Config{})
	f.pub.err = errors.New("kafka: leader not available")
	eb := errorBody(t, f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.1.1.1")), http.StatusServiceUnavailable, "publish")
	if !strings.Contains(eb.Content, "leader not available") {
		t.Errorf("content %q does not carry the cause", eb.Content)
	}

	// No publisher on this node.
	noPub := api.New(api.Config{Keys: keys}, &fakeChecker{rc: verdict()}, nil, api.WithLogger(slog.New(slog.DiscardHandler)))
	nf := &fixture{srv: noPub}
	errorBody(t, nf.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.1.1.1")), http.StatusServiceUnavailable, "event publishing is not configured")
}

func TestCheckerErrors(t *testing.T) {
	f := newFixture(t, api.Config{})
	// No pack loaded: nothing was scored.
	f.chk.rc, f.chk.err = schemas.RiskCheck{}, schemas.Unavailable("no rule pack loaded")
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody), http.StatusServiceUnavailable, "not ready")
	// A rule failed at run time: the verdict of the others stands.
	f.chk.rc, f.chk.err = verdict(), &rules.RuleError{Rule: "x", Err: errors.New("no such overload")}
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
		t.Errorf("partial verdict: %d %s", w.Code, w.Body)
	}
	// Decided by the error, not by the verdict's fields: a verdict with an unclassified error is
	// not served, a misconfigured node answers 500.
	f.chk.rc, f.chk.err = verdict(), errors.New("state unavailable")
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody), http.StatusServiceUnavailable, "not ready")
	f.chk.rc, f.chk.err = schemas.RiskCheck{}, schemas.Misconfigured("no phone hasher configured")
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusInternalServerError {
		t.Errorf("misconfigured: %d %s", w.Code, w.Body)
	}
}

func TestCheckerPanicIsJSON500(t *testing.T) {
	f := newFixture(t, api.Config{})
	f.chk.panic = "index out of range"
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody), http.StatusInternalServerError, "internal error")
	// The server still serves.
	f.chk.mu.Lock()
	f.chk.panic = nil
	f.chk.mu.Unlock()
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
		t.Errorf("after a panic: %d %s", w.Code, w.Body)
	}
	// The panic is counted as a 500.
	w := f.do(t, http.MethodGet, "/metrics", "", noAuth())
	if !strings.Contains(w.Body.String(), `riskflow_api_requests_total{code="500",route="check"} 1`) {
		t.Errorf("metrics do not count the panic as a 500:\n%s", grep(w.Body.String(), "riskflow_api_requests_total"))
	}
}

func TestCheckerAbortHandlerPanicPropagates(t *testing.T) {
	f := newFixture(t, api.Config{})
	f.chk.panic = http.ErrAbortHandler
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler re-raised for net/http", p)
		}
	}()
	f.do(t, http.MethodPost, "/v1/risk/check", checkBody)
}

// The 404 of an unknown path lists the routes of this address: on a node that serves its
// metrics on ops.listen, /metrics is not one of them, and the 404 says where it is instead (it
// listed /metrics, which answered 404 on that address).
func TestUnknownRouteListsWhereMetricsAre(t *testing.T) {
	eb := errorBody(t, newFixture(t, api.Config{}).do(t, http.MethodGet, "/v2/nothing", ""), http.StatusNotFound, "no route GET /v2/nothing")
	if !strings.Contains(eb.Content, "GET /healthz, /readyz, /metrics, /v1/openapi.yaml") {
		t.Errorf("the 404 of a node serving /metrics itself: %q", eb.Content)
	}
	f := newFixture(t, api.Config{}, api.WithMetricsElsewhere("ops.listen (10.0.0.5:9464)"))
	eb = errorBody(t, f.do(t, http.MethodGet, "/v2/nothing", ""), http.StatusNotFound, "no route GET /v2/nothing")
	if strings.Contains(eb.Content, "/readyz, /metrics") || !strings.Contains(eb.Content, "GET /healthz, /readyz, /v1/openapi.yaml; /metrics is on ops.listen (10.0.0.5:9464)") {
		t.Errorf("the 404 of a node serving /metrics on ops.listen: %q", eb.Content)
	}
	errorBody(t, f.do(t, http.MethodGet, "/metrics", ""), http.StatusNotFound, "no route GET /metrics on the API's address")
	// Another method is not told to use GET there either: no method reaches /metrics on this address.
	if w := f.do(t, http.MethodPost, "/metrics", ""); w.Code != http.StatusNotFound || w.Header().Get("Allow") != "" || !strings.Contains(w.Body.String(), "ops.listen (10.0.0.5:9464)") {
		t.Errorf("POST /metrics on a node serving them on ops.listen: %d Allow %q %s", w.Code, w.Header().Get("Allow"), w.Body)
	}
}

func TestUnknownRouteAndWrongMethod(t *testing.T) {
	f := newFixture(t, api.Config{})
	errorBody(t, f.do(t, http.MethodGet, "/v2/nothing", ""), http.StatusNotFound, "no route GET /v2/nothing")
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check/extra", checkBody), http.StatusNotFound, "no route")

	cases := []struct{ method, path, allow string }{
		{http.MethodGet, "/v1/risk/check", "POST"},
		{http.MethodPut, "/v1/events", "POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodDelete, "/readyz", "GET, HEAD"},
		{http.MethodPost, "/metrics", "GET, HEAD"},
	}
	for _, c := range cases {
		w := f.do(t, c.method, c.path, "")
		eb := errorBody(t, w, http.StatusMethodNotAllowed, "method "+c.method)
		if got := w.Header().Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q (%s)", c.method, c.path, got, c.allow, eb.Content)
		}
	}
	if f.chk.calls() != 0 {
		t.Error("a wrong-method request reached the checker")
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, api.Config{})
	f.do(t, http.MethodPost, "/v1/risk/check", checkBody)
	f.do(t, http.MethodPost, "/v1/risk/check", checkBody, noAuth())
	f.do(t, http.MethodGet, "/healthz", "")
	w := f.do(t, http.MethodGet, "/metrics", "", noAuth())
	if w.Code != http.StatusOK {
		t.Fatalf("metrics: %d", w.Code)
	}
	text := w.Body.String()
	for _, want := range []string{
		`riskflow_api_requests_total{code="200",route="check"} 1`,
		`riskflow_api_requests_total{code="401",route="check"} 1`,
		`riskflow_api_requests_total{code="200",route="healthz"} 1`,
		`riskflow_api_scores_total{score="600"} 1`,
		// Every level from the start, at 0: a first 900 is an increase rate() sees, and the
		// share of checks stepped up or blocked reads 0, not nothing.
		`riskflow_api_scores_total{score="0"} 0`,
		`riskflow_api_scores_total{score="300"} 0`,
		`riskflow_api_scores_total{score="900"} 0`,
		`riskflow_api_request_seconds_count{route="check"} 2`,
		// Each route's answers from the start too: a route not asked yet reads 0, not nothing,
		// so its first request is an increase and a scrape never misses a route.
		`riskflow_api_requests_total{code="200",route="events"} 0`,
		`riskflow_api_requests_total{code="200",route="readyz"} 0`,
		`riskflow_api_request_seconds_count{route="labels"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, grep(text, "riskflow_api_"))
		}
	}
}

func TestResponseIDsUnique(t *testing.T) {
	f := newFixture(t, api.Config{NodeID: "n-"})
	const workers, each = 8, 50
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody)
				var rc schemas.RiskCheck
				if err := json.Unmarshal(w.Body.Bytes(), &rc); err != nil {
					t.Error(err)
					return
				}
				ids <- rc.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("id %q is empty or repeated", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d ids, want %d", len(seen), workers*each)
	}
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A route reached through an escaped slash (/v1/risk%2Fcheck) is not that route: the answer is a
// 404 for the path as sent, not a 405 telling the caller to use the very method it used.
func TestEscapedSlashIsNotTheRoute(t *testing.T) {
	f := newFixture(t, api.Config{})
	for _, path := range []string{"/v1/risk%2Fcheck", "/v1%2Frisk%2Fcheck", "/v1/risk%2fcheck"} {
		w := f.do(t, http.MethodPost, path, checkBody)
		eb := errorBody(t, w, http.StatusNotFound, "no route POST "+path)
		if w.Header().Get("Allow") != "" {
			t.Errorf("%s: Allow %q (%s)", path, w.Header().Get("Allow"), eb.Content)
		}
	}
	if f.chk.calls() != 0 {
		t.Error("the checker was called")
	}
}

// A 401 says how to authenticate (RFC 9110 §11.6.1: a 401 carries WWW-Authenticate), on the app
// routes and on the admin routes alike, so that generic HTTP clients (curl --anyauth, browsers,
// generated clients) answer the challenge with the Basic credentials.
func TestUnauthorizedCarriesChallenge(t *testing.T) {
	f := newFixture(t, api.Config{}, api.WithInvestigation(&subjects{}, nil), api.WithAdmins(map[string]string{"lead": "lead-secret"}))
	for _, c := range []struct{ path, body string }{
		{"/v1/risk/check", checkBody},
		{"/v1/events", event("e1", "app1", "1.1.1.1")},
		{"/v1/admin/explain", `{"ip":"1.2.3.4"}`},
	} {
		for _, opt := range []reqOpt{noAuth(), basic("app1", "wrong")} {
			w := f.do(t, http.MethodPost, c.path, c.body, opt)
			errorBody(t, w, http.StatusUnauthorized, "authorization: ")
			if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic realm=") {
				t.Errorf("%s: 401 with WWW-Authenticate %q, want a Basic challenge", c.path, got)
			}
		}
	}
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("an authenticated check: %d, WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// A path that is not in its clean form (a doubled slash, a dot segment) is no route: an Error
// 404 like any other unknown path, not net/http's empty 307 redirect that the document does not
// describe and that a client refusing redirects (scoring/client) reports as an unusable answer.
func TestUncleanPathIsNotFound(t *testing.T) {
	f := newFixture(t, api.Config{})
	for _, path := range []string{"/v1//risk/check", "/v1/./risk/check", "/v1/x/../risk/check", "//v1/events"} {
		w := f.do(t, http.MethodPost, path, checkBody)
		errorBody(t, w, http.StatusNotFound, "no route POST ")
		if loc := w.Header().Get("Location"); loc != "" {
			t.Errorf("%s: Location %q", path, loc)
		}
	}
	if f.chk.calls() != 0 {
		t.Error("a check through an unclean path reached the checker")
	}
}

// A node with admin keys but without a label store says what labelling needs, not the admin keys
// it has.
func TestLabelsOffSaysWhatTheyNeed(t *testing.T) {
	f := newFixture(t, api.Config{}, api.WithInvestigation(&subjects{}, nil), api.WithAdmins(map[string]string{"lead": "lead-secret"}))
	eb := errorBody(t, f.do(t, http.MethodPost, "/v1/admin/labels", `{"app_id":"app1","event_id":"e1","label":"fraud"}`, basic("lead", "lead-secret")),
		http.StatusNotFound, "labelling is not enabled on this node")
	if strings.Contains(eb.Content, "api.admin_keys") || !strings.Contains(eb.Content, "clickhouse.addr") {
		t.Errorf("content %q: want it to name clickhouse.addr, not the admin keys the node has", eb.Content)
	}
	f = newFixture(t, api.Config{}, api.WithInvestigation(&subjects{}, nil))
	errorBody(t, f.do(t, http.MethodPost, "/v1/admin/labels", `{}`, basic("lead", "lead-secret")), http.StatusNotFound, "labelling is not enabled on this node (api.admin_keys)")
}

// Labels that ClickHouse did not store (away, slow) are a 503 that says when to send them again,
// as every other 503 of a dependency does.
func TestLabelsNotStoredSayWhenToRetry(t *testing.T) {
	lb := &recordedLabels{err: errors.New("dial tcp 127.0.0.1:19000: connect: connection refused")}
	f := newFixture(t, api.Config{}, api.WithInvestigation(&subjects{}, lb), api.WithAdmins(map[string]string{"lead": "lead-secret"}))
	w := f.do(t, http.MethodPost, "/v1/admin/labels", `{"app_id":"app1","event_id":"e1","label":"fraud"}`, basic("lead", "lead-secret"))
	errorBody(t, w, http.StatusServiceUnavailable, "store labels: dial tcp")
	if ra := w.Header().Get("Retry-After"); ra != "5" {
		t.Errorf("Retry-After %q, want 5", ra)
	}
}

// A secret is rotated without refusing the verify services not yet moved: while the old secret is
// in previous_keys both are accepted (and each app still using the old one is logged, once), any
// other secret is still refused, another app's previous secret opens nothing, and admins have no
// previous secrets.
func TestPreviousSecretDuringRotation(t *testing.T) {
	var logs syncbuf.Buffer
	cfg := api.Config{Keys: map[string]string{"app1": "new-secret", "app2": "secret2"}, PreviousKeys: map[string]string{"app1": "old-secret"}}
	f := newFixture(t, cfg, api.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), api.WithInvestigation(&subjects{}, nil),
		api.WithAdmins(map[string]string{"lead": "lead-secret"}))
	for _, c := range []struct {
		key, secret string
		status      int
	}{
		{"app1", "new-secret", http.StatusOK},
		{"app1", "old-secret", http.StatusOK},
		{"app1", "old-secret", http.StatusOK},
		{"app1", "secret1", http.StatusUnauthorized},
		{"app1", "", http.StatusUnauthorized},
		{"app2", "old-secret", http.StatusUnauthorized},
		{"app2", "secret2", http.StatusForbidden}, // authenticated; checkBody is app1's
	} {
		if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody, basic(c.key, c.secret)); w.Code != c.status {
			t.Errorf("%s:%s: status %d, want %d: %s", c.key, c.secret, w.Code, c.status, w.Body)
		}
	}
	if n := strings.Count(logs.String(), "previous secret"); n != 1 || !strings.Contains(logs.String(), "app_key=app1") {
		t.Errorf("the use of app1's previous secret logged %d times, want once naming app1:\n%s", n, logs.String())
	}
	if w := f.do(t, http.MethodPost, "/v1/admin/explain", `{"ip":"1.2.3.4"}`, basic("lead", "old-secret")); w.Code != http.StatusUnauthorized {
		t.Errorf("an admin with an app's previous secret: %d", w.Code)
	}
}

func TestPreviousKeysValidation(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Keys = map[string]string{"app1": "s1"}
	cfg.PreviousKeys = map[string]string{"app1": "s1", "gone": "s9", "app0": ""}
	err := cfg.Validate()
	for _, want := range []string{
		"previous_keys: app1 has the same secret as in keys",
		"previous_keys: gone is not in keys",
		"previous_keys: app key and secret must both be non-empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
}

// A CONNECT request names a host and port, not a path (a verify service with riskflow's address as
// its HTTPS proxy sends one): it is no route, answered with the API's Error like any other, not
// ServeMux's text/plain "404 page not found".
func TestConnectToAHostIsNotFound(t *testing.T) {
	f := newFixture(t, api.Config{})
	r := httptest.NewRequest(http.MethodConnect, "riskflow.example:443", nil)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	errorBody(t, w, http.StatusNotFound, "no route CONNECT riskflow.example:443")
	if f.chk.calls() != 0 {
		t.Error("a CONNECT reached the checker")
	}
}
