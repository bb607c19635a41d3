package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// applier records applied event ids; Apply is called from one goroutine per partition.
type applier struct {
	mu      sync.Mutex
	seen    map[string]int
	batches int // ApplyBatch calls
	largest int // the largest batch
}

func (a *applier) ApplyBatch(evs []schemas.VerifyEvent, applied []bool) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for i, ev := range evs {
		a.seen[ev.EventID]++
		ok := a.seen[ev.EventID] == 1
		if ok {
			n++
		}
		if applied != nil {
			applied[i] = ok
		}
	}
	a.batches++
	a.largest = max(a.largest, len(evs))
	return n
}

func (a *applier) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// embeddedKafka starts an in-process Kafka-protocol broker (kfake, as `riskflow dev` uses) with the
// topic created.
func embeddedKafka(t *testing.T, topic string, partitions int) consumers.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	kc := consumers.Config{Brokers: c.ListenAddrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := consumers.EnsureTopics(ctx, kc, []consumers.TopicSpec{{Name: topic, Partitions: partitions}}, quiet()); err != nil {
		t.Fatal(err)
	}
	return kc
}

func produce(t *testing.T, kc consumers.Config, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := consumers.NewWriter(kc, topic)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

func TestFeedCatchUpAndFollow(t *testing.T) {
	const topic = "verify.events"
	kc := embeddedKafka(t, topic, 3)
	var msgs []kafka.Message
	for i := range 30 {
		id := "e" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: eventJSON(id, "13800138000", "1.2.3.4")})
	}
	msgs = append(msgs, kafka.Message{Key: []byte("junk"), Value: []byte("not an event")})
	produce(t, kc, topic, msgs...)

	st := &applier{seen: map[string]int{}}
	feed := NewFeed(kc, topic, time.Time{}, st, quiet())
	if lag := feed.Lag(); lag != -1 {
		t.Errorf("lag before start %d, want -1", lag)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := feed.CatchUp(ctx)
	if err != nil {
		t.Fatalf("CatchUp: %v", err)
	}
	if n != 31 || feed.Applied() != 30 || st.count() != 30 {
		t.Fatalf("CatchUp read %d messages, applied %d (%d distinct); want 31 read, 30 applied", n, feed.Applied(), st.count())
	}
	if lag := feed.Lag(); lag != 0 {
		t.Errorf("lag after catching up: %d", lag)
	}

	// Follow sees what is produced later.
	follower := NewFeed(kc, topic, time.Time{}, st, quiet())
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- follower.Follow(fctx) }()
	produce(t, kc, topic, kafka.Message{Key: []byte("late"), Value: eventJSON("late", "13900001111", "1.2.3.4")})
	waitFor(t, "the late event", func() bool { return st.count() == 31 })
	waitFor(t, "lag 0", func() bool { return follower.Lag() == 0 })
	stop()
	if err := <-done; err != nil {
		t.Errorf("Follow after cancel: %v", err)
	}
}

func TestFeedSkipsOlderThanSince(t *testing.T) {
	const topic = "verify.events"
	kc := embeddedKafka(t, topic, 1)
	old := time.Now().Add(-48 * time.Hour)
	produce(t, kc, topic,
		kafka.Message{Value: eventJSON("old1", "13800138000", "1.2.3.4"), Time: old},
		kafka.Message{Value: eventJSON("old2", "13800138000", "1.2.3.4"), Time: old},
		kafka.Message{Value: eventJSON("new1", "13800138000", "1.2.3.4"), Time: time.Now()},
	)
	st := &applier{seen: map[string]int{}}
	feed := NewFeed(kc, topic, time.Now().Add(-24*time.Hour), st, quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := feed.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.seen["old1"] != 0 || st.seen["old2"] != 0 || st.seen["new1"] != 1 {
		t.Errorf("applied %v, want only new1", st.seen)
	}
}

func TestFeedAllOlderThanSince(t *testing.T) {
	const topic = "verify.events"
	kc := embeddedKafka(t, topic, 1)
	old := time.Now().Add(-48 * time.Hour)
	produce(t, kc, topic,
		kafka.Message{Value: eventJSON("old1", "13800138000", "1.2.3.4"), Time: old},
		kafka.Message{Value: eventJSON("old2", "13800138000", "1.2.3.4"), Time: old},
	)
	st := &applier{seen: map[string]int{}}
	feed := NewFeed(kc, topic, time.Now().Add(-24*time.Hour), st, quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := feed.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n := st.count(); n != 0 {
		t.Errorf("applied %d events older than since, want 0", n)
	}
	if lag := feed.Lag(); lag != 0 {
		t.Errorf("lag %d", lag)
	}
}

func eventAt(id string, ts time.Time) []byte {
	return []byte(fmt.Sprintf(`{"event_id":%q,"ts":%d,"app_id":"app1","flow":"one_click_login","phone":"13800138000","ip":"1.2.3.4","outcome":"success"}`, id, ts.UnixMilli()))
}

// Admit refuses an event stamped more than the allowed skew after now or after its own message.
func TestAdmit(t *testing.T) {
	now := time.Now()
	hourAgo := now.Add(-time.Hour)
	for _, tc := range []struct {
		name  string
		ts    time.Time
		msgAt time.Time
		ok    bool
	}{
		{"ordinary", now.Add(-time.Second), now, true},
		{"small skew", now.Add(4 * time.Minute), now, true},
		{"ahead of now", now.Add(time.Hour), now, false},
		{"ahead of now, no message time", now.Add(time.Hour), time.Time{}, false},
		// Replayed an hour later: the event was 30 min ahead of its message when it was produced.
		{"ahead of its message", now.Add(-30 * time.Minute), hourAgo, false},
		{"message time ahead of now is not trusted", now.Add(time.Hour), now.Add(2 * time.Hour), false},
	} {
		_, err := Admit(kafka.Message{Value: eventAt("e1", tc.ts), Time: tc.msgAt}, now)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Admit error %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil {
			if fe, isField := schemas.AsFieldError(err); !isField || fe.Field != "ts" {
				t.Errorf("%s: error %v does not name ts", tc.name, err)
			}
		}
	}
	if _, err := Admit(kafka.Message{Value: []byte("not json")}, now); err == nil {
		t.Error("Admit accepted an undecodable message")
	}
	// A message stamped 1970-01-01T00:00:00.001Z by its producer: the refusal names the message's
	// timestamp, where it said the event's ts was "499052h12m47s in the future".
	ts := now.Add(-time.Second).Truncate(time.Second)
	_, err := Admit(kafka.Message{Value: eventAt("e1", ts), Time: time.UnixMilli(1)}, now)
	if want := "ts: " + ts.UTC().Format(time.RFC3339) + " is "; err == nil || !strings.HasPrefix(err.Error(), want) ||
		!strings.Contains(err.Error(), "after the Kafka timestamp of its message, 1970-01-01T00:00:00.001Z") || strings.Contains(err.Error(), "in the future") {
		t.Errorf("a message stamped 1970: %v", err)
	}
	// A node whose own clock runs 10 minutes behind: a live event, and its message's Kafka
	// timestamp, are both ahead of it. The refusal (the dead letter's reason) says this node's
	// clock is likely behind and names both times, where it said only that the event's ts was
	// "10m0s in the future", which sends the operator after the producer.
	wall := now.Truncate(time.Second)
	behind := wall.Add(-10 * time.Minute)
	_, err = Admit(kafka.Message{Value: eventAt("e1", wall), Time: wall}, behind)
	for _, want := range []string{"ts: " + wall.UTC().Format(time.RFC3339) + " is 10m0s in the future of this node's clock, " + behind.UTC().Format(time.RFC3339), "this node's clock is likely behind (check its NTP)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("an event refused by a node whose clock is behind: %v, want it to say %q", err, want)
		}
	}
}

// The replay feed skips what the scorer dead-letters: an event far ahead of its message.
func TestFeedSkipsFutureEvents(t *testing.T) {
	const topic = "verify.events"
	kc := embeddedKafka(t, topic, 1)
	now := time.Now()
	produce(t, kc, topic,
		kafka.Message{Value: eventAt("now", now.Add(-time.Minute))},
		kafka.Message{Value: eventAt("future", now.Add(3*time.Hour))},
	)
	st := &applier{seen: map[string]int{}}
	feed := NewFeed(kc, topic, time.Time{}, st, quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := feed.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.seen["now"] != 1 || st.seen["future"] != 0 {
		t.Errorf("applied %v, want the current event only", st.seen)
	}
}

// WaitApplied is met once every partition was applied up to the time asked for, or has nothing
// left to read: a partition with no traffic never holds a scorer up, one that is behind does.
func TestFeedWaitApplied(t *testing.T) {
	const topic = "verify.events"
	kc := embeddedKafka(t, topic, 2)
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	// Partition 0 carries events stamped base+0s … base+9s; partition 1 stays empty.
	var msgs []kafka.Message
	for i := range 10 {
		id := fmt.Sprintf("w%d", i)
		msgs = append(msgs, kafka.Message{Partition: 0, Time: base.Add(time.Duration(i) * time.Second), Value: eventJSON(id, "13800138000", "1.2.3.4")})
	}
	w := consumers.NewWriter(kc, topic)
	defer w.Close()
	w.Balancer = kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first five events now, the others once those are applied: the feed applies what its
	// reader has fetched as one batch, so the applier's hold on the 6th must not catch them.
	if err := w.WriteMessages(ctx, msgs[:5]...); err != nil {
		t.Fatal(err)
	}

	st := &blockingApplier{applier: applier{seen: map[string]int{}}, release: make(chan struct{})}
	feed := NewFeed(kc, topic, time.Time{}, st, quiet())
	if _, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: base}, 10*time.Millisecond); ok {
		t.Fatal("met before the feed started")
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go feed.Follow(fctx)
	if waited, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: base.Add(4 * time.Second)}, 5*time.Second); !ok {
		t.Fatalf("not applied through base+4s after %s", waited)
	}
	// The applier holds the 6th event: partition 0 is applied up to base+4s only.
	if err := w.WriteMessages(ctx, msgs[5:]...); err != nil {
		t.Fatal(err)
	}
	if _, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: base.Add(8 * time.Second)}, 200*time.Millisecond); ok {
		t.Fatal("met through base+8s while partition 0 is held at base+4s")
	}
	close(st.release)
	if waited, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: base.Add(9 * time.Second)}, 5*time.Second); !ok {
		t.Fatalf("not applied through base+9s after %s", waited)
	}
	// Beyond the newest message: every partition is at its end, so there is nothing to wait for.
	if _, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: base.Add(time.Hour)}, 5*time.Second); !ok {
		t.Error("a feed at the end of every partition keeps a later time waiting")
	}
}

// A recorded stream produced in a burst reaches the partitions a producer batch apart: an event on
// an idle partition stamped no later than the batch being scored may arrive just after the scorer
// looked. WaitApplied trusts an idle partition's end only once the skew has passed since the
// batch's time, so that event is applied before the batch is scored. (Measured on the real broker:
// with 3 scorers, one of a /24 crowd's numbers was scored before its predecessors on another
// partition were applied, and lost its prefix_burst verdict.)
func TestFeedWaitAppliedWaitsOutTheSkew(t *testing.T) {
	ctx, feed, st, w := followedFeed(t)
	at := time.Now().Truncate(time.Millisecond)
	if err := w.WriteMessages(ctx, kafka.Message{Partition: 0, Time: at, Value: eventJSON("later", "13800138001", "1.2.3.4")}); err != nil {
		t.Fatal(err)
	}
	for !st.has("later") {
		if ctx.Err() != nil {
			t.Fatal("the feed never applied partition 0's event")
		}
		time.Sleep(time.Millisecond)
	}
	// Scoring "later" (partition 0) waits; partition 1 is idle, then receives an earlier event.
	type result struct {
		ok      bool
		earlier bool // "earlier" had been applied when WaitApplied returned
	}
	done := make(chan result, 1)
	go func() {
		_, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: at}, 10*time.Second)
		done <- result{ok: ok, earlier: st.has("earlier")}
	}()
	time.Sleep(50 * time.Millisecond) // orders the write after the wait began; not a threshold
	if err := w.WriteMessages(ctx, kafka.Message{Partition: 1, Time: at.Add(-time.Millisecond), Value: eventJSON("earlier", "13800138002", "1.2.3.5")}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if !r.ok || !r.earlier {
		t.Errorf("WaitApplied returned met=%v with partition 1's earlier event applied=%v; want both true", r.ok, r.earlier)
	}
}

// followedFeed starts a feed, with a skew of 3 s, of a 2-partition embedded topic into a fresh
// applier, and returns a writer that puts each message on its Partition.
func followedFeed(t *testing.T) (context.Context, *Feed, *applier, *kafka.Writer) {
	t.Helper()
	const topic = "verify.events"
	kc := embeddedKafka(t, topic, 2)
	st := &applier{seen: map[string]int{}}
	feed := NewFeed(kc, topic, time.Time{}, st, quiet())
	feed.SetSkew(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	go feed.Follow(ctx)
	w := consumers.NewWriter(kc, topic)
	t.Cleanup(func() { w.Close() })
	w.Balancer = kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })
	return ctx, feed, st, w
}

func (a *applier) has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[id] > 0
}

// blockingApplier applies the first five events, then waits for release before a batch with
// later ones.
type blockingApplier struct {
	applier
	n       int
	release chan struct{}
}

func (b *blockingApplier) ApplyBatch(evs []schemas.VerifyEvent, applied []bool) int {
	if b.n += len(evs); b.n > 5 {
		<-b.release
	}
	return b.applier.ApplyBatch(evs, applied)
}

type fakeGate struct {
	mu         sync.Mutex
	ats        []time.Time
	events     []time.Time
	sc         *fakeScorer
	seenBefore []int
}

func (g *fakeGate) WaitApplied(_ context.Context, at consumers.Point, _ time.Duration) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ats = append(g.ats, at.Stamp)
	g.events = append(g.events, at.Event)
	g.sc.mu.Lock()
	g.seenBefore = append(g.seenBefore, len(g.sc.scored))
	g.sc.mu.Unlock()
	return time.Millisecond, true
}

// A scorer with a gate waits for the newest message time of the batch before scoring any of it.
func TestScoreStageWaitsForTheFeedBeforeScoring(t *testing.T) {
	sc := &fakeScorer{}
	g := &fakeGate{sc: sc}
	stage := &ScoreStage{Scorer: sc, Scores: &fakeWriter{}, DLQ: &fakeWriter{}, Gate: g, Workers: 1}
	t0 := time.Now().Add(-time.Minute)
	batch := []kafka.Message{msg(1, "", eventJSON("e1", "13800138000", "1.2.3.4")), msg(2, "", eventJSON("e2", "13800138001", "1.2.3.4"))}
	batch[0].Time, batch[1].Time = t0.Add(3*time.Second), t0
	if err := stage.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if len(g.ats) != 1 || !g.ats[0].Equal(t0.Add(3*time.Second)) || g.seenBefore[0] != 0 {
		t.Errorf("gate asked %v with %v scored before, want once for the newest time before any scoring", g.ats, g.seenBefore)
	}
	if want := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC); len(g.events) != 1 || !g.events[0].Equal(want) {
		t.Errorf("gate asked for events up to %v, want the batch's newest ts %v", g.events, want)
	}
}

// A recorded stream played back in a burst: every message is stamped about now, an hour after its
// event, and each partition's producer batches go out on their own, so a partition stamped later
// may still be behind in event time. WaitApplied then waits by event time: partition 1 has applied
// messages stamped after the batch's but only events up to base+4m, so a batch with an event at
// base+9m waits for partition 1's later events. (Measured on the real broker under load: with
// stamps alone, 2 scorers counted 20 numbers on a /24 where one scorer counted 23.)
func TestFeedWaitAppliedByEventTimeForAReplay(t *testing.T) {
	ctx, feed, st, w := followedFeed(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	write := func(part, from, to int) time.Time {
		stamp := time.Now().Truncate(time.Millisecond)
		var ms []kafka.Message
		for i := from; i <= to; i++ {
			ms = append(ms, kafka.Message{Partition: part, Time: stamp, Value: eventAt(fmt.Sprintf("p%d-%d", part, i), base.Add(time.Duration(i)*time.Minute))})
		}
		if err := w.WriteMessages(ctx, ms...); err != nil {
			t.Fatal(err)
		}
		return stamp
	}
	stamp := write(0, 0, 9)
	time.Sleep(2 * time.Millisecond) // partition 1's batch is stamped after partition 0's
	write(1, 0, 4)
	for !st.has("p0-9") || !st.has("p1-4") {
		if ctx.Err() != nil {
			t.Fatal("the feed never applied the first batches")
		}
		time.Sleep(time.Millisecond)
	}
	type result struct{ ok, later bool }
	done := make(chan result, 1)
	go func() {
		_, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: stamp, Event: base.Add(9 * time.Minute)}, 10*time.Second)
		done <- result{ok: ok, later: st.has("p1-8")}
	}()
	time.Sleep(50 * time.Millisecond) // orders the write after the wait began; not a threshold
	write(1, 5, 9)
	if r := <-done; !r.ok || !r.later {
		t.Errorf("WaitApplied returned met=%v with partition 1's events up to base+8m applied=%v; want both true", r.ok, r.later)
	}

	// A partition with nothing more to come does not hold a replay up for ever: once it has been
	// quiet for the skew and its end is read, it counts as through.
	if _, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: time.Now(), Event: base.Add(30 * time.Minute)}, 10*time.Second); !ok {
		t.Error("a replay waiting for an event time no partition reaches was not met once both were idle")
	}
}

// A feed catching up on a backlog applies it in batches (as many as each partition's reader has
// fetched), every event once.
func TestFeedCatchUpInBatches(t *testing.T) {
	const topic = "verify.events"
	kc := embeddedKafka(t, topic, 2)
	var msgs []kafka.Message
	for i := range 3000 {
		id := fmt.Sprintf("b%d", i)
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: eventJSON(id, "13800138000", "1.2.3.4")})
	}
	produce(t, kc, topic, msgs...)
	st := &applier{seen: map[string]int{}}
	feed := NewFeed(kc, topic, time.Time{}, st, quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := feed.CatchUp(ctx)
	if err != nil {
		t.Fatalf("CatchUp: %v", err)
	}
	if n != 3000 || feed.Applied() != 3000 || st.count() != 3000 {
		t.Fatalf("CatchUp read %d, applied %d (%d distinct); want 3000", n, feed.Applied(), st.count())
	}
	for id, k := range st.seen {
		if k != 1 {
			t.Fatalf("event %s applied %d times", id, k)
		}
	}
	t.Logf("3000 events in %d batches, the largest %d", st.batches, st.largest)
}

// gateObs records every gate wait the stage reports.
type gateObs struct {
	*countObs
	replayed []bool
}

func (g *gateObs) GateWaited(_ time.Duration, _, replayed bool) {
	g.replayed = append(g.replayed, replayed)
}

// The feed-wait metric says which batches were waited for by event time: a batch whose events are
// far older than its stamps (a recording played back) is, a live one is not.
func TestScoreStageReportsWhatTheGateWaitedBy(t *testing.T) {
	sc := &fakeScorer{}
	obs := &gateObs{countObs: newCountObs()}
	stage := &ScoreStage{Scorer: sc, Scores: &fakeWriter{}, DLQ: &fakeWriter{}, Gate: &fakeGate{sc: sc}, Obs: obs, Workers: 1}
	now := time.Now()
	for i, ts := range []time.Time{now.Add(-time.Hour), now.Add(-time.Second)} {
		m := msg(int64(i), "", eventAt(fmt.Sprintf("e%d", i), ts))
		m.Time = now
		if err := stage.Handle(context.Background(), []kafka.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	if len(obs.replayed) != 2 || !obs.replayed[0] || obs.replayed[1] {
		t.Errorf("gate waits reported as replayed %v, want [true false] (an hour-old event, then a live one)", obs.replayed)
	}
}

// A stream mixing live apps with one whose events always arrive late (a verify service that
// uploads its attempts in batches, 10 s after they happened): a late batch is waited for by event
// time, but a partition carrying live traffic has applied newer events already, so event time
// alone calls it through while the same upload's batch for that partition, produced just after,
// is still to come. The wait must also cover what was produced up to the batch's stamp (within
// the skew), as a live batch's does.
func TestFeedWaitAppliedByEventTimeAmidLiveTraffic(t *testing.T) {
	ctx, feed, st, w := followedFeed(t)
	now := time.Now().Truncate(time.Millisecond)
	write := func(part int, id string, ts, stamp time.Time) {
		if err := w.WriteMessages(ctx, kafka.Message{Partition: part, Time: stamp, Value: eventAt(id, ts)}); err != nil {
			t.Fatal(err)
		}
	}
	write(0, "live-0", now, now)
	write(1, "live-1", now, now)
	stamp := time.Now().Truncate(time.Millisecond)
	write(0, "late-0", now.Add(-10*time.Second), stamp) // the upload's batch for partition 0
	for !st.has("live-1") || !st.has("late-0") {
		if ctx.Err() != nil {
			t.Fatal("the feed never applied the first events")
		}
		time.Sleep(time.Millisecond)
	}
	type result struct{ ok, other bool }
	done := make(chan result, 1)
	go func() {
		_, ok := feed.WaitApplied(ctx, consumers.Point{Stamp: stamp, Event: now.Add(-10 * time.Second)}, 10*time.Second)
		done <- result{ok: ok, other: st.has("late-1")}
	}()
	time.Sleep(50 * time.Millisecond) // orders the write after the wait began; not a threshold
	// The same upload's batch for partition 1.
	write(1, "late-1", now.Add(-10500*time.Millisecond), stamp.Add(time.Millisecond))
	if r := <-done; !r.ok || !r.other {
		t.Errorf("WaitApplied for the late batch returned met=%v with the upload's other batch applied=%v; want both true", r.ok, r.other)
	}
}
