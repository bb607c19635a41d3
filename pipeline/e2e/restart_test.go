//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// A restarted scorer rebuilds its windows by replaying verify.events: the attempts a number made
// before the restart still count after it.
func TestFeatureStateSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scorer := e.start("scorer")
	w := e.writer()
	now := time.Now().UTC().Add(-5 * time.Minute)
	phoneEvent := func(i int) []byte {
		b, _ := json.Marshal(map[string]any{
			"event_id": fmt.Sprintf("restart-%d", i), "ts": now.Add(time.Duration(i) * 10 * time.Second).Format(time.RFC3339Nano),
			"app_id": "it-app", "flow": "one_click_login", "phone": "13912340000", "ip": "100.64.1.1",
			"carrier": "CM", "outcome": "success",
		})
		return b
	}
	var first [][]byte
	for i := 0; i < 6; i++ {
		first = append(first, phoneEvent(i))
	}
	e.produce(ctx, w, first)
	waitEnd(t, e.scores, 6)
	scorer.stop(syscall.SIGTERM)

	e.start("scorer")
	e.produce(ctx, w, [][]byte{phoneEvent(6)})
	waitEnd(t, e.scores, 7)

	recs := readTopic(t, e.scores, 7)
	var last *schemas.ScoreRecord
	for i := range recs {
		if recs[i].EventID == "restart-6" {
			last = &recs[i]
		}
	}
	if last == nil {
		t.Fatal("no score record for the event after the restart")
	}
	d, ok := last.Detail["phone_velocity"]
	if !ok || !strings.HasPrefix(d.Reason, "7 verifications") {
		t.Fatalf("after restart the number's 7th attempt scored %d with detail %+v; want phone_velocity counting all 7", last.Score, last.Detail)
	}
	if last.Score != 300 {
		t.Errorf("score %d, want 300 (7 in 10 min is observe)", last.Score)
	}
}

func waitEnd(t *testing.T, topic string, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for topicEnd(t, topic) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s reached %d of %d messages within a minute", topic, topicEnd(t, topic), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readTopic reads n score records from every partition of topic.
func readTopic(t *testing.T, topic string, n int) []schemas.ScoreRecord {
	t.Helper()
	var out []schemas.ScoreRecord
	for _, m := range readAllPartitions(t, topic, n) {
		r, err := schemas.DecodeScoreRecord(m.Value)
		if err != nil {
			t.Fatalf("decode score record: %v", err)
		}
		out = append(out, r)
	}
	return out
}
