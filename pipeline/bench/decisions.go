package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

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
	OffClosed, OnClosed Latency // best round of each
	Rate                float64
	OffOpen, OnOpen     Latency
	ThroughputRatio     float64 // on / off at the same concurrency (target ≥ 0.9)
	P99Ratio            float64 // on / off at the same offered rate (target ≤ 1.1)
	Recorded, Published uint64
	Dropped             uint64
	DrainTook           time.Duration

	Down                     Latency // checks answered while the decision log's broker is unreachable
	DownRecorded, DownDrops  uint64
	DownQueue, DownPublished uint64
}

// Report prints r.
func (r DecisionResult) Report(w io.Writer) {
	fmt.Fprintf(w, "Decision log: /v1/risk/check with every verdict published to risk.decisions vs without, same state, %d alternating rounds (best of each):\n", r.Rounds)
	fmt.Fprintf(w, "    decision log off   %s\n", r.OffClosed)
	fmt.Fprintf(w, "    decision log on    %s\n", r.OnClosed)
	fmt.Fprintf(w, "  open loop at %.0f req/s:\n", r.Rate)
	fmt.Fprintf(w, "    decision log off   %s\n", r.OffOpen)
	fmt.Fprintf(w, "    decision log on    %s\n", r.OnOpen)
	fmt.Fprintf(w, "  throughput ratio on/off %.2f (target ≥ 0.90)   p99 ratio on/off %.2f (target ≤ 1.10)\n", r.ThroughputRatio, r.P99Ratio)
	fmt.Fprintf(w, "  decisions: %d recorded, %d published to Kafka, %d dropped (queue full); the last published %s after the load stopped\n",
		r.Recorded, r.Published, r.Dropped, r.DrainTook.Round(time.Millisecond))
	fmt.Fprintf(w, "  broker unreachable (decision log writing to a closed port): %s\n", r.Down)
	fmt.Fprintf(w, "    %d verdicts recorded, %d dropped and counted, %d queued, %d published\n", r.DownRecorded, r.DownDrops, r.DownQueue, r.DownPublished)
}

// DecisionOptions are the decision-log comparison's Kafka parts.
type DecisionOptions struct {
	Kafka consumers.Config
	Queue int // the decision log's queue (default 10,000, api.decision_queue's default)
	Keep  bool
}

// RunDecisions measures s (already warmed, e.g. by RunAPI) behind two API servers, one with a
// decision log publishing to a fresh topic and one without, with the same load generator.
func RunDecisions(ctx context.Context, s *scoring.Scorer, o APIOptions, d DecisionOptions, log *slog.Logger) (DecisionResult, error) {
	o = o.withDefaults()
	res := DecisionResult{Rounds: 2}
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

	Closed(ctx, offT, o.Conns, time.Second)
	Closed(ctx, onT, o.Conns, time.Second)
	better := func(a, b Latency) Latency {
		if b.Throughput > a.Throughput {
			return b
		}
		return a
	}
	for range res.Rounds {
		res.OffClosed = better(res.OffClosed, Closed(ctx, offT, o.Conns, o.Duration))
		res.OnClosed = better(res.OnClosed, Closed(ctx, onT, o.Conns, o.Duration))
	}
	res.Rate = o.RateShare * min(res.OffClosed.Throughput, res.OnClosed.Throughput)
	res.OffOpen = Open(ctx, offT, o.Conns, res.Rate, o.Duration)
	res.OnOpen = Open(ctx, onT, o.Conns, res.Rate, o.Duration)
	if res.OffClosed.Throughput > 0 {
		res.ThroughputRatio = res.OnClosed.Throughput / res.OffClosed.Throughput
	}
	if res.OffOpen.P99 > 0 {
		res.P99Ratio = float64(res.OnOpen.P99) / float64(res.OffOpen.P99)
	}
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
	res.Down = Closed(ctx, Target{URL: downURL + "/v1/risk/check", Bodies: bodies, User: "bench", Pass: "bench-secret"}, o.Conns, min(o.Duration, 2*time.Second))
	stopDownSrv()
	res.DownRecorded, res.DownDrops, res.DownQueue, res.DownPublished = down.Recorded(), down.Dropped(), uint64(down.Queued()), down.Published()
	stopDown()
	<-downDone
	return res, nil
}
