package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/riskflow/riskflow/pipeline/bench"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// scorersOptions runs this binary as the scorer processes, with the caller's configuration.
func scorersOptions(cf commonFlags, cfg Config, exe string, events int, procs string, keep bool) (bench.ScorersOptions, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return bench.ScorersOptions{}, fmt.Errorf("bench scorer processes: %w", err)
		}
	}
	o := bench.ScorersOptions{Binary: exe, Events: events,
		Env: []string{"RISKFLOW_SCORING_PHONE_HASH_KEY=" + cfg.Scoring.PhoneHashKey}}
	if cf.config != "" {
		o.Flags = append(o.Flags, "--config", cf.config)
	}
	for _, s := range cf.sets {
		o.Flags = append(o.Flags, "--set", s)
	}
	n, err := parseProcessCounts(procs)
	o.Processes = n
	o.Keep = keep
	return o, err
}

// parseProcessCounts reads --scorer-processes: positive counts, comma-separated.
func parseProcessCounts(procs string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(procs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, usagef("--scorer-processes: %s is not a list of positive counts", schemas.Excerpt(procs, 40))
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// cmdBench runs the load harness: API vs a bare handler, pipeline vs raw consume, freshness, and
// the archiver vs clickhouse-client's bulk insert with history freshness. Every figure is a ratio
// against a baseline measured in the same run.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var cf commonFlags
	cf.register(fs)
	apiBench := fs.Bool("api", true, "compare /v1/risk/check with a bare handler")
	apiRounds := fs.Int("api-rounds", 3, "alternating rounds of the API comparison (closed loop: the median round; open loop: every round pooled)")
	decisionRounds := fs.Int("decision-rounds", 5, "alternating rounds of the decision-log comparison (medians are reported)")
	decisions := fs.Bool("decisions", true, "compare /v1/risk/check with the decision log on and off, and with its broker unreachable (needs Kafka)")
	pipe := fs.Bool("pipeline", true, "compare the scorer pipeline with raw consumption (needs Kafka)")
	fresh := fs.Bool("freshness", true, "measure produce → visible latency (needs Kafka)")
	phones := fs.Int("phones", 1_000_000, "phones in the warmed state")
	ips := fs.Int("ips", 100_000, "IPs in the warmed state")
	conns := fs.Int("conns", 32, "concurrent connections of the load generator")
	apiRate := fs.Float64("api-rate", 0, "offered rate of the API latency runs, req/s (default: half the slower endpoint's closed-loop throughput)")
	dur := fs.Duration("duration", 5*time.Second, "length of each API measurement")
	events := fs.Int("events", 200_000, "events for the pipeline comparison")
	probes := fs.Int("probes", 300, "freshness probes")
	archiver := fs.Bool("archiver", true, "compare the archiver with clickhouse-client's Native bulk insert of the same rows (needs Kafka and ClickHouse)")
	records := fs.Int("records", 400_000, "score records for the archiver comparison")
	history := fs.Bool("history", true, "measure produced → row in ClickHouse latency at a steady rate (needs Kafka and ClickHouse)")
	historyRate := fs.Float64("history-rate", 5000, "events/s offered for history freshness")
	historyDur := fs.Duration("history-duration", 20*time.Second, "length of the history freshness measurement (after a 5 s warm-up)")
	chClient := fs.String("clickhouse-client", "clickhouse-client", "clickhouse-client program for the bulk-insert baseline")
	keep := fs.Bool("keep", false, "keep the runs' Kafka topics and ClickHouse databases (deleted at the end, also when stopped)")
	archProfile := fs.String("archiver-cpuprofile", "", "write a CPU profile of the archiver measurement alone to this file (not with --cpuprofile)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	scorers := fs.Bool("scorers", true, "run the same events through 1, 2, 3 scorer processes of one group (needs Kafka; spawns this binary)")
	scorerEvents := fs.Int("scorer-events", 60_000, "events per scorer-processes run")
	scorerProcs := fs.String("scorer-processes", "1,2,3", "scorer processes per run, comma-separated")
	scorerBinary := fs.String("scorer-binary", "", "riskflow binary to run as the scorer processes (default: this one; another build compares the two on one broker)")
	memory := fs.Bool("memory", true, "measure the feature state's memory per phone in its steady state (two days of traffic through the state)")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	// Every measure's knobs are checked before the first runs (a run takes minutes): a count or a
	// length of 0 or less, a negative or endless rate, was taken as the measure's default or ran
	// with a nonsense value.
	for _, c := range []struct {
		name string
		n    int
	}{{"phones", *phones}, {"ips", *ips}, {"conns", *conns}, {"events", *events}, {"probes", *probes},
		{"records", *records}, {"scorer-events", *scorerEvents}, {"decision-rounds", *decisionRounds}, {"api-rounds", *apiRounds}} {
		if c.n < 1 {
			return usagef("--%s: %d is not a positive count", c.name, c.n)
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"duration", *dur}, {"history-duration", *historyDur}} {
		if d.d <= 0 {
			return usagef("--%s: %v is not positive", d.name, d.d)
		}
	}
	if !(*apiRate >= 0) || math.IsInf(*apiRate, 1) {
		return usagef("--api-rate: %v is not 0 (half the slower endpoint's throughput) or a positive rate", *apiRate)
	}
	if !(*historyRate > 0) || math.IsInf(*historyRate, 1) {
		return usagef("--history-rate: %v is not a positive rate", *historyRate)
	}
	if *cpuprofile != "" && *archProfile != "" {
		return usagef("--archiver-cpuprofile: not with --cpuprofile (one CPU profile at a time)")
	}
	if _, err := parseProcessCounts(*scorerProcs); err != nil {
		return err
	}
	cfg, err := cf.load(func(c *Config) {
		if c.Scoring.PhoneHashKey == "" {
			c.Scoring.PhoneHashKey = devHashKey
		}
	})
	if err != nil {
		return err
	}
	log := newLogger(cf.quietLog(LogConfig{Level: cfg.Log.Level, Format: "text"}), stderr)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return usageError{err}
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	newScorer := func() (*scoring.Scorer, error) {
		return buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte(cfg.Scoring.PhoneHashKey)), log)
	}
	fmt.Fprintf(stdout, "riskflow bench — %s\n\n", time.Now().UTC().Format(time.RFC3339))
	if *apiBench {
		s, err := newScorer()
		if err != nil {
			return err
		}
		r, err := bench.RunAPI(ctx, s, bench.APIOptions{Phones: *phones, IPs: *ips, Conns: *conns, Duration: *dur, Rate: *apiRate, Rounds: *apiRounds}, log)
		if err != nil {
			return benchPartError(ctx, "api", "", err)
		}
		r.Report(stdout)
		fmt.Fprintln(stdout)
		if *decisions {
			d, err := bench.RunDecisions(ctx, s, bench.APIOptions{Phones: *phones, IPs: *ips, Conns: *conns, Duration: *dur},
				bench.DecisionOptions{Kafka: (&app{cfg: cfg}).kafkaConfig(), Queue: cfg.API.DecisionQueue, Keep: *keep, Rounds: *decisionRounds}, log)
			if err != nil {
				return benchPartError(ctx, "decisions", "is Kafka up? deploy/local/up", err)
			}
			d.Report(stdout)
			fmt.Fprintln(stdout)
		}
	}
	if *memory {
		s, err := newScorer()
		if err != nil {
			return err
		}
		r, err := bench.RunMemory(ctx, s, *phones, *ips)
		if err != nil {
			return benchPartError(ctx, "memory", "", err)
		}
		r.Report(stdout)
		fmt.Fprintln(stdout)
	}
	a := &app{cfg: cfg}
	kc := a.kafkaConfig()
	if *pipe {
		r, err := bench.RunPipeline(ctx, kc, *events, newScorer, *keep, log)
		if err != nil {
			return benchPartError(ctx, "pipeline", "is Kafka up? deploy/local/up", err)
		}
		r.Report(stdout)
		fmt.Fprintln(stdout)
	}
	if *scorers {
		o, err := scorersOptions(cf, cfg, *scorerBinary, *scorerEvents, *scorerProcs, *keep)
		if err != nil {
			return err
		}
		r, err := bench.RunScorers(ctx, kc, o, log)
		if err != nil {
			return benchPartError(ctx, "scorer processes", "is Kafka up? deploy/local/up", err)
		}
		r.Report(stdout)
		fmt.Fprintln(stdout)
	}
	if *fresh {
		s, err := newScorer()
		if err != nil {
			return err
		}
		r, err := bench.RunFreshness(ctx, kc, s, *probes, *keep, log)
		if err != nil {
			return benchPartError(ctx, "freshness", "is Kafka up? deploy/local/up", err)
		}
		r.Report(stdout)
	}
	if *archiver || *history {
		c := cfg.ClickHouse
		if c.Addr == "" && reachable("127.0.0.1:19000") {
			c.Addr = "127.0.0.1:19000"
		}
		if c.Addr == "" {
			fmt.Fprintln(stdout, "\nArchiver: skipped (ClickHouse is not configured: clickhouse.addr, or deploy/local/up)")
			return nil
		}
		o := bench.ArchiverOptions{
			ClickHouse:    chsink.Config{Addr: c.Addr, Username: c.Username, Password: c.Password},
			BatchSize:     c.BatchSize,
			FlushInterval: c.FlushInterval.D(),
			Client:        *chClient,
			Keep:          *keep,
		}
		if *archiver {
			fmt.Fprintln(stdout)
			if *archProfile != "" {
				f, err := os.Create(*archProfile)
				if err != nil {
					return usageError{err}
				}
				defer f.Close()
				o.Profile = f
			}
			r, err := bench.RunArchiver(ctx, kc, *records, o, newScorer, log)
			if err != nil {
				return benchPartError(ctx, "archiver", "are Kafka and ClickHouse up? deploy/local/up", err)
			}
			r.Report(stdout)
		}
		if *history {
			fmt.Fprintln(stdout)
			r, err := bench.RunHistoryFreshness(ctx, kc, *historyRate, 5*time.Second, *historyDur, o, newScorer, log)
			if err != nil {
				return benchPartError(ctx, "history freshness", "are Kafka and ClickHouse up? deploy/local/up", err)
			}
			r.Report(stdout)
		}
	}
	return nil
}

// benchPartError names the part of bench that failed and what to check — unless bench was told to
// stop (Ctrl-C, SIGTERM): the interruption is then the cause, whatever the call that noticed it
// says, and "is Kafka up?" would send the user to look at a broker that is fine.
func benchPartError(ctx context.Context, part, check string, err error) error {
	if check == "" || ctx.Err() != nil {
		return fmt.Errorf("bench %s: %w", part, err)
	}
	return fmt.Errorf("bench %s (%s): %w", part, check, err)
}
