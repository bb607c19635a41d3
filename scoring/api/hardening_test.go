package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
)

// This file covers what keeps the API from stalling or leaking under hostile or broken input:
// content types, strict UTF-8, bounded error bodies and logs, rate buckets, the failed-login
// throttle, and phone numbers never echoed.

func from(addr string) reqOpt { return func(r *http.Request) { r.RemoteAddr = addr } }

func contentType(ct string) reqOpt {
	return func(r *http.Request) {
		if ct == "" {
			r.Header.Del("Content-Type")
		} else {
			r.Header.Set("Content-Type", ct)
		}
	}
}

// captureLogs returns a logger option that records everything, debug included, in the buffer.
func captureLogs() (api.Option, *syncbuf.Buffer) {
	buf := &syncbuf.Buffer{}
	return api.WithLogger(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))), buf
}

func TestContentType(t *testing.T) {
	f := newFixture(t, api.Config{})
	for _, ct := range []string{
		"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/xml", "application/json; charset=latin1", "application/json; charset=utf-16", "application/", ";;",
	} {
		for _, path := range []string{"/v1/risk/check", "/v1/events"} {
			body := checkBody
			if path == "/v1/events" {
				body = event("e1", "app1", "1.2.3.4")
			}
			w := f.do(t, http.MethodPost, path, body, contentType(ct))
			eb := errorBody(t, w, http.StatusUnsupportedMediaType, "")
			if !strings.Contains(eb.Content, "application/json") && !strings.Contains(eb.Content, "UTF-8") {
				t.Errorf("%s with %q: content %q does not say what is accepted", path, ct, eb.Content)
			}
		}
	}
	for _, ct := range []string{
		"", "application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8",
		"application/json; charset=\"utf8\"", "application/vnd.riskflow+json",
	} {
		if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody, contentType(ct)); w.Code != http.StatusOK {
			t.Errorf("check with Content-Type %q: %d %s", ct, w.Code, w.Body)
		}
		if w := f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4"), contentType(ct)); w.Code != http.StatusAccepted {
			t.Errorf("events with Content-Type %q: %d %s", ct, w.Code, w.Body)
		}
	}
	if len(f.pub.published()) != 6 || f.chk.calls() != 6 {
		t.Errorf("published %d batches and checked %d times, want 6 and 6: a refused content type got through", len(f.pub.published()), f.chk.calls())
	}
}

// A compressed body is refused naming the header, on every route that reads a body, whether or
// not the bytes are really compressed: nothing would decode them.
func TestContentEncoding(t *testing.T) {
	fr := &fakeRules{}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	encoding := func(ce string) reqOpt { return func(r *http.Request) { r.Header.Set("Content-Encoding", ce) } }
	for _, ce := range []string{"gzip", "deflate", "br", "GZIP", "identity, gzip", "x-13812348000"} {
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/risk/check", checkBody},
			{http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4")},
			{http.MethodPut, "/v1/rules", "pack: p\n"},
			{http.MethodPost, "/v1/rules/rollback", `{"version":"v1"}`},
		} {
			w := f.do(t, c.method, c.path, c.body, encoding(ce), basic("lead", "s3cret"))
			if !strings.HasPrefix(c.path, "/v1/rules") {
				w = f.do(t, c.method, c.path, c.body, encoding(ce))
			}
			eb := errorBody(t, w, http.StatusUnsupportedMediaType, "Content-Encoding ")
			if strings.Contains(eb.Content, "13812348000") {
				t.Errorf("%s with %q: %q echoes the number", c.path, ce, eb.Content)
			}
		}
	}
	if len(f.pub.published()) != 0 || f.chk.calls() != 0 || fr.loaded != 0 {
		t.Errorf("published %d, checked %d, loaded %d with a compressed body, want none", len(f.pub.published()), f.chk.calls(), fr.loaded)
	}
	for _, ce := range []string{"", "identity", "Identity"} {
		if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody, encoding(ce)); w.Code != http.StatusOK {
			t.Errorf("check with Content-Encoding %q: %d %s", ce, w.Code, w.Body)
		}
	}
}

// With api.console_approvals 2 one admin's PUT /v1/rules would load a pack no second admin saw:
// it is refused (nothing loaded), naming the setting; reading the rules stays open.
func TestRulesPutRefusedWhenApprovalsRequired(t *testing.T) {
	fr := &fakeRules{}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}), api.WithRulesApproval(2))
	w := f.do(t, http.MethodPut, "/v1/rules", "pack: p\n", basic("lead", "s3cret"))
	errorBody(t, w, http.StatusForbidden, "rules: api.console_approvals is 2")
	if fr.loaded != 0 {
		t.Errorf("loaded %d packs through PUT with two approvals required, want none", fr.loaded)
	}
	if w := f.do(t, http.MethodGet, "/v1/rules", "", basic("lead", "s3cret")); w.Code != http.StatusOK {
		t.Errorf("GET /v1/rules: %d %s", w.Code, w.Body)
	}
	// A wrong secret is still 401, not a hint that the route exists.
	errorBody(t, f.do(t, http.MethodPut, "/v1/rules", "pack: p\n", basic("lead", "guess")), http.StatusUnauthorized, "authorization: unknown admin or wrong secret")
	// One approval: PUT loads as before.
	f1 := newFixture(t, api.Config{}, api.WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}), api.WithRulesApproval(1))
	if w := f1.do(t, http.MethodPut, "/v1/rules", "pack: p\n", basic("lead", "s3cret")); w.Code != http.StatusOK || fr.loaded != 1 {
		t.Errorf("PUT with one approval: %d %s, loaded %d", w.Code, w.Body, fr.loaded)
	}
}

// A rollback loads a pack too, one no second admin approved: with api.console_approvals 2 the
// console makes it a request, and POST /v1/rules/rollback let one admin (or one stolen secret) roll
// back to any recorded version at once, alone (held-out run: bob rolled the live pack back to a
// 35-rule version through the API, loaded_by api:bob, on a node whose console asked for a second
// admin). It is refused, naming the setting; listing the versions stays open.
func TestRulesRollbackRefusedWhenApprovalsRequired(t *testing.T) {
	fr := &fakeRules{}
	admins := map[string]string{"lead": "s3cret"}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(fr, admins), api.WithRulesApproval(2))
	w := f.do(t, http.MethodPost, "/v1/rules/rollback", `{"version":"3f2a9c0d1e2b4a5f"}`, basic("lead", "s3cret"))
	errorBody(t, w, http.StatusForbidden, "rules: api.console_approvals is 2")
	if fr.rolledBack != 0 {
		t.Errorf("rolled back %d times through the API with two approvals required, want none", fr.rolledBack)
	}
	if w := f.do(t, http.MethodGet, "/v1/rules/versions", "", basic("lead", "s3cret")); w.Code != http.StatusOK {
		t.Errorf("GET /v1/rules/versions: %d %s", w.Code, w.Body)
	}
	errorBody(t, f.do(t, http.MethodPost, "/v1/rules/rollback", `{"version":"3f2a9c0d1e2b4a5f"}`, basic("lead", "guess")), http.StatusUnauthorized, "authorization: unknown admin or wrong secret")
	f1 := newFixture(t, api.Config{}, api.WithRulesAdmin(fr, admins), api.WithRulesApproval(1))
	if w := f1.do(t, http.MethodPost, "/v1/rules/rollback", `{"version":"3f2a9c0d1e2b4a5f"}`, basic("lead", "s3cret")); w.Code != http.StatusOK || fr.rolledBack != 1 {
		t.Errorf("rollback with one approval: %d %s, rolled back %d", w.Code, w.Body, fr.rolledBack)
	}
}

// fakeRules accepts every pack and every rollback.
type fakeRules struct{ loaded, rolledBack int }

func (f *fakeRules) Current() api.RulesInfo { return api.RulesInfo{Pack: "p", Version: "v1"} }

func (f *fakeRules) Versions(context.Context) ([]api.RulesInfo, error) { return nil, nil }

func (f *fakeRules) Rollback(context.Context, string, string, string) (api.RulesInfo, error) {
	f.rolledBack++
	return api.RulesInfo{}, nil
}

func (f *fakeRules) Update(context.Context, []byte, string, api.UpdateOptions) (api.RulesInfo, error) {
	f.loaded++
	return api.RulesInfo{Pack: "p", Version: "v2"}, nil
}

func TestRulesContentType(t *testing.T) {
	fr := &fakeRules{}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	for _, ct := range []string{
		"", "application/yaml", "application/x-yaml", "text/yaml", "text/plain; charset=utf-8", "application/json",
		"application/x-www-form-urlencoded", // what curl --data-binary sends by default
	} {
		if w := f.do(t, http.MethodPut, "/v1/rules", "pack: p\n", basic("lead", "s3cret"), contentType(ct)); w.Code != http.StatusOK {
			t.Errorf("PUT /v1/rules with Content-Type %q: %d %s", ct, w.Code, w.Body)
		}
	}
	for _, ct := range []string{"multipart/form-data; boundary=x", "image/png", "text/yaml; charset=gbk"} {
		eb := errorBody(t, f.do(t, http.MethodPut, "/v1/rules", "pack: p\n", basic("lead", "s3cret"), contentType(ct)), http.StatusUnsupportedMediaType, "")
		if !strings.Contains(eb.Content, "YAML") && !strings.Contains(eb.Content, "UTF-8") {
			t.Errorf("content %q does not say what is accepted", eb.Content)
		}
	}
	if fr.loaded != 7 {
		t.Errorf("%d packs loaded, want 7", fr.loaded)
	}
}

// rawDoc writes a JSON object member by member from raw JSON texts, so that a test can put bytes
// encoding/json would never write (invalid UTF-8) into a value.
func rawDoc(members map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for name, raw := range members {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(`"` + name + `":` + raw) // names in these tests need no escaping
	}
	b.WriteByte('}')
	return b.String()
}

func checkMembers() map[string]string {
	return map[string]string{`phone`: `"13812348000"`, `ip`: `"1.2.3.4"`, `app_id`: `"app1"`}
}

func eventMembers(id string) map[string]string {
	return map[string]string{
		`event_id`: strconv.Quote(id), `ts`: `"2025-03-14T09:26:53Z"`, `app_id`: `"app1"`, `flow`: `"one_click_login"`,
		`phone`: `"13812348000"`, `ip`: `"1.2.3.4"`, `outcome`: `"success"`,
	}
}

func TestInvalidUTF8IsRefused(t *testing.T) {
	f := newFixture(t, api.Config{})
	bad := map[string]string{
		"invalid byte":       "\"a\xffb\"",
		"overlong encoding":  "\"a\xc0\xafb\"",
		"lone surrogate":     `"a\ud800b"`,
		"reversed surrogate": `"a\udc00\ud800b"`,
	}
	checkFields := []string{"phone", "ip", "carrier", "app_id", "flow", "platform", "device_id", "token_digest", "ex_id"}
	eventFields := []string{"event_id", "ts", "app_id", "flow", "phone", "ip", "carrier", "platform", "device_id", "outcome", "error_code", "token_digest", "ex_id", "schema"}
	for what, raw := range bad {
		for _, field := range checkFields {
			m := checkMembers()
			m[field] = raw
			eb := errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", rawDoc(m)), http.StatusBadRequest, field+": ")
			if !strings.Contains(eb.Content, "UTF-8") && !strings.Contains(eb.Content, "surrogate") {
				t.Errorf("check %s with %s: content %q does not say what is wrong", field, what, eb.Content)
			}
		}
		for _, field := range eventFields {
			m := eventMembers("e2")
			m[field] = raw
			// As the second event of an array: the error names the item and the field.
			body := "[" + rawDoc(eventMembers("e1")) + "," + rawDoc(m) + "]"
			errorBody(t, f.do(t, http.MethodPost, "/v1/events", body), http.StatusBadRequest, "[1]."+field+": ")
			errorBody(t, f.do(t, http.MethodPost, "/v1/events", rawDoc(m)), http.StatusBadRequest, field+": ")
		}
	}
	// Unknown members: an invalid name, or an invalid value under an allowed newer-version member.
	m := checkMembers()
	m["ph\xffone"] = `"1"`
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", rawDoc(m)), http.StatusBadRequest, `member name "ph\xffone" is not valid UTF-8`)
	m = eventMembers("e1")
	m["schema"], m["future_field"] = `"1.1"`, "[\"\xff\"]"
	errorBody(t, f.do(t, http.MethodPost, "/v1/events", rawDoc(m)), http.StatusBadRequest, "future_field: is not valid UTF-8")
	if f.chk.calls() != 0 || len(f.pub.published()) != 0 {
		t.Error("invalid UTF-8 reached the checker or the publisher")
	}
}

func TestErrorBodiesAreBounded(t *testing.T) {
	logOpt, logs := captureLogs()
	f := newFixture(t, api.Config{}, logOpt)
	huge := strings.Repeat("k", 200_000)
	cases := []struct {
		name, method, path, body, prefix string
		status                           int
	}{
		{"unknown field name", http.MethodPost, "/v1/risk/check", `{"` + huge + `":1,"phone":"13812348000"}`, `"kkkk`, http.StatusBadRequest},
		{"unknown field name in an array", http.MethodPost, "/v1/events", "[" + event("e1", "app1", "1.2.3.4") + `,{"` + huge + `":1}]`, `[1]."kkkk`, http.StatusBadRequest},
		{"huge ip", http.MethodPost, "/v1/risk/check", `{"phone":"13812348000","app_id":"app1","ip":"` + huge + `"}`, `ip: "kkkk`, http.StatusBadRequest},
		{"huge flow", http.MethodPost, "/v1/risk/check", `{"phone":"13812348000","app_id":"app1","ip":"1.2.3.4","flow":"` + strings.Repeat("\x7f", 50_000) + `"}`, `flow: "\x7f`, http.StatusBadRequest},
		{"huge path", http.MethodGet, "/" + strings.Repeat("p", 20_000), "", "no route GET", http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := f.do(t, c.method, c.path, c.body)
			errorBody(t, w, c.status, c.prefix)
			if w.Body.Len() > 1024 {
				t.Errorf("error body is %d bytes: %.200s…", w.Body.Len(), w.Body)
			}
		})
	}

	// Text from elsewhere is cut centrally: a Kafka error of 100 KB.
	f.pub.err = errors.New("kafka: " + strings.Repeat("broker said no; ", 6000))
	w := f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4"))
	eb := errorBody(t, w, http.StatusServiceUnavailable, "publish to Kafka failed: kafka: broker said no")
	// The sender is asked to wait before it sends the batch again.
	if ra := w.Header().Get("Retry-After"); ra != "2" {
		t.Errorf("publish failure: Retry-After %q, want 2", ra)
	}
	if w.Body.Len() > 1024 || !strings.HasSuffix(eb.Content, "… (cut)") {
		t.Errorf("error body is %d bytes, content ends %q", w.Body.Len(), eb.Content[max(0, len(eb.Content)-20):])
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 3000 {
			t.Errorf("log line of %d bytes: %.200s…", len(line), line)
		}
	}
	if !strings.Contains(logs.String(), "request failed") {
		t.Errorf("the 503 was not logged:\n%s", logs)
	}
}

func TestRetryAfterAndSeparateBuckets(t *testing.T) {
	f := newFixture(t, api.Config{RatePerApp: 0.5, Burst: 2, EventsRatePerApp: 0.001, EventsBurst: 2})
	for i := range 2 {
		if w := f.do(t, http.MethodPost, "/v1/events", event("e"+strconv.Itoa(i), "app1", "1.2.3.4")); w.Code != http.StatusAccepted {
			t.Fatalf("event %d within the burst: %d %s", i, w.Code, w.Body)
		}
	}
	w := f.do(t, http.MethodPost, "/v1/events", event("e3", "app1", "1.2.3.4"))
	errorBody(t, w, http.StatusTooManyRequests, `rate limit: app key "app1" is over 0.001 requests/s on /v1/events`)
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds ≥ 1", w.Header().Get("Retry-After"))
	}
	// The events bucket is empty; the check bucket is untouched.
	for i := range 2 {
		if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
			t.Fatalf("check %d after events ran out: %d %s", i, w.Code, w.Body)
		}
	}
	w = f.do(t, http.MethodPost, "/v1/risk/check", checkBody)
	errorBody(t, w, http.StatusTooManyRequests, "rate limit: ")
	// 0.5/s: the next token is at most 2 s away; Retry-After rounds up and is never 0.
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Errorf("Retry-After %q, want 1 or 2", w.Header().Get("Retry-After"))
	}
	// Another app has buckets of its own.
	other := strings.Replace(checkBody, `"app_id":"app1"`, `"app_id":"app2"`, 1)
	if w := f.do(t, http.MethodPost, "/v1/risk/check", other, basic("app2", "secret2")); w.Code != http.StatusOK {
		t.Errorf("app2 is limited by app1: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, http.MethodPost, "/v1/events", event("x", "app2", "1.2.3.4"), basic("app2", "secret2")); w.Code != http.StatusAccepted {
		t.Errorf("app2's events are limited by app1: %d %s", w.Code, w.Body)
	}
}

// api.events_per_app counts events, not requests: one array of many events spends as many tokens
// as that many requests of one, an array larger than the bucket is refused as such (413, no
// Retry-After: waiting would not help), and a refused request spends nothing.
func TestEventsPerAppCountsEvents(t *testing.T) {
	f := newFixture(t, api.Config{EventsPerApp: 0.001, EventsPerAppBurst: 5})
	array := func(prefix string, n int, app ...string) string {
		var evs []string
		for i := range n {
			evs = append(evs, event(prefix+strconv.Itoa(i), append(app, "app1")[0], "1.2.3.4"))
		}
		return "[" + strings.Join(evs, ",") + "]"
	}
	w := f.do(t, http.MethodPost, "/v1/events", array("big", 6))
	errorBody(t, w, http.StatusRequestEntityTooLarge, `rate limit: app key "app1" may send at most 5 events per request to /v1/events (api.events_per_app 0.001/s); this one has 6`)
	if w.Header().Get("Retry-After") != "" {
		t.Errorf("a batch over the bucket carries Retry-After %q", w.Header().Get("Retry-After"))
	}
	if w := f.do(t, http.MethodPost, "/v1/events", array("a", 3)); w.Code != http.StatusAccepted {
		t.Fatalf("3 events of a bucket of 5: %d %s", w.Code, w.Body)
	}
	// 2 tokens left: an array of 3 waits, and spends nothing — the 2 still go through, one by one.
	w = f.do(t, http.MethodPost, "/v1/events", array("b", 3))
	errorBody(t, w, http.StatusTooManyRequests, `rate limit: app key "app1" is over 0.001 events/s on /v1/events`)
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds ≥ 1", w.Header().Get("Retry-After"))
	}
	for i := range 2 {
		if w := f.do(t, http.MethodPost, "/v1/events", event("c"+strconv.Itoa(i), "app1", "1.2.3.4")); w.Code != http.StatusAccepted {
			t.Fatalf("event %d within the rest of the bucket: %d %s", i, w.Code, w.Body)
		}
	}
	errorBody(t, f.do(t, http.MethodPost, "/v1/events", event("d", "app1", "1.2.3.4")), http.StatusTooManyRequests, `rate limit: app key "app1" is over 0.001 events/s`)
	// Checks and the other app are not limited by it.
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
		t.Errorf("check after app1's events ran out: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, http.MethodPost, "/v1/events", array("x", 5, "app2"), basic("app2", "secret2")); w.Code != http.StatusAccepted {
		t.Errorf("app2's events are limited by app1: %d %s", w.Code, w.Body)
	}
}

func TestFailedAuthenticationIsThrottledPerAddress(t *testing.T) {
	fr := &fakeRules{}
	// 3 failures in a row, then one a minute.
	f := newFixture(t, api.Config{AuthFailuresPerMinute: 1, AuthFailureBurst: 3}, api.WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	const a, b = "192.0.2.1:40000", "192.0.2.2:40000"
	check := func(addr string, opts ...reqOpt) *httptest.ResponseRecorder {
		t.Helper()
		return f.do(t, http.MethodPost, "/v1/risk/check", checkBody, append([]reqOpt{from(addr)}, opts...)...)
	}
	// Successes and requests without credentials cost nothing.
	for range 5 {
		if w := check(a); w.Code != http.StatusOK {
			t.Fatalf("good credentials: %d %s", w.Code, w.Body)
		}
		errorBody(t, check(a, noAuth()), http.StatusUnauthorized, "authorization: HTTP Basic")
	}
	for i := range 3 {
		errorBody(t, check(a, basic("app1", "guess"+strconv.Itoa(i))), http.StatusUnauthorized, "authorization: unknown app key or wrong secret")
	}
	// The fourth guess, and anything else of app1 from a — right credentials included, on
	// either route — waits (other app keys and the admin routes count apart:
	// TestOneAppsFailedAuthenticationsLockNoOtherApp).
	for _, w := range []*httptest.ResponseRecorder{
		check(a, basic("app1", "guess4")),
		check(a),
		f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4"), from("192.0.2.1:50000")),
	} {
		errorBody(t, w, http.StatusTooManyRequests, "too many failed authentications from this address")
		if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Errorf("Retry-After %q, want 1..60 seconds", w.Header().Get("Retry-After"))
		}
	}
	if f.chk.calls() != 5 {
		t.Errorf("checker called %d times, want the 5 before the block", f.chk.calls())
	}
	// Another address is not affected.
	if w := check(b); w.Code != http.StatusOK {
		t.Errorf("another address: %d %s", w.Code, w.Body)
	}
	errorBody(t, check(b, basic("app1", "nope")), http.StatusUnauthorized, "authorization")
	// IPv6 counts per /64; an IPv4-mapped address is its IPv4 address.
	for i := range 3 {
		errorBody(t, check("[2001:db8::"+strconv.Itoa(i+1)+"]:1", basic("app1", "x")), http.StatusUnauthorized, "authorization")
	}
	errorBody(t, check("[2001:db8::ffff:1]:2"), http.StatusTooManyRequests, "too many failed")
	if w := check("[2001:db8:0:1::1]:3"); w.Code != http.StatusOK {
		t.Errorf("another /64: %d %s", w.Code, w.Body)
	}
	errorBody(t, check("[::ffff:192.0.2.1]:4"), http.StatusTooManyRequests, "too many failed")
}

// Apps share addresses: one verify service calls riskflow with the keys of every app it serves.
// Failed authentications with a configured app key are counted against that key from that address,
// so that one app sending a wrong secret (a rotation half done) locks out itself, not every app
// on its host: before, app1's wrong secret got app2's checks from the same address 429 — and
// scoring/client's fail-open verdict for every login of app2 — for as long as app1 kept sending
// (held-out run: 6 failures of one app key, then the other app's check answered 429). Guesses with
// names that are no app key, and at admin routes, still share the address's bucket.
func TestOneAppsFailedAuthenticationsLockNoOtherApp(t *testing.T) {
	fr := &fakeRules{}
	f := newFixture(t, api.Config{AuthFailuresPerMinute: 1, AuthFailureBurst: 3}, api.WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	const a = "192.0.2.1:40000"
	check2 := `{"phone":"+8613800138000","ip":"223.104.3.7","app_id":"app2"}`
	for i := range 3 {
		errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody, from(a), basic("app1", "old"+strconv.Itoa(i))), http.StatusUnauthorized, "authorization")
	}
	// app1 waits, its right secret included (the block keeps 200-vs-401 from answering guesses).
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody, from(a)), http.StatusTooManyRequests, "too many failed authentications from this address")
	// app2, from the same address, is answered; so is an admin.
	if w := f.do(t, http.MethodPost, "/v1/risk/check", check2, from(a), basic("app2", "secret2")); w.Code != http.StatusOK {
		t.Fatalf("app2's check after app1's failures from its address: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, http.MethodGet, "/v1/rules", "", from(a), basic("lead", "s3cret")); w.Code != http.StatusOK {
		t.Fatalf("an admin after app1's failures from its address: %d %s", w.Code, w.Body)
	}
	// app2 has a budget of its own, which app1's failures did not spend.
	for i := range 3 {
		errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", check2, from(a), basic("app2", "guess"+strconv.Itoa(i))), http.StatusUnauthorized, "authorization")
	}
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", check2, from(a), basic("app2", "secret2")), http.StatusTooManyRequests, "too many failed")
	// Names that are no app key share the address's bucket: rotating them buys no guesses.
	const b = "192.0.2.2:40000"
	for i := range 3 {
		errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody, from(b), basic("nobody"+strconv.Itoa(i), "x")), http.StatusUnauthorized, "authorization")
	}
	errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody, from(b), basic("nobody9", "x")), http.StatusTooManyRequests, "too many failed")
	errorBody(t, f.do(t, http.MethodGet, "/v1/rules", "", from(b), basic("lead", "s3cret")), http.StatusTooManyRequests, "too many failed")
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody, from(b)); w.Code != http.StatusOK {
		t.Fatalf("app1 after unknown names' failures from its address: %d %s", w.Code, w.Body)
	}
}

// Behind a trusted reverse proxy, failures count against the client X-Forwarded-For names: one
// guessing client does not lock out everybody behind the proxy, and a client cannot escape its
// bucket by writing addresses of its own into the header.
func TestAuthThrottleBehindTrustedProxy(t *testing.T) {
	f := newFixture(t, api.Config{AuthFailuresPerMinute: 1, AuthFailureBurst: 2, TrustedProxies: []string{"10.0.0.0/8", "192.0.2.9"}})
	const proxy = "10.1.2.3:5000"
	xff := func(v string) reqOpt { return func(r *http.Request) { r.Header.Set("X-Forwarded-For", v) } }
	check := func(opts ...reqOpt) *httptest.ResponseRecorder {
		t.Helper()
		return f.do(t, http.MethodPost, "/v1/risk/check", checkBody, opts...)
	}
	// The attacker at 198.51.100.7 rotates the left part of the header; the proxy appends the
	// real peer (and a second proxy hop, itself trusted, is skipped).
	for i := range 2 {
		errorBody(t, check(from(proxy), xff(fmt.Sprintf("203.0.113.%d, 198.51.100.7, 10.9.9.9", i)), basic("app1", "guess")), http.StatusUnauthorized, "authorization")
	}
	errorBody(t, check(from(proxy), xff("1.1.1.1, 198.51.100.7")), http.StatusTooManyRequests, "too many failed")
	// Another client behind the same proxy, and the proxy's own health checks, still pass.
	if w := check(from(proxy), xff("198.51.100.8")); w.Code != http.StatusOK {
		t.Errorf("another client behind the proxy: %d %s", w.Code, w.Body)
	}
	if w := check(from("192.0.2.9:1")); w.Code != http.StatusOK {
		t.Errorf("the proxy itself without a header: %d %s", w.Code, w.Body)
	}
	// The header of a peer that is not a trusted proxy is ignored: it counts against itself.
	for range 2 {
		errorBody(t, check(from("198.51.100.50:1"), xff("198.51.100.99"), basic("app1", "guess")), http.StatusUnauthorized, "authorization")
	}
	errorBody(t, check(from("198.51.100.50:2"), xff("198.51.100.100")), http.StatusTooManyRequests, "too many failed")
	if w := check(from(proxy), xff("198.51.100.99")); w.Code != http.StatusOK {
		t.Errorf("a client named by an untrusted header was charged: %d %s", w.Code, w.Body)
	}
	// An unreadable entry: nothing to its left is trusted, the proxy is the client.
	if w := check(from(proxy), xff("198.51.100.7, garbage")); w.Code != http.StatusOK {
		t.Errorf("unreadable entry: %d %s", w.Code, w.Body)
	}
}

func TestTrustedProxiesConfig(t *testing.T) {
	c := api.DefaultConfig()
	c.TrustedProxies = []string{"10.0.0.0/8", "::1", "not-an-ip"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `trusted_proxies: entry 3: "not-an-ip" is not an address or CIDR`) {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestAuthThrottleOffByDefault(t *testing.T) {
	f := newFixture(t, api.Config{})
	for range 50 {
		errorBody(t, f.do(t, http.MethodPost, "/v1/risk/check", checkBody, basic("app1", "guess")), http.StatusUnauthorized, "authorization")
	}
	if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusOK {
		t.Errorf("after failures with the throttle off: %d %s", w.Code, w.Body)
	}
}

// phoneFormats are ways a caller writes one number; phoneDigits is the number.
var phoneFormats = []string{
	"13812345678", "+8613812345678", "+86 138 1234 5678", "86-138-1234-5678", "tel:13812345678",
	"(138)12345678", "138.1234.5678", "0086 13812345678", "１３８１２３４５６７８",
}

const phoneDigits = "13812345678"

// assertNoPhone fails if text shows the number in any of its formats.
func assertNoPhone(t *testing.T, where, text string) {
	t.Helper()
	if schemas.ContainsPhone(text) || strings.Contains(text, "12345678") || strings.Contains(text, "1234 5678") ||
		strings.Contains(text, "1234-5678") || strings.Contains(text, "1234.5678") || strings.Contains(text, "５６７８") {
		t.Errorf("%s shows the phone number: %.300s", where, text)
	}
}

func TestPhonesAreNeverEchoed(t *testing.T) {
	logOpt, logs := captureLogs()
	// The second app key is a phone number (an operator's mistake): its 429 must not show it.
	keys := map[string]string{"app1": "secret1", phoneDigits: "s"}
	f := newFixture(t, api.Config{Keys: keys, RatePerApp: 0.001, Burst: 1}, logOpt)
	var bodies []string
	send := func(method, path, body string, opts ...reqOpt) {
		t.Helper()
		w := f.do(t, method, path, body, opts...)
		if w.Code < 400 {
			t.Fatalf("%s %s %s: accepted (%d)", method, path, body, w.Code)
		}
		bodies = append(bodies, w.Body.String())
	}
	checkFields := []string{"phone", "ip", "carrier", "app_id", "flow", "platform", "device_id", "token_digest", "ex_id"}
	eventFields := []string{"event_id", "ts", "app_id", "flow", "phone", "ip", "carrier", "platform", "device_id", "outcome", "error_code", "token_digest", "ex_id", "schema"}
	// Checks use up app1's one token on the first request: the rest are answered 429 before
	// decoding, so decode errors are exercised through /v1/events and a limit-free server below.
	g := newFixture(t, api.Config{}, logOpt)
	for _, p := range phoneFormats {
		for _, field := range checkFields {
			if _, err := schemas.NormalizePhone(p); field == "phone" && err == nil {
				continue // a phone field may hold a phone
			}
			m := checkMembers()
			m[field] = strconv.Quote(p)
			w := g.do(t, http.MethodPost, "/v1/risk/check", rawDoc(m))
			if w.Code != http.StatusBadRequest {
				t.Errorf("check with %s=%q: %d %s, want 400", field, p, w.Code, w.Body)
			}
			bodies = append(bodies, w.Body.String())
		}
		m := checkMembers()
		m[p] = `"x"`
		bodies = append(bodies, g.do(t, http.MethodPost, "/v1/risk/check", rawDoc(m)).Body.String())
		for _, field := range eventFields {
			if _, err := schemas.NormalizePhone(p); field == "phone" && err == nil {
				continue
			}
			m := eventMembers("e2")
			m[field] = strconv.Quote(p)
			send(http.MethodPost, "/v1/events", "["+rawDoc(eventMembers("e1"))+","+rawDoc(m)+"]")
		}
		m = eventMembers("e2")
		m[p] = `1`
		send(http.MethodPost, "/v1/events", rawDoc(m))
		send(http.MethodGet, "/v1/"+url.PathEscape(p), "")
		send(http.MethodPost, "/v1/risk/check", checkBody, contentType("text/"+p))
	}
	// A free-text field holding the number is refused, naming the field.
	for _, field := range []string{"device_id", "ex_id", "app_id"} {
		m := checkMembers()
		m[field] = `"user-` + phoneDigits + `"`
		eb := errorBody(t, g.do(t, http.MethodPost, "/v1/risk/check", rawDoc(m)), http.StatusBadRequest, field+": looks like it contains a mobile phone number")
		bodies = append(bodies, eb.Content)
	}
	// The app key in a 429.
	phoneApp := strings.Replace(checkBody, `"app_id":"app1"`, `"app_id":"`+phoneDigits+`"`, 1)
	f.do(t, http.MethodPost, "/v1/risk/check", phoneApp, basic(phoneDigits, "s"))
	w := f.do(t, http.MethodPost, "/v1/risk/check", phoneApp, basic(phoneDigits, "s"))
	eb := errorBody(t, w, http.StatusTooManyRequests, `rate limit: app key "<phone>"`)
	bodies = append(bodies, eb.Content)
	// A Kafka error quoting a number.
	f.pub.err = errors.New("kafka: message for " + phoneFormats[2] + " too large")
	send(http.MethodPost, "/v1/events", event("e9", "app1", "1.2.3.4"))

	for _, b := range bodies {
		assertNoPhone(t, "answer", b)
	}
	assertNoPhone(t, "logs", logs.String())
	if !strings.Contains(logs.String(), "request refused") || !strings.Contains(logs.String(), "request failed") {
		t.Errorf("the refusals were not logged, so the logs were not checked:\n%.500s", logs)
	}
	assertNoPhone(t, "metrics", f.do(t, http.MethodGet, "/metrics", "", noAuth()).Body.String())
	assertNoPhone(t, "metrics", g.do(t, http.MethodGet, "/metrics", "", noAuth()).Body.String())

	// The scorer and the publisher saw nothing of it.
	if g.chk.calls() != 0 || len(g.pub.published()) != 0 || len(f.pub.published()) != 0 {
		t.Error("a refused request reached the checker or the publisher")
	}
}

func TestEventsWithPhoneInFreeTextAreRefused(t *testing.T) {
	f := newFixture(t, api.Config{})
	for _, field := range []string{"event_id", "device_id", "error_code", "ex_id"} {
		for _, p := range phoneFormats {
			if field == "error_code" && len(p) > schemas.MaxErrorCodeLen {
				continue // refused for its length first
			}
			m := eventMembers("e1")
			m[field] = strconv.Quote(p)
			body := "[" + rawDoc(eventMembers("e0")) + "," + rawDoc(m) + "]"
			eb := errorBody(t, f.do(t, http.MethodPost, "/v1/events", body), http.StatusBadRequest, "[1]."+field+": looks like it contains a mobile phone number")
			if !strings.Contains(eb.Content, "opaque id") {
				t.Errorf("content %q does not say what to send instead", eb.Content)
			}
		}
	}
	// Ids made of hex or UUIDs are not phone numbers, even when digits dominate them.
	for _, id := range []string{"a3f9e2c1d4b5a6f7e8d9c0b1a2f3e4d5", "13812345-6789-4abc-8def-0123456789ab", "861234567890123"} {
		m := eventMembers("e1")
		m["device_id"] = strconv.Quote(id)
		if w := f.do(t, http.MethodPost, "/v1/events", rawDoc(m)); w.Code != http.StatusAccepted {
			t.Errorf("device_id %q: %d %s", id, w.Code, w.Body)
		}
	}
	var got schemas.VerifyEvent
	if b := f.pub.published(); len(b) == 3 {
		got = b[2][0]
	}
	if got.DeviceID != "861234567890123" {
		t.Errorf("published %+v, want the IMEI-like device id kept", got)
	}
}

// A node that is not ready answers 503 to its probe and to checks without logging each answer
// above debug: the parts that are not ready log their own changes, and a broker outage or a
// start-up replay must not turn every probe and every refused check into an error line.
func TestNotReadyIsNotLoggedPerRequest(t *testing.T) {
	buf := &syncbuf.Buffer{}
	logger := api.WithLogger(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	notReady := func() error { return errors.New("state: feature replica is 70s stale") }
	f := newFixture(t, api.Config{}, logger, api.WithReadiness(func(...string) error { return notReady() }), api.WithServing(notReady))
	for range 50 {
		if w := f.do(t, http.MethodGet, "/readyz", ""); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz: %d %s", w.Code, w.Body)
		}
		if w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("check: %d %s", w.Code, w.Body)
		}
	}
	if out := buf.String(); out != "" {
		t.Errorf("100 answers of a node that is not ready logged at info or above:\n%.600s", out)
	}
	// A real failure still is an error line.
	f.pub.err = errors.New("kafka: broker away")
	if w := f.do(t, http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4")); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("events with a failing publisher: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("a failed publish was not logged as an error: %q", buf.String())
	}
}

// A node still replaying its feature state (or whose lists are being read) answers checks 503
// with Retry-After, as the starting node does before the API takes its address over: a verify
// service or a load balancer is told when to come back, not left to guess. Seen on a real node
// restarted over 300,000 events: 503 "feature replica is catching up (291321 messages behind)"
// for 2 s, none of them with Retry-After.
func TestNotReadyCheckCarriesRetryAfter(t *testing.T) {
	catching := func() error { return errors.New("feature replica is catching up (291321 messages behind)") }
	f := newFixture(t, api.Config{}, api.WithServing(catching))
	w := f.do(t, http.MethodPost, "/v1/risk/check", checkBody)
	errorBody(t, w, http.StatusServiceUnavailable, "not ready: feature replica is catching up")
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("check while replaying: Retry-After %q, want whole seconds ≥ 1", w.Header().Get("Retry-After"))
	}
}

// A broker outage fails every POST /v1/events: the log says so when it starts and when the route
// answers again, not once per request (a retrying client wrote 133,000 error lines in 15 s).
func TestFailuresLoggedOncePerOutage(t *testing.T) {
	logOpt, logs := captureLogs()
	f := newFixture(t, api.Config{}, logOpt)
	f.pub.mu.Lock()
	f.pub.err = errors.New("kafka: dial tcp 127.0.0.1:19092: connect: connection refused")
	f.pub.mu.Unlock()
	for i := range 500 {
		errorBody(t, f.do(t, http.MethodPost, "/v1/events", event(fmt.Sprintf("e%d", i), "app1", "1.2.3.4")), http.StatusServiceUnavailable, "publish to Kafka failed")
		if i%10 == 0 { // bad events among them are refused before the broker is asked
			errorBody(t, f.do(t, http.MethodPost, "/v1/events", event(fmt.Sprintf("e%d", i), "app1", "999.1.1.1")), http.StatusBadRequest, "")
		}
	}
	f.pub.mu.Lock()
	f.pub.err = nil
	f.pub.mu.Unlock()
	if w := f.do(t, http.MethodPost, "/v1/events", event("e-ok", "app1", "1.2.3.4")); w.Code != http.StatusAccepted {
		t.Fatalf("after the outage: %d %s", w.Code, w.Body)
	}
	var errs, recovered int
	for _, line := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(line, "level=ERROR"):
			errs++
		case strings.Contains(line, "requests answered again") && strings.Contains(line, "failed=500"):
			recovered++
		}
	}
	if errs != 1 || recovered != 1 {
		t.Errorf("500 failed requests logged %d errors and %d recoveries, want 1 and 1:\n%.2000s", errs, recovered, logs.String())
	}
}

// subjects records what POST /v1/admin/explain asked about.
type subjects struct{ got []scoring.Subject }

func (s *subjects) Explain(sub scoring.Subject) (scoring.Explanation, error) {
	s.got = append(s.got, sub)
	return scoring.Explanation{Subject: "x"}, nil
}

// The admin routes' bodies are held to what the check and events bodies are: text that is not
// valid Unicode is a 400 naming the member (encoding/json would read U+FFFD, looking up or
// labelling another id than the one sent), and so is a member given twice (the last one would
// win: a second app_id, a second device_id).
func TestAdminBodiesRefuseBadTextAndRepeatedMembers(t *testing.T) {
	ex, lb := &subjects{}, &recordedLabels{}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(&fakeRules{}, map[string]string{"lead": "s3cret"}), api.WithInvestigation(ex, lb))
	admin := basic("lead", "s3cret")
	for _, c := range []struct{ path, body, want string }{
		{"/v1/admin/explain", "{\"device_id\":\"dev\xffx\"}", "device_id: is not valid UTF-8"},
		{"/v1/admin/explain", `{"device_id":"dev\udc00"}`, "device_id: holds an unpaired UTF-16 surrogate"},
		{"/v1/admin/explain", `{"device_id":"farm-1","device_id":"farm-2"}`, "device_id: appears more than once"},
		{"/v1/admin/explain", `{"ip":"10.0.0.1","app_id":"a","app_id":"b"}`, "app_id: appears more than once"},
		{"/v1/admin/labels", "[{\"app_id\":\"a\",\"event_id\":\"e\xff\",\"label\":\"fraud\"}]", "[0].event_id: is not valid UTF-8"},
		{"/v1/admin/labels", `{"app_id":"a","event_id":"e","label":"fraud","note":"\ud800"}`, "note: holds an unpaired UTF-16 surrogate"},
		{"/v1/admin/labels", `{"app_id":"a","app_id":"b","event_id":"e","label":"fraud"}`, "app_id: appears more than once"},
		{"/v1/rules/rollback", `{"version":"v1","version":"v2"}`, "version: appears more than once"},
		{"/v1/rules/rollback", "{\"version\":\"v\xff\"}", "version: is not valid UTF-8"},
	} {
		errorBody(t, f.do(t, http.MethodPost, c.path, c.body, admin), http.StatusBadRequest, c.want)
	}
	if len(ex.got) != 0 || len(lb.labels) != 0 {
		t.Errorf("refused bodies reached the state or the labels: %+v %+v", ex.got, lb.labels)
	}
}

// A body that trickles in (slowloris) until the server's read timeout is a 408 naming the body,
// not a 400 "read body: read tcp 127.0.0.1:18602->127.0.0.1:46138: i/o timeout" spelling out the
// connection (what a real node answered after 5 s).
func TestSlowBodyIsARequestTimeout(t *testing.T) {
	f := newFixture(t, api.Config{})
	srv := httptest.NewUnstartedServer(f.srv)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	for _, path := range []string{"/v1/risk/check", "/v1/events"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Head and part of the body; the rest never comes.
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: riskflow\r\nAuthorization: Basic YXBwMTpzZWNyZXQx\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			path, len(checkBody), checkBody[:5])
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no answer to a slow body: %v", path, err)
		}
		var eb schemas.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.HasPrefix(eb.Content, "body: ") || strings.Contains(eb.Content, "127.0.0.1") {
			t.Errorf("%s: slow body: %d %q, want 408 naming the body (and no addresses)", path, resp.StatusCode, eb.Content)
		}
	}
}

// Member names are matched exactly, as the document spells them and as the check and events
// bodies match them: encoding/json matched "IP" to ip, so {"ip":"47.92.10.20","IP":"1.2.3.4"}
// explained 1.2.3.4 — the member given twice under another case won silently.
func TestAdminBodiesMatchMemberNamesExactly(t *testing.T) {
	ex, lb := &subjects{}, &recordedLabels{}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(&fakeRules{}, map[string]string{"lead": "s3cret"}), api.WithInvestigation(ex, lb))
	admin := basic("lead", "s3cret")
	for _, c := range []struct{ path, body, want string }{
		{"/v1/admin/explain", `{"IP":"1.2.3.4"}`, "IP: unknown field"},
		{"/v1/admin/explain", `{"ip":"47.92.10.20","IP":"1.2.3.4"}`, "IP: unknown field"},
		{"/v1/admin/explain", `{"device_id":"d","App_Id":"a"}`, "App_Id: unknown field"},
		{"/v1/admin/labels", `{"APP_ID":"a","event_id":"e","label":"fraud"}`, "APP_ID: unknown field"},
		{"/v1/admin/labels", `[{"app_id":"a","event_id":"e","label":"fraud"},{"app_id":"a","event_id":"f","Label":"legit"}]`, "[1].Label: unknown field"},
		{"/v1/rules/rollback", `{"Version":"v1"}`, "Version: unknown field"},
	} {
		errorBody(t, f.do(t, http.MethodPost, c.path, c.body, admin), http.StatusBadRequest, c.want)
	}
	if len(ex.got) != 0 || len(lb.labels) != 0 {
		t.Errorf("refused bodies reached the state or the labels: %+v %+v", ex.got, lb.labels)
	}
}

// An explain request without exactly one subject is a 400 naming what is wrong — on a node still
// catching up too (it was a 503 there, and named phone when an ip and a device were given).
func TestExplainNamesTheSubjectProblem(t *testing.T) {
	ex := &subjects{}
	for _, ready := range []bool{true, false} {
		f := newFixture(t, api.Config{}, api.WithInvestigation(ex, nil), api.WithAdmins(map[string]string{"lead": "s3cret"}),
			api.WithServing(func() error {
				if ready {
					return nil
				}
				return errors.New("state: catching up")
			}))
		admin := basic("lead", "s3cret")
		errorBody(t, f.do(t, http.MethodPost, "/v1/admin/explain", `{"ip":"1.2.3.4","device_id":"farm-1"}`, admin), http.StatusBadRequest,
			"device_id: give exactly one of phone, ip and device_id: ip is given too")
		errorBody(t, f.do(t, http.MethodPost, "/v1/admin/explain", `{"app_id":"a"}`, admin), http.StatusBadRequest,
			"give one of phone, ip and device_id")
	}
	if len(ex.got) != 0 {
		t.Errorf("refused requests reached the explainer: %+v", ex.got)
	}
}

// Explain takes a number as a person types or pastes it (+86, spaces, dashes, full-width digits),
// as lookup --phone does; the check and events routes stay strict.
func TestExplainReadsAWrittenNumber(t *testing.T) {
	ex := &subjects{}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(&fakeRules{}, map[string]string{"lead": "s3cret"}), api.WithInvestigation(ex, nil))
	for _, written := range []string{"+86 138-1234-8000", "0086 13812348000", "１３８１２３４８０００"} {
		w := f.do(t, http.MethodPost, "/v1/admin/explain", `{"phone":"`+written+`"}`, basic("lead", "s3cret"))
		if w.Code != http.StatusOK || len(ex.got) == 0 || ex.got[len(ex.got)-1].Phone != "13812348000" {
			t.Errorf("explain of %q: %d %s, asked %+v", written, w.Code, w.Body, ex.got)
		}
	}
	if w := f.do(t, http.MethodPost, "/v1/risk/check", `{"phone":"+86 138-1234-8000","ip":"1.2.3.4","app_id":"app1"}`); w.Code != http.StatusBadRequest {
		t.Errorf("a check with a written number: %d, want 400", w.Code)
	}
}

// A verify service checks for many apps from one address. An app it sends before riskflow knows
// its key (a new app, api.keys not yet updated), or one whose secret is wrong, fails every check:
// that must not lock the other apps' checks out of the address — they had answered 429 (and the
// client's fail-open verdict) for as long as the one app kept logging in. Guesses at one app's
// secret still lock that app out, right secret included.
func TestFailedAuthenticationOfOneAppDoesNotLockOutTheOthers(t *testing.T) {
	f := newFixture(t, api.Config{AuthFailuresPerMinute: 1, AuthFailureBurst: 3})
	const a = "192.0.2.1:40000"
	check := func(opts ...reqOpt) *httptest.ResponseRecorder {
		t.Helper()
		return f.do(t, http.MethodPost, "/v1/risk/check", checkBody, append([]reqOpt{from(a)}, opts...)...)
	}
	for i := range 5 {
		w := check(basic("app-new", "s"+strconv.Itoa(i)))
		if w.Code != http.StatusUnauthorized && w.Code != http.StatusTooManyRequests {
			t.Fatalf("unknown app key: %d %s", w.Code, w.Body)
		}
	}
	errorBody(t, check(basic("app-new", "s")), http.StatusTooManyRequests, "too many failed authentications")
	if w := check(); w.Code != http.StatusOK {
		t.Errorf("app1 after another app's failures from its address: %d %s", w.Code, w.Body)
	}
	for i := range 3 {
		errorBody(t, check(basic("app2", "guess"+strconv.Itoa(i))), http.StatusUnauthorized, "authorization")
	}
	errorBody(t, check(basic("app2", "secret2")), http.StatusTooManyRequests, "too many failed authentications")
	if w := check(); w.Code != http.StatusOK {
		t.Errorf("app1 after guesses at app2's secret from its address: %d %s", w.Code, w.Body)
	}
}

// A browser that had once been given an admin's (or an app's) Basic credentials sends them with
// any site's form: a text/plain form on another site posting to POST /v1/rules/rollback arrived
// authenticated (held-out run in Chromium), stopped only by the body's strict decoding. Such a
// request — Sec-Fetch-Site cross-site or same-site, or an Origin other than the host — is refused
// with 403 before its credentials are looked at (no guess counted), on every route that changes
// something; the same page's own requests, a server's (neither header) and safe methods pass.
func TestBrowserRequestsFromAnotherSiteAreRefused(t *testing.T) {
	fr := &fakeRules{}
	f := newFixture(t, api.Config{AuthFailuresPerMinute: 1, AuthFailureBurst: 1}, api.WithRulesAdmin(fr, map[string]string{"lead": "s3cret"}))
	header := func(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/rules/rollback", `{"version":"0123456789abcdef"}`},
		{http.MethodPut, "/v1/rules", "pack: p\n"},
		{http.MethodPost, "/v1/risk/check", checkBody},
		{http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4")},
	} {
		creds := basic("app1", "secret1")
		if strings.HasPrefix(c.path, "/v1/rules") {
			creds = basic("lead", "s3cret")
		}
		for _, site := range []reqOpt{header("Sec-Fetch-Site", "cross-site"), header("Sec-Fetch-Site", "same-site"), header("Origin", "https://evil.example")} {
			w := f.do(t, c.method, c.path, c.body, creds, site, from("192.0.2.7:1"))
			errorBody(t, w, http.StatusForbidden, c.method+" "+c.path+" from another site's page is refused")
		}
		for _, own := range []reqOpt{header("Sec-Fetch-Site", "same-origin"), header("Sec-Fetch-Site", "none"), func(*http.Request) {}} {
			if w := f.do(t, c.method, c.path, c.body, creds, own, from("192.0.2.7:1")); w.Code == http.StatusForbidden || w.Code == http.StatusTooManyRequests {
				t.Errorf("%s %s from the same origin or a server: %d %s", c.method, c.path, w.Code, w.Body)
			}
		}
	}
	// Safe methods pass: they change nothing.
	if w := f.do(t, http.MethodGet, "/v1/rules", "", basic("lead", "s3cret"), header("Sec-Fetch-Site", "cross-site")); w.Code != http.StatusOK {
		t.Errorf("GET /v1/rules from another site: %d %s", w.Code, w.Body)
	}
}

// A request with two Content-Type headers is a 415 naming the header, as one Content-Type the
// route does not take is: the first was read and the second ignored, so a body declared both
// JSON and a form (or a form first, then JSON) was taken, or refused, by the order of the lines.
func TestTwoContentTypesAreRefused(t *testing.T) {
	rules := &fakeRules{}
	f := newFixture(t, api.Config{}, api.WithRulesAdmin(rules, map[string]string{"lead": "s3cret"}))
	twice := func(a, b string) reqOpt {
		return func(r *http.Request) { r.Header["Content-Type"] = []string{a, b} }
	}
	for _, c := range []struct {
		method, path, body string
		opts               []reqOpt
	}{
		{http.MethodPost, "/v1/risk/check", checkBody, []reqOpt{twice("application/json", "text/plain")}},
		{http.MethodPost, "/v1/risk/check", checkBody, []reqOpt{twice("application/json", "application/json")}},
		{http.MethodPost, "/v1/events", event("e1", "app1", "1.2.3.4"), []reqOpt{twice("text/plain", "application/json")}},
		{http.MethodPut, "/v1/rules", "pack: p\n", []reqOpt{basic("lead", "s3cret"), twice("application/yaml", "application/x-www-form-urlencoded")}},
	} {
		errorBody(t, f.do(t, c.method, c.path, c.body, c.opts...), http.StatusUnsupportedMediaType, "Content-Type is given 2 times: send one")
	}
	if f.chk.calls() != 0 || len(f.pub.published()) != 0 || rules.loaded != 0 {
		t.Errorf("checks %d, batches %d, packs %d taken with two Content-Types", f.chk.calls(), len(f.pub.published()), rules.loaded)
	}
}

// An app key's right credentials at an admin route are a 403 saying that the route takes an
// admin's, not a 401 "unknown admin or wrong secret" — which read as a mistyped secret — and they
// spend none of the address's failed-authentication budget: a verify service that tried the admin
// routes with its app key locked the admins calling from its address out of them (429) after ten
// tries. A wrong secret for an app key is still a failure, counted as before.
func TestAppKeyAtAnAdminRouteIsForbidden(t *testing.T) {
	ex, lb := &subjects{}, &recordedLabels{}
	f := newFixture(t, api.Config{AuthFailuresPerMinute: 1, AuthFailureBurst: 3},
		api.WithRulesAdmin(&fakeRules{}, map[string]string{"lead": "s3cret"}), api.WithInvestigation(ex, lb))
	const a = "192.0.2.1:40000"
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/rules", ""},
		{http.MethodGet, "/v1/rules/versions", ""},
		{http.MethodPut, "/v1/rules", "pack: x\n"},
		{http.MethodPost, "/v1/rules/rollback", `{"version":"v1"}`},
		{http.MethodPost, "/v1/admin/explain", `{"ip":"10.0.0.1","app_id":"app2"}`},
		{http.MethodPost, "/v1/admin/labels", `{"app_id":"app2","event_id":"e1","label":"fraud"}`},
	} {
		for range 2 { // more than the burst of 3 over the routes: none is counted
			eb := errorBody(t, f.do(t, c.method, c.path, c.body, from(a), basic("app1", "secret1")), http.StatusForbidden,
				`authorization: app key "app1" (api.keys) is no admin: `+c.method+" "+c.path+" takes an admin's credentials (api.admin_keys)")
			if !strings.Contains(eb.Content, "POST /v1/risk/check and POST /v1/events") {
				t.Errorf("%s %s: %q does not say what an app key calls", c.method, c.path, eb.Content)
			}
		}
	}
	if len(ex.got) != 0 || len(lb.labels) != 0 {
		t.Errorf("an app key explained or labelled: %+v %+v", ex.got, lb.labels)
	}
	if w := f.do(t, http.MethodGet, "/v1/rules", "", from(a), basic("lead", "s3cret")); w.Code != http.StatusOK {
		t.Fatalf("an admin at the address an app key tried the admin routes from: %d %s", w.Code, w.Body)
	}
	// An app key with a wrong secret is no app's: a failure, spending the address's budget.
	for range 3 {
		errorBody(t, f.do(t, http.MethodGet, "/v1/rules", "", from(a), basic("app1", "guess")), http.StatusUnauthorized, "authorization: unknown admin or wrong secret")
	}
	errorBody(t, f.do(t, http.MethodGet, "/v1/rules", "", from(a), basic("lead", "s3cret")), http.StatusTooManyRequests, "too many failed")
}

// AppKey is what the console asks of a login: an app's secret, or its previous one, and nothing
// else — an admin's credentials are no app key's.
func TestAppKeyTellsAnAppsCredentials(t *testing.T) {
	s := api.New(api.Config{Keys: map[string]string{"app1": "new-secret"}, PreviousKeys: map[string]string{"app1": "old-secret"}}, nil, nil,
		api.WithAdmins(map[string]string{"lead": "s3cret"}))
	for _, c := range []struct {
		name, secret string
		want         bool
	}{{"app1", "new-secret", true}, {"app1", "old-secret", true}, {"app1", "guess", false}, {"app1", "", false}, {"lead", "s3cret", false}, {"nobody", "new-secret", false}, {"", "", false}} {
		if got := s.AppKey(c.name, c.secret); got != c.want {
			t.Errorf("AppKey(%q, %q) = %v, want %v", c.name, c.secret, got, c.want)
		}
	}
}
