package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/riskflow/riskflow/pipeline/bench"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// cmdBench runs the load harness: API vs a bare handler, pipeline vs raw consume, freshness.
// Every figure is a ratio against a baseline measured in the same run.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var cf commonFlags
	cf.register(fs)
	apiBench := fs.Bool("api", true, "compare /v1/risk/check with a bare handler")
	pipe := fs.Bool("pipeline", true, "compare the scorer pipeline with raw consumption (needs Kafka)")
	fresh := fs.Bool("freshness", true, "measure produce → visible latency (needs Kafka)")
	phones := fs.Int("phones", 1_000_000, "phones in the warmed state")
	ips := fs.Int("ips", 100_000, "IPs in the warmed state")
	conns := fs.Int("conns", 32, "concurrent connections of the load generator")
	dur := fs.Duration("duration", 5*time.Second, "length of each API measurement")
	events := fs.Int("events", 200_000, "events for the pipeline comparison")
	probes := fs.Int("probes", 300, "freshness probes")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := parseFlags(fs, args); err != nil {
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
	log := newLogger(LogConfig{Level: "warn", Format: "text"}, stderr)
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
		r, err := bench.RunAPI(ctx, s, bench.APIOptions{Phones: *phones, IPs: *ips, Conns: *conns, Duration: *dur}, log)
		if err != nil {
			return fmt.Errorf("bench api: %w", err)
		}
		r.Report(stdout)
		fmt.Fprintln(stdout)
	}
	a := &app{cfg: cfg}
	kc := a.kafkaConfig()
	if *pipe {
		r, err := bench.RunPipeline(ctx, kc, *events, newScorer, log)
		if err != nil {
			return fmt.Errorf("bench pipeline (is Kafka up? deploy/local/up): %w", err)
		}
		r.Report(stdout)
		fmt.Fprintln(stdout)
	}
	if *fresh {
		s, err := newScorer()
		if err != nil {
			return err
		}
		r, err := bench.RunFreshness(ctx, kc, s, *probes, log)
		if err != nil {
			return fmt.Errorf("bench freshness (is Kafka up? deploy/local/up): %w", err)
		}
		r.Report(stdout)
	}
	return nil
}
