package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/pipeline/chsink/chbacktest"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/backtest"
)

// cmdBacktest replays stored events from ClickHouse through the production scorer with the current
// and a candidate rule pack and reports what the candidate would change.
func cmdBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backtest", stderr)
	var cf commonFlags
	cf.register(fs)
	candidatePath := fs.String("rules", "", "candidate rule pack (required; - for stdin)")
	currentPath := fs.String("current", "", "pack to compare with (default: scoring.rules, else the embedded default; - for stdin)")
	from := fs.String("from", "", "start of the period: RFC 3339, 2006-01-02 (UTC midnight: a China day starts at 2006-01-02T00:00:00+08:00), or a span before now like 24h or 7d (required)")
	to := fs.String("to", "now", "end of the period (same forms)")
	// A span as --from takes it: --from 7d --warm-up 7d, not --warm-up 168h.
	warmUp := new(time.Duration(backtest.DefaultWarmUp))
	fs.Var((*spanFlag)(warmUp), "warm-up", "history read before --from to fill the feature windows: a `span` like 24h or 7d (0 for none)")
	labelsPath := fs.String("labels", "", "ground truth (loadgen --labels file or [app_id,]event_id,label lines) for precision/recall, on top of the stored labels; - for stdin")
	storeLabels := fs.Bool("stored-labels", true, "use the labels stored in ClickHouse (riskflow label, POST /v1/admin/labels) for precision/recall")
	flagAt := fs.Int("flag-at", 600, "score at or above which an event counts as flagged for precision/recall")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	noRecord := fs.Bool("no-record", false, "do not write the run to backtest_runs")
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *candidatePath == "" && *from == "":
		return usagef("backtest: --rules and --from are required")
	case *candidatePath == "":
		return usagef("backtest: --rules is required: the candidate rule pack")
	case *from == "":
		return usagef("backtest: --from is required: the start of the period (RFC 3339, 2006-01-02, or a duration before now like 24h)")
	}
	if n := countStdin(*candidatePath, *currentPath, *labelsPath); n > 1 {
		return usagef("backtest: one of --rules, --current and --labels can read standard input (-), not %d", n)
	}
	now := time.Now().UTC()
	start, err := parseWhen(*from, now)
	if err != nil {
		return usagef("--from: %v", err)
	}
	end, err := parseWhen(*to, now)
	if err != nil {
		return usagef("--to: %v", err)
	}
	for _, w := range []struct {
		flag string
		t    time.Time
	}{{"--from", start}, {"--to", end}} {
		if w.t.Before(chbacktest.Earliest) || w.t.After(chbacktest.Latest) {
			return usagef("%s: %s is outside what ClickHouse stores (%s to %s)", w.flag, w.t.Format(time.RFC3339),
				chbacktest.Earliest.Format(time.RFC3339), chbacktest.Latest.Format(time.RFC3339))
		}
	}
	if !end.After(start) {
		return usagef("--to (%s) must be after --from (%s)", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	if *warmUp < 0 {
		return usagef("--warm-up: %s is negative: give how much history before --from fills the windows, e.g. 24h (0 for none)", shortDuration(*warmUp))
	}
	if *flagAt < 1 {
		return usagef("--flag-at: %d flags every event: give the score at or above which an event counts as flagged, e.g. 600", *flagAt)
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	if cfg.ClickHouse.Addr == "" {
		return configf("clickhouse.addr: required to read history (RISKFLOW_CLICKHOUSE_ADDR)")
	}
	log := newLogger(cf.quietLog(cfg.Log), stderr)
	newScorer := func() (*scoring.Scorer, error) {
		// Without a pack: the run sets the current and the candidate packs compiled below, and
		// scoring.rules (or the default pack) is only the current one when --current is not given.
		return buildScorerWithoutPack(cfg.Scoring, schemas.NewPhoneHasher([]byte("backtest")), log)
	}
	probe, err := newScorer()
	if err != nil {
		return err
	}
	candidate, err := compilePackArg("--rules", *candidatePath, probe.Env())
	if err != nil {
		return err
	}
	cur := *currentPath
	if cur == "" {
		cur = cfg.Scoring.Rules
	}
	var current *rules.Pack
	if cur == "" {
		current, err = rules.Compile(packs.Default(), probe.Env())
	} else {
		from := "--current"
		if *currentPath == "" {
			from = "scoring.rules"
		}
		current, err = compilePackArg(from, cur, probe.Env())
	}
	if err != nil {
		return err
	}
	opts := backtest.Options{From: start, To: end, WarmUp: *warmUp, FlagAt: *flagAt, NoRecord: *noRecord}
	if *labelsPath != "" {
		in := io.Reader(os.Stdin)
		if *labelsPath != "-" {
			f, err := os.Open(*labelsPath)
			if err != nil {
				return usageError{fmt.Errorf("--labels: %w", err)}
			}
			defer f.Close()
			in = f
		}
		opts.Labels, err = backtest.ParseLabels(in)
		if err != nil {
			return usageError{fmt.Errorf("--labels %s: %w", stdinName(*labelsPath), err)}
		}
		fmt.Fprintf(stderr, "backtest: %d labelled events from --labels\n", len(opts.Labels))
	}
	// What is replayed, said before the first progress line (100,000 events in): the period in
	// UTC and in China time, whose days a bare date does not follow.
	fmt.Fprintf(stderr, "backtest: replaying %s to %s (China time %s to %s) after %s of warm-up: current %s@%s, candidate %s@%s\n",
		start.Format(time.RFC3339), end.Format(time.RFC3339), start.In(chinaTime).Format("2006-01-02 15:04"), end.In(chinaTime).Format("2006-01-02 15:04"),
		shortDuration(*warmUp), current.Name, current.Version, candidate.Name, candidate.Version)
	if start.After(now) {
		fmt.Fprintf(stderr, "backtest: --from %s is %s in the future: no events are stored there yet\n", start.Format(time.RFC3339), shortDuration(start.Sub(now).Round(time.Minute)))
	}
	opts.Progress = func(p backtest.Progress) {
		if p.Done {
			return
		}
		rate := float64(p.Read) / max(p.Elapsed.Seconds(), 1e-9)
		fmt.Fprintf(stderr, "backtest: %d events read (%d compared, %d changed), at %s, %.0f events/s\n",
			p.Read, p.Compared, p.Changed, p.At.Format(time.RFC3339), rate)
	}
	st, err := openStore(ctx, cfg.ClickHouse, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if *storeLabels {
		if err := mergeStoredLabels(ctx, st, &opts, stderr); err != nil {
			return fmt.Errorf("backtest: %w", err)
		}
	}
	read := chsink.ReadOptions{OnResume: func(attempt int, wait time.Duration, err error) {
		fmt.Fprintf(stderr, "backtest: the read of ClickHouse broke off (%v); it resumes after the last event read in %s (attempt %d of %d)\n",
			err, wait, attempt, chsink.DefaultResumes)
	}}
	rep, err := chbacktest.Run(ctx, st, current, candidate, newScorer, opts, read)
	if rep != nil {
		if *asJSON {
			b, jerr := rep.JSON()
			if jerr != nil {
				return jerr
			}
			fmt.Fprintln(stdout, string(b))
		} else if werr := rep.WriteText(stdout); werr != nil {
			return werr
		}
		if err != nil && !rep.Partial {
			// A whole report with an error: recording it failed, not the backtest.
			return fmt.Errorf("the report above is complete, but run %s was not recorded in backtest_runs (ClickHouse clickhouse.addr %s, clickhouse.database %s; --no-record not to record): %w",
				rep.RunID, cfg.ClickHouse.Addr, st.Database(), clickhouseHint(err))
		}
	}
	return err
}

// countStdin counts the arguments that name standard input ("-").
func countStdin(args ...string) int {
	n := 0
	for _, a := range args {
		if a == "-" {
			n++
		}
	}
	return n
}

// stdinName is how an error names a file argument: "stdin" for "-".
func stdinName(path string) string {
	if path == "-" {
		return "stdin"
	}
	return path
}

// compilePackArg compiles the pack file path names, or the pack on standard input for "-" (at
// most rules.MaxPackBytes, as a file), for flag. As `rules lint` and `rules test` exit: no pack to
// read (a missing file, a directory) is a usage error (exit 2), a pack that does not compile a
// failure (exit 1) naming its problems — backtest exited 2 for it, lint 1 for the same pack.
func compilePackArg(flag, path string, env *rules.Env) (*rules.Pack, error) {
	if path != "-" {
		if _, err := rules.ReadPackFile(path); err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", flag, err)}
		}
		p, err := rules.CompileFile(path, env)
		if err != nil {
			return nil, fmt.Errorf("%s %s: rejected:\n%w", flag, path, err)
		}
		return p, nil
	}
	data, err := io.ReadAll(io.LimitReader(os.Stdin, rules.MaxPackBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: read standard input: %w", flag, err)
	case len(data) > rules.MaxPackBytes:
		return nil, usagef("%s: standard input holds more than %d MiB: no rule pack is that large", flag, rules.MaxPackBytes>>20)
	}
	p, err := rules.Compile(data, env)
	if err != nil {
		return nil, fmt.Errorf("%s stdin: rejected:\n%w", flag, err)
	}
	return p, nil
}

// chinaTime is UTC+8 (no daylight saving), the risk team's clock: hour_cn, loadgen's day.
var chinaTime = time.FixedZone("UTC+8", 8*3600)

// parseWhen reads RFC 3339, a date (UTC midnight), "now", or a span before now as lookup's
// --since takes it ("24h", "-24h", "90m", "7d", "1d12h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasSuffix(s, "h") || strings.HasSuffix(s, "m") || strings.HasSuffix(s, "s") || strings.HasSuffix(s, "d"):
		var span spanFlag
		// The span back from now, with or without a '-' before it; "--5h" (a span after now) is
		// no time before now.
		if err := span.Set(strings.TrimPrefix(s, "-")); err == nil && span >= 0 {
			return now.Add(-time.Duration(span)), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s is not RFC 3339, a date, now, or a span before now like 24h or 7d", schemas.Excerpt(s, 64))
}
