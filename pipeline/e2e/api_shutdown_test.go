//go:build integration

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
)

// slowCheck starts a check on its own connection and sends all of it but the last bytes of the
// body: the request is in flight until finish sends them and reads the answer.
func slowCheck(t *testing.T, addr, exID string) (finish func() (code int, rc schemas.RiskCheck, closes bool)) {
	t.Helper()
	body := fmt.Sprintf(`{"phone":"13800138000","ip":"203.0.113.7","app_id":"it-app","ex_id":%q}`, exID)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /v1/risk/check HTTP/1.1\r\nHost: riskflow\r\nAuthorization: Basic aXQtYXBwOml0LXNlY3JldA==\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	return func() (int, schemas.RiskCheck, bool) {
		t.Helper()
		if _, err := conn.Write([]byte(body[10:])); err != nil {
			t.Fatalf("in-flight check %s: send the rest of the body: %v", exID, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("in-flight check %s: no answer: %v", exID, err)
		}
		defer resp.Body.Close()
		var rc schemas.RiskCheck
		_ = json.NewDecoder(resp.Body).Decode(&rc)
		return resp.StatusCode, rc, resp.Close
	}
}

// decisionIDs reads the ids of every decision on the env's decision log topic.
func (e *env) decisionIDs(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, m := range readAllPartitions(t, e.decisions, int(topicEnd(t, e.decisions))) {
		var d schemas.Decision
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Fatalf("decision %s: %v", m.Value, err)
		}
		ids[d.DecisionID] = true
	}
	return ids
}

// An API node stopped with SIGTERM while a check is in flight (its body still arriving, as from
// a slow client) answers it, and the verdict it served reaches the decision log like any other.
// The decision log used to stop with the signal, before the HTTP server had drained: a check
// answered 200 a second after SIGTERM was never on risk.decisions (recorded, neither published
// nor counted as dropped).
func TestSIGTERMLogsTheDecisionsOfInFlightChecks(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	addr := testaddr.Free(t)
	p := e.start("api", "--listen", addr)
	waitHTTP(t, "http://"+addr+"/readyz")

	finish := slowCheck(t, addr, "in-flight")
	time.Sleep(200 * time.Millisecond) // the server has read the request's head
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	// What the decision log had queued when the signal came is long published; the in-flight
	// check is still being drained by the HTTP server.
	time.Sleep(time.Second)
	code, rc, _ := finish()
	if code != http.StatusOK || rc.ID == "" {
		t.Fatalf("in-flight check after SIGTERM: %d %+v", code, rc)
	}
	p.waitExit(t, 30*time.Second)
	if ids := e.decisionIDs(t); !ids[rc.ID] {
		t.Errorf("the verdict %s served after SIGTERM is not on %s (%d decisions there); node log:\n%s", rc.ID, e.decisions, len(ids), strings.TrimSpace(tail(p.log, 15)))
	}
}

// With api.shutdown_delay, an API node told to stop (SIGTERM) first fails /readyz — on the same
// address, still listening — while it goes on answering checks, so that a load balancer probing
// /readyz drains it; then it closes the listener, answers what is in flight, and every verdict it
// served is on the decision log. (Its listener used to close with the signal: /readyz was refused
// a connection, never 503, and a balancer learned the node was gone from failed checks.)
func TestSIGTERMFailsReadinessBeforeTheListenerCloses(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	addr := testaddr.Free(t)
	p := e.start("api", "--listen", addr, "--set", "api.shutdown_delay=3s")
	waitHTTP(t, "http://"+addr+"/readyz")

	finish := slowCheck(t, addr, "in-flight")
	time.Sleep(200 * time.Millisecond) // the server has read the request's head
	_ = p.cmd.Process.Signal(syscall.SIGTERM)

	var readyz int
	var content string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatalf("/readyz after SIGTERM, within api.shutdown_delay: %v (the listener closed before readiness failed)", err)
		}
		var eb schemas.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if readyz, content = resp.StatusCode, eb.Content; readyz == http.StatusServiceUnavailable {
			break
		}
	}
	if readyz != http.StatusServiceUnavailable || !strings.Contains(content, "shutting down") {
		t.Fatalf("/readyz after SIGTERM: %d %q, want 503 saying the node is shutting down", readyz, content)
	}
	// Still taking checks meanwhile, on new connections too.
	// …each answer closing its connection, so that pooled connections (pinned to this node by
	// a layer-4 balancer) move to the nodes that stay.
	code, during, closes := slowCheck(t, addr, "draining")()
	if code != http.StatusOK || during.ID == "" {
		t.Fatalf("check while draining: %d %+v", code, during)
	}
	if !closes {
		t.Error("check while draining: the answer keeps the connection open, want Connection: close")
	}
	// Then the listener closes; the check in flight is still answered.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err != nil {
			break
		} else {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener did not close within 20 s of SIGTERM")
		}
	}
	code, inflight, _ := finish()
	if code != http.StatusOK || inflight.ID == "" {
		t.Fatalf("in-flight check after the listener closed: %d %+v", code, inflight)
	}
	p.waitExit(t, 30*time.Second)
	ids := e.decisionIDs(t)
	for _, id := range []string{during.ID, inflight.ID} {
		if !ids[id] {
			t.Errorf("verdict %s served while stopping is not on %s (%d decisions there)", id, e.decisions, len(ids))
		}
	}
}

// A node draining (api.shutdown_delay) still follows Kafka: a burst of failed attempts published
// after the signal moves its verdicts as it would on any other node. (Its feature state stopped
// with the signal: for the whole delay it answered from a frozen state.)
func TestSIGTERMDrainingNodeKeepsFollowingKafka(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	addr := testaddr.Free(t)
	p := e.start("api", "--listen", addr, "--set", "api.shutdown_delay=6s")
	waitHTTP(t, "http://"+addr+"/readyz")
	api := newAPIClient(addr)
	const check = `{"phone":"13911112222","ip":"203.0.113.50","app_id":"it-app","carrier":"CM"}`
	if code, _, b, err := api.post("/v1/risk/check", []byte(check)); err != nil || code != http.StatusOK || !strings.Contains(string(b), `"score":0`) {
		t.Fatalf("check before the burst: %d %s %v", code, b, err)
	}

	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitStatus(t, "http://"+addr+"/readyz", http.StatusServiceUnavailable)
	now := time.Now().UTC()
	var burst [][]byte
	for i := range 20 {
		burst = append(burst, []byte(fmt.Sprintf(`{"event_id":"fail-%d","ts":%q,"app_id":"it-app","flow":"one_click_login","phone":"13911112222","ip":"203.0.113.50","carrier":"CM","outcome":"fail","error_code":"103911"}`,
			i, now.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.produce(ctx, e.writer(), burst)

	var last string
	for {
		code, _, b, err := api.post("/v1/risk/check", []byte(check))
		if err != nil {
			t.Fatalf("the draining node never saw the burst published after SIGTERM; its last verdict: %s", last)
		}
		if code == http.StatusOK {
			last = string(b)
			var rc schemas.RiskCheck
			if json.Unmarshal(b, &rc) == nil && rc.Score >= 600 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStatus polls url until it answers status (a minute at most).
func waitStatus(t *testing.T, url string, status int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
	}
	t.Fatalf("%s did not answer %d within a minute", url, status)
}
