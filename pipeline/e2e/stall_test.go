//go:build integration

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/pipeline"
)

// No input stalls the scorer: a burst of events whose score records are large, one message just
// under the broker's size limit, and a burst of invalid ~1 KB messages (1,500 dead letters at
// once, all on the one-partition dead-letter topic) are each dealt with, and ordinary events sent
// after each are scored (and archived). At the end /readyz reports no stalled loop and no log line
// is huge.
func TestNoInputStallsTheScorer(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	ctx := context.Background()
	addr := testaddr.Free(t)
	e.vars = append(e.vars, "RISKFLOW_API_MAX_BODY_BYTES=33554432", "RISKFLOW_KAFKA_STALL_AFTER=10s")
	node := e.start("scorer,archiver,api", "--listen", addr)
	waitHTTP(t, "http://"+addr+"/readyz")
	api := newAPIClient(addr)
	ids := newScoreIDs(newCursor(t, e.scores, false))
	w := e.writer()

	// ordinary sends n plain events with ids prefix-0..n-1 and waits until all are scored.
	ordinary := func(prefix string, n int) {
		t.Helper()
		now := time.Now()
		var vs [][]byte
		for i := 0; i < n; i++ {
			b, _ := json.Marshal(map[string]any{"event_id": fmt.Sprintf("%s-%03d", prefix, i), "ts": now.Add(-time.Duration(i) * time.Millisecond).UnixMilli(),
				"app_id": "it-app", "flow": "one_click_login", "phone": fmt.Sprintf("1350000%04d", i), "ip": "100.64.70.1", "carrier": "CM", "outcome": "success"})
			vs = append(vs, b)
		}
		e.produce(ctx, w, vs)
		if got := ids.waitFor(prefix+"-", n, 2*time.Minute); got != n {
			t.Fatalf("%d of %d ordinary events sent after %s were scored within 2 minutes:\n%s", got, n, prefix, tail(node.log, 30))
		}
	}

	// (a) 7,000 events in one POST /v1/events whose records are large: one datacenter address,
	// one device, one replayed loginToken, virtual-operator numbers in a block, failures, a
	// carrier that is not the segment's, long ids — most rules fire, with reasons.
	const big = 7000
	token := sha256.Sum256([]byte("one loginToken, replayed"))
	device := "rig-" + strings.Repeat("a", 120)
	now := time.Now()
	evs := make([]map[string]any, 0, big)
	for i := 0; i < big; i++ {
		evs = append(evs, map[string]any{
			"event_id": fmt.Sprintf("big-%05d", i), "ts": now.Add(-5*time.Minute + time.Duration(i)*40*time.Millisecond).UnixMilli(),
			"app_id": "it-app", "flow": "one_click_login", "phone": fmt.Sprintf("1703%07d", i%700),
			"ip": "47.92.200.1", "carrier": "CU", "platform": "android", "device_id": device,
			"outcome": []string{"fail", "success"}[i%2], "error_code": "E_GATEWAY_TIMEOUT_ABCDEFGHIJKLMN",
			"token_digest": hex.EncodeToString(token[:]), "ex_id": "ex-" + strings.Repeat("b", 120),
		})
	}
	body, _ := json.Marshal(evs)
	code, _, resp, err := api.post("/v1/events", body)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("POST /v1/events with %d events (%d bytes): %d %s %v", big, len(body), code, resp, err)
	}
	if got := ids.waitFor("big-", big, 3*time.Minute); got != big {
		t.Fatalf("%d of %d events of the large-record burst were scored within 3 minutes:\n%s", got, big, tail(node.log, 30))
	}
	var maxLen, sumLen, high int
	for id, v := range ids.recs {
		if !strings.HasPrefix(id, "big-") {
			continue
		}
		sumLen += len(v)
		maxLen = max(maxLen, len(v))
		if jsonScore(v) == 900 {
			high++
		}
	}
	t.Logf("(a) %d events in a %d-byte POST: records average %d bytes, largest %d; %d scored 900", big, len(body), sumLen/big, maxLen, high)
	if high < big*9/10 {
		t.Errorf("only %d of %d burst events scored 900: the burst does not make the large high-risk records it is meant to", high, big)
	}
	ordinary("after-a", 50)

	// (b) one raw message just under the broker's limit (1,048,588 by default): an event with a
	// huge unknown member. It is dead-lettered; its dead letter, with headers, does not fit and
	// is truncated.
	const hugeLen = 1_048_000
	head := fmt.Sprintf(`{"event_id":"huge-1","ts":%d,"app_id":"it-app","flow":"one_click_login","phone":"13500009999","ip":"100.64.70.2","outcome":"success","padding":"`, time.Now().UnixMilli())
	huge := []byte(head + strings.Repeat("x", hugeLen-len(head)-2) + `"}`)
	if len(huge) != hugeLen {
		t.Fatalf("built a %d-byte message, want %d", len(huge), hugeLen)
	}
	hw := &kafka.Writer{Addr: kafka.TCP(kafkaAddr), Topic: e.events, BatchBytes: 4 << 20, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Transport: &kafka.Transport{}}
	defer hw.Close()
	if err := hw.WriteMessages(ctx, kafka.Message{Value: huge}); err != nil {
		t.Fatalf("produce the %d-byte message: %v", hugeLen, err)
	}
	dl := readDLQ(t, e.dlq, 1)
	m := dl[0]
	if tf := header(m, pipeline.HeaderTruncated); tf != strconv.Itoa(hugeLen) {
		t.Errorf("dead letter of the %d-byte message: %s header %q, want \"%d\" (value %d bytes)", hugeLen, pipeline.HeaderTruncated, tf, hugeLen, len(m.Value))
	}
	if len(m.Value) == 0 || len(m.Value) > hugeLen || !bytes.HasPrefix(huge, m.Value) {
		t.Errorf("dead letter value (%d bytes) is not a prefix of the original message", len(m.Value))
	}
	if f := header(m, pipeline.HeaderField); f != "padding" {
		t.Errorf("dead letter of the huge message: field %q, want padding (error %q)", f, header(m, pipeline.HeaderError))
	}
	if header(m, pipeline.HeaderTopic) != e.events || header(m, pipeline.HeaderOffset) == "" || header(m, pipeline.HeaderPartition) == "" {
		t.Errorf("dead letter source headers: topic %q partition %q offset %q", header(m, pipeline.HeaderTopic), header(m, pipeline.HeaderPartition), header(m, pipeline.HeaderOffset))
	}
	t.Logf("(b) %d-byte message dead-lettered as %d bytes, error %q", hugeLen, len(m.Value), header(m, pipeline.HeaderError))
	ordinary("after-b", 50)

	// (c) 1,500 invalid ~1 KB events at once: 1,500 dead letters, each the original bytes.
	const junk = 1500
	ts := time.Now().UnixMilli()
	want := map[string]bool{}
	var vs [][]byte
	for i := 0; i < junk; i++ {
		v := fmt.Sprintf(`{"event_id":"junk-%04d","ts":%d,"app_id":"it-app","flow":"one_click_login","phone":"13500008888","ip":"100.64.70.3","outcome":"success","comment":"%s"}`, i, ts, strings.Repeat("z", 900))
		want[v] = true
		vs = append(vs, []byte(v))
	}
	e.produce(ctx, w, vs)
	dl = readDLQ(t, e.dlq, 1+junk)
	got := map[string]int{}
	for _, m := range dl[1:] {
		got[string(m.Value)]++
		if f := header(m, pipeline.HeaderField); f != "comment" {
			t.Errorf("dead letter %.60s…: field %q, want comment", m.Value, f)
			break
		}
	}
	missing := 0
	for v := range want {
		if got[string(v)] != 1 {
			missing++
		}
	}
	if missing > 0 || len(got) != junk {
		t.Errorf("of %d invalid events, %d are not dead-lettered exactly once (%d distinct dead letters)", junk, missing, len(got))
	}
	ordinary("after-c", 50)
	if n := topicEnd(t, e.dlq); n != 1+junk {
		t.Errorf("dead-letter topic holds %d messages, want %d", n, 1+junk)
	}

	// Nothing is stalled, nothing was scored twice, and no log line is huge.
	// The archiver took the large records too: one row per scored event.
	if got := e.waitCount(ctx, exactlyOnceQuery, big+150, 2*time.Minute); got != big+150 {
		t.Errorf("risk_scores FINAL: %d rows, want %d", got, big+150)
	}
	code, rb, err := api.get("/readyz")
	if err != nil || code != http.StatusOK || strings.Contains(string(rb), "stalled") {
		t.Errorf("/readyz at the end: %d %s %v", code, rb, err)
	}
	for _, loop := range []string{"scorer", "archiver"} {
		series := `riskflow_loop_stalled_seconds{loop="` + loop + `"}`
		if v, ok := metricValue(t, addr, series); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", series, v, ok)
		}
	}
	ids.poll()
	for _, prefix := range []string{"big-", "after-a-", "after-b-", "after-c-"} {
		if d, r := ids.count(prefix); d != r {
			t.Errorf("%s*: %d records for %d events", prefix, r, d)
		}
	}
	if !node.alive() {
		t.Fatalf("riskflow exited:\n%s", tail(node.log, 30))
	}
	var long []string
	for _, l := range strings.Split(node.log.String(), "\n") {
		if len(l) > 2048 {
			long = append(long, fmt.Sprintf("%d bytes: %.300s…", len(l), l))
		}
	}
	if len(long) > 0 {
		t.Errorf("%d log lines longer than 2 KB:\n%s", len(long), strings.Join(long, "\n"))
	}
}

// jsonScore is a score record's score (-1 if unreadable).
func jsonScore(v []byte) int {
	var r struct {
		Score int `json:"score"`
	}
	if json.Unmarshal(v, &r) != nil {
		return -1
	}
	return r.Score
}

// readDLQ waits (up to 2 minutes) for n dead letters and reads them, in order.
func readDLQ(t *testing.T, topic string, n int) []kafka.Message {
	t.Helper()
	waitEndWithin(t, topic, int64(n), 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{kafkaAddr}, Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %d of %d: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}
