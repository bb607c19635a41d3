//go:build integration

package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// readyz returns the status and body of an ops port's /readyz (0 when it does not answer).
func readyz(ops string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + ops + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadyz polls an ops port's /readyz until cond holds on its answer; false with the last
// answer after within.
func waitReadyz(ops string, within time.Duration, cond func(code int, body string) bool) (bool, int, string) {
	var code int
	var body string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if code, body = readyz(ops); cond(code, body) {
			return true, code, body
		}
	}
	return false, code, body
}

// Two archivers of one group, idle — everything scored is stored — through a 20 s ClickHouse
// outage (kafka.stall_after 5 s): each turns unready, its archiver and its decision archiver both
// saying ClickHouse does not answer (the pings, one each 10 s: with nothing to write no batch
// fails), and ready again after the restart, with nothing lost or stored twice — the events
// scored during the outage, waiting in risk.scores, arrive once each. The pings were tested with
// one archiver against a closed port only, and the decision archiver stayed ready throughout.
func TestIdleArchiversReadinessThroughClickHouseOutage(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	e.vars = append(e.vars, "RISKFLOW_KAFKA_STALL_AFTER=5s")
	ctx := context.Background()
	e.start("scorer")
	archivers := []archiverProc{e.startArchiver(t), e.startArchiver(t)}
	for _, a := range archivers {
		waitHTTP(t, "http://"+a.ops+"/readyz")
	}
	now := time.Now().Add(-time.Hour)
	w := e.writer()
	const n1, n2 = 2000, 2000
	batch := func(from, to int) [][]byte {
		var vs [][]byte
		for k := from; k < to; k++ {
			vs = append(vs, event(k, now.Add(time.Duration(k)*time.Millisecond)))
		}
		return vs
	}
	e.produce(ctx, w, batch(0, n1))
	if got := e.waitCount(ctx, exactlyOnceQuery, n1, 2*time.Minute); got != n1 {
		t.Fatalf("%d of %d scores stored before the outage", got, n1)
	}

	// Idle: ClickHouse away.
	clickhouseCtl(t, "stop")
	stopped := true
	defer func() {
		if stopped {
			clickhouseCtl(t, "start")
		}
	}()
	outageEnd := time.Now().Add(20 * time.Second)
	for i, a := range archivers {
		// Unready once its pings have failed for stall_after: within a ping interval (10 s) and
		// stall_after (5 s) of the stop; a minute at most, on a loaded machine.
		ok, code, body := waitReadyz(a.ops, time.Minute, func(code int, _ string) bool { return code == http.StatusServiceUnavailable })
		if !ok || !strings.Contains(body, "archiver: stalled") || !strings.Contains(body, "decisions: stalled") ||
			!strings.Contains(body, "its store does not answer") {
			t.Errorf("archiver %d, ClickHouse away: /readyz %d %s; want 503 naming the archiver and the decision archiver, whose store does not answer", i, code, body)
		}
		if v := metric(t, a.ops, `riskflow_loop_stalled_seconds{loop="decisions"}`); v == "" || v == "0" {
			t.Errorf("archiver %d, ClickHouse away: riskflow_loop_stalled_seconds{loop=\"decisions\"} %q", i, v)
		}
	}
	// Scored during the outage: these wait in risk.scores.
	e.produce(ctx, w, batch(n1, n1+n2))
	time.Sleep(time.Until(outageEnd))
	clickhouseCtl(t, "start")
	stopped = false
	for i, a := range archivers {
		ok, code, body := waitReadyz(a.ops, 2*time.Minute, func(code int, _ string) bool { return code == http.StatusOK })
		if !ok {
			t.Errorf("archiver %d, ClickHouse back: /readyz %d %s; want ready again", i, code, body)
		}
	}
	const n = n1 + n2
	for _, q := range []string{exactlyOnceQuery, eventsQuery} {
		if got := e.waitCount(ctx, q, n, 3*time.Minute); got != n {
			t.Errorf("%s after the outage: %d, want %d", q, got, n)
		}
	}
	for _, table := range []string{"risk_scores", "verify_events"} {
		if got := e.waitCount(ctx, "SELECT uniqExact(app_id, event_id) FROM {db}."+table, n, time.Minute); got != n {
			t.Errorf("%s: %d distinct events, want %d", table, got, n)
		}
		raw := e.waitCount(ctx, "SELECT count() FROM {db}."+table, n, time.Minute)
		t.Logf("%s: %d rows before merges for %d events (a batch cut by the stop is written again: at least once)", table, raw, n)
	}
	for i, a := range archivers {
		t.Logf("archiver %d stored %v", i, archivedBy(t, a))
	}
}
