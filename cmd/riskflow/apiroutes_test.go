package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// With the console in front of the API, a path the API does not have in its clean form still gets
// the API's Error 404, not the console's ServeMux's empty 307 redirect (which scoring/client,
// refusing redirects, could only report as an unusable answer); /console keeps its redirect. So
// does a path that is the console's only once decoded (/console%2Foverview): the console's
// ServeMux, matching the path as sent, answered it with its text/plain "404 page not found".
func TestConsoleLeavesUncleanAPIPathsToTheAPI(t *testing.T) {
	h := consoleInFrontOfAPI(t)
	for _, path := range []string{"/v1//risk/check", "/v1/./events", "/x/../v1/risk/check", "/console%2Foverview", "/console%2f", "/console%2F..%2Fv1%2Frisk%2Fcheck"} {
		r := httptest.NewRequest(http.MethodPost, "http://riskflow"+path, strings.NewReader(`{}`))
		r.SetBasicAuth("app1", "secret1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var eb schemas.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); w.Code != http.StatusNotFound || err != nil || eb.Code != http.StatusNotFound {
			t.Errorf("POST %s: %d %q (Location %q), want the API's Error 404", path, w.Code, w.Body, w.Header().Get("Location"))
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://riskflow/console", nil))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/" {
		t.Errorf("GET /console: %d, Location %q; want 303 to /console/", w.Code, w.Header().Get("Location"))
	}
}

// consoleInFrontOfAPI returns a node's handler with the console (admin lead) in front of the API
// (app1's key secret1).
func consoleInFrontOfAPI(t *testing.T) http.Handler {
	t.Helper()
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.API.AdminKeys = map[string]string{"lead": "lead-secret"}
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := a.withConsole(api.New(api.Config{Keys: map[string]string{"app1": "secret1"}}, a.scorer, nil, api.WithLogger(slog.New(slog.DiscardHandler))))
	return h
}

// A console path not in its clean form gets the console's 404, not the redirect of the ServeMux
// in front of it: /console//13912345678 was answered 307 with Location /console/13912345678, the
// number as sent (held-out run).
func TestUncleanConsolePathsAreNotRedirected(t *testing.T) {
	h := consoleInFrontOfAPI(t)
	for _, path := range []string{"/console//13912345678", "/console/x/../13912345678", "/console/./139%201234%205678"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://riskflow"+path, nil))
		if shown := w.Body.String() + w.Header().Get("Location"); w.Code != http.StatusNotFound || strings.Contains(shown, "5678") {
			t.Errorf("GET %s: %d, Location %q, number echoed: %v", path, w.Code, w.Header().Get("Location"), strings.Contains(shown, "5678"))
		}
	}
}

// A node still starting (waiting for the broker, replaying its state) serves the OpenAPI document
// — static, and what a client generator fetches — and answers the other API routes with the
// documented Error 503 and its Retry-After; a method /healthz does not take is the API's Error 405,
// not net/http's text/plain one.
func TestStartingNodeServesTheDocumentAndErrors(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := a.startingHandler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://riskflow/v1/openapi.yaml", nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/yaml" || w.Body.String() != string(api.OpenAPI) {
		t.Errorf("GET /v1/openapi.yaml while starting: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "http://riskflow/v1/risk/check", strings.NewReader(`{}`)))
	var eb schemas.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); w.Code != http.StatusServiceUnavailable || err != nil || eb.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("check while starting: %d %q Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "http://riskflow/healthz", nil))
	eb = schemas.ErrorBody{}
	if err := json.Unmarshal(w.Body.Bytes(), &eb); w.Code != http.StatusMethodNotAllowed || err != nil || eb.Code != 405 || w.Header().Get("Allow") == "" {
		t.Errorf("POST /healthz while starting: %d %q Allow %q, want the API's Error 405", w.Code, w.Body, w.Header().Get("Allow"))
	}
}

// A node still starting answers a method a route does not take with the API's 405 — the same
// Allow and Error the started node answers — before it says it is not ready: a DELETE of an admin
// route was a 503 with Retry-After, telling the client to send it again. What a route takes is
// still "not ready".
func TestStartingNodeRefusesAWrongMethodAsTheAPI(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	starting := a.startingHandler()
	started := api.New(api.Config{Keys: map[string]string{"app1": "secret1"}}, a.scorer, nil, api.WithLogger(slog.New(slog.DiscardHandler)))
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/v1/admin/labels"}, {http.MethodGet, "/v1/admin/explain"}, {http.MethodDelete, "/v1/rules"},
		{http.MethodPut, "/v1/rules/versions"}, {http.MethodGet, "/v1/risk/check"}, {http.MethodPost, "/healthz"},
	} {
		w, want := httptest.NewRecorder(), httptest.NewRecorder()
		starting.ServeHTTP(w, httptest.NewRequest(c.method, "http://riskflow"+c.path, nil))
		started.ServeHTTP(want, httptest.NewRequest(c.method, "http://riskflow"+c.path, nil))
		if w.Code != http.StatusMethodNotAllowed || w.Code != want.Code || w.Header().Get("Allow") != want.Header().Get("Allow") ||
			w.Body.String() != want.Body.String() {
			t.Errorf("%s %s while starting: %d Allow %q %s; the started node: %d Allow %q %s", c.method, c.path,
				w.Code, w.Header().Get("Allow"), w.Body, want.Code, want.Header().Get("Allow"), want.Body)
		}
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v1/admin/labels"}, {http.MethodPut, "/v1/rules"}, {http.MethodHead, "/v1/rules"}, {http.MethodDelete, "/v1/nothing"},
	} {
		w := httptest.NewRecorder()
		starting.ServeHTTP(w, httptest.NewRequest(c.method, "http://riskflow"+c.path, nil))
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s while starting: %d, want 503 not ready", c.method, c.path, w.Code)
		}
	}
}

// ClickHouse away when the node starts does not turn labelling off for the process's life: the
// store connects when used, and until ClickHouse answers a label is a 503 to send again, not the
// 404 of a node without labelling.
func TestLabelsSurviveClickHouseAwayAtStart(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.API.AdminKeys = map[string]string{"lead": "lead-secret"}
	cfg.ClickHouse.Addr = testaddr.Free(t) // nothing listens there
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	opts, closeFn := a.apiInvestigation(context.Background())
	defer closeFn()
	srv := api.New(api.Config{Keys: map[string]string{"app1": "secret1"}}, a.scorer, nil, append(opts, api.WithLogger(slog.New(slog.DiscardHandler)))...)
	r := httptest.NewRequest(http.MethodPost, "http://riskflow/v1/admin/labels", strings.NewReader(`{"app_id":"app1","event_id":"e1","label":"fraud"}`))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth("lead", "lead-secret")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	var eb schemas.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); w.Code != http.StatusServiceUnavailable || err != nil || !strings.HasPrefix(eb.Content, "store labels: ") {
		t.Errorf("a label while ClickHouse is away: %d %s, want 503 store labels", w.Code, w.Body)
	}
}

// A query parameter on /healthz or /v1/openapi.yaml, which take none, is the API's 400 naming it
// on a node still starting and on the ops port as on the started node: the ops port's /healthz
// and the starting node's document ignored it, where the started node refuses it.
func TestStartingNodeAndOpsPortRefuseAQueryAsTheAPI(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	started := api.New(api.Config{Keys: map[string]string{"app1": "secret1"}}, a.scorer, nil, api.WithLogger(slog.New(slog.DiscardHandler)))
	for _, path := range []string{"/healthz?verbose=1", "/v1/openapi.yaml?format=json", "/healthz?13812348000=x"} {
		want := httptest.NewRecorder()
		started.ServeHTTP(want, httptest.NewRequest(http.MethodGet, "http://riskflow"+path, nil))
		if want.Code != http.StatusBadRequest {
			t.Fatalf("GET %s on the started node: %d %s", path, want.Code, want.Body)
		}
		handlers := map[string]http.Handler{"starting": a.startingHandler()}
		if strings.HasPrefix(path, "/healthz") {
			handlers["ops port"] = a.opsHandler()
		}
		for name, h := range handlers {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://riskflow"+path, nil))
			var got, wantEB schemas.ErrorBody
			json.Unmarshal(w.Body.Bytes(), &got)
			json.Unmarshal(want.Body.Bytes(), &wantEB)
			if w.Code != want.Code || got != wantEB || got.Content == "" {
				t.Errorf("GET %s, %s: %d %s; the started node: %d %s", path, name, w.Code, w.Body, want.Code, want.Body)
			}
		}
	}
}
