//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// travelStream is one number's five attempts over 16 minutes from British addresses far apart
// (each hop faster than a plane: impossible_travel), all carrying the same loginToken digest
// (token_replay: the n-th attempt has seen n-1 before).
func travelStream(base time.Time) []kafka.Message {
	hops := []struct {
		ip  string
		off time.Duration
	}{{"86.157.205.120", 0}, {"86.154.251.107", 50 * time.Second}, {"86.189.72.149", 385 * time.Second},
		{"86.158.148.172", 613 * time.Second}, {"86.144.150.254", 924 * time.Second}}
	var out []kafka.Message
	for i, h := range hops {
		ev := map[string]any{"event_id": fmt.Sprintf("trv-%d", i), "ts": base.Add(h.off).UnixMilli(), "app_id": "it-app",
			"flow": "one_click_login", "phone": "13912345671", "ip": h.ip, "carrier": "CU", "platform": "android",
			"outcome": "success", "device_id": "trv-device-1",
			"token_digest": "5f1d3b0c7e0a4b2e9d8c6f4a2b1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"}
		b, _ := json.Marshal(ev)
		out = append(out, kafka.Message{Key: []byte("13912345671"), Value: b})
	}
	return out
}

// verdicts reads the scores topic: per event id, its sorted tags and its token_replay and
// impossible_travel reasons.
func verdicts(t *testing.T, topic string) map[string]string {
	out := map[string]string{}
	for id, rs := range recordsByEvent(t, topic) {
		r := rs[0]
		tags := append([]string(nil), r.Tags...)
		sort.Strings(tags)
		out[id] = fmt.Sprintf("tags %s; token_replay %q; impossible_travel %q", strings.Join(tags, ","), r.Detail["token_replay"].Reason, r.Detail["impossible_travel"].Reason)
	}
	return out
}

// Held out, a known defect (skipped unless KNOWN_DEFECTS=1): a scorer behind its feed —
// a recording played back, a backlog after an outage, events re-delivered after a scorer was
// killed or restarted from a snapshot — scores a number's attempt after the feed has applied the
// number's later attempts, and gives other verdicts than a scorer that kept up. The windows are
// event-time, but the last location keeps only the two newest located attempts (the attempt
// itself and a later one fill them: impossible_travel is not found) and the token's sightings
// keep first/last/count (an attempt between them counts every later sighting as earlier). Seen on
// 127,305 loadgen events: 230 impossible_travel hits in catch-up against 310 live, token_seen
// wrong on 754 events.
func TestHeldOutCatchUpScoresAsLive(t *testing.T) {
	if os.Getenv("KNOWN_DEFECTS") == "" {
		t.Skip("known defect: a scorer behind its feed misses impossible_travel and over-counts token replays (set KNOWN_DEFECTS=1)")
	}
	base := time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Second)
	stream := travelStream(base)

	live := newEnv(t)
	live.dropTopicsAtEnd()
	p := live.start("scorer")
	waitAllReady(t, live, []*proc{p})
	for i, m := range stream { // one at a time, each scored before the next is produced
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := live.writer().WriteMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
		cancel()
		waitEnd(t, live.scores, int64(i+1))
	}

	behind := newEnv(t)
	behind.dropTopicsAtEnd()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := behind.writer().WriteMessages(ctx, stream...); err != nil { // all there before the scorer starts
		t.Fatal(err)
	}
	behind.start("scorer")
	waitEnd(t, behind.scores, int64(len(stream)))

	want, got := verdicts(t, live.scores), verdicts(t, behind.scores)
	for i := range stream {
		id := fmt.Sprintf("trv-%d", i)
		if got[id] != want[id] {
			t.Errorf("%s scored behind the feed: %s\n\tscored as it came: %s", id, got[id], want[id])
		}
	}
}
