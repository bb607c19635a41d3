package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
)

// DecisionResult compares /v1/risk/check with the decision log on (every verdict queued and
// published to a fresh risk.decisions topic on real Kafka) and off, on one warmed state, in
// alternating rounds; and checks answered with the decision log's broker unreachable.
type DecisionResult struct {
	Rounds              int
	OffClosed, OnClosed Latency // median round of each
	// NopClosed is the decision log writing to a writer that discards: the API process's own
	// share of the cost, without the broker's (which shares this machine's cores).
	NopClosed       Latency
	Rate            float64
	OffOpen, OnOpen Latency
	NopOpen         Latency // the open loop with the discarding writer
	// OffOpen2 is a second set of rounds of the log off, taken in turn with the others: the
	// measurement's own noise (A/A), against which the ratios are to be read.
	OffOpen2        Latency
	ThroughputRatio float64 // on / off at the same concurrency (target ≥ 0.9)
	P99Ratio        float64 // on / off at the same offered rate (target ≤ 1.1)
	// OwnP99Ratio is P99Ratio with the decision log writing to a discarding writer: what the API
	// process's own work for the log (queue, encoding, batching) costs the checks' p99, without a
	// broker competing for the same cores.
	OwnP99Ratio float64
	// NoiseP99Ratio is OffOpen2's p99 over OffOpen's: the same server measured twice.
	NoiseP99Ratio float64
	// P99Interval, OwnP99Interval and NoiseP99Interval are the 95% intervals of the three p99
	// ratios with the rounds drawn again (RatioInterval): how far this run's rounds let the ratio
	// be told from 1.
	P99Interval, OwnP99Interval, NoiseP99Interval [2]float64

	Recorded, Published uint64
	Dropped             uint64
	DrainTook           time.Duration

	Down                     Latency // checks answered while the decision log's broker is unreachable
	DownRecorded, DownDrops  uint64
	DownQueue, DownPublished uint64
}

// Report prints r.
func (r DecisionResult) Report(w io.Writer) {
	fmt.Fprintf(w, "Decision log: /v1/risk/check with every verdict published to risk.decisions vs without, same state, %d alternating rounds (median of each):\n", r.Rounds)
	fmt.Fprintf(w, "    decision log off   %s   %s\n", r.OffClosed, cpuShares(r.OffClosed))
	fmt.Fprintf(w, "    decision log on    %s   %s\n", r.OnClosed, cpuShares(r.OnClosed))
	fmt.Fprintf(w, "    on, no broker      %s   %s   (%.2f of off: the API process's share)\n", r.NopClosed, cpuShares(r.NopClosed), r.NopClosed.Throughput/max(r.OffClosed.Throughput, 1))
	fmt.Fprintf(w, "  open loop at %.0f req/s (percentiles over all %d rounds' requests):\n", r.Rate, r.Rounds)
	fmt.Fprintf(w, "    decision log off   %s   %s\n", r.OffOpen, cpuShares(r.OffOpen))
	fmt.Fprintf(w, "    decision log on    %s   %s\n", r.OnOpen, cpuShares(r.OnOpen))
	fmt.Fprintf(w, "    on, no broker      %s   %s\n", r.NopOpen, cpuShares(r.NopOpen))
	fmt.Fprintf(w, "    off again (A/A)    %s   %s\n", r.OffOpen2, cpuShares(r.OffOpen2))
	fmt.Fprintf(w, "  throughput ratio on/off %.2f (target ≥ 0.90)   p99 ratio on/off %.2f %s (target ≤ 1.10: %s)\n",
		r.ThroughputRatio, r.P99Ratio, interval(r.P99Interval), verdict(r.P99Interval, 1.10))
	fmt.Fprintf(w, "  p99 ratio with the decision log writing to a discarding writer (the API process's own cost, no broker on its cores) %.2f %s (≤ 1.10: %s)\n",
		r.OwnP99Ratio, interval(r.OwnP99Interval), verdict(r.OwnP99Interval, 1.10))
	fmt.Fprintf(w, "  p99 ratio off/off (the same server in a second set of rounds: the measurement's noise) %.2f %s\n", r.NoiseP99Ratio, interval(r.NoiseP99Interval))
	fmt.Fprintf(w, "  [lo–hi]: 95%% of the ratios the same rounds give when drawn again with replacement (bootstrap over rounds)\n")
	if r.OnOpen.Others >= 0 && r.OffOpen.Others >= 0 {
		fmt.Fprintf(w, "  other processes (the local broker) used %.2f cores with the log on, %.2f with it off, of %d\n", r.OnOpen.Others, r.OffOpen.Others, runtime.NumCPU())
	}
	fmt.Fprintf(w, "  decisions: %d recorded, %d published to Kafka, %d dropped (queue full); the last published %s after the load stopped\n",
		r.Recorded, r.Published, r.Dropped, r.DrainTook.Round(time.Millisecond))
	fmt.Fprintf(w, "  broker unreachable (decision log writing to a closed port): %s\n", r.Down)
	fmt.Fprintf(w, "    %d verdicts recorded, %d dropped and counted, %d queued, %d published\n", r.DownRecorded, r.DownDrops, r.DownQueue, r.DownPublished)
}

// DecisionOptions are the decision-log comparison's Kafka parts.
type DecisionOptions struct {
	Kafka  consumers.Config
	Queue  int // the decision log's queue (default 10,000, api.decision_queue's default)
	Keep   bool
	Rounds int // alternating rounds of each measurement (default 5)
}

// RunDecisions measures s (already warmed, e.g. by RunAPI) behind two API servers, one with a
// decision log publishing to a fresh topic and one without, with the same load generator.
func RunDecisions(ctx context.Context, s *scoring.Scorer, o APIOptions, d DecisionOptions, log *slog.Logger) (DecisionResult, error) {
	o = o.withDefaults()
	res := DecisionResult{Rounds: d.Rounds}
	if res.Rounds <= 0 {
		res.Rounds = 5
	}
	topic := "bench." + runID() + ".decisions"
	if err := consumers.EnsureTopics(ctx, d.Kafka, []consumers.TopicSpec{{Name: topic, Partitions: 4}}, log); err != nil {
		return res, err
	}
	if !d.Keep {
		defer deleteTopics(context.WithoutCancel(ctx), d.Kafka, log, topic)
	}
	hasher := schemas.NewPhoneHasher([]byte("bench decisions"))
	keys := map[string]string{"bench": "bench-secret"}
	w := consumers.NewWriter(d.Kafka, topic)
	defer w.Close()
	dl := pipeline.NewDecisionLog(pipeline.DecisionLogConfig{Queue: d.Queue, Node: "bench", MaxMessageBytes: d.Kafka.BatchBytes()}, w, hasher, log)
	dctx, stopLog := context.WithCancel(ctx)
	logDone := make(chan struct{})
	go func() { dl.Run(dctx, 10*time.Second); close(logDone) }()
	defer func() { stopLog(); <-logDone }()

	nop := pipeline.NewDecisionLog(pipeline.DecisionLogConfig{Queue: d.Queue, Node: "bench-nop"}, discard{}, hasher, log)
	go nop.Run(dctx, time.Second)
	nopSrv := api.New(api.Config{Keys: keys}, s, nil, api.WithLogger(log), api.WithDecisionLog(nop))
	nopURL, stopNop, err := serve(nopSrv)
	if err != nil {
		return res, err
	}
	defer stopNop()
	off := api.New(api.Config{Keys: keys}, s, nil, api.WithLogger(log))
	on := api.New(api.Config{Keys: keys}, s, nil, api.WithLogger(log), api.WithDecisionLog(dl))
	offURL, stopOff, err := serve(off)
	if err != nil {
		return res, err
	}
	defer stopOff()
	onURL, stopOn, err := serve(on)
	if err != nil {
		return res, err
	}
	defer stopOn()
	bodies := checkBodies(o.Phones, o.IPs, 2000)
	offT := Target{URL: offURL + "/v1/risk/check", Bodies: bodies, User: "bench", Pass: "bench-secret"}
	onT := Target{URL: onURL + "/v1/risk/check", Bodies: bodies, User: "bench", Pass: "bench-secret"}

	nopT := Target{URL: nopURL + "/v1/risk/check", Bodies: bodies, User: "bench", Pass: "bench-secret"}
	Closed(ctx, offT, o.Conns, time.Second)
	Closed(ctx, onT, o.Conns, time.Second)
	Closed(ctx, nopT, o.Conns, time.Second)
	// Alternating rounds, the median of each: on a shared machine the load of the moment moves
	// both figures more than the decision log does.
	var offs, ons, nops []Latency
	for range res.Rounds {
		offs = append(offs, Closed(ctx, offT, o.Conns, o.Duration))
		ons = append(ons, Closed(ctx, onT, o.Conns, o.Duration))
		nops = append(nops, Closed(ctx, nopT, o.Conns, o.Duration))
	}
	tput := func(l Latency) float64 { return l.Throughput }
	res.OffClosed, res.OnClosed, res.NopClosed = median(offs, tput), median(ons, tput), median(nops, tput)
	res.Rate = o.RateShare * min(res.OffClosed.Throughput, res.OnClosed.Throughput)
	offs, ons, nops = nil, nil, nil
	var offs2 []Latency
	for range res.Rounds {
		offs = append(offs, Open(ctx, offT, o.Conns, res.Rate, o.Duration))
		ons = append(ons, Open(ctx, onT, o.Conns, res.Rate, o.Duration))
		nops = append(nops, Open(ctx, nopT, o.Conns, res.Rate, o.Duration))
		offs2 = append(offs2, Open(ctx, offT, o.Conns, res.Rate, o.Duration))
	}
	if err := ctx.Err(); err != nil {
		// Stopped mid-measure: cut-short runs (0 req/s), and a decision log that no longer
		// publishes (the drain below would wait its 30 s for nothing).
		return res, fmt.Errorf("measure: %w", err)
	}
	// The open loop's figures pool every round's requests: a round's p99 is its slowest 1%, often
	// a few bursts (a GC cycle, another process), and moves by a third from round to round.
	res.OffOpen, res.OnOpen, res.NopOpen, res.OffOpen2 = Pool(offs...), Pool(ons...), Pool(nops...), Pool(offs2...)
	if res.OffClosed.Throughput > 0 {
		res.ThroughputRatio = res.OnClosed.Throughput / res.OffClosed.Throughput
	}
	if res.OffOpen.P99 > 0 {
		res.P99Ratio = float64(res.OnOpen.P99) / float64(res.OffOpen.P99)
		res.OwnP99Ratio = float64(res.NopOpen.P99) / float64(res.OffOpen.P99)
		res.NoiseP99Ratio = float64(res.OffOpen2.P99) / float64(res.OffOpen.P99)
	}
	const reps = 2000
	res.P99Interval[0], res.P99Interval[1] = RatioInterval(ons, offs, 0.99, reps, 1)
	res.OwnP99Interval[0], res.OwnP99Interval[1] = RatioInterval(nops, offs, 0.99, reps, 2)
	res.NoiseP99Interval[0], res.NoiseP99Interval[1] = RatioInterval(offs2, offs, 0.99, reps, 3)
	stopped := time.Now()
	for dl.Published()+dl.Dropped()+dl.Rejected() < dl.Recorded() && time.Since(stopped) < 30*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	res.DrainTook = time.Since(stopped)
	res.Recorded, res.Published, res.Dropped = dl.Recorded(), dl.Published(), dl.Dropped()

	// The broker away: a decision log whose writer dials a closed port.
	downCfg := d.Kafka
	downCfg.Brokers = []string{"127.0.0.1:1"}
	dw := consumers.NewWriter(downCfg, topic)
	defer dw.Close()
	down := pipeline.NewDecisionLog(pipeline.DecisionLogConfig{Queue: d.Queue, Node: "bench-down"}, dw, hasher, slog.New(slog.DiscardHandler))
	downCtx, stopDown := context.WithCancel(ctx)
	downDone := make(chan struct{})
	go func() { down.Run(downCtx, 10*time.Millisecond); close(downDone) }()
	downSrv := api.New(api.Config{Keys: keys}, s, nil, api.WithLogger(log), api.WithDecisionLog(down))
	downURL, stopDownSrv, err := serve(downSrv)
	if err != nil {
		stopDown()
		return res, err
	}
	res.Down = Closed(ctx, Target{URL: downURL + "/v1/risk/check", Bodies: bodies, User: "bench", Pass: "bench-secret"}, o.Conns, max(o.Duration, 3*time.Second))
	stopDownSrv()
	res.DownRecorded, res.DownDrops, res.DownQueue, res.DownPublished = down.Recorded(), down.Dropped(), uint64(down.Queued()), down.Published()
	stopDown()
	<-downDone
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("measure with the broker away: %w", err)
	}
	return res, nil
}

// interval formats a RatioInterval.
func interval(iv [2]float64) string { return fmt.Sprintf("[%.2f–%.2f]", iv[0], iv[1]) }

// verdict reads a ratio's interval against an upper target: met when all of it is at or under the
// target, not met when all of it is above, and otherwise not told apart by this run's rounds.
func verdict(iv [2]float64, target float64) string {
	switch {
	case iv[1] == 0:
		return "no requests"
	case iv[1] <= target:
		return "met"
	case iv[0] > target:
		return "not met"
	}
	return "not told apart from the noise by these rounds"
}

// cpuShares formats l's CPU: this process's and, when known, the other processes'.
func cpuShares(l Latency) string {
	if l.Others < 0 {
		return fmt.Sprintf("cpu %.2f", l.CPU)
	}
	return fmt.Sprintf("cpu %.2f + others %.2f", l.CPU, l.Others)
}

// median returns the element of ls with the median key (ls has an odd length, or the upper median).
func median(ls []Latency, key func(Latency) float64) Latency {
	sorted := slices.Clone(ls)
	slices.SortFunc(sorted, func(a, b Latency) int { return cmp.Compare(key(a), key(b)) })
	return sorted[len(sorted)/2]
}

// discard is a writer that acknowledges everything at once.
type discard struct{}

func (discard) WriteMessages(context.Context, ...kafka.Message) error { return nil }
