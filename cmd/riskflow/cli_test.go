package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
)

// One concept, one flag name: demo's --keep-topics is --keep, as bench's; the old spelling still
// works, with a warning on stderr.
func TestDemoKeepIsBenchKeep(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		warn bool
	}{
		{[]string{"demo", "--mode", "bogus", "--keep"}, false},
		{[]string{"demo", "--keep-topics", "--mode", "bogus"}, true},
		{[]string{"demo", "--keep-topics=false", "--mode", "bogus"}, true},
	} {
		r := runCmd(t, context.Background(), c.args...)
		// The flags parsed; the error is the one --mode bogus makes.
		if r.code != 2 || !strings.Contains(r.stderr, `--mode: "bogus" is not dev or real`) {
			t.Errorf("%q: exit %d\n%s", c.args, r.code, r.stderr)
		}
		if warned := strings.Contains(r.stderr, "riskflow: --keep-topics is deprecated: use --keep\n"); warned != c.warn {
			t.Errorf("%q: deprecation warning %v, want %v\n%s", c.args, warned, c.warn, r.stderr)
		}
	}
	// A near miss of the old spelling is told the new one.
	if r := runCmd(t, context.Background(), "demo", "--keep-topic"); r.code != 2 || !strings.Contains(r.stderr, "unknown flag: --keep-topic (did you mean --keep?)") {
		t.Errorf("demo --keep-topic: exit %d\n%s", r.code, r.stderr)
	}
	for _, cmd := range []string{"demo", "bench"} {
		if r := runCmd(t, context.Background(), cmd, "--help"); !strings.Contains(r.stdout, "\n  --keep\n") {
			t.Errorf("%s --help lacks --keep:\n%s", cmd, r.stdout)
		}
	}
}

// A deprecated spelling sets the flag it stands for, true/false ones alone too, and warns once.
func TestDeprecatedFlag(t *testing.T) {
	var errw syncbuf.Buffer
	fs := newFlagSet("t", nil)
	keep := fs.Bool("keep", false, "")
	n := fs.Int("n", 0, "")
	deprecatedFlag(fs, "keep-topics", "keep", &errw)
	deprecatedFlag(fs, "count", "n", &errw)
	if err := parseFlags(fs, []string{"--keep-topics", "a", "--count", "3", "--keep-topics", "--count=4"}); err != nil {
		t.Fatal(err)
	}
	if !*keep || *n != 4 || strings.Join(fs.Args(), ",") != "a" {
		t.Errorf("keep %v n %d args %q; want true 4 [a]", *keep, *n, fs.Args())
	}
	if got := errw.String(); got != "riskflow: --keep-topics is deprecated: use --keep\nriskflow: --count is deprecated: use --n\n" {
		t.Errorf("warnings:\n%s", got)
	}
}

// --start takes a time in the forms backtest --from and lookup --since take — a date, a span
// before now, now —, not RFC 3339 alone.
func TestLoadgenStartTakesTheTimesOfBacktest(t *testing.T) {
	cleanEnv(t)
	now := time.Now().UTC()
	for _, c := range []struct {
		start string
		want  time.Time
	}{
		{"2026-12-06T10:00:00+08:00", time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)},
		{"2026-12-06", time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
	} {
		// 100/s: the stream follows the day's rhythm in China time, and at 1/s ten seconds of a
		// night hour (--start 7d in CI at 16:45 UTC) held no event at all.
		r := runCmd(t, context.Background(), "loadgen", "--start", c.start, "--duration", "10s", "--rate", "100", "--seed", "3", "--out", "-")
		if r.code != 0 {
			t.Errorf("--start %s: exit %d\n%s", c.start, r.code, r.stderr)
			continue
		}
		var first schemas.VerifyEvent
		line, _, _ := strings.Cut(r.stdout, "\n")
		if err := json.Unmarshal([]byte(line), &first); err != nil {
			t.Fatalf("--start %s: first line %q: %v", c.start, line, err)
		}
		// The first event is stamped within the first seconds of the stream.
		if d := first.TS.Sub(c.want); d < -time.Minute || d > time.Minute {
			t.Errorf("--start %s: first event at %s, want about %s", c.start, first.TS.Format(time.RFC3339), c.want.Format(time.RFC3339))
		}
	}
	r := runCmd(t, context.Background(), "loadgen", "--start", "yesterday", "--out", "-")
	if r.code != 2 || !strings.Contains(r.stderr, `--start: "yesterday" is not RFC 3339, a date, now, or a span before now`) {
		t.Errorf("--start yesterday: exit %d\n%s", r.code, r.stderr)
	}
}

// A word after a true/false flag of a command that takes no arguments is a value given to a flag
// that takes none: "bench --api http://…" (lookup's --api is the API node's address; bench's is a
// part to run or not) said only "takes no arguments".
func TestValueAfterATrueFalseFlag(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--api", "http://127.0.0.1:8080"}, `bench: --api is a true/false flag and takes no value (--api=false turns it off), got "http://127.0.0.1:8080" after it`},
		{[]string{"dev", "--listen", "127.0.0.1:0", "--once", "now"}, `dev: --once is a true/false flag and takes no value (--once=false turns it off), got "now" after it`},
		{[]string{"dev", "--once", "13800138000"}, `dev: --once is a true/false flag and takes no value (--once=false turns it off), got "<phone>" after it`},
		// Not after a true/false flag: a stray word, as before.
		{[]string{"bench", "--api=false", "http://127.0.0.1:8080"}, `bench: takes no arguments, got "http://127.0.0.1:8080"`},
		{[]string{"dev", "--once", "--", "now"}, `dev: takes no arguments, got "now"`},
	} {
		r := runCmd(t, context.Background(), c.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "riskflow: "+c.want+"\n") {
			t.Errorf("%q: exit %d, want 2 and %s\n%s", c.args, r.code, c.want, r.stderr)
		}
	}
	// A command that takes arguments takes the word: produce --raw FILE.
	fs := newFlagSet("t", nil)
	raw := fs.Bool("raw", false, "")
	if err := parseFlags(fs, []string{"--raw", "events.jsonl"}); err != nil || !*raw || fs.Arg(0) != "events.jsonl" {
		t.Errorf("--raw events.jsonl: %v, raw %v, args %q", err, *raw, fs.Args())
	}
}

// --help before a command's name is that command's help, as git --help log is git log's: it was
// the list of commands (riskflow --help serve) or of the group's subcommands (rules -h lint).
func TestHelpFlagBeforeTheCommand(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct{ args, same []string }{
		{[]string{"--help", "serve"}, []string{"serve", "--help"}},
		{[]string{"-h", "rules", "lint"}, []string{"rules", "lint", "-h"}},
		{[]string{"rules", "--help", "lint"}, []string{"rules", "lint", "--help"}},
		{[]string{"--help", "rules"}, []string{"rules", "--help"}},
	} {
		r, want := runCmd(t, context.Background(), c.args...), runCmd(t, context.Background(), c.same...)
		if r.code != 0 || want.code != 0 || r.stdout != want.stdout || r.stderr != "" {
			t.Errorf("%q: exit %d, stdout differs from %q's: %v\n%s\nstderr %s", c.args, r.code, c.same, r.stdout != want.stdout, r.stdout, r.stderr)
		}
	}
	if r := runCmd(t, context.Background(), "--help", "srve"); r.code != 2 || !strings.Contains(r.stderr, `no command "srve" (did you mean serve?)`) {
		t.Errorf("--help srve: exit %d\n%s", r.code, r.stderr)
	}
}

// fullWriter fails every write, as a full disk does (riskflow rules vars > /dev/full).
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// A command whose output could not be written fails: rules vars, help, version, rules lint and
// rules test exited 0 with their output lost (> /dev/full), so that a script took an empty file
// for their answer.
func TestLostOutputFails(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{
		{"rules", "vars"},
		{"help"},
		{"version"},
		{"rules", "lint", "../../rules/packs/default/rules.yaml"},
	} {
		var errb strings.Builder
		code := run(context.Background(), args, fullWriter{}, &errb)
		if code != 1 || !strings.Contains(errb.String(), "riskflow: write output: no space left on device") {
			t.Errorf("%v: exit %d, want 1 saying the output was not written\nstderr: %s", args, code, errb.String())
		}
	}
}

// loadgen's write error says "loadgen:" once: it read "loadgen: loadgen: write events: …".
func TestLoadgenWriteErrorSaysLoadgenOnce(t *testing.T) {
	cleanEnv(t)
	var errb strings.Builder
	code := run(context.Background(), []string{"loadgen", "--duration", "1s"}, fullWriter{}, &errb)
	if code != 1 || !strings.Contains(errb.String(), "riskflow: loadgen: write events: no space left on device") || strings.Count(errb.String(), "loadgen:") != 1 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// backtest --warm-up and loadgen's and demo's --duration take a span in days as --from, --since
// and --window do: "backtest --from 7d --warm-up 7d" and "loadgen --duration 1d" were refused
// with "invalid value \"7d\" for flag --warm-up: parse error" (a Go duration has no days).
func TestDurationFlagsTakeDays(t *testing.T) {
	cleanEnv(t)
	r := runCmd(t, context.Background(), "backtest", "--rules", "../../rules/packs/default/rules.yaml", "--from", "7d", "--warm-up", "7d",
		"--no-record", "--set", "clickhouse.addr="+testaddr.Free(t))
	// It starts, says what it replays, and fails on the ClickHouse nothing listens at.
	if r.code != 1 || !strings.Contains(r.stderr, "after 7d of warm-up") {
		t.Errorf("backtest --warm-up 7d: exit %d, want 1 after replaying with 7d of warm-up\n%s", r.code, r.stderr)
	}
	r = runCmd(t, context.Background(), "loadgen", "--duration", "2d", "--rate", "0.0002", "--seed", "5", "--start", "2026-12-01", "--attack-share", "0")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var last schemas.VerifyEvent
	if r.code != 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil {
		t.Fatalf("loadgen --duration 2d: exit %d\n%s", r.code, r.stderr)
	}
	// Events over two days from the start: the last one past the first day.
	if start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); last.TS.Before(start.Add(24*time.Hour)) || last.TS.After(start.Add(48*time.Hour)) {
		t.Errorf("loadgen --duration 2d from 2026-12-01: last event at %s", last.TS.Format(time.RFC3339))
	}
	for _, args := range [][]string{{"loadgen", "--duration", "2x"}, {"demo", "--duration", "2x"}, {"backtest", "--rules", "r.yaml", "--from", "7d", "--warm-up", "2x"}} {
		r := runCmd(t, context.Background(), args...)
		if r.code != 2 || !strings.Contains(r.stderr, `invalid value "2x" for flag --`) || !strings.Contains(r.stderr, "want a span like 24h, 90m or 7d") {
			t.Errorf("%q: exit %d\n%s", args, r.code, r.stderr)
		}
	}
}

// A value a flag's type does not parse is answered with what the flag takes: it said "parse
// error" alone (lookup --limit abc, loadgen --rate x, --once=maybe).
func TestUnparsedValueSaysWhatTheFlagTakes(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lookup", "--ip", "1.1.1.1", "--limit", "abc"}, `invalid value "abc" for flag --limit: want a whole number`},
		{[]string{"loadgen", "--rate", "13812345678x"}, `invalid value "<phone>x" for flag --rate: want a number like 0.5 or 20`},
		{[]string{"loadgen", "--seed", "-1"}, `invalid value "-1" for flag --seed: want a whole number, 0 or more`},
		{[]string{"bench", "--duration", "5x"}, `invalid value "5x" for flag --duration: want a duration like 90s or 10m`},
		{[]string{"dev", "--once=maybe"}, `invalid boolean value "maybe" for --once: want true or false`},
	} {
		r := runCmd(t, context.Background(), c.args...)
		if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, "riskflow: "+c.want+"\n") {
			t.Errorf("%q: exit %d, want 2 and %s\n%s", c.args, r.code, c.want, r.stderr)
		}
	}
}
