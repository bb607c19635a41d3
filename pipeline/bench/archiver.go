package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/pipeline/loadgen"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// ArchiverOptions configures RunArchiver and RunHistoryFreshness.
type ArchiverOptions struct {
	ClickHouse    chsink.Config // Database is ignored: every run gets a database of its own, dropped at the end
	BatchSize     int           // the archiver's batch (clickhouse.batch_size)
	FlushInterval time.Duration // and flush interval (clickhouse.flush_interval)
	// Client is the clickhouse-client program for the bulk-insert baseline (default
	// "clickhouse-client" on PATH).
	Client string
	Keep   bool // keep the run's database and topics (for a look at them afterwards)
	// Profile, when set, receives a CPU profile of the archiver measurement alone.
	Profile io.Writer
}

// ArchiverResult compares the archiver with ClickHouse's own bulk insert of the same rows.
type ArchiverResult struct {
	Records       int
	BatchSize     int
	FlushInterval time.Duration
	Took          time.Duration // first record fetched → last batch acknowledged by both tables
	Rate          float64       // records/s into ClickHouse through the archiver
	Batches       int           // batches the archiver wrote,
	Decode, Write time.Duration // and the time they took to decode (Prepare) and to write (flush), summed
	CPU           time.Duration // CPU time of this process while it archived (the client's share; the server's is not in it)
	HeapPeak      uint64        // largest Go heap (live and not yet collected objects) seen while it archived
	// The same rows, exported from the archiver's tables in Native format and inserted with
	// clickhouse-client into empty copies of the two tables: one table after the other (as the
	// issue measured it; the faster of two runs per table), and both at once.
	BulkEvents, BulkScores time.Duration
	BulkTogether           time.Duration
	BulkWithViews          time.Duration // one table after the other into the real tables, materialized views included
	BulkRate               float64       // records/s, one table after the other
	Ratio                  float64       // Rate / BulkRate; target ≥ 0.5
	RatioTogether          float64       // Rate against both tables inserted at once
	ClientStart            time.Duration
}

// Report renders the result.
func (r ArchiverResult) Report(w io.Writer) {
	fmt.Fprintf(w, "Archiver: %d score records from Kafka into ClickHouse (batch %d, flush interval %s)\n", r.Records, r.BatchSize, r.FlushInterval)
	fmt.Fprintf(w, "    archiver → verify_events + risk_scores   %9.0f records/s  (%s; %d batches, decoding %s, writing %s, overlapped; client CPU %.1f µs/record)\n",
		r.Rate, r.Took.Round(time.Millisecond), r.Batches, r.Decode.Round(time.Millisecond), r.Write.Round(time.Millisecond), float64(r.CPU.Microseconds())/float64(max(r.Records, 1)))
	fmt.Fprintf(w, "      heap peak while archiving %d MiB\n", r.HeapPeak>>20)
	fmt.Fprintf(w, "    clickhouse-client Native bulk insert      %9.0f records/s  (verify_events %s + risk_scores %s, best of 2; both at once %s; client start %s)\n",
		r.BulkRate, r.BulkEvents.Round(time.Millisecond), r.BulkScores.Round(time.Millisecond), r.BulkTogether.Round(time.Millisecond), r.ClientStart.Round(time.Millisecond))
	fmt.Fprintf(w, "    the same bulk insert into the real tables, their materialized views included: %s\n", r.BulkWithViews.Round(time.Millisecond))
	fmt.Fprintf(w, "  ratio archiver/bulk %.2f (target ≥ 0.50); against both tables inserted at once %.2f; against the real tables %.2f\n",
		r.Ratio, r.RatioTogether, r.Rate/(float64(r.Records)/r.BulkWithViews.Seconds()))
}

// HistoryFreshnessResult is event produced → its rows visible in ClickHouse, at a steady rate.
type HistoryFreshnessResult struct {
	Rate          float64 // offered events/s
	Achieved      float64 // produced events/s over the measured window
	Events        int     // events measured (after the warm-up)
	P50, P99, Max time.Duration
	// The scorer's share: produced → scored (the record's scored_at).
	ScoredP50, ScoredP99 time.Duration
	BatchSize            int
	FlushInterval        time.Duration
}

// Report renders the result.
func (r HistoryFreshnessResult) Report(w io.Writer) {
	fmt.Fprintf(w, "History freshness (produced to verify.events → scorer → risk.scores → archiver → row in ClickHouse), %.0f events/s (%.0f achieved), %d events, flush interval %s:\n",
		r.Rate, r.Achieved, r.Events, r.FlushInterval)
	fmt.Fprintf(w, "    p50 %s p99 %s max %s (target p99 ≤ 2s); of which produced → scored p50 %s p99 %s\n", r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond),
		r.Max.Round(time.Millisecond), r.ScoredP50.Round(time.Millisecond), r.ScoredP99.Round(time.Millisecond))
}

// benchDatabase opens a Store on a new database named for this run and migrates it.
func benchDatabase(ctx context.Context, cfg chsink.Config, id string, log *slog.Logger) (*chsink.Store, error) {
	cfg.Database = "riskflow_bench_" + id
	st, err := chsink.Open(ctx, cfg, chsink.WithLogger(log))
	if err != nil {
		return nil, err
	}
	if _, err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// loadgenEvents returns a generator of realistic traffic (benign users and every attack
// scenario) starting at start.
func loadgenEvents(seed uint64, start time.Time) (*loadgen.Generator, error) {
	return loadgen.New(loadgen.Config{Seed: seed, Rate: 500, Duration: 30 * 24 * time.Hour, Start: start})
}

// produceScoreRecords scores n loadgen events with s and writes the records to topic, as the
// scorer would (key: phone hash).
func produceScoreRecords(ctx context.Context, kc consumers.Config, topic string, n int, s *scoring.Scorer) error {
	gen, err := loadgenEvents(1, time.Now().UTC().Add(-48*time.Hour).Truncate(time.Hour))
	if err != nil {
		return err
	}
	w := consumers.NewWriter(kc, topic)
	defer w.Close()
	const chunk = 5000
	msgs := make([]kafka.Message, 0, chunk)
	for done := 0; done < n; {
		msgs = msgs[:0]
		for len(msgs) < chunk && done+len(msgs) < n {
			l, ok := gen.Next()
			if !ok {
				return fmt.Errorf("loadgen ran out after %d events", done+len(msgs))
			}
			rec, err := s.Process(&l.Event)
			if schemas.Classify(err) != schemas.Proceed {
				return fmt.Errorf("score: %w", err)
			}
			v, err := rec.MarshalJSON()
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Key: []byte(rec.PhoneHash), Value: v})
		}
		if err := produceAll(ctx, w, msgs); err != nil {
			return fmt.Errorf("produce score records: %w", err)
		}
		done += len(msgs)
	}
	return nil
}

// archiveLoop builds the archiver exactly as `riskflow serve --roles archiver` does: the staged
// loop over an ArchiveStage whose sink is the breaker around the Store.
func archiveLoop(kc consumers.Config, topic, group, dlq string, sink pipeline.Sink, o ArchiverOptions, done, first *atomic.Int64, times *stageTimes, log *slog.Logger) (*consumers.Loop, func()) {
	r := consumers.NewGroupReader(kc, topic, group)
	dw := consumers.NewWriter(kc, dlq)
	breaker := pipeline.NewBreakerSink("clickhouse", sink, pipeline.BreakerConfig{}, log, nil)
	stage := &pipeline.ArchiveStage{Sink: breaker, DLQ: dw, Log: log, MaxMessageBytes: kc.BatchBytes()}
	loop := consumers.NewStagedLoop(consumers.LoopConfig{Name: group, MaxBatch: o.BatchSize, MaxWait: o.FlushInterval, BackoffMin: 200 * time.Millisecond, BackoffMax: 5 * time.Second},
		r, distinctStage{Stage: timedStage{stage, times}, first: first, done: done, next: map[int]int64{}, mu: &sync.Mutex{}}, log, nil)
	return loop, func() { r.Close(); dw.Close() }
}

// distinctStage notes when the first batch arrived and counts the distinct messages flushed: a
// batch delivered again (a rebalance, a commit lost while the broker restarted) is at-least-once
// doing its job, not progress. Within a partition offsets come in order, so a message is new when
// its offset is past the highest one flushed so far.
type distinctStage struct {
	consumers.Stage
	first, done *atomic.Int64
	mu          *sync.Mutex
	next        map[int]int64 // partition → first offset not yet counted
}

func (c distinctStage) Prepare(ctx context.Context, b []kafka.Message) (consumers.Flush, error) {
	c.first.CompareAndSwap(0, time.Now().UnixNano())
	flush, err := c.Stage.Prepare(ctx, b)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if err := flush(ctx); err != nil {
			return err
		}
		c.mu.Lock()
		for i := range b {
			if p := b[i].Partition; b[i].Offset >= c.next[p] {
				c.next[p] = b[i].Offset + 1
				c.done.Add(1)
			}
		}
		c.mu.Unlock()
		return nil
	}, nil
}

// stageTimes adds up how long a staged loop's batches took to prepare (decode) and to flush
// (write), to show which half bounds the rate.
type stageTimes struct {
	batches, prepare, flush atomic.Int64
}

type timedStage struct {
	consumers.Stage
	t *stageTimes
}

func (s timedStage) Prepare(ctx context.Context, b []kafka.Message) (consumers.Flush, error) {
	start := time.Now()
	flush, err := s.Stage.Prepare(ctx, b)
	s.t.prepare.Add(int64(time.Since(start)))
	if err != nil {
		return nil, err
	}
	s.t.batches.Add(1)
	return func(ctx context.Context) error {
		start := time.Now()
		err := flush(ctx)
		s.t.flush.Add(int64(time.Since(start)))
		return err
	}, nil
}

// RunArchiver writes n score records to a fresh topic, archives them into a fresh database with
// the archiver of `riskflow serve`, then inserts the same rows with clickhouse-client (Native
// format) into copies of the two tables, and compares the rates.
func RunArchiver(ctx context.Context, kc consumers.Config, n int, o ArchiverOptions, newScorer func() (*scoring.Scorer, error), log *slog.Logger) (ArchiverResult, error) {
	res := ArchiverResult{Records: n, BatchSize: o.BatchSize, FlushInterval: o.FlushInterval}
	client, err := newCHClient(o)
	if err != nil {
		return res, err
	}
	id := runID()
	topic, dlq := "bench."+id+".arch", "bench."+id+".archdlq"
	if err := consumers.EnsureTopics(ctx, kc, []consumers.TopicSpec{{Name: topic, Partitions: 4}, {Name: dlq, Partitions: 1}}, log); err != nil {
		return res, err
	}
	if !o.Keep {
		defer deleteTopics(context.WithoutCancel(ctx), kc, log, topic, dlq)
	}
	s, err := newScorer()
	if err != nil {
		return res, err
	}
	if err := produceScoreRecords(ctx, kc, topic, n, s); err != nil {
		return res, err
	}
	st, err := benchDatabase(ctx, o.ClickHouse, id, log)
	if err != nil {
		return res, fmt.Errorf("clickhouse: %w", err)
	}
	db := st.Database()
	defer func() {
		st.Close()
		if !o.Keep {
			_ = client.run(context.WithoutCancel(ctx), nil, io.Discard, "DROP DATABASE IF EXISTS "+db)
		}
	}()
	log.Info("archiver bench: records produced", "records", n, "topic", topic, "database", db)

	var done, first atomic.Int64
	var times stageTimes
	loop, closeLoop := archiveLoop(kc, topic, "bench-arch-"+id, dlq, st, o, &done, &first, &times, log)
	if o.Profile != nil {
		if err := pprof.StartCPUProfile(o.Profile); err != nil {
			return res, fmt.Errorf("archiver profile: %w", err)
		}
	}
	runtime.GC()
	stopHeap := sampleHeap(&res.HeapPeak)
	cpu0 := processCPU()
	res.Took, err = runLoop(ctx, loop, n, &done, &first)
	res.CPU = processCPU() - cpu0
	stopHeap()
	if o.Profile != nil {
		pprof.StopCPUProfile()
	}
	closeLoop()
	if err != nil {
		return res, fmt.Errorf("archive: %w", err)
	}
	res.Rate = float64(n) / res.Took.Seconds()
	res.Batches = int(times.batches.Load())
	res.Decode, res.Write = time.Duration(times.prepare.Load()), time.Duration(times.flush.Load())
	for _, t := range []string{"verify_events", "risk_scores"} {
		var out bytes.Buffer
		if err := client.run(ctx, nil, &out, "SELECT count() FROM "+db+"."+t+" FINAL"); err != nil {
			return res, err
		}
		if got := strings.TrimSpace(out.String()); got != fmt.Sprint(n) {
			return res, fmt.Errorf("%s.%s holds %s rows (FINAL) after the archiver, want %d", db, t, got, n)
		}
	}

	// The baseline: the same rows, inserted by ClickHouse's own client in its native format.
	if err := client.waitMerges(ctx, db); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "riskflow-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	tables := []string{"verify_events", "risk_scores"}
	files := map[string]string{}
	for _, t := range tables {
		cols := strings.Join(chsink.InsertColumns(t), ", ")
		files[t] = filepath.Join(dir, t+".native")
		f, err := os.Create(files[t])
		if err != nil {
			return res, err
		}
		// FINAL: each row once, even if a batch was delivered twice.
		err = client.run(ctx, nil, f, "SELECT "+cols+" FROM "+db+"."+t+" FINAL FORMAT Native")
		f.Close()
		if err != nil {
			return res, fmt.Errorf("export %s: %w", t, err)
		}
	}
	start := time.Now()
	if err := client.run(ctx, nil, io.Discard, "SELECT 1"); err != nil {
		return res, err
	}
	res.ClientStart = time.Since(start)
	bulk := func(suffix string, t string) (time.Duration, error) {
		copyName := db + "." + t + suffix
		if err := client.run(ctx, nil, io.Discard, "CREATE TABLE "+copyName+" AS "+db+"."+t); err != nil {
			return 0, err
		}
		f, err := os.Open(files[t])
		if err != nil {
			return 0, err
		}
		defer f.Close()
		start := time.Now()
		if err := client.run(ctx, f, io.Discard, "INSERT INTO "+copyName+" ("+strings.Join(chsink.InsertColumns(t), ", ")+") FORMAT Native"); err != nil {
			return 0, fmt.Errorf("bulk insert %s: %w", t, err)
		}
		return time.Since(start), nil
	}
	// One table after the other, twice, each table's faster run kept: a baseline slowed by
	// something else on the machine would flatter the archiver.
	for round, suffix := range []string{"_bulk", "_bulk3"} {
		if round > 0 {
			if err := client.waitMerges(ctx, db); err != nil {
				return res, err
			}
		}
		ev, err := bulk(suffix, "verify_events")
		if err != nil {
			return res, err
		}
		sc, err := bulk(suffix, "risk_scores")
		if err != nil {
			return res, err
		}
		if round == 0 || ev < res.BulkEvents {
			res.BulkEvents = ev
		}
		if round == 0 || sc < res.BulkScores {
			res.BulkScores = sc
		}
	}
	if err := client.waitMerges(ctx, db); err != nil {
		return res, err
	}
	var wg sync.WaitGroup
	var errEv, errSc error
	start = time.Now()
	wg.Add(2)
	go func() { defer wg.Done(); _, errEv = bulk("_bulk2", "verify_events") }()
	go func() { defer wg.Done(); _, errSc = bulk("_bulk2", "risk_scores") }()
	wg.Wait()
	res.BulkTogether = time.Since(start)
	if err := errors.Join(errEv, errSc); err != nil {
		return res, err
	}
	// For reference: the same rows into the archiver's own tables, whose materialized views
	// (hourly rollups) the server feeds on every insert — work the copies above do not have.
	// (The rows are there already; ReplacingMergeTree folds the second copy.)
	if err := client.waitMerges(ctx, db); err != nil {
		return res, err
	}
	for _, t := range tables {
		f, err := os.Open(files[t])
		if err != nil {
			return res, err
		}
		start := time.Now()
		err = client.run(ctx, f, io.Discard, "INSERT INTO "+db+"."+t+" ("+strings.Join(chsink.InsertColumns(t), ", ")+") FORMAT Native")
		f.Close()
		if err != nil {
			return res, fmt.Errorf("bulk insert into %s: %w", t, err)
		}
		res.BulkWithViews += time.Since(start)
	}
	res.BulkRate = float64(n) / (res.BulkEvents + res.BulkScores).Seconds()
	res.Ratio = res.Rate / res.BulkRate
	res.RatioTogether = res.Rate / (float64(n) / res.BulkTogether.Seconds())
	return res, nil
}

// deleteTopics removes a run's topics (hundreds of megabytes for the archiver row); a failure is
// only logged.
func deleteTopics(ctx context.Context, kc consumers.Config, log *slog.Logger, topics ...string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Timeout: 30 * time.Second}
	resp, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err == nil {
		for _, e := range resp.Errors {
			err = errors.Join(err, e)
		}
	}
	if err != nil {
		log.Warn("bench topics not deleted", "topics", topics, "err", err)
	}
}

// produceAll writes msgs, writing again what failed (a broker restarting under the bench) for at
// most two minutes; nothing is written twice unless an acknowledgement was lost.
func produceAll(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rejected, retry, err := consumers.Produce(ctx, w, msgs, 0)
		if len(rejected) > 0 {
			return fmt.Errorf("%d messages refused: %w", len(rejected), consumers.Summarize(rejected[0].Err))
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		msgs = keepIndexes(msgs, retry)
		time.Sleep(500 * time.Millisecond)
	}
}

func keepIndexes(msgs []kafka.Message, idx []int) []kafka.Message {
	out := make([]kafka.Message, 0, len(idx))
	for _, i := range idx {
		out = append(out, msgs[i])
	}
	return out
}

// sampleHeap keeps the largest Go heap seen in *peak, sampling every 20 ms until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value; v.Kind() == metrics.KindUint64 && v.Uint64() > *peak {
				*peak = v.Uint64()
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// latencySink notes, for each record it stores, the time from its event's ts to the moment
// ClickHouse acknowledged both tables (an INSERT's rows are visible to queries once it is
// acknowledged). Records with ts before from are not counted (warm-up).
type latencySink struct {
	pipeline.Sink
	from   time.Time
	mu     sync.Mutex
	lats   []time.Duration // ts → acknowledged by ClickHouse
	scored []time.Duration // ts → scored (the scorer's part)
	all    atomic.Int64
}

func (s *latencySink) WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error {
	if err := s.Sink.WriteBatch(ctx, recs); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	for i := range recs {
		if !recs[i].TS.Before(s.from) {
			s.lats = append(s.lats, now.Sub(recs[i].TS))
			s.scored = append(s.scored, recs[i].ScoredAt.Sub(recs[i].TS))
		}
	}
	s.mu.Unlock()
	s.all.Add(int64(len(recs)))
	return nil
}

// RunHistoryFreshness runs the scorer and the archiver of `riskflow serve` on fresh topics and a
// fresh database, offers rate events/s to verify.events for warmup+d, and measures, for every
// event produced after the warm-up, the time from handing it to the producer (its ts) to its
// rows being acknowledged by ClickHouse.
func RunHistoryFreshness(ctx context.Context, kc consumers.Config, rate float64, warmup, d time.Duration, o ArchiverOptions, newScorer func() (*scoring.Scorer, error), log *slog.Logger) (HistoryFreshnessResult, error) {
	res := HistoryFreshnessResult{Rate: rate, BatchSize: o.BatchSize, FlushInterval: o.FlushInterval}
	id := runID()
	events, scores, dlq := "bench."+id+".hevents", "bench."+id+".hscores", "bench."+id+".hdlq"
	if err := consumers.EnsureTopics(ctx, kc, []consumers.TopicSpec{{Name: events, Partitions: 4}, {Name: scores, Partitions: 4}, {Name: dlq, Partitions: 1}}, log); err != nil {
		return res, err
	}
	if !o.Keep {
		defer deleteTopics(context.WithoutCancel(ctx), kc, log, events, scores, dlq)
	}
	st, err := benchDatabase(ctx, o.ClickHouse, id, log)
	if err != nil {
		return res, fmt.Errorf("clickhouse: %w", err)
	}
	defer func() {
		if !o.Keep {
			if client, err := newCHClient(o); err == nil {
				_ = client.run(context.WithoutCancel(ctx), nil, io.Discard, "DROP DATABASE IF EXISTS "+st.Database())
			}
		}
		st.Close()
	}()
	s, err := newScorer()
	if err != nil {
		return res, err
	}
	// The scorer, as runScorer builds it (without the feed's gate: one node, nothing to wait for).
	sr, sw, sd := consumers.NewGroupReader(kc, events, "bench-hscore-"+id), consumers.NewWriter(kc, scores), consumers.NewWriter(kc, dlq)
	defer func() { sr.Close(); sw.Close(); sd.Close() }()
	scoreLoop := consumers.NewStagedLoop(consumers.LoopConfig{Name: "scorer", MaxBatch: batchSize, MaxWait: 5 * time.Millisecond}, sr,
		&pipeline.ScoreStage{Scorer: s, Scores: sw, DLQ: sd, Log: log, MaxMessageBytes: kc.BatchBytes()}, log, nil)
	start := time.Now()
	lat := &latencySink{Sink: st, from: start.Add(warmup)}
	var archived, first atomic.Int64
	archLoop, closeArch := archiveLoop(kc, scores, "bench-harch-"+id, dlq, lat, o, &archived, &first, &stageTimes{}, log)
	defer closeArch()
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // before the readers and writers close
	errc := make(chan error, 2)
	for _, l := range []*consumers.Loop{scoreLoop, archLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- l.Run(rctx) }()
	}

	gen, err := loadgenEvents(2, start.UTC())
	if err != nil {
		return res, err
	}
	w := consumers.NewWriter(kc, events)
	defer w.Close()
	var sent, measured int
	end := start.Add(warmup + d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for now := time.Now(); now.Before(end); now = time.Now() {
		due := int(rate*now.Sub(start).Seconds()) - sent
		msgs := make([]kafka.Message, 0, max(due, 0))
		for range due {
			l, ok := gen.Next()
			if !ok {
				return res, errors.New("loadgen ran out")
			}
			l.Event.TS = time.Now() // produced now: its rows' freshness is measured from here
			v, err := json.Marshal(&l.Event)
			if err != nil {
				return res, err
			}
			msgs = append(msgs, kafka.Message{Key: []byte(l.Event.Phone), Value: v})
			if !l.Event.TS.Before(lat.from) {
				measured++
			}
		}
		if len(msgs) > 0 {
			if err := produceAll(ctx, w, msgs); err != nil {
				return res, fmt.Errorf("produce: %w", err)
			}
			sent += len(msgs)
		}
		select {
		case <-tick.C:
		case err := <-errc:
			return res, fmt.Errorf("a loop ended early: %v", err)
		}
	}
	res.Achieved = float64(measured) / d.Seconds()
	deadline := time.Now().Add(time.Minute)
	for archived.Load() < int64(sent) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%d of %d events archived a minute after the last was produced", archived.Load(), sent)
		}
		select {
		case err := <-errc:
			return res, fmt.Errorf("a loop ended early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	lat.mu.Lock()
	lats, scored := slices.Clone(lat.lats), slices.Clone(lat.scored)
	lat.mu.Unlock()
	if len(lats) == 0 {
		return res, errors.New("no event measured")
	}
	slices.Sort(lats)
	slices.Sort(scored)
	res.Events = len(lats)
	res.P50, res.P99, res.Max = lats[len(lats)/2], lats[int(0.99*float64(len(lats)-1))], lats[len(lats)-1]
	res.ScoredP50, res.ScoredP99 = scored[len(scored)/2], scored[int(0.99*float64(len(scored)-1))]
	return res, nil
}

// chClient runs clickhouse-client against the configured server.
type chClient struct {
	bin            string
	args           []string
	user, password string // the password goes in a file (run), never on the command line
}

func newCHClient(o ArchiverOptions) (*chClient, error) {
	bin := o.Client
	if bin == "" {
		bin = "clickhouse-client"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("the bulk-insert baseline needs %s (Debian: apt-get install clickhouse-client): %w", bin, err)
	}
	addr := strings.TrimSpace(strings.Split(o.ClickHouse.Addr, ",")[0])
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("clickhouse addr %q: %w", addr, err)
	}
	c := &chClient{bin: path, args: []string{"--host", host, "--port", port}}
	if o.ClickHouse.Username != "" {
		c.args = append(c.args, "--user", o.ClickHouse.Username)
	}
	c.user, c.password = o.ClickHouse.Username, o.ClickHouse.Password
	return c, nil
}

// chClientConfig is a clickhouse-client configuration file holding the credentials.
type chClientConfig struct {
	XMLName  xml.Name `xml:"config"`
	User     string   `xml:"user,omitempty"`
	Password string   `xml:"password"`
}

func (c *chClient) run(ctx context.Context, stdin io.Reader, stdout io.Writer, query string) error {
	args := slices.Clone(c.args)
	if c.password != "" {
		// Not --password: a command line is anybody's to read on the machine (ps, /proc/PID/cmdline)
		// for as long as the client runs, and the bench ran clickhouse-client with the password
		// there. A file only this user reads (os.CreateTemp: 0600), removed after the run;
		// clickhouse-client takes no password from its environment before 22.x.
		f, err := os.CreateTemp("", "riskflow-bench-clickhouse-*.xml")
		if err != nil {
			return fmt.Errorf("clickhouse-client credentials file: %w", err)
		}
		defer os.Remove(f.Name())
		b, _ := xml.Marshal(chClientConfig{User: c.user, Password: c.password})
		_, werr := f.Write(b)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("clickhouse-client credentials file: %w", werr)
		}
		args = append([]string{"--config-file", f.Name()}, args...)
	}
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--query", query)...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("clickhouse-client %q: %v: %s", query, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// waitMerges waits (at most a minute) until no merge runs in db, so that one measurement does not
// pay for the background work the one before it left.
func (c *chClient) waitMerges(ctx context.Context, db string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var out bytes.Buffer
		if err := c.run(ctx, nil, &out, "SELECT count() FROM system.merges WHERE database = '"+db+"'"); err != nil {
			return err
		}
		if strings.TrimSpace(out.String()) == "0" {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}
