package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/ruletest"
)

// cmdMigrate applies the ClickHouse schema.
func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	var cf commonFlags
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	if cfg.ClickHouse.Addr == "" {
		return usagef("clickhouse.addr: required (RISKFLOW_CLICKHOUSE_ADDR=127.0.0.1:19000)")
	}
	c := cfg.ClickHouse
	store, err := chsink.Open(ctx, chsink.Config{Addr: c.Addr, Database: c.Database, Username: c.Username, Password: c.Password})
	if err != nil {
		return usageError{fmt.Errorf("clickhouse: %w", err)}
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "database %s is up to date\n", c.Database)
		return nil
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m)
	}
	return nil
}

// cmdProduce publishes a JSONL file of VerifyEvents to verify.events. Invalid lines are reported
// with their line number and skipped; the exit code is 1 if any line was invalid.
func cmdProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("produce", stderr)
	var cf commonFlags
	cf.register(fs)
	raw := fs.Bool("raw", false, "send lines as they are, valid or not (exercise the dead-letter path)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("produce: exactly one FILE.jsonl is required (- for stdin)")
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	if cfg.Scoring.PhoneHashKey == "" {
		return usagef("scoring.phone_hash_key: required to key messages (RISKFLOW_SCORING_PHONE_HASH_KEY)")
	}
	in := os.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return usageError{fmt.Errorf("produce: %w", err)}
		}
		defer f.Close()
		in = f
	}
	log := newLogger(cfg.Log, stderr)
	kc := consumers.Config{Brokers: cfg.Kafka.Brokers, BatchTimeout: cfg.Kafka.BatchTimeout.D()}
	if err := consumers.EnsureTopics(ctx, kc, (&app{cfg: cfg}).topics(), log); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	w := consumers.NewWriter(kc, cfg.Kafka.EventsTopic)
	defer w.Close()
	pub := &pipeline.Publisher{W: w, Hasher: schemas.NewPhoneHasher([]byte(cfg.Scoring.PhoneHashKey))}
	sent, bad, err := produceLines(ctx, in, pub, w, *raw, stderr)
	fmt.Fprintf(stdout, "produced %d events to %s (%d invalid lines)\n", sent, cfg.Kafka.EventsTopic, bad)
	if err != nil {
		return err
	}
	if bad > 0 && !*raw {
		return fmt.Errorf("produce: %d invalid lines were skipped", bad)
	}
	return nil
}

func produceLines(ctx context.Context, in io.Reader, pub *pipeline.Publisher, w pipeline.MessageWriter, raw bool, stderr io.Writer) (sent, bad int, err error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var batch []schemas.VerifyEvent
	var rawBatch [][]byte
	flush := func() error {
		if raw {
			if err := writeRaw(ctx, w, rawBatch); err != nil {
				return err
			}
			sent += len(rawBatch)
			rawBatch = rawBatch[:0]
			return nil
		}
		if len(batch) == 0 {
			return nil
		}
		if err := pub.Publish(ctx, batch); err != nil {
			return err
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(strings.TrimSpace(string(text))) == 0 {
			continue
		}
		if raw {
			rawBatch = append(rawBatch, append([]byte(nil), text...))
		} else {
			ev, err := schemas.DecodeEvent(text)
			if err != nil {
				bad++
				fmt.Fprintf(stderr, "line %d: %v\n", line, err)
				continue
			}
			batch = append(batch, ev)
		}
		if len(batch)+len(rawBatch) >= 1000 {
			if err := flush(); err != nil {
				return sent, bad, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return sent, bad, fmt.Errorf("read line %d: %w", line+1, err)
	}
	return sent, bad, flush()
}

// cmdRules: lint a pack, run rule tests, list variables.
func cmdRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("rules: lint FILE | test DIR | vars | report")
	}
	switch args[0] {
	case "lint", "test", "vars", "report":
	default:
		return usagef("rules: unknown subcommand %q (lint, test, vars, report)", args[0])
	}
	fs := newFlagSet("rules "+args[0], stderr)
	var cf commonFlags
	cf.register(fs)
	window := fs.Duration("window", 24*time.Hour, "report: the period to report, compared with the period before it")
	app := fs.String("app", "", "report: one app_id only")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	if args[0] == "report" {
		return cmdRulesReport(ctx, cfg, *window, *app, stdout)
	}
	log := newLogger(LogConfig{Level: "error", Format: "text"}, stderr)
	cfg.Scoring.Rules = ""
	s, err := buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte("rules-cli")), log)
	if err != nil {
		return err
	}
	switch args[0] {
	case "vars":
		vars := s.Env().Vars()
		sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
		for _, v := range vars {
			fmt.Fprintf(stdout, "%-24s %-7s %s\n", v.Name, v.Type, v.Doc)
		}
		return nil
	case "lint":
		if fs.NArg() != 1 {
			return usagef("rules lint: exactly one FILE is required")
		}
		p, err := rules.CompileFile(fs.Arg(0), s.Env())
		if err != nil {
			return fmt.Errorf("%s: rejected:\n%w", fs.Arg(0), err)
		}
		fmt.Fprintf(stdout, "%s: pack %q version %s, %d rules: ok\n", fs.Arg(0), p.Name, p.Version, len(p.Rules))
		// Rules off the fast path cost about five times more per evaluation (BenchmarkEval vs
		// BenchmarkEvalFast in rules/): say which.
		var slow []string
		for _, r := range p.Rules {
			if !r.FastPath() {
				slow = append(slow, r.ID)
			}
		}
		if len(slow) > 0 {
			fmt.Fprintf(stdout, "note: %d rules run on cel-go's interpreter, not the fast path (string functions, macros, or a cost that grows with input): %s\n",
				len(slow), strings.Join(slow, ", "))
		}
		return nil
	case "test":
		if fs.NArg() != 1 {
			return usagef("rules test: exactly one DIR (holding rules.yaml and tests.yaml) is required")
		}
		return runRuleTests(filepath.Join(fs.Arg(0), "rules.yaml"), filepath.Join(fs.Arg(0), "tests.yaml"), cfg.Scoring, stdout)
	}
	return usagef("rules: unknown subcommand %q (lint, test, vars)", args[0])
}

func writeRaw(ctx context.Context, w pipeline.MessageWriter, lines [][]byte) error {
	if len(lines) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(lines))
	for i, l := range lines {
		msgs[i] = kafka.Message{Value: l}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d raw lines: %w", len(lines), err)
	}
	return nil
}

// runRuleTests runs DIR/tests.yaml against DIR/rules.yaml with fresh scorers built from cfg.
func runRuleTests(packPath, testsPath string, cfg ScoringConfig, stdout io.Writer) error {
	pack, err := os.ReadFile(packPath)
	if err != nil {
		return usageError{fmt.Errorf("rules test: %w", err)}
	}
	tests, err := os.ReadFile(testsPath)
	if err != nil {
		return usageError{fmt.Errorf("rules test: %w", err)}
	}
	log := newLogger(LogConfig{Level: "error", Format: "text"}, io.Discard)
	results, err := ruletest.Run(pack, tests, func() (*scoring.Scorer, error) {
		return buildScorer(cfg, schemas.NewPhoneHasher([]byte("rules-test")), log)
	})
	if err != nil {
		return fmt.Errorf("rules test %s: %w", filepath.Dir(packPath), err)
	}
	text, failed := ruletest.Summary(results)
	fmt.Fprint(stdout, text)
	if failed > 0 {
		return fmt.Errorf("rules test: %d of %d tests failed", failed, len(results))
	}
	return nil
}
