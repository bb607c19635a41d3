//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
)

// farmStream is a recorded stream with an IP farm (40 numbers from one datacenter address within
// 5 minutes) and a device farm (12 numbers on one device over an hour), keyed by phone so that the
// numbers land on every partition, plus filler traffic.
func farmStream(base time.Time, filler int) []kafka.Message {
	var msgs []kafka.Message
	add := func(id, phone, ip, device string, ts time.Time) {
		msgs = append(msgs, farmMessage("it-app", id, phone, ip, device, ts))
	}
	for i := 0; i < 40; i++ {
		add(fmt.Sprintf("ipfarm-%02d", i), fmt.Sprintf("1370000%04d", i), "47.92.10.20", "", base.Add(time.Duration(i)*7*time.Second))
	}
	for i := 0; i < 12; i++ {
		add(fmt.Sprintf("devfarm-%02d", i), fmt.Sprintf("1380000%04d", i), fmt.Sprintf("183.14.%d.9", i), "farm-rig-1", base.Add(-time.Hour+time.Duration(i)*5*time.Minute))
	}
	for i := 0; i < filler; i++ {
		add(fmt.Sprintf("fill-%06d", i), fmt.Sprintf("1390%07d", i), fmt.Sprintf("112.%d.%d.%d", i%200, i/200%250, i%250+1), fmt.Sprintf("dev-%d", i),
			base.Add(-30*time.Minute+time.Duration(i)*time.Millisecond*10))
	}
	return msgs
}

// farmCounts reads risk.scores and returns, per event id, the phones counted on the farm IP and on
// the farm device (from the reasons), and how many records each event got.
func farmCounts(t *testing.T, topic string, n int) (ip, dev map[string]int, records map[string]int) {
	t.Helper()
	ip, dev, records = map[string]int{}, map[string]int{}, map[string]int{}
	for _, m := range readAllPartitions(t, topic, n) {
		r, err := schemas.DecodeScoreRecord(m.Value)
		if err != nil {
			t.Fatalf("score record: %v", err)
		}
		records[r.EventID]++
		if d, ok := r.Detail["phones_per_ip"]; ok && strings.HasPrefix(r.EventID, "ipfarm-") {
			ip[r.EventID] = firstInt(d.Reason)
		}
		if d, ok := r.Detail["phones_per_device"]; ok && strings.HasPrefix(r.EventID, "devfarm-") {
			dev[r.EventID] = firstInt(d.Reason)
		}
	}
	return ip, dev, records
}

func firstInt(s string) int {
	f, _, _ := strings.Cut(s, " ")
	n, _ := strconv.Atoi(f)
	return n
}

func maxOf(m map[string]int) int {
	best := 0
	for _, v := range m {
		best = max(best, v)
	}
	return best
}

// runFarm plays the stream through n scorer processes in one group and returns the counts.
func runFarm(t *testing.T, scorers int, stream []kafka.Message) (ip, dev map[string]int) {
	e, procs := playStream(t, scorers, stream)
	ip, dev, recs := farmCounts(t, e.scores, len(stream))
	if len(recs) != len(stream) {
		t.Fatalf("%d scorers: %d distinct events scored, want %d", scorers, len(recs), len(stream))
	}
	for _, p := range procs {
		p.stop(syscall.SIGTERM)
	}
	return ip, dev
}

// playStream starts n scorer processes in one group of a fresh env, waits until they all run,
// produces the stream and waits until risk.scores holds as many records; the caller reads them
// and stops the processes.
func playStream(t *testing.T, scorers int, stream []kafka.Message) (*env, []*proc) {
	t.Helper()
	e := newEnv(t)
	var procs []*proc
	for i := 0; i < scorers; i++ {
		procs = append(procs, e.start("scorer"))
	}
	waitAllReady(t, e, procs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.writer().WriteMessages(ctx, stream...); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, e.scores, int64(len(stream)))
	return e, procs
}

// waitAllReady waits until every scorer has caught up and joined (the log says "scorer running").
func waitAllReady(t *testing.T, e *env, procs []*proc) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for _, p := range procs {
		for !strings.Contains(p.log.String(), "scorer running") {
			if time.Now().After(deadline) {
				t.Fatalf("a scorer did not start:\n%s", tail(p.log, 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second) // let the group settle on its members before the stream starts
}

// Per-IP and per-device windows do not depend on how many scorers share the partitions: every
// scorer keeps the full state, the group divides only the scoring.
func TestScorersShareTheWorkNotTheState(t *testing.T) {
	base := time.Now().UTC().Add(-8 * time.Minute).Truncate(time.Second)
	stream := farmStream(base, 400)
	ip1, dev1 := runFarm(t, 1, stream)
	if maxOf(ip1) < 39 || maxOf(dev1) < 12 {
		t.Fatalf("one scorer: max %d phones on the farm IP (want ≥ 39 of 40), %d on the farm device (want 12)", maxOf(ip1), maxOf(dev1))
	}
	for _, n := range []int{2, 3} {
		ip, dev := runFarm(t, n, stream)
		if maxOf(ip) != maxOf(ip1) || maxOf(dev) != maxOf(dev1) {
			t.Errorf("%d scorers: max %d phones on the farm IP and %d on the device; one scorer: %d and %d", n, maxOf(ip), maxOf(dev), maxOf(ip1), maxOf(dev1))
		}
		diff := 0
		for id, want := range ip1 {
			if got := ip[id]; got < want-1 || got > want+1 {
				diff++
				t.Logf("%d scorers: %s counted %d phones on the IP, one scorer %d", n, id, got, want)
			}
		}
		for id, want := range dev1 {
			if got := dev[id]; got < want-1 || got > want+1 {
				diff++
				t.Logf("%d scorers: %s counted %d phones on the device, one scorer %d", n, id, got, want)
			}
		}
		if diff > 0 {
			t.Errorf("%d scorers: %d farm events counted differently (beyond ±1) from one scorer", n, diff)
		}
	}
}

// One of three scorers killed mid-stream: the group rebalances, every event is scored, ClickHouse
// holds each exactly once, and the farm counts are those of an undisturbed run.
//
// The farm counts depend on each scorer's feed having applied the farm's earlier events before it
// scores a later one, which the feed gate waits for — up to scoring.feed_wait, and trusting a
// partition that received nothing for scoring.feed_skew after a batch's time. Under heavy load the
// defaults (2 s, 250 ms) ran out: a partition's share of a produce call reached the broker later
// than that, or the feed lagged that long, and a farm event was scored before its predecessors
// (max 37 phones on the farm IP). The test's property is that the kill changes nothing, not the
// machine's speed: its scorers wait up to the limit (1 m), and trust an idle partition only 10 s
// after a batch's time — a produce call whose partitions reach the broker further apart than that
// has failed (the writer's WriteTimeout is 10 s).
func TestScorerKilledAmongThree(t *testing.T) {
	base := time.Now().UTC().Add(-8 * time.Minute).Truncate(time.Second)
	stream := farmStream(base, 12000)
	e := newEnv(t)
	patient := []string{"--set", "scoring.feed_wait=1m", "--set", "scoring.feed_skew=10s"}
	procs := []*proc{e.start("scorer", patient...), e.start("scorer", patient...), e.start("scorer", patient...)}
	archiver := e.start("archiver")
	waitAllReady(t, e, procs)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := e.writer()
	go func() {
		for i := 0; i < len(stream); i += 500 {
			if err := w.WriteMessages(ctx, stream[i:min(i+500, len(stream))]...); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for topicEnd(t, e.scores) < 3000 {
		time.Sleep(20 * time.Millisecond)
	}
	procs[1].stop(syscall.SIGKILL)
	got := e.waitCount(ctx, "SELECT count() FROM {db}.risk_scores FINAL", uint64(len(stream)), 3*time.Minute)
	if got != uint64(len(stream)) {
		t.Fatalf("risk_scores FINAL holds %d rows, want %d", got, len(stream))
	}
	if n := e.count(ctx, "SELECT uniqExact(event_id) FROM {db}.risk_scores"); n != uint64(len(stream)) {
		t.Errorf("%d distinct events in risk_scores, want %d", n, len(stream))
	}
	ip, dev, _ := farmCounts(t, e.scores, len(stream))
	if maxOf(ip) < 39 || maxOf(dev) < 12 {
		t.Errorf("after the kill: max %d phones on the farm IP (want ≥ 39), %d on the device (want 12)", maxOf(ip), maxOf(dev))
	}
	_ = archiver
}

// A scorer restarted from a snapshot loads it, replays only what came after, and scores as one that
// replayed everything; a damaged snapshot is refused and the replay takes over.
func TestScorerRestartsFromSnapshot(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	snapVar := "RISKFLOW_SCORING_SNAPSHOT_DIR=" + dir
	e.vars = append(e.vars, snapVar)
	base := time.Now().UTC().Add(-8 * time.Minute).Truncate(time.Second)
	stream := farmStream(base, 3000)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := e.writer()
	first, last := stream[:len(stream)-5], stream[len(stream)-5:] // the last five are fillers

	s1 := e.start("scorer")
	waitAllReady(t, e, []*proc{s1})
	if err := w.WriteMessages(ctx, first...); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, e.scores, int64(len(first)))
	s1.stop(syscall.SIGTERM)
	if !strings.Contains(s1.log.String(), `"feature snapshot written" why=shutdown`) { // the first is written once caught up
		t.Fatalf("no snapshot at shutdown:\n%s", tail(s1.log, 20))
	}

	// Restart from the snapshot; the IP farm's numbers are still counted.
	s2 := e.start("scorer")
	waitAllReady(t, e, []*proc{s2})
	if !strings.Contains(s2.log.String(), "feature snapshot loaded") {
		t.Fatalf("snapshot not loaded:\n%s", tail(s2.log, 20))
	}
	probe := probeEvent("snap-probe-1", base.Add(5*time.Minute))
	if err := w.WriteMessages(ctx, append(last, probe)...); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, e.scores, int64(len(stream)+1))
	fromSnap := probeCount(t, e.scores, len(stream)+1, "snap-probe-1")
	s2.stop(syscall.SIGTERM)

	// A damaged snapshot: refused, the replay rebuilds the same state.
	p := filepath.Join(dir, "features-"+e.events+".snap")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o600)
	os.Remove(p + ".prev")
	s3 := e.start("scorer")
	waitAllReady(t, e, []*proc{s3})
	if !strings.Contains(s3.log.String(), "feature snapshot refused") {
		t.Errorf("damaged snapshot not reported:\n%s", tail(s3.log, 20))
	}
	if err := w.WriteMessages(ctx, probeEvent("snap-probe-2", base.Add(5*time.Minute))); err != nil {
		t.Fatal(err)
	}
	waitEnd(t, e.scores, int64(len(stream)+2))
	fromReplay := probeCount(t, e.scores, len(stream)+2, "snap-probe-2")
	if fromSnap < 40 || fromSnap != fromReplay {
		t.Errorf("probe counted %d phones on the farm IP after the snapshot restart and %d after a replay; want both 41", fromSnap, fromReplay)
	}
}

// probeEvent is one more number from the farm IP at ts.
func probeEvent(id string, ts time.Time) kafka.Message {
	b, _ := json.Marshal(map[string]any{"event_id": id, "ts": ts.UnixMilli(), "app_id": "it-app", "flow": "one_click_login",
		"phone": "13700009999", "ip": "47.92.10.20", "carrier": "CM", "outcome": "success"})
	return kafka.Message{Key: []byte(id), Value: b}
}

func probeCount(t *testing.T, topic string, n int, id string) int {
	t.Helper()
	for _, m := range readAllPartitions(t, topic, n) {
		r, err := schemas.DecodeScoreRecord(m.Value)
		if err == nil && r.EventID == id {
			return firstInt(r.Detail["phones_per_ip"].Reason)
		}
	}
	t.Fatalf("no score record for %s", id)
	return 0
}

// Scorer-only and archiver-only processes serve /metrics, /healthz and /readyz on ops.listen.
func TestOpsPortOnEveryRole(t *testing.T) {
	e := newEnv(t)
	sAddr, aAddr := testaddr.Free(t), testaddr.Free(t)
	e.start("scorer", "--set", "ops.listen="+sAddr)
	e.start("archiver", "--set", "ops.listen="+aAddr)
	waitHTTP(t, "http://"+sAddr+"/readyz")
	waitHTTP(t, "http://"+aAddr+"/readyz")
	for addr, want := range map[string][]string{
		sAddr: {`riskflow_loop_stalled_seconds{loop="scorer"}`, "riskflow_replica_staleness_seconds", "riskflow_replica_lag_messages", "riskflow_state_keys"},
		aAddr: {`riskflow_loop_stalled_seconds{loop="archiver"}`, "riskflow_breaker_state"},
	} {
		for _, series := range want {
			// A loop's series appears once the loop runs, which may be just after /readyz first
			// answers (CI once scraped 0.49 s after it, before the scorer loop's): a minute to show.
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(metricsText(t, addr), series) && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
			}
			if !strings.Contains(metricsText(t, addr), series) {
				t.Errorf("%s/metrics lacks %s", addr, series)
			}
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s/healthz: %v %v", addr, resp, err)
		} else {
			resp.Body.Close()
		}
	}
}

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// farmMessage is one successful one-click login of app as a recorded stream carries it, keyed by
// phone so that a farm's numbers land on every partition; device may be empty.
func farmMessage(app, id, phone, ip, device string, ts time.Time) kafka.Message {
	ev := map[string]any{"event_id": id, "ts": ts.UnixMilli(), "app_id": app, "flow": "one_click_login",
		"phone": phone, "ip": ip, "carrier": "CM", "platform": "android", "outcome": "success"}
	if device != "" {
		ev["device_id"] = device
	}
	b, _ := json.Marshal(ev)
	return kafka.Message{Key: []byte(phone), Value: b}
}
