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

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/testaddr"
)

// numbered is n events with distinct numbers from id prefix, keyed by number (every partition).
func numbered(prefix string, from, n int, ts time.Time) []kafka.Message {
	out := make([]kafka.Message, n)
	for i := range out {
		b := event(from+i, ts.Add(time.Duration(i)*time.Millisecond))
		b = []byte(strings.Replace(string(b), `"ev-`, `"`+prefix+`-`, 1))
		out[i] = kafka.Message{Key: []byte(fmt.Sprint(from + i)), Value: b}
	}
	return out
}

// A snapshot of a topic that was deleted and created again with more partitions, and has since
// grown past the snapshot's offsets, is refused and the state replays the new topic: before, the
// end-offset check let it through, and the state held the old topic's numbers beside the new
// one's while skipping the new topic's first messages in the old partitions (held-out run: 40,150
// numbers where the topic had 32,176).
func TestSnapshotOfATopicRecreatedWithMorePartitions(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	e.vars = append(e.vars, "RISKFLOW_SCORING_SNAPSHOT_DIR="+t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := time.Now().UTC().Add(-20 * time.Minute)

	s1 := e.start("scorer")
	waitAllReady(t, e, []*proc{s1})
	w := e.writer()
	// The old topic: 2,000 events, 30 of them numbers from one datacenter address 5 minutes ago.
	old := numbered("old", 0, 1970, base)
	farmAt := time.Now().UTC().Add(-5 * time.Minute)
	for i := 0; i < 30; i++ {
		old = append(old, dcEvent(fmt.Sprintf("oldfarm-%02d", i), fmt.Sprintf("1370001%04d", i), farmAt.Add(time.Duration(i)*time.Second)))
	}
	if err := w.WriteMessages(ctx, old...); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, e.scores, 2000)
	s1.stop(syscall.SIGTERM)
	if !strings.Contains(s1.log.String(), `"feature snapshot written" why=shutdown`) { // the first is written once caught up
		t.Fatalf("no snapshot at shutdown:\n%s", tail(s1.log, 20))
	}

	// The topic deleted and created again with 8 partitions, then 6,000 new events: about 750 per
	// partition, past the snapshot's ~500.
	client := &kafka.Client{Addr: kafka.TCP(kafkaAddr), Transport: &kafka.Transport{}}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{e.events}}); err != nil {
		t.Fatal(err)
	}
	// Created again by a CreateTopics call only: the broker auto-creates a topic a metadata request
	// names (with 4 partitions), so nothing asks about it until then.
	for {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: e.events, NumPartitions: 8, ReplicationFactor: 1}}})
		if err == nil {
			err = resp.Errors[e.events]
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create the events topic again: %v", err)
		}
		time.Sleep(300 * time.Millisecond) // still being deleted
	}
	if parts, err := consumers.Partitions(ctx, consumers.Config{Brokers: []string{kafkaAddr}}, e.events); err != nil || len(parts) != 8 {
		t.Fatalf("the events topic created again has %d partitions (%v), want 8", len(parts), err)
	}
	w2 := e.writer()
	if err := w2.WriteMessages(ctx, numbered("new", 100000, 6000, base.Add(time.Minute))...); err != nil {
		t.Fatal(err)
	}
	for p, end := range partitionEnds(t, e.events) {
		if p < 4 && end < 600 {
			t.Fatalf("partition %d of the new topic ends at %d: not past the snapshot's offsets, the test proves nothing", p, end)
		}
	}

	ops := testaddr.Free(t)
	s2 := e.start("scorer", "--set", "ops.listen="+ops)
	waitAllReady(t, e, []*proc{s2})
	if !strings.Contains(s2.log.String(), "feature snapshot refused") || !strings.Contains(s2.log.String(), "created again") {
		t.Errorf("the old topic's snapshot was not refused:\n%s", tail(s2.log, 20))
	}
	if n, ok := metricValue(t, ops, `riskflow_state_keys{kind="phone"}`); !ok || n != 6000 {
		t.Errorf("the state holds %v numbers (ok %v), want the new topic's 6000", n, ok)
	}
	// The new topic never saw the datacenter address: one more number from it is its first.
	if err := w2.WriteMessages(ctx, dcEvent("newfarm-probe", "13700019999", farmAt.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, e.scores, 2000+6000+1)
	if n := probeCount(t, e.scores, 2000+6000+1, "newfarm-probe"); n != 0 {
		t.Errorf("the probe counted %d numbers on the datacenter address: the old topic's events are in the state", n)
	}
}

// dcEvent is an attempt of phone from the datacenter address 47.92.10.20 at ts.
func dcEvent(id, phone string, ts time.Time) kafka.Message {
	b, _ := json.Marshal(map[string]any{"event_id": id, "ts": ts.UnixMilli(), "app_id": "it-app", "flow": "one_click_login",
		"phone": phone, "ip": "47.92.10.20", "carrier": "CM", "outcome": "success"})
	return kafka.Message{Key: []byte(phone), Value: b}
}
