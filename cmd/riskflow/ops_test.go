package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestOpsPortReportsStalledLoops(t *testing.T) {
	a := &app{cfg: Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	loop := &fakeLoop{}
	a.registerLoop("scorer", loop)
	h := a.opsHandler()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz of a healthy loop: %d %s", code, body)
	}
	*loop = fakeLoop{d: 2 * time.Minute, why: "write score records: 2000 of 2000 messages failed: [10] Message Size Too Large"}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "scorer: stalled for 2m0s") || !strings.Contains(body, "Message Size Too Large") {
		t.Errorf("readyz of a stalled loop: %d %s", code, body)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d %s", code, body)
	}
	code, body = get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, `riskflow_loop_stalled_seconds{loop="scorer"} 120`) {
		t.Errorf("metrics do not show the stall: %d\n%s", code, body)
	}
}
