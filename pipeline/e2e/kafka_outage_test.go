//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// checkVerdict is the part of a riskCheck answer the tests read.
type checkVerdict struct {
	Code   int      `json:"code"`
	Score  int      `json:"score"`
	Tags   []string `json:"tags"`
	Detail map[string]struct {
		Score  int    `json:"score"`
		Reason string `json:"reason"`
	} `json:"detail"`
}

var leadingInt = regexp.MustCompile(`^(\d+) `)

// reasonCount is the number a reason starts with ("16 phones from this datacenter IP…" → 16), -1 if none.
func reasonCount(reason string) int {
	m := leadingInt.FindStringSubmatch(reason)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// farmEvent is a verification from the datacenter address ip by a number of its own.
func farmEvent(id, phone, ip string, ts time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"event_id": id, "ts": ts.UnixMilli(), "app_id": "it-app", "flow": "one_click_login",
		"phone": phone, "ip": ip, "carrier": "CM", "platform": "android", "outcome": "success",
	})
	return b
}

// An API-only node keeps answering /v1/risk/check from its replica while the broker is away for
// 20 s: every check of a steady 20/s load is answered 200, the process stays up, /readyz stays
// ready (the state is younger than api.max_staleness) and is ready after the broker returns, and
// events produced after the broker returned reach the replica. A scorer node allowing only 8 s of
// staleness answers its checks too, while its /readyz says the state is stale.
func TestAPINodeSurvivesKafkaOutage(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	addr := testaddr.Free(t)
	node := e.start("api", "--listen", addr)
	waitHTTP(t, "http://"+addr+"/readyz")
	api := newAPIClient(addr)
	// A scorer API node allows only 8 s of staleness: /readyz must turn unready during the outage,
	// saying why, while its checks are still answered.
	strictAddr := testaddr.Free(t)
	vars := e.vars
	e.vars = append(append([]string{}, vars...), "RISKFLOW_API_MAX_STALENESS=8s")
	strictNode := e.start("api", "--listen", strictAddr)
	e.vars = vars
	waitHTTP(t, "http://"+strictAddr+"/readyz")
	strict := newAPIClient(strictAddr)

	// A steady load of checks (20/s on each node) for the whole test: every answer is counted.
	type result struct {
		at   time.Time
		node int
		code int
		err  error
		body string
	}
	var (
		mu      sync.Mutex
		results []result
	)
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		hc := &http.Client{Timeout: 5 * time.Second}
		clients := []*apiClient{{base: api.base, c: hc}, {base: strict.base, c: hc}}
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			case <-tick.C:
			}
			body := fmt.Sprintf(`{"phone":"138%08d","ip":"100.64.%d.%d","app_id":"it-app","carrier":"CM","flow":"one_click_login","platform":"android"}`, i, i/256%256, i%256)
			code, _, b, err := clients[i%2].post("/v1/risk/check", []byte(body))
			mu.Lock()
			results = append(results, result{at: time.Now(), node: i % 2, code: code, err: err, body: string(b)})
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-loadDone:
		default:
			close(stopLoad)
			<-loadDone
		}
	}()

	time.Sleep(3 * time.Second) // the load runs against a healthy broker first
	logBefore := len(node.log.String())
	restart := stopKafka(t, e.events)
	outageStart := time.Now()
	t.Logf("kafka stopped")

	// 20 s without a broker: /readyz is polled every scorer; the state grows stale but stays
	// under api.max_staleness (1m), so the node stays ready.
	var readyCodes, strictNotReady []string
	maxStale := 0.0
	for time.Since(outageStart) < 20*time.Second {
		if code, body, err := strict.get("/readyz"); err == nil && code == http.StatusServiceUnavailable {
			strictNotReady = append(strictNotReady, fmt.Sprintf("after %s: %s", time.Since(outageStart).Round(time.Second), strings.TrimSpace(string(body))))
		}
		code, body, err := api.get("/readyz")
		if err != nil {
			t.Errorf("/readyz during the outage: %v", err)
		} else if code != http.StatusOK {
			readyCodes = append(readyCodes, fmt.Sprintf("%d after %s: %s", code, time.Since(outageStart).Round(time.Second), strings.TrimSpace(string(body))))
		}
		if v, ok := metricValue(t, addr, "riskflow_replica_staleness_seconds"); ok && v > maxStale {
			maxStale = v
		}
		time.Sleep(time.Second)
	}
	if !node.alive() || !strictNode.alive() {
		t.Fatalf("an API node exited during the broker outage:\n%s\n%s", tail(node.log, 40), tail(strictNode.log, 40))
	}
	if len(strictNotReady) == 0 {
		t.Errorf("with api.max_staleness 8s, /readyz stayed ready through a 20 s outage")
	} else if !strings.Contains(strictNotReady[0], "stale") {
		t.Errorf("/readyz unready with api.max_staleness 8s does not say the state is stale: %s", strictNotReady[0])
	} else {
		t.Logf("strict node: /readyz unready %d times, first %s", len(strictNotReady), strictNotReady[0])
	}
	if len(readyCodes) > 0 {
		t.Errorf("/readyz was not ready during a 20 s outage although api.max_staleness is 1m: %v", readyCodes)
	}
	if maxStale < 10 {
		t.Errorf("riskflow_replica_staleness_seconds peaked at %.1f during a 20 s outage; want it to grow (≥ 10)", maxStale)
	}
	t.Logf("replica staleness peaked at %.1fs during the outage", maxStale)
	outageLog := node.log.String()[logBefore:]

	restart()
	outageEnd := time.Now()
	t.Logf("kafka back after %s", outageEnd.Sub(outageStart).Round(100*time.Millisecond))

	// Events produced after the broker returned reach the replica: a datacenter farm of 15
	// numbers makes the next number from that address score as a farm.
	const farmIP, farmSize = "47.92.61.7", 15
	w := e.writer()
	now := time.Now()
	var farm [][]byte
	for i := 0; i < farmSize; i++ {
		farm = append(farm, farmEvent(fmt.Sprintf("farm-%d", i), fmt.Sprintf("1370061%04d", i), farmIP, now.Add(time.Duration(i-farmSize)*time.Second)))
	}
	e.produce(context.Background(), w, farm)
	var seen int
	var last checkVerdict
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		code, _, b, err := api.post("/v1/risk/check", []byte(`{"phone":"13700619999","ip":"`+farmIP+`","app_id":"it-app","carrier":"CM","flow":"one_click_login"}`))
		if err == nil && code == http.StatusOK && json.Unmarshal(b, &last) == nil {
			if seen = reasonCount(last.Detail["phones_per_ip"].Reason); seen >= farmSize {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if seen < farmSize {
		t.Errorf("a farm of %d numbers produced after the broker returned did not reach the replica within a minute: last verdict score %d tags %v detail %+v", farmSize, last.Score, last.Tags, last.Detail)
	} else if last.Score != 900 {
		t.Errorf("farm check scored %d, want 900 (phones_per_ip %q)", last.Score, last.Detail["phones_per_ip"].Reason)
	}

	// Keep checking for ~10 s after the broker returned.
	if d := 10*time.Second - time.Since(outageEnd); d > 0 {
		time.Sleep(d)
	}
	close(stopLoad)
	<-loadDone

	var total, non200, transport int
	during := make([]int, 2)
	var samples []string
	for _, r := range results {
		total++
		if r.at.After(outageStart) && r.at.Before(outageEnd) {
			during[r.node]++
		}
		switch {
		case r.err != nil:
			transport++
			if len(samples) < 5 {
				samples = append(samples, fmt.Sprintf("node %d %s: %v", r.node, r.at.Format("15:04:05.000"), r.err))
			}
		case r.code != http.StatusOK:
			non200++
			if len(samples) < 5 {
				samples = append(samples, fmt.Sprintf("node %d %s: %d %s", r.node, r.at.Format("15:04:05.000"), r.code, strings.TrimSpace(r.body)))
			}
		}
	}
	t.Logf("%d checks, %v of them during the outage (per node); %d non-200, %d transport errors", total, during, non200, transport)
	if non200 > 0 || transport > 0 {
		t.Errorf("%d checks answered non-200 and %d failed in transport (of %d); first: %v", non200, transport, total, samples)
	}
	if min(during[0], during[1]) < 50 {
		t.Errorf("only %v checks were answered during the %s outage (20/s were sent to each node)", during, outageEnd.Sub(outageStart).Round(time.Second))
	}
	if !node.alive() || !strictNode.alive() {
		t.Fatalf("an API node exited:\n%s\n%s", tail(node.log, 40), tail(strictNode.log, 40))
	}
	code, body, err := api.get("/readyz")
	if err != nil || code != http.StatusOK {
		t.Errorf("/readyz after recovery: %d %s %v", code, body, err)
	}
	code, body, err = strict.get("/readyz")
	if err != nil || code != http.StatusOK {
		t.Errorf("/readyz of the node with api.max_staleness 8s, 10 s after recovery: %d %s %v", code, body, err)
	}
	if lag, ok := metricValue(t, addr, "riskflow_replica_lag_messages"); !ok || lag > 10 {
		t.Errorf("riskflow_replica_lag_messages after recovery = %v (present %v), want ≤ 10", lag, ok)
	}
	if st, ok := metricValue(t, addr, "riskflow_replica_staleness_seconds"); !ok || st < 0 || st > 10 {
		t.Errorf("riskflow_replica_staleness_seconds after recovery = %v (present %v), want 0..10", st, ok)
	}

	// The outage is logged when it starts and when it ends, not once per attempt.
	warn := logLines(outageLog, "level=WARN")
	t.Logf("logged during the outage:\n%s", strings.Join(warn, "\n"))
	if len(warn) == 0 {
		t.Errorf("nothing was logged at WARN while the broker was away")
	}
	if len(warn) > 10 {
		t.Errorf("%d WARN lines during a 20 s outage; the outage should be logged once when it starts:\n%s", len(warn), strings.Join(warn[:10], "\n"))
	}
	failing := logLines(outageLog, "reading "+e.events+" failing")
	recovered := logLines(node.log.String(), "reading "+e.events+" recovered")
	if len(failing) != 1 || len(recovered) != 1 {
		t.Errorf("the replica's outage was logged as %d starts and %d recoveries, want 1 and 1:\n%s", len(failing), len(recovered), strings.Join(append(failing, recovered...), "\n"))
	}
	for _, l := range recovered {
		if d, err := time.ParseDuration(logAttr(l, "failed_for")); err != nil || d < 15*time.Second {
			t.Errorf("recovery logged while the broker was still away (failed_for %q): %s", logAttr(l, "failed_for"), l)
		}
	}
}

// A scorer whose start-up replay is cut by a broker outage stays up (its ops port says it is not
// ready), finishes the replay once the broker is back without skipping a message, logs the outage
// once, and then scores every new event exactly once with the replayed history in its windows.
func TestScorerReplaySurvivesKafkaOutage(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	ctx := context.Background()
	const (
		history = 500000
		farmIP  = "47.92.33.44"
		farmOld = 12 // numbers of the farm in the replayed history
		farmNew = 5  // and after the outage
		post    = 500
	)
	start := time.Now()
	base := time.Now().Add(-time.Hour)
	msgs := make([][]byte, 0, history+farmOld)
	for i := 0; i < history; i++ {
		msgs = append(msgs, event(i, base.Add(time.Duration(i)*5*time.Millisecond)))
	}
	farmTS := time.Now().Add(-3 * time.Minute)
	for i := 0; i < farmOld; i++ {
		msgs = append(msgs, farmEvent(fmt.Sprintf("farm-old-%d", i), fmt.Sprintf("1370033%04d", i), farmIP, farmTS.Add(time.Duration(i)*time.Second)))
	}
	waitKafka(t, e.events) // every partition's leader serves (the broker may have just restarted)
	produceParallel(t, e.events, msgs, 4)
	t.Logf("produced %d events in %s", len(msgs), time.Since(start).Round(time.Millisecond))
	// The scorer group has consumed all of it (as if an earlier scorer had, and been restarted):
	// only the replay can bring that history into the new scorer's windows.
	commitAtEnd(t, "it-scorer-"+e.id, e.events)

	opsAddr := testaddr.Free(t)
	e.vars = append(e.vars, "RISKFLOW_OPS_LISTEN="+opsAddr)
	scorer := e.start("scorer")
	scorer.waitLog(t, "kafka ready", time.Minute) // the replay starts now
	restart := stopKafka(t, e.events, e.scores, e.dlq)
	stoppedAt := time.Now()
	t.Logf("kafka stopped during the replay")
	// The process keeps answering its ops port; it is not ready: its state never caught up.
	ops := newAPIClient(opsAddr)
	var notReady []string
	for time.Since(stoppedAt) < 20*time.Second {
		code, body, err := ops.get("/readyz")
		switch {
		case err != nil:
			t.Errorf("ops /readyz during the outage: %v", err)
		case code == http.StatusOK:
			t.Errorf("ops /readyz answered 200 during the outage, before the state caught up: %s", body)
		default:
			notReady = append(notReady, strings.TrimSpace(string(body)))
		}
		time.Sleep(time.Second)
	}
	if len(notReady) > 0 {
		t.Logf("ops /readyz during the outage: %s", notReady[len(notReady)-1])
	}
	if !scorer.alive() {
		t.Fatalf("the scorer exited during the broker outage:\n%s", tail(scorer.log, 40))
	}
	restart()
	t.Logf("kafka back after %s", time.Since(stoppedAt).Round(100*time.Millisecond))

	// The replay finishes: the ops port turns ready and the log says how much was applied.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body, err := ops.get("/readyz")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scorer was not ready 2 minutes after the broker returned: %d %s %v\n%s", code, body, err, tail(scorer.log, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The line is logged by a goroutine that looks every 10 ms, so it may follow the readiness.
	scorer.waitLog(t, `msg="feature state caught up`, 30*time.Second)
	out := scorer.log.String()
	caughtUp := regexp.MustCompile(`(?m)^.*msg="feature state (rebuilt|caught up)[^"]*".*$`).FindStringIndex(out)
	if caughtUp == nil {
		t.Fatalf("no line saying the feature state was rebuilt:\n%s", tail(scorer.log, 30))
	}
	rebuilt := out[caughtUp[0]:caughtUp[1]]
	t.Logf("replay: %s", rebuilt)
	during := out[strings.Index(out, "kafka ready"):caughtUp[0]]
	t.Logf("during the replay:\n%s", strings.Join(append(logLines(during, "level=WARN"), logLines(during, "recovered")...), "\n"))
	if len(logLines(during, "failing")) == 0 {
		t.Fatalf("the replay finished before the broker went down (no failure logged before %q): the test did not cut the replay; raise `history`", rebuilt)
	}
	// One outage of the replay's reading: logged once when it starts and once when it ends
	// (the tail's partition readers share one outage), and the end is the broker's return.
	// Whichever step of the tail the broker left in — listing partitions, reading a partition's
	// offsets, fetching — the tail's lines name its topic.
	failing, recovered := logLines(during, "tail="+e.events+" ", "failing; retrying"), logLines(during, "tail="+e.events+" ", "recovered")
	if len(failing) != 1 || len(recovered) != 1 {
		t.Errorf("a 20 s outage during the replay was logged as %d starts and %d recoveries, want 1 and 1:\n%s", len(failing), len(recovered), strings.Join(append(failing, recovered...), "\n"))
	}
	for _, l := range recovered {
		if d, err := time.ParseDuration(logAttr(l, "failed_for")); err != nil || d < 15*time.Second {
			t.Errorf("recovery logged while the broker was still away (failed_for %q): %s", logAttr(l, "failed_for"), l)
		}
	}
	applied := logAttr(rebuilt, "messages")
	if applied == "" {
		applied = logAttr(rebuilt, "applied")
	}
	if applied != strconv.Itoa(len(msgs)) {
		t.Errorf("the interrupted replay applied %q events, want exactly %d (none skipped)", applied, len(msgs))
	}
	if lag, ok := metricValue(t, opsAddr, "riskflow_replica_lag_messages"); !ok || lag != 0 {
		t.Errorf("riskflow_replica_lag_messages after the replay = %v (present %v), want 0", lag, ok)
	}

	// Nothing more is being written: from here on, risk.scores gets only the new events.
	waitQuiet(t, e.scores, 2*time.Second, time.Minute)
	ids := newScoreIDs(newCursor(t, e.scores, true))
	now := time.Now()
	var vs [][]byte
	for i := 0; i < post-farmNew; i++ {
		b, _ := json.Marshal(map[string]any{"event_id": fmt.Sprintf("post-%04d", i), "ts": now.Add(-time.Duration(i) * time.Millisecond).UnixMilli(),
			"app_id": "it-app", "flow": "one_click_login", "phone": fmt.Sprintf("1360000%04d", i), "ip": "100.64.50.1", "carrier": "CM", "outcome": "success"})
		vs = append(vs, b)
	}
	for i := 0; i < farmNew; i++ {
		vs = append(vs, farmEvent(fmt.Sprintf("post-farm-%d", i), fmt.Sprintf("1370034%04d", i), farmIP, now))
	}
	e.produce(ctx, e.writer(), vs)

	if got := ids.waitFor("post-", post, 2*time.Minute); got != post {
		t.Fatalf("%d of %d events produced after the outage were scored within 2 minutes", got, post)
	}
	time.Sleep(2 * time.Second)
	ids.poll()
	distinct, records := ids.count("post-")
	if distinct != post || records != post || len(ids.seen) != post {
		t.Errorf("after the outage risk.scores got %d records (%d distinct post-* ids, %d records of them, %d ids in all); want exactly %d, one per event", sumCounts(ids.seen), distinct, records, len(ids.seen), post)
	}
	// The replayed half of the farm is in the windows: each new farm number sees it.
	for i := 0; i < farmNew; i++ {
		id := fmt.Sprintf("post-farm-%d", i)
		var rec checkVerdict
		if err := json.Unmarshal(ids.recs[id], &rec); err != nil {
			t.Fatalf("score record of %s: %v", id, err)
		}
		n := reasonCount(rec.Detail["phones_per_ip"].Reason)
		if n < farmOld || n > farmOld+farmNew {
			t.Errorf("%s: phones_per_ip %q (score %d, tags %v); want %d..%d phones, counting the %d replayed ones", id, rec.Detail["phones_per_ip"].Reason, rec.Score, rec.Tags, farmOld, farmOld+farmNew, farmOld)
		}
	}
	if !scorer.alive() {
		t.Errorf("the scorer exited")
	}
}

// commitAtEnd commits group's offsets at the end of every partition of topic (as an admin tool
// resetting offsets does: no member, generation -1).
func commitAtEnd(t *testing.T, group, topic string) {
	t.Helper()
	var commits []kafka.OffsetCommit
	for p, end := range partitionEnds(t, topic) {
		commits = append(commits, kafka.OffsetCommit{Partition: p, Offset: end})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(kafkaAddr), Transport: &kafka.Transport{}}
	// A broker that has just created the topic (or restarted) may not yet have loaded the group
	// coordinator's partition: "Not Coordinator", "Coordinator Load In Progress" are retriable.
	for attempt := 1; ; attempt++ {
		err := commitOnce(ctx, client, group, topic, commits)
		if err == nil {
			return
		}
		var kerr kafka.Error
		if !errors.As(err, &kerr) || !kerr.Temporary() || ctx.Err() != nil {
			t.Fatalf("commit %s at the end of %s (attempt %d): %v", group, topic, attempt, err)
		}
		t.Logf("commit %s at the end of %s (attempt %d, retrying): %v", group, topic, attempt, err)
		time.Sleep(200 * time.Millisecond)
	}
}

func commitOnce(ctx context.Context, client *kafka.Client, group, topic string, commits []kafka.OffsetCommit) error {
	resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{topic: commits}})
	if err != nil {
		return err
	}
	for _, ps := range resp.Topics[topic] {
		if ps.Error != nil {
			return fmt.Errorf("partition %d: %w", ps.Partition, ps.Error)
		}
	}
	return nil
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// produceParallel writes values to topic through several writers at once (a big history fast).
func produceParallel(t *testing.T, topic string, values [][]byte, writers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	per := (len(values) + writers - 1) / writers
	for k := 0; k < writers; k++ {
		part := values[min(k*per, len(values)):min((k+1)*per, len(values))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &kafka.Writer{Addr: kafka.TCP(kafkaAddr), Topic: topic, Balancer: &kafka.RoundRobin{}, BatchSize: 5000,
				BatchBytes: 900_000, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll,
				Transport: &kafka.Transport{}} // not kafka-go's shared default: its metadata cache may predate the topic
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			for i := 0; i < len(part); i += 5000 {
				msgs := make([]kafka.Message, 0, 5000)
				for _, v := range part[i:min(i+5000, len(part))] {
					msgs = append(msgs, kafka.Message{Value: v})
				}
				// Messages that failed are written again, only they: every value exactly once.
				for attempt := 1; ; attempt++ {
					err := w.WriteMessages(ctx, msgs...)
					if err == nil {
						break
					}
					var we kafka.WriteErrors
					if attempt == 20 || !errors.As(err, &we) || len(we) != len(msgs) {
						errs <- err
						return
					}
					var again []kafka.Message
					for j, e := range we {
						if e != nil {
							again = append(again, msgs[j])
						}
					}
					msgs = again
					time.Sleep(500 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("produce: %v", err)
	}
}

func waitEndWithin(t *testing.T, topic string, n int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := topicEnd(t, topic)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s reached %d of %d messages within %s", topic, got, n, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitQuiet waits until topic's end has not moved for quiet (at most within).
func waitQuiet(t *testing.T, topic string, quiet, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last, since := topicEnd(t, topic), time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("%s kept growing for %s", topic, within)
		}
		time.Sleep(200 * time.Millisecond)
		if n := topicEnd(t, topic); n != last {
			last, since = n, time.Now()
		}
	}
}

// Kafka goes away for 20 s while scorer and archiver are mid-stream: afterwards ClickHouse holds
// exactly one row per event, none missing, as without an outage.
func TestKafkaOutageMidStreamExactCounts(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	ctx := context.Background()
	opsAddr := testaddr.Free(t)
	e.vars = append(e.vars, "RISKFLOW_OPS_LISTEN="+opsAddr)
	node := e.start("scorer,archiver")

	const n = 20000
	base := time.Now().Add(-time.Hour)
	var sent atomic.Int64
	var produceErr atomic.Value
	produced := make(chan struct{})
	go func() { // ~1,200 events/s; a write that fails (the broker away) is retried until it succeeds
		defer close(produced)
		w := e.writer()
		for i := 0; i < n; i += 300 {
			msgs := make([]kafka.Message, 0, 300)
			for k := i; k < min(i+300, n); k++ {
				msgs = append(msgs, kafka.Message{Value: event(k, base.Add(time.Duration(k)*10*time.Millisecond))})
			}
			giveUp := time.Now().Add(3 * time.Minute)
			for {
				wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				err := w.WriteMessages(wctx, msgs...)
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(giveUp) {
					produceErr.Store(fmt.Errorf("events %d..%d: %w", i, i+len(msgs), err))
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
			sent.Add(int64(len(msgs)))
			time.Sleep(250 * time.Millisecond)
		}
	}()

	if got := e.waitCount(ctx, exactlyOnceQuery, 3000, 2*time.Minute); got < 3000 {
		t.Fatalf("only %d rows archived before the outage", got)
	}
	restart := stopKafka(t, e.events, e.scores, e.dlq)
	t.Logf("kafka stopped with %d rows in risk_scores and %d of %d events sent", e.count(ctx, exactlyOnceQuery), sent.Load(), n)
	time.Sleep(20 * time.Second)
	if !node.alive() {
		t.Fatalf("scorer+archiver exited during the broker outage:\n%s", tail(node.log, 40))
	}
	restart()
	t.Logf("kafka back; %d events sent so far", sent.Load())
	<-produced
	if err, _ := produceErr.Load().(error); err != nil {
		t.Fatalf("produce: %v", err)
	}

	if got := e.waitCount(ctx, exactlyOnceQuery, n, 3*time.Minute); got != n {
		t.Fatalf("risk_scores FINAL after the outage: %d rows, want %d", got, n)
	}
	time.Sleep(2 * time.Second) // let re-deliveries land: they must not add rows
	if got := e.count(ctx, exactlyOnceQuery); got != n {
		t.Errorf("risk_scores FINAL after settling: %d, want %d", got, n)
	}
	if got := e.count(ctx, distinctQuery); got != n {
		t.Errorf("distinct event ids in risk_scores: %d, want %d", got, n)
	}
	// None missing: the n distinct ids are exactly ev-0000000 … ev-(n-1).
	if got := e.count(ctx, fmt.Sprintf("SELECT uniqExact(event_id) FROM {db}.risk_scores WHERE match(event_id, '^ev-[0-9]{7}$') AND toUInt32(substring(event_id, 4)) < %d", n)); got != n {
		t.Errorf("risk_scores holds %d of the %d event ids sent", got, n)
	}
	if got := e.waitCount(ctx, eventsQuery, n, 30*time.Second); got != n {
		t.Errorf("verify_events FINAL: %d, want %d", got, n)
	}
	if got := e.count(ctx, "SELECT uniqExact(event_id) FROM {db}.verify_events"); got != n {
		t.Errorf("distinct event ids in verify_events: %d, want %d", got, n)
	}
	// An outage is not a reason to dead-letter anything.
	if got := topicEnd(t, e.dlq); got != 0 {
		for _, m := range readAll(t, e.dlq, int(got)) {
			t.Logf("dead letter: %s error=%q", m.Value, header(m, "riskflow-error"))
		}
		t.Errorf("the dead-letter topic holds %d messages after a broker outage, want 0", got)
	}
	// Both loops moved on: /readyz of the process is ready and reports nothing stalled.
	ops := newAPIClient(opsAddr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := ops.get("/readyz")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("ops /readyz 30 s after every row arrived: %d %s %v", code, body, err)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, loop := range []string{"scorer", "archiver"} {
		series := `riskflow_loop_stalled_seconds{loop="` + loop + `"}`
		if v, ok := metricValue(t, opsAddr, series); !ok || v != 0 {
			t.Errorf("%s = %v (present %v) after recovery, want 0", series, v, ok)
		}
	}
	t.Logf("risk.scores holds %d records for %d events (re-deliveries collapse under FINAL)", topicEnd(t, e.scores), n)
	t.Logf("outage as logged:\n%s", strings.Join(logLines(node.log.String(), "level=WARN"), "\n"))
	if !node.alive() {
		t.Errorf("scorer+archiver exited")
	}
}
