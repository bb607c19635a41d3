//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// An API node without the scorer role keeps its own replica of the feature state: /readyz answers
// 503 while the replica catches up with verify.events, then 200; and /v1/risk/check sees the
// replayed history (a number already verified 12 times in 10 minutes is stepped up).
func TestAPIReplicaReadiness(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().Add(-5 * time.Minute)
	var backlog [][]byte
	for i := 0; i < 60000; i++ {
		backlog = append(backlog, event(i, now.Add(time.Duration(i)*time.Millisecond)))
	}
	for i := 0; i < 12; i++ { // one number hammered: the replica must know it
		b, _ := json.Marshal(map[string]any{"event_id": "hammer-" + string(rune('a'+i)), "ts": now.Add(time.Duration(i) * time.Second).UnixMilli(),
			"app_id": "it-app", "flow": "one_click_login", "phone": "13912345678", "ip": "100.64.9.9", "outcome": "success"})
		backlog = append(backlog, b)
	}
	e.produce(ctx, e.writer(), backlog)

	addr := testaddr.Free(t)
	e.vars = append(e.vars, "RISKFLOW_API_READY_MAX_LAG=10")
	e.start("api", "--listen", addr)
	waitHTTP(t, "http://"+addr+"/healthz")

	sawNotReady, ready := false, false
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		code, body := get(t, "http://"+addr+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "start: ") {
			// The process is still starting, and says which phase: waiting for Kafka, loading
			// the rule pack (a 9 ms window a probe met once in CI), starting the feed.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if code == http.StatusServiceUnavailable {
			sawNotReady = true
			if !strings.Contains(body, "replica") {
				t.Errorf("/readyz 503 does not say why: %s", body)
			}
		}
		if code == http.StatusOK {
			ready = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !ready {
		t.Fatal("/readyz never turned ready")
	}
	if !sawNotReady {
		t.Log("the replica caught up before the first probe (fast machine): no 503 observed")
	}

	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/risk/check", strings.NewReader(`{"phone":"13912345678","ip":"100.64.9.9","app_id":"it-app"}`))
	req.SetBasicAuth("it-app", "it-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rc struct {
		Score int      `json:"score"`
		Tags  []string `json:"tags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rc); err != nil {
		t.Fatal(err)
	}
	if rc.Score != 600 || len(rc.Tags) == 0 || rc.Tags[0] != "phone_velocity" {
		t.Errorf("check after catch-up: score %d tags %v; want 600 phone_velocity (13 attempts in 10 min)", rc.Score, rc.Tags)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
