package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
)

// cleanEnv removes every RISKFLOW_* variable for the test (restored afterwards) and points the
// cache dir at an empty directory, so the machine's geo databases and settings do not leak in.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "RISKFLOW_") {
			t.Setenv(name, "") // registers the restore
			os.Unsetenv(name)
		}
	}
	t.Setenv("RISKFLOW_CACHE_DIR", tempDir(t))
}

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errw syncbuf.Buffer
	code := run(ctx, args, &out, &errw)
	return result{code, out.String(), errw.String()}
}

func TestRunUsageErrors(t *testing.T) {
	cleanEnv(t)
	missing := filepath.Join(tempDir(t), "nope.yaml")
	// usage is the command whose usage line follows the error; "" = a configuration error, which
	// names its key and prints no usage.
	cases := []struct {
		name  string
		args  []string
		want  []string
		usage string
	}{
		{"unknown flag of rules", []string{"rules", "--frob"}, []string{"flags go after the command"}, "riskflow rules COMMAND"},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`}, "riskflow COMMAND"},
		{"flag before the command", []string{"--config", "x.yaml", "serve"}, []string{"flags go after the command"}, "riskflow COMMAND"},
		{"unknown flag", []string{"serve", "--colour", "red"}, []string{"unknown flag: --colour"}, "riskflow serve"},
		{"flag without its value", []string{"dev", "--set"}, []string{"flag needs an argument: --set"}, "riskflow dev"},
		{"bad roles", []string{"serve", "--roles", "scorer,bogus"}, []string{`--roles: "bogus" is not`}, "riskflow serve"},
		{"empty roles", []string{"serve", "--roles", " , "}, []string{"--roles: at least one"}, "riskflow serve"},
		{"listen without the api role", []string{"serve", "--roles", "scorer,archiver", "--listen", "0.0.0.0:9464"}, []string{"--listen is the api role's address", "--set ops.listen=0.0.0.0:9464"}, "riskflow serve"},
		{"serve without api keys", []string{"serve", "--roles", "api", "--set", "scoring.phone_hash_key=k"}, []string{"api.keys: no API keys configured"}, ""},
		{"serve without hash key", []string{"serve", "--roles", "scorer"}, []string{"scoring.phone_hash_key: required"}, ""},
		{"api without listen address", []string{"serve", "--roles", "api", "--set", "api.listen=", "--set", "api.keys=a:b", "--set", "scoring.phone_hash_key=k"}, []string{"api.listen: required"}, ""},
		{"archiver without clickhouse", []string{"serve", "--roles", "archiver"}, []string{"clickhouse.addr: required"}, ""},
		{"bad config value", []string{"serve", "--set", "kafka.partitions=0", "--set", "log.level=loud"}, []string{"invalid configuration", "kafka.partitions: 0 is outside", `log.level: "loud"`}, ""},
		{"unknown --set key", []string{"migrate", "--set", "kafka.colour=red"}, []string{"--set kafka.colour: unknown key"}, ""},
		{"missing config file", []string{"serve", "--config", missing}, []string{"nope.yaml"}, ""},
		{"migrate without clickhouse", []string{"migrate"}, []string{"clickhouse.addr: required"}, ""},
		{"produce without file", []string{"produce"}, []string{"exactly one FILE.jsonl"}, "riskflow produce"},
		{"rules without subcommand", []string{"rules"}, []string{"rules: a command is required"}, "riskflow rules COMMAND"},
		{"rules unknown subcommand", []string{"rules", "frob"}, []string{`rules: unknown command "frob" (known: lint, test, vars, report`}, "riskflow rules COMMAND"},
		{"rules lint without file", []string{"rules", "lint"}, []string{"exactly one FILE (- for standard input)"}, "riskflow rules lint"},
		{"rules lint of a missing file", []string{"rules", "lint", "no-such-pack.yaml"}, []string{"rules lint: stat no-such-pack.yaml: no such file or directory"}, "riskflow rules lint"},
		{"rules lint of a directory", []string{"rules", "lint", "../../rules/packs/default"}, []string{"rules lint: ../../rules/packs/default is a directory: give its pack file (riskflow rules lint ../../rules/packs/default/rules.yaml)"}, "riskflow rules lint"},
		{"rules test of a file", []string{"rules", "test", "../../rules/packs/default/rules.yaml"}, []string{"rules test: ../../rules/packs/default/rules.yaml is a file: give the pack's directory", "(riskflow rules test ../../rules/packs/default)"}, "riskflow rules test"},
		{"rules lint bad flag after the file", []string{"rules", "lint", "x.yaml", "--frob"}, []string{"-frob"}, "riskflow rules lint"},
		{"rules rollback of a number", []string{"rules", "rollback", "13812345678"}, []string{`rules rollback: VERSION "<phone>" is not a rule pack version: 16 hex digits`}, "riskflow rules rollback"},
		{"rules rollback of a short version", []string{"rules", "rollback", "3f2a9c0d"}, []string{`VERSION "3f2a9c0d" is not a rule pack version`}, "riskflow rules rollback"},
		{"version with an argument", []string{"version", "now"}, []string{"takes no arguments"}, "riskflow version"},
		{"help of an unknown command", []string{"help", "frob"}, []string{`help: riskflow has no command "frob"`}, "riskflow help"},
		{"help of a subcommand of a command without any", []string{"help", "serve", "extra"}, []string{"help: riskflow serve has no subcommands: riskflow help serve"}, "riskflow help"},
		{"dev bad listen", []string{"dev", "--listen", "8080"}, []string{`--listen "8080" is not host:port`}, "riskflow dev"},
		{"demo bad mode", []string{"demo", "--mode", "auto"}, []string{`--mode: "auto" is not dev or real`}, "riskflow demo"},
		{"demo bad speedup", []string{"demo", "--speedup", "0"}, []string{"--speedup: 0 is not a positive factor"}, "riskflow demo"},
		{"demo speedup NaN", []string{"demo", "--speedup", "NaN"}, []string{"--speedup: NaN is not a positive factor"}, "riskflow demo"},
		// Checked before anything starts: no broker, scorer or API log lines before the error.
		{"demo bad rate", []string{"demo", "--rate", "0"}, []string{"--rate: 0 is not a number of events per second"}, "riskflow demo"},
		// The generator's errors named its Config (the rate, the duration × --speedup: "loadgen:
		// duration must be positive, got -20s"); a user typed flags. A rate loadgen cannot reach
		// spent hours drawing its attack episodes; a negative attack share was taken as none.
		{"demo negative duration", []string{"demo", "--duration", "-1s"}, []string{"--duration: -1s is not positive"}, "riskflow demo"},
		{"demo duration beyond a Duration", []string{"demo", "--duration", "1000000h"}, []string{"--duration 1000000h0m0s × --speedup 20: more event time"}, "riskflow demo"},
		{"demo negative attack share", []string{"demo", "--attack-share", "-0.1"}, []string{"--attack-share: -0.1 is not a fraction"}, "riskflow demo"},
		{"loadgen huge rate", []string{"loadgen", "--rate", "1e12"}, []string{"--rate: 1e+12 is not a number of events per second above 0 and at most 100000"}, "riskflow loadgen"},
		{"loadgen attack share of one", []string{"loadgen", "--attack-share", "1"}, []string{"--attack-share: 1 is not a fraction"}, "riskflow loadgen"},
		{"loadgen negative speedup", []string{"loadgen", "--speedup", "-1", "--out", "kafka"}, []string{"--speedup: -1 is not 0 (as fast as possible) or a positive factor"}, "riskflow loadgen"},
		{"loadgen large-app share alone", []string{"loadgen", "--large-app-share", "0.5"}, []string{"--large-app-share: given without --large-app"}, "riskflow loadgen"},
		// Said as missing: "--large-app-share: 0 is not a fraction" named a 0 the user never typed.
		{"loadgen large app without its share", []string{"loadgen", "--large-app", "big"}, []string{`--large-app "big" needs --large-app-share: the fraction of the ordinary users in it`}, "riskflow loadgen"},
		{"loadgen large app with a share of 0", []string{"loadgen", "--large-app", "big", "--large-app-share", "0"}, []string{"--large-app-share: 0 is not a fraction"}, "riskflow loadgen"},
		{"demo unknown scenario", []string{"demo", "--scenarios", "sms"}, []string{`--scenarios: unknown scenario "sms"`}, "riskflow demo"},
		{"loadgen misspelt scenario", []string{"loadgen", "--scenarios", "token_replay,sms_pumpin"}, []string{`--scenarios: unknown scenario "sms_pumpin" (did you mean sms_pumping?) (known: sms_pumping,`}, "riskflow loadgen"},
		// A stray word is not ignored: a value left unquoted, or whose flag was forgotten.
		{"migrate with an argument", []string{"migrate", "riskflow"}, []string{`migrate: takes no arguments, got "riskflow"`}, "riskflow migrate"},
		{"serve with an argument", []string{"serve", "--roles", "api", "scorer"}, []string{`serve: takes no arguments, got "scorer"`}, "riskflow serve"},
		{"dev with a number", []string{"dev", "13812345678"}, []string{`dev: takes no arguments, got "<phone>"`}, "riskflow dev"},
		{"demo with an argument", []string{"demo", "30s"}, []string{`demo: takes no arguments, got "30s"`}, "riskflow demo"},
		{"loadgen with an argument", []string{"loadgen", "--out", "-", "events.jsonl"}, []string{`loadgen: takes no arguments, got "events.jsonl"`}, "riskflow loadgen"},
		{"bench with an argument", []string{"bench", "api"}, []string{`bench: takes no arguments, got "api"`}, "riskflow bench"},
		{"rules report for a number", []string{"rules", "report", "--app", "138 1234 5678"}, []string{"--app: looks like it contains a mobile phone number"}, "riskflow rules report"},
		// --window reads spans as lookup --since and backtest --from do (7d was refused).
		// A window under an hour is a usage error before any configuration is read (it was one only
		// with clickhouse.addr set, and said "at least 1h" without the value given).
		{"rules report window under an hour", []string{"rules", "report", "--window", "30m"}, []string{"--window: 30m is shorter than the report's hours: give 1h or more"}, "riskflow rules report"},
		{"rules report bad window", []string{"rules", "report", "--window", "7x"}, []string{`invalid value "7x" for flag --window: want a span like 24h, 90m or 7d`}, "riskflow rules report"},
		// A window reaching back before 1970 with the one before it is named as --window (20000d
		// was refused by the query, naming no flag); 100000d, a span, was called no span at all.
		{"rules report window before 1970", []string{"rules", "report", "--window", "20000d"}, []string{`--window: 20000d, and the period before it that the report compares, reach back before 1970`}, "riskflow rules report"},
		{"rules report window of 100000d", []string{"rules", "report", "--window", "100000d"}, []string{`--window: 100000d, and the period before it`}, "riskflow rules report"},
		{"rules report window past a Duration", []string{"rules", "report", "--window", "200000d"}, []string{`want a span like 24h, 90m or 7d (at most 106751d)`}, "riskflow rules report"},
		{"backtest with an argument", []string{"backtest", "--rules", "r.yaml", "--from", "24h", "labels.jsonl"}, []string{`backtest: takes no arguments, got "labels.jsonl"`}, "riskflow backtest"},
		// A near miss names what was meant; a word close to nothing names nothing.
		{"misspelt command", []string{"srve"}, []string{`unknown command "srve" (did you mean serve?) (known: dev, serve,`}, "riskflow COMMAND"},
		{"command with a letter more", []string{"servee"}, []string{`(did you mean serve?)`}, "riskflow COMMAND"},
		{"misspelt subcommand", []string{"rules", "lnt"}, []string{`rules: unknown command "lnt" (did you mean lint?)`}, "riskflow rules COMMAND"},
		{"start of a subcommand", []string{"rules", "rollb"}, []string{`(did you mean rollback?)`}, "riskflow rules COMMAND"},
		{"help of a misspelt command", []string{"help", "lokup"}, []string{`help: riskflow has no command "lokup" (did you mean lookup?)`}, "riskflow help"},
		{"misspelt flag", []string{"dev", "--sampel=false"}, []string{"unknown flag: --sampel (did you mean --sample?)"}, "riskflow dev"},
		{"misspelt flag of a subcommand", []string{"rules", "versions", "--load"}, []string{"unknown flag: --load (did you mean --loads?)"}, "riskflow rules versions"},
		{"backtest without --from", []string{"backtest", "--rules", "r.yaml"}, []string{"backtest: --from is required"}, "riskflow backtest"},
		{"backtest without --rules", []string{"backtest", "--from", "24h"}, []string{"backtest: --rules is required"}, "riskflow backtest"},
		{"backtest negative warm-up", []string{"backtest", "--rules", "r.yaml", "--from", "24h", "--warm-up", "-1h"}, []string{"--warm-up: -1h is negative"}, "riskflow backtest"},
		{"backtest flag-at 0", []string{"backtest", "--rules", "r.yaml", "--from", "24h", "--flag-at", "0"}, []string{"--flag-at: 0 flags every event"}, "riskflow backtest"},
		// bench took a count or a length of 0 or less, or a negative rate, as the measure's
		// default (or ran with it), and read --scorer-processes only after the API, memory and
		// pipeline runs, minutes in. Checked before anything runs.
		{"bench no connections", []string{"bench", "--conns", "0"}, []string{"--conns: 0 is not a positive count"}, "riskflow bench"},
		{"bench negative phones", []string{"bench", "--phones", "-5"}, []string{"--phones: -5 is not a positive count"}, "riskflow bench"},
		{"bench negative duration", []string{"bench", "--duration", "-1s"}, []string{"--duration: -1s is not positive"}, "riskflow bench"},
		{"bench negative api rate", []string{"bench", "--api-rate", "-5"}, []string{"--api-rate: -5 is not 0"}, "riskflow bench"},
		{"bench endless history rate", []string{"bench", "--history-rate", "Inf"}, []string{"--history-rate: +Inf is not a positive rate"}, "riskflow bench"},
		{"bench bad scorer processes", []string{"bench", "--scorer-processes", "1,0"}, []string{`--scorer-processes: "1,0" is not a list of positive counts`}, "riskflow bench"},
		{"bench two profiles", []string{"bench", "--cpuprofile", "a.prof", "--archiver-cpuprofile", "b.prof"}, []string{"--archiver-cpuprofile: not with --cpuprofile"}, "riskflow bench"},
		// A true/false flag takes its value after "=": "--sample false" set --sample and said
		// "takes no arguments, got \"false\"" (and before a command's FILE, took "false" for it).
		{"bool flag with a separate value", []string{"dev", "--sample", "false"}, []string{"--sample false: a true/false flag takes its value after =: --sample=false"}, "riskflow dev"},
		{"bool flag with a separate value after others", []string{"dev", "--listen", "127.0.0.1:0", "--once", "TRUE"}, []string{"--once=true"}, "riskflow dev"},
		// Events and labels were written interleaved into one file; "--labels -" made a file named -.
		{"loadgen labels into the events file", []string{"loadgen", "--out", "events.jsonl", "--labels", "./events.jsonl"}, []string{`--labels: "./events.jsonl" is where --out writes the events too`}, "riskflow loadgen"},
		{"loadgen labels and events on stdout", []string{"loadgen", "--labels", "-"}, []string{`--labels: "-" is where --out writes the events too`}, "riskflow loadgen"},
		// A number typed where something else belonged is not echoed back, whichever message
		// quotes it: they showed it as typed (a command, a flag's name or value, a --set).
		{"a number for a command", []string{"138 1234 5678"}, []string{`unknown command "<phone>"`}, "riskflow COMMAND"},
		{"a number for a flag", []string{"dev", "--13812345678"}, []string{"unknown flag: -<phone>"}, "riskflow dev"},
		{"a number for --listen", []string{"dev", "--listen", "13812345678"}, []string{`--listen "<phone>" is not host:port`}, "riskflow dev"},
		{"a number for --roles", []string{"serve", "--roles", "scorer,13812345678"}, []string{`--roles: "<phone>" is not a role`}, "riskflow serve"},
		{"a number for a duration", []string{"loadgen", "--duration", "138-1234-5678"}, []string{`invalid value "<phone>" for flag --duration`}, "riskflow loadgen"},
		{"a number for --out", []string{"loadgen", "--out", "+86 13812345678"}, []string{`--out: "<phone>" is not FILE.jsonl`}, "riskflow loadgen"},
		{"a number for a scenario", []string{"loadgen", "--scenarios", "13812345678"}, []string{`unknown scenario "<phone>"`}, "riskflow loadgen"},
		{"a number for a --set key", []string{"loadgen", "--set", "13812345678=x"}, []string{"--set <phone>: unknown key"}, ""},
		{"a number for a config value", []string{"loadgen", "--set", "api.listen=13812345678"}, []string{`api.listen: "<phone>" is not host:port`}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := runCmd(t, ctx, c.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			for _, a := range c.args {
				if strings.Contains(a, "1234") && strings.Contains(r.stderr, a) {
					t.Errorf("the error shows the number %q:\n%s", a, r.stderr)
				}
			}
			if schemas.ContainsPhone(r.stderr) {
				t.Errorf("the error shows a phone number:\n%s", r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if c.usage == "" {
				if strings.Contains(r.stderr, "usage:") {
					t.Errorf("a configuration error printed a usage:\n%s", r.stderr)
				}
				return
			}
			// Only that command's usage: its usage line and where its help is, not every command.
			if !strings.Contains(r.stderr, "usage: "+c.usage) {
				t.Errorf("stderr lacks the usage of %s:\n%s", c.usage, r.stderr)
			}
			if strings.Count(r.stderr, "usage:") != 1 || strings.Count(r.stderr, "\n") > 5 || strings.Contains(r.stderr, "level=") {
				t.Errorf("more than the command's usage:\n%s", r.stderr)
			}
			if !strings.Contains(c.usage, "COMMAND") && c.usage != "riskflow help" && strings.Contains(r.stderr, "commands:") {
				t.Errorf("the usage of %s lists other commands:\n%s", c.usage, r.stderr)
			}
		})
	}
}

// A suggestion is made only for a near miss: a word close to no command or flag names none.
func TestNoSuggestionForAFarWord(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{{"frobnicate"}, {"rules", "x"}, {"serve", "--colour", "red"}, {"dev", "--x"}, {"help", "zz"}} {
		r := runCmd(t, context.Background(), args...)
		if r.code != 2 || strings.Contains(r.stderr, "did you mean") {
			t.Errorf("%q: exit %d\n%s", args, r.code, r.stderr)
		}
	}
}

// riskflow alone shows what it can do, and is still a usage error.
func TestRunNoCommand(t *testing.T) {
	cleanEnv(t)
	r := runCmd(t, context.Background())
	if r.code != 2 || !strings.Contains(r.stderr, "usage: riskflow COMMAND") || !strings.Contains(r.stderr, "  serve ") || !strings.Contains(r.stderr, "Exit codes") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
}

func TestRunServeReportsEveryMissingSetting(t *testing.T) {
	cleanEnv(t)
	r := runCmd(t, context.Background(), "serve")
	if r.code != 2 {
		t.Fatalf("exit %d", r.code)
	}
	for _, w := range []string{"scoring.phone_hash_key", "api.keys", "clickhouse.addr"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %s:\n%s", w, r.stderr)
		}
	}
}

func TestRunEnvConfigErrorIsUsage(t *testing.T) {
	cleanEnv(t)
	t.Setenv("RISKFLOW_KAFKA_PARTITIONS", "many")
	r := runCmd(t, context.Background(), "migrate")
	if r.code != 2 || !strings.Contains(r.stderr, "RISKFLOW_KAFKA_PARTITIONS") {
		t.Errorf("exit %d, stderr %s", r.code, r.stderr)
	}
}

// A bad RISKFLOW_ROLES names the variable, not a --roles the command line does not show; a
// --roles given overrides it.
func TestRunBadRolesFromTheEnvironmentNamesIt(t *testing.T) {
	cleanEnv(t)
	t.Setenv("RISKFLOW_ROLES", "scorer,scorrer")
	r := runCmd(t, context.Background(), "serve")
	if r.code != 2 || !strings.HasPrefix(r.stderr, `riskflow: env RISKFLOW_ROLES: "scorrer" is not a role (scorer, archiver, api)`) || strings.Contains(r.stderr, "--roles") {
		t.Errorf("exit %d, stderr %s", r.code, r.stderr)
	}
	r = runCmd(t, context.Background(), "serve", "--roles", "bogus")
	if r.code != 2 || !strings.HasPrefix(r.stderr, `riskflow: --roles: "bogus" is not a role`) {
		t.Errorf("--roles bogus: exit %d, stderr %s", r.code, r.stderr)
	}
}

// A misspelled RISKFLOW_ variable is an error naming it and the key it was probably meant to be,
// as an unknown YAML key is; the variables the deploy scripts and tests use are not.
func TestRunUnknownEnvIsAnError(t *testing.T) {
	cleanEnv(t)
	t.Setenv("RISKFLOW_API_KESY", "a:b")
	r := runCmd(t, context.Background(), "rules", "vars")
	if r.code != 2 || !strings.Contains(r.stderr, "RISKFLOW_API_KESY: not a configuration key (did you mean RISKFLOW_API_KEYS?)") {
		t.Errorf("exit %d, stderr %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "a:b") {
		t.Errorf("the value (maybe a secret) was echoed: %s", r.stderr)
	}
	cleanEnv(t)
	for name := range scriptEnv {
		if name != "RISKFLOW_CONFIG" && name != "RISKFLOW_ROLES" {
			t.Setenv(name, "x")
		}
	}
	if r := runCmd(t, context.Background(), "rules", "vars"); r.code != 0 {
		t.Errorf("the deploy scripts' variables are refused: exit %d, %s", r.code, r.stderr)
	}
}

// A path a help text's example names (git show REV:PATH) is one of this repository's files: pasted,
// the example works (rules lint said git show main:rules.yaml, a file the repository never had).
func TestHelpExamplesNameRepositoryFiles(t *testing.T) {
	cleanEnv(t)
	gitShow := regexp.MustCompile(`git show [^ :]+:([^ )]+)`)
	n := 0
	var walk func(c *command)
	walk = func(c *command) {
		r := runCmd(t, context.Background(), append(strings.Fields(strings.TrimPrefix(c.path(), "riskflow")), "--help")...)
		for _, m := range gitShow.FindAllStringSubmatch(r.stdout, -1) {
			n++
			if _, err := os.Stat(filepath.Join("..", "..", m[1])); err != nil {
				t.Errorf("%s --help: %q names %s, not a file of the repository", c.path(), m[0], m[1])
			}
		}
		for _, s := range c.subs {
			walk(s)
		}
	}
	walk(root())
	if n == 0 {
		t.Error("no help names a file with git show: the test checks nothing")
	}
}

// Every command and subcommand has help that says what it does and takes, on stdout with exit 0,
// whether asked as COMMAND --help, COMMAND -h or help COMMAND.
func TestRunHelpForEveryCommand(t *testing.T) {
	cleanEnv(t)
	var walk func(c *command)
	n := 0
	walk = func(c *command) {
		n++
		args := strings.Fields(strings.TrimPrefix(c.path(), "riskflow"))
		forms := [][]string{append(append([]string{}, args...), "--help"), append(append([]string{}, args...), "-h"), append([]string{"help"}, args...)}
		var first string
		for _, a := range forms {
			r := runCmd(t, context.Background(), a...)
			if r.code != 0 {
				t.Errorf("%v: exit %d, want 0\n%s", a, r.code, r.stderr)
				continue
			}
			if !strings.HasPrefix(r.stdout, c.usageLine()+"\n") {
				t.Errorf("%v: help does not start with %q:\n%s", a, c.usageLine(), r.stdout)
			}
			if c.parent != nil && c.summary == "" {
				t.Errorf("%s has no summary", c.path())
			}
			if c.doc != "" && !strings.Contains(r.stdout, c.doc) {
				t.Errorf("%v: help does not say what the command does:\n%s", a, r.stdout)
			}
			for _, s := range c.subs {
				if !strings.Contains(r.stdout, "  "+s.name+" ") || !strings.Contains(r.stdout, s.summary) {
					t.Errorf("%v: help does not list %s with its summary:\n%s", a, s.name, r.stdout)
				}
			}
			if first == "" {
				first = r.stdout
			} else if r.stdout != first {
				t.Errorf("%v: help differs from %v's:\n%s\n---\n%s", a, forms[0], r.stdout, first)
			}
		}
		for _, s := range c.subs {
			walk(s)
		}
	}
	walk(root())
	if n < 15 {
		t.Errorf("only %d commands walked", n)
	}
	// Commands that read the configuration list their flags, as typed.
	for _, args := range [][]string{{"dev", "--help"}, {"serve", "--help"}, {"produce", "-h"}, {"rules", "lint", "-h"}} {
		r := runCmd(t, context.Background(), args...)
		if !strings.Contains(r.stdout, "--config FILE") || !strings.Contains(r.stdout, "--set section.key=value") {
			t.Errorf("%v: flags not listed:\n%s", args, r.stdout)
		}
	}
	if r := runCmd(t, context.Background(), "serve", "--help"); !strings.Contains(r.stdout, "--roles") {
		t.Errorf("serve --help lacks --roles:\n%s", r.stdout)
	}
}

func TestRunVersion(t *testing.T) {
	r := runCmd(t, context.Background(), "version")
	if r.code != 0 || !regexp.MustCompile(`^riskflow \S+\nrevision .+\n(commit time .+\n)?go 1\.\d+`).MatchString(r.stdout) {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
	// riskflow --version, as a stranger types it, is the same; after a command it is a flag.
	for _, flag := range []string{"--version", "-version"} {
		if v := runCmd(t, context.Background(), flag); v.code != 0 || v.stdout != r.stdout {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want riskflow version's output", flag, v.code, v.stdout, v.stderr)
		}
	}
	if v := runCmd(t, context.Background(), "--version", "serve"); v.code != 2 {
		t.Errorf("--version serve: exit %d, want 2 (flags go after the command)", v.code)
	}
}

func TestParseFlagsAnywhere(t *testing.T) {
	for _, c := range []struct {
		args []string
		pos  []string
		n    int
		v    bool
	}{
		{[]string{"a", "--n", "3", "b"}, []string{"a", "b"}, 3, false},
		{[]string{"--v", "a", "-n=4"}, []string{"a"}, 4, true},
		{[]string{"a", "b", "--v"}, []string{"a", "b"}, 0, true},
		{[]string{"a", "--", "--v", "-n"}, []string{"a", "--v", "-n"}, 0, false},
		{[]string{"-", "--n", "1"}, []string{"-"}, 1, false},
		{nil, nil, 0, false},
	} {
		fs := newFlagSet("t", nil)
		n := fs.Int("n", 0, "")
		v := fs.Bool("v", false, "")
		if err := parseFlags(fs, c.args); err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if !slices.Equal(fs.Args(), c.pos) || *n != c.n || *v != c.v {
			t.Errorf("%v: positional %q n=%d v=%v; want %q n=%d v=%v", c.args, fs.Args(), *n, *v, c.pos, c.n, c.v)
		}
	}
	fs := newFlagSet("t", nil)
	if err := parseFlags(fs, []string{"a", "--nope"}); !errors.As(err, new(usageError)) {
		t.Errorf("unknown flag after a positional: %v, want a usage error", err)
	}
}

func TestRulesVars(t *testing.T) {
	cleanEnv(t)
	r := runCmd(t, context.Background(), "rules", "vars")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^phone_verifies_10m\s+int\s+\S`).MatchString(r.stdout) {
		t.Errorf("phone_verifies_10m is not listed with its type and meaning:\n%s", r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	sorted := append([]string(nil), lines...)
	for i := 1; i < len(sorted); i++ {
		if strings.Fields(sorted[i-1])[0] > strings.Fields(sorted[i])[0] {
			t.Errorf("vars not sorted: %q before %q", sorted[i-1], sorted[i])
		}
	}
}

const goodPack = `pack: cli-test
description: a pack for the CLI tests
rules:
  - id: token_replay
    tag: token_replay
    description: a replayed token
    owner: test
    level: 900
    when: has_token && token_seen > 0
    reason: "loginToken digest seen {token_seen} time(s) before"
`

// withStdin runs f with os.Stdin reading data.
func withStdin(t *testing.T, data string, f func()) {
	t.Helper()
	in := filepath.Join(tempDir(t), "stdin")
	if err := os.WriteFile(in, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	old := os.Stdin
	os.Stdin = fh
	defer func() { os.Stdin = old }()
	f()
}

// rules lint - reads the pack from standard input, as an editor or git show pipes it.
func TestRulesLintStandardInput(t *testing.T) {
	cleanEnv(t)
	var r result
	withStdin(t, goodPack, func() { r = runCmd(t, context.Background(), "rules", "lint", "-") })
	if r.code != 0 || !strings.Contains(r.stdout, `stdin: pack "cli-test"`) {
		t.Fatalf("good pack on stdin: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	bad := strings.Replace(goodPack, "token_seen > 0", `token_seen > "0"`, 1)
	withStdin(t, bad, func() { r = runCmd(t, context.Background(), "rules", "lint", "-") })
	if r.code != 1 || !strings.Contains(r.stderr, "stdin: rejected") || !strings.Contains(r.stderr, "'>' cannot be applied to int and string") {
		t.Errorf("bad pack on stdin: exit %d\nstderr %s", r.code, r.stderr)
	}
}

func TestRulesLint(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(goodPack), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, context.Background(), "rules", "lint", good)
	if r.code != 0 || !strings.Contains(r.stdout, `pack "cli-test"`) || !strings.Contains(r.stdout, "1 rules: ok") {
		t.Fatalf("good pack: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "fast path") {
		t.Errorf("a pack of threshold rules is said to be off the fast path:\n%s", r.stdout)
	}

	bad := filepath.Join(dir, "bad.yaml")
	badPack := goodPack + `
  - id: farm_detector
    tag: farm
    description: uses a variable that does not exist
    owner: test
    level: 600
    when: phones_per_moon_10m > 3
    reason: "farm"
`
	if err := os.WriteFile(bad, []byte(badPack), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, context.Background(), "rules", "lint", bad)
	if r.code == 0 {
		t.Fatalf("a pack with an undeclared variable passed lint:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "farm_detector") || !strings.Contains(r.stderr, "bad.yaml") {
		t.Errorf("lint error does not name the rule and the file:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout, ": ok") {
		t.Errorf("stdout claims ok:\n%s", r.stdout)
	}
	slow := filepath.Join(dir, "slow.yaml")
	slowPack := goodPack + `
  - id: carrier_prefix
    tag: odd_carrier
    description: a string function keeps a rule on cel-go
    level: 300
    when: carrier.startsWith("C")
`
	if err := os.WriteFile(slow, []byte(slowPack), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, context.Background(), "rules", "lint", slow)
	if r.code != 0 || !strings.Contains(r.stdout, "not the fast path") || !strings.Contains(r.stdout, "carrier_prefix") {
		t.Errorf("lint does not name the rule off the fast path: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestRulesTest(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	tests := `tests:
  - name: replayed token is blocked
    given:
      - {token_digest: b2928e600fd62f3583b6f725c1ec1e7f37b76ea3b474688260c7a3982bf37e72}
    event: {token_digest: b2928e600fd62f3583b6f725c1ec1e7f37b76ea3b474688260c7a3982bf37e72}
    expect: {score: 900, tags: [token_replay]}
`
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(goodPack), 0o600)
	os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(tests), 0o600)
	r := runCmd(t, context.Background(), "rules", "test", dir)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "note:") {
		t.Errorf("a note though every rule matched in a test:\n%s", r.stdout)
	}

	// A rule comparing a misspelt value never matches, and a test expecting only that it does not
	// passes: rules test says which rules matched in no test.
	typo := goodPack + "  - {id: ios_night, tag: ios_night, level: 300, when: 'platform == \"iOS\" && hour_cn < 6'}\n"
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(typo), 0o600)
	os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(tests+"  - name: daytime ios passes\n    now: \"2026-01-01T06:00:00Z\"\n    event: {platform: ios}\n    expect: {not_hits: [ios_night]}\n"), 0o600)
	r = runCmd(t, context.Background(), "rules", "test", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "note: 1 of the pack's 2 rules matched in no test: ios_night;") {
		t.Errorf("rules that match in no test are not named: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(goodPack), 0o600)
	os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(tests), 0o600)

	failing := strings.Replace(tests, "score: 900", "score: 300", 1)
	os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(failing), 0o600)
	r = runCmd(t, context.Background(), "rules", "test", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 1 tests failed") {
		t.Errorf("failing test: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}

	r = runCmd(t, context.Background(), "rules", "test", filepath.Join(dir, "missing"))
	if r.code != 2 {
		t.Errorf("missing dir: exit %d, want 2", r.code)
	}

	// A problem names the file it is in: both files are read, and "line 3:40: …" named neither.
	os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(tests), 0o600)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("pack: p\nrules:\n  - {id: r1, tag: t, level: 300, when: foo}\n"), 0o600)
	r = runCmd(t, context.Background(), "rules", "test", dir)
	if want := printed(filepath.Join(dir, "rules.yaml") + ":3:40: rule r1: when: undeclared reference to 'foo'"); r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("broken pack: exit %d, stderr %s, want %q", r.code, r.stderr, want)
	}
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(goodPack), 0o600)
	os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte("tests:\n  - name: x\n    event: {}\n    expect: {scor: 0}\n"), 0o600)
	r = runCmd(t, context.Background(), "rules", "test", dir)
	if want := printed(filepath.Join(dir, "tests.yaml") + ": rules tests: line 4:14: test \"x\": expect: unknown key \"scor\""); r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("broken tests: exit %d, stderr %s, want %q", r.code, r.stderr, want)
	}
}

// TestDevOnce runs the whole pipeline in one process — embedded broker, scorer, API — on a free
// port, publishes the sample and checks the verdicts it prints.
func TestDevOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	cleanEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// With a deployment's configuration: its snapshot directory stays as it was, where dev wrote
	// the snapshot, .prev and lock of the deployment's own events topic.
	snaps := tempDir(t)
	r := runCmd(t, ctx, "dev", "--once", "--listen", "127.0.0.1:0", "--set", "scoring.snapshot_dir="+snaps)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if left, err := os.ReadDir(snaps); err != nil || len(left) != 0 {
		t.Errorf("dev wrote to scoring.snapshot_dir: %v %v", left, err)
	}
	verdicts := devVerdicts(t, r.stdout)
	farm, ok := verdicts["sample-2"]
	if !ok {
		t.Fatalf("no verdict for the datacenter sample:\n%s", r.stdout)
	}
	if farm.Score != 900 {
		t.Errorf("datacenter farm: score %d, want 900 (%v)", farm.Score, farm.Tags)
	}
	replay := verdicts["sample-3"]
	if replay.Score != 900 || !contains(replay.Tags, "token_replay") {
		t.Errorf("replayed token: score %d tags %v, want 900 with token_replay", replay.Score, replay.Tags)
	}
	if ordinary := verdicts["sample-1"]; ordinary.Score != 0 {
		t.Errorf("ordinary login: score %d tags %v", ordinary.Score, ordinary.Tags)
	}
	if !strings.Contains(r.stdout, `"score": 900`) || !strings.Contains(r.stdout, `"token_replay"`) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if m := regexp.MustCompile(`served http://127\.0\.0\.1:(\d+)`).FindStringSubmatch(r.stdout); m == nil || m[1] == "0" {
		t.Errorf("the printed address is not the real one:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "Ctrl-C") {
		t.Errorf("--once says Ctrl-C stops it, and then exits by itself:\n%s", r.stdout)
	}
	if len(verdicts) == 3 && verdicts["sample-1"].ID == verdicts["sample-2"].ID {
		t.Error("two verdicts share an id")
	}
}

// An API that cannot listen ends the process with the reason: it used to wait for ever on its
// decision log, which only stops when the process does, without a word.
func TestAPIThatCannotListenExits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	cleanEnv(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := runCmd(t, ctx, "dev", "--once", "--listen", taken.Addr().String())
	if ctx.Err() != nil {
		t.Fatalf("dev with its API address taken did not exit within a minute:\n%s", r.stderr)
	}
	if r.code != 1 || !strings.Contains(r.stderr, "listen on "+taken.Addr().String()+" (api.listen)") || !strings.Contains(r.stderr, "another process holds that port") || !strings.Contains(r.stderr, "RISKFLOW_API_LISTEN=127.0.0.1:8081 make run") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 naming the address it could not listen on", r.code, r.stderr)
	}
}

// TestDevOnceWithConfiguredKeys: api.keys set in the environment, without the dev app — the sample
// runs as a configured app instead of failing authentication.
func TestDevOnceWithConfiguredKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	cleanEnv(t)
	t.Setenv("RISKFLOW_API_KEYS", "shop:shop-secret")
	t.Setenv("RISKFLOW_API_LISTEN", "127.0.0.1:0") // dev listens on api.listen unless --listen says otherwise
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := runCmd(t, ctx, "dev", "--once")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if v := devVerdicts(t, r.stdout)["sample-3"]; v.Score != 900 {
		t.Errorf("replayed token as app shop: %+v", v)
	}
	if strings.Contains(r.stdout, "shop-secret") {
		t.Error("a configured secret was printed")
	}
}

// Ctrl-C while dev starts stops it as it stops serve, and as it stops dev once started: exit 0,
// no error. It said "riskflow: interrupted: dev: kafka: context canceled", exit 1.
func TestDevStoppedWhileStarting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	cleanEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the signal came before the node was up
	for _, args := range [][]string{{"dev", "--listen", "127.0.0.1:0"}, {"dev", "--once", "--listen", "127.0.0.1:0"}} {
		r := runCmd(t, ctx, args...)
		if r.code != 0 || strings.Contains(r.stderr, "riskflow: ") {
			t.Errorf("%v: exit %d, want 0 without an error\nstderr:\n%s", args, r.code, r.stderr)
		}
	}
}

// dev on an address reachable from other machines, with the dev key the README prints, says so
// at start; on loopback, or with keys of one's own, it does not.
func TestDevWarnsOfTheDevKeyBeyondLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	cleanEnv(t)
	const warning = "the API listens beyond this machine with the dev key"
	for _, c := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--listen", "0.0.0.0:0"}, true},
		{[]string{"--listen", "127.0.0.1:0"}, false},
		{[]string{"--listen", "0.0.0.0:0", "--set", "api.keys=shop:s3cret-of-its-own"}, false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		r := runCmd(t, ctx, append([]string{"dev", "--once", "--sample=false"}, c.args...)...)
		cancel()
		if r.code != 0 || strings.Contains(r.stderr, warning) != c.warn {
			t.Errorf("%v: exit %d, warning %v, want %v:\n%s", c.args, r.code, strings.Contains(r.stderr, warning), c.warn, r.stderr)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, ":8080": false, "0.0.0.0:8080": false, "10.0.0.5:8080": false, "host.example:8080": false} {
		if got := loopbackOnly(addr); got != want {
			t.Errorf("loopbackOnly(%s) = %v, want %v", addr, got, want)
		}
	}
}

// devVerdicts parses the indented verdicts riskflow dev prints, by ex_id.
func devVerdicts(t *testing.T, stdout string) map[string]schemas.RiskCheck {
	t.Helper()
	out := map[string]schemas.RiskCheck{}
	for rest := stdout; ; {
		i := strings.Index(rest, "{")
		if i < 0 {
			return out
		}
		dec := json.NewDecoder(strings.NewReader(rest[i:]))
		var rc schemas.RiskCheck
		if err := dec.Decode(&rc); err != nil {
			t.Fatalf("verdict does not parse: %v\n%s", err, rest[i:])
		}
		out[rc.ExID] = rc
		rest = rest[i+int(dec.InputOffset()):]
	}
}

// dev --once --sample=false has nothing to print verdicts for: it exits once the node is ready.
func TestDevOnceWithoutSample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	cleanEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := runCmd(t, ctx, "dev", "--listen", "127.0.0.1:0", "--sample=false", "--once")
	if r.code != 0 || ctx.Err() != nil {
		t.Fatalf("exit %d (ctx %v)\nstdout:\n%s\nstderr:\n%s", r.code, ctx.Err(), r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`ready at http://127\.0\.0\.1:[1-9]\d*; stopping \(--once\)`).MatchString(r.stdout) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
}

// dev --once is a smoke test of the configuration: a configured ClickHouse that does not answer
// fails it, naming the key, instead of passing while the archiver could store nothing.
func TestDevOnceFailsOnUnreachableClickHouse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	cleanEnv(t)
	addr := testaddr.Free(t)
	t.Setenv("RISKFLOW_CLICKHOUSE_ADDR", addr)
	for _, sample := range []string{"--sample=true", "--sample=false"} {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		r := runCmd(t, ctx, "dev", "--listen", "127.0.0.1:0", sample, "--once")
		cancel()
		if r.code == 0 || !strings.Contains(r.stderr, "clickhouse.addr "+addr+" does not answer") {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", sample, r.code, r.stdout, r.stderr)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestNodePrefix(t *testing.T) {
	p := nodePrefix("riskflow-api-7d9f8-x2x4z")
	if !regexp.MustCompile(`^riskflow-[0-9a-f]{16}-$`).MatchString(p) {
		t.Errorf("prefix %q", p)
	}
	if p := nodePrefix(""); !strings.HasPrefix(p, "-") || len(p) != 18 {
		t.Errorf("empty host: %q", p)
	}
}

func TestSampleApp(t *testing.T) {
	if c := sampleApp(map[string]string{"demo": "demo-secret", "a": "b"}); c.key != "demo" {
		t.Errorf("dev key present: %+v", c)
	}
	if c := sampleApp(map[string]string{"zz": "1", "aa": "2"}); c.key != "aa" || c.secret != "2" {
		t.Errorf("configured keys: %+v", c)
	}
}

// dev names the credentials its sample used: "and the other configured keys" only when there are
// others (RISKFLOW_API_KEYS=a:x, one key, printed "app key "a" and the other configured keys").
func TestDevCredentials(t *testing.T) {
	for _, c := range []struct {
		app  credentials
		keys int
		want string
	}{
		{credentials{"demo", "demo-secret"}, 1, `app key "demo", secret "demo-secret"`},
		{credentials{"a", "x"}, 1, `app key "a", its secret as configured`},
		{credentials{"a", "x"}, 2, `app key "a" and the other configured keys`},
	} {
		if got := devCredentials(c.app, c.keys); got != c.want {
			t.Errorf("%+v of %d keys: %q, want %q", c.app, c.keys, got, c.want)
		}
	}
}

// A build without a VCS checkout (the container image) says the version and revision it was
// stamped with; the toolchain's own stamps win when there are any.
func TestFormatVersion(t *testing.T) {
	plain := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"}}}
	if got, want := formatVersion(plain, true, "v0.10.0", "3f2a9c0"), "riskflow v0.10.0\nrevision 3f2a9c0\ngo 1.26.8 linux/amd64\n"; got != want {
		t.Errorf("stamped by -ldflags:\n%s\nwant\n%s", got, want)
	}
	if got := formatVersion(plain, true, "", ""); !strings.HasPrefix(got, "riskflow (devel)\nrevision unknown (built without VCS stamping") {
		t.Errorf("no stamps:\n%s", got)
	}
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.11.0"},
		Settings: append(slices.Clone(plain.Settings), debug.BuildSetting{Key: "vcs.revision", Value: "abc123"}, debug.BuildSetting{Key: "vcs.modified", Value: "true"})}
	if got, want := formatVersion(vcs, true, "v0.10.0", "3f2a9c0"), "riskflow v0.11.0\nrevision abc123 (modified)\ngo 1.26.8 linux/amd64\n"; got != want {
		t.Errorf("the toolchain's stamps:\n%s\nwant\n%s", got, want)
	}
}

// The Dockerfile stamps variables this package has: -X of a name that does not exist is
// silently ignored by the linker, and the image would say "revision unknown" again.
func TestDockerfileStampsExistingVariables(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]*string{"stampedVersion": &stampedVersion, "stampedRevision": &stampedRevision}
	found := regexp.MustCompile(`-X main\.(\w+)=`).FindAllStringSubmatch(string(b), -1)
	if len(found) != len(vars) {
		t.Fatalf("the Dockerfile stamps %d variables, want %d (%v)", len(found), len(vars), found)
	}
	for _, m := range found {
		if vars[m[1]] == nil {
			t.Errorf("the Dockerfile stamps main.%s, which cmd/riskflow does not have", m[1])
		}
	}
}

// riskflow_build_info carries the stamps of a build without .git, as riskflow version does.
func TestBuildInfoStamped(t *testing.T) {
	plain := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	if v, r, g := buildInfoOf(plain, true, "v0.10.0", "3f2a9c0d1e2b4a5f6789"); v != "v0.10.0" || r != "3f2a9c0d1e2b" || g != "go1.26.8" {
		t.Errorf("stamped: %q %q %q", v, r, g)
	}
	if v, r, _ := buildInfoOf(plain, true, "", ""); v != "(devel)" || r != "unknown" {
		t.Errorf("not stamped: %q %q", v, r)
	}
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.11.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef0123456789"}}}
	if v, r, _ := buildInfoOf(vcs, true, "v0.10.0", "3f2a9c0"); v != "v0.11.0" || r != "abcdef012345" {
		t.Errorf("the toolchain's stamps win: %q %q", v, r)
	}
}

// printed is s as the command line prints it: errors are masked on the way out, and a temporary
// directory's random digits (TestX1437922601/002) can read as a phone number.
func printed(s string) string { return schemas.MaskPhones(s) }

// A value that fails validation is named with where it was set — the file's line, the variable,
// --set — as the README promises for bad configuration; a key left at its default has nothing.
func TestInvalidConfigurationNamesWhereEachKeyWasSet(t *testing.T) {
	cleanEnv(t)
	path := filepath.Join(tempDir(t), "c.yaml")
	if err := os.WriteFile(path, []byte("kafka:\n  partitions: -1\napi:\n  max_body_bytes: 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RISKFLOW_KAFKA_SCORER_BATCH", "-5")
	r := runCmd(t, context.Background(), "rules", "vars", "--config", path, "--set", "kafka.stall_after=-1s")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		printed("kafka.partitions: -1 is outside 1..1024 (" + path + " line 2)"),
		printed("api.max_body_bytes: 10 is below 1024 (" + path + " line 4)"),
		"(env RISKFLOW_KAFKA_SCORER_BATCH)",
		"(--set)",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// smallPack is a one-rule pack that only reads a 10-minute window.
const smallPack = `pack: small
rules:
  - id: many_phones
    tag: phones_per_ip
    description: many phones from one IP
    owner: risk
    level: 600
    mode: enforce
    when: ip_phones_10m >= 3
    reason: "{ip_phones_10m} phones from this IP in 10 min"
`

// rules lint FILE and rules test DIR judge the pack they are given, not the configured one: with
// windows of its own (the default pack reads 1h and 24h windows and does not compile without
// them) or a scoring.rules file that does not compile, a pack of 10-minute rules still lints and
// passes its tests. Both failed with the other pack's errors, named "scoring.rules: line 106:11".
func TestRulesLintAndTestJudgeOnlyTheirPack(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	pack := filepath.Join(dir, "p")
	if err := os.Mkdir(pack, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(pack, "rules.yaml"), smallPack)
	write(filepath.Join(pack, "tests.yaml"), `tests:
  - name: three phones from one IP
    given:
      - {phone: "13912345601", ip: 198.51.100.7}
      - {phone: "13912345602", ip: 198.51.100.7}
    event: {phone: "13912345603", ip: 198.51.100.7}
    expect: {score: 600, tags: [phones_per_ip]}
`)
	broken := filepath.Join(dir, "broken.yaml")
	write(broken, "pack: broken\nrules:\n  - id: x\n    when: no_such_variable > 1\n")
	for _, setting := range []string{"scoring.windows=1m,10m", "scoring.rules=" + broken} {
		if r := runCmd(t, context.Background(), "rules", "lint", filepath.Join(pack, "rules.yaml"), "--set", setting); r.code != 0 {
			t.Errorf("rules lint with %s: exit %d: %s", setting, r.code, r.stderr)
		}
		if r := runCmd(t, context.Background(), "rules", "test", pack, "--set", setting); r.code != 0 || !strings.Contains(r.stdout, "1 passed, 0 failed") {
			t.Errorf("rules test with %s: exit %d: %s%s", setting, r.code, r.stdout, r.stderr)
		}
	}
}

// backtest --current judges the two packs it is given: a scoring.rules that does not compile is
// not the current pack then and does not stop the run before it reads the history (here from a
// ClickHouse that does not answer: a runtime error, exit 1, not the other pack's errors, exit 2).
func TestBacktestWithCurrentIgnoresTheConfiguredPack(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	pack := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(pack, []byte(smallPack), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("pack: broken\nrules:\n  - id: x\n    when: no_such_variable > 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := runCmd(t, context.Background(), "backtest", "--rules", pack, "--current", pack, "--from", "1h",
		"--set", "scoring.rules="+broken, "--set", "clickhouse.addr="+addr, "--set", "clickhouse.dial_timeout=1s")
	if r.code != 1 || strings.Contains(r.stderr, "no_such_variable") {
		t.Errorf("exit %d, want 1 (ClickHouse away), not the configured pack's errors: %s", r.code, r.stderr)
	}
}

// A missing config file that RISKFLOW_CONFIG named (an export left from another shell) says so:
// the command line shows no --config to blame. One given with --config needs no such note.
func TestMissingConfigFromTheEnvironmentSaysSo(t *testing.T) {
	cleanEnv(t)
	missing := filepath.Join(tempDir(t), "gone.yaml")
	t.Setenv("RISKFLOW_CONFIG", missing)
	r := runCmd(t, context.Background(), "migrate")
	if r.code != 2 || !strings.Contains(r.stderr, printed(missing)) || !strings.Contains(r.stderr, "the file RISKFLOW_CONFIG names") {
		t.Errorf("exit %d, want 2 naming %s and RISKFLOW_CONFIG: %s", r.code, missing, r.stderr)
	}
	r = runCmd(t, context.Background(), "migrate", "--config", missing)
	if r.code != 2 || !strings.Contains(r.stderr, printed(missing)) || strings.Contains(r.stderr, "RISKFLOW_CONFIG") {
		t.Errorf("--config: exit %d, want 2 naming %s only: %s", r.code, missing, r.stderr)
	}
	// A missing file named by a RISKFLOW_…_FILE variable is that variable's, not RISKFLOW_CONFIG's
	// (which is not even set): the note would send the user to the wrong variable.
	os.Unsetenv("RISKFLOW_CONFIG")
	t.Setenv("RISKFLOW_SCORING_PHONE_HASH_KEY_FILE", missing)
	r = runCmd(t, context.Background(), "migrate")
	if r.code != 2 || !strings.Contains(r.stderr, "RISKFLOW_SCORING_PHONE_HASH_KEY_FILE") || strings.Contains(r.stderr, "RISKFLOW_CONFIG") {
		t.Errorf("_FILE: exit %d, want 2 naming RISKFLOW_SCORING_PHONE_HASH_KEY_FILE only: %s", r.code, r.stderr)
	}
}

// The first Ctrl-C asks for a clean stop; a second one ends the process at once, however long
// the stop takes. The child is this test binary, stopping "slowly" after its first signal.
func TestSecondInterruptEndsTheProcess(t *testing.T) {
	if os.Getenv("STOPCONTEXT_TEST_HELPER") != "" {
		ctx, stop := stopContext()
		defer stop()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("stopping")
		time.Sleep(time.Minute) // a shutdown that waits on something that does not answer
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondInterruptEndsTheProcess$")
	cmd.Env = append(os.Environ(), "STOPCONTEXT_TEST_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for _, want := range []string{"ready", "stopping"} {
		for lines.Scan() && lines.Text() != want {
		}
		if lines.Text() != want {
			cmd.Process.Kill()
			t.Fatalf("the child did not say %q", want)
		}
		cmd.Process.Signal(os.Interrupt)
	}
	err = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("after a second Ctrl-C during its stop the process ended with %v, want killed by SIGINT", err)
	}
}

// Every example a help prints is a command line its command takes: run with --help appended, each
// flag is known and each value parses (an unknown flag, or a bad value, is a usage error before the
// --help is reached).
func TestHelpExamplesParse(t *testing.T) {
	cleanEnv(t)
	n := 0
	var walk func(c *command)
	walk = func(c *command) {
		for _, e := range c.examples {
			n++
			line, _, _ := strings.Cut(e, "  #")
			args, ok := splitExample(line)
			if !ok || len(args) == 0 || args[0] != "riskflow" {
				t.Errorf("%s: example %q is not a riskflow command line", c.path(), e)
				continue
			}
			if !strings.HasPrefix(line, c.path()+" ") {
				t.Errorf("%s: example %q runs another command", c.path(), e)
			}
			r := runCmd(t, context.Background(), append(args[1:], "--help")...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, c.usageLine()) {
				t.Errorf("%s: example %q: exit %d\n%s", c.path(), e, r.code, r.stderr)
			}
		}
		if c.run != nil && c.parent != nil && c.name != "help" && c.name != "version" && c.name != "vars" && c.name != "bench" && len(c.examples) == 0 {
			t.Errorf("%s --help has no example", c.path())
		}
		for _, s := range c.subs {
			walk(s)
		}
	}
	walk(root())
	if r := runCmd(t, context.Background(), "lookup", "--help"); !strings.Contains(r.stdout, "\nexamples:\n  riskflow lookup --phone") {
		t.Errorf("lookup --help does not print its examples:\n%s", r.stdout)
	}
	t.Logf("%d examples", n)
}

// splitExample splits a command line as a shell does for the simple lines of the examples: words
// separated by spaces, "double quotes" keeping spaces; anything else a shell would treat specially
// makes it not ok.
func splitExample(line string) ([]string, bool) {
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("|&;<>$`'\\*?", r) && !quoted:
			return nil, false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, !quoted
}

// An error the command line prints never echoes a phone number, whichever value carried it: a
// flag's value the flag package quotes, a configuration value its check quotes, a file name.
func TestRunErrorsMaskPhones(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{
		{"lookup", "--phone", "13800000000", "--since", "13812345678"},
		{"lookup", "--phone", "13800000000", "--limit", "+86 138 1234 5678"},
		{"lookup", "--phone", "13800000000", "--set", "scoring.phone_hash_key=0123456789abcdef0123456789abcdef", "--set", "clickhouse.addr=127.0.0.1:1", "--set", "clickhouse.database=13812345678", "--api", "none"},
		{"rules", "lint", filepath.Join(tempDir(t), "13812345678.yaml")},
	} {
		r := runCmd(t, context.Background(), args...)
		if r.code == 0 {
			t.Errorf("%q: exit 0", args)
		}
		if strings.Contains(strings.NewReplacer(" ", "", "+86", "").Replace(r.stderr), "13812345678") || !strings.Contains(r.stderr, "<phone>") {
			t.Errorf("%q: stderr echoes the number (or does not show <phone>): %s", args, r.stderr)
		}
	}
}

// backtest says what it replays before it reads (its first progress line comes 100,000 events
// in): the period in UTC and in China time — a bare date is UTC midnight, 08:00 in China, which
// the report's "2026-12-01T00:00:00Z" alone left to be noticed — the warm-up, both packs, how
// many labels a --labels file gave, and a --from in the future.
func TestBacktestSaysWhatItReplays(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	labels := filepath.Join(dir, "labels.csv")
	if err := os.WriteFile(labels, []byte("app1,ev-1,fraud\napp1,ev-2,legit\napp1,ev-1,legit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testaddr.Free(t) // nothing listens there: the run ends at the read
	r := runCmd(t, context.Background(), "backtest", "--rules", "../../rules/packs/default/rules.yaml", "--from", "2026-12-01", "--to", "2026-12-02T00:00:00+08:00",
		"--labels", labels, "--stored-labels=false", "--no-record", "--set", "clickhouse.addr="+addr, "--set", "clickhouse.dial_timeout=1s")
	for _, want := range []string{
		"backtest: 2 labelled events from --labels\n",
		"backtest: replaying 2026-12-01T00:00:00Z to 2026-12-01T16:00:00Z (China time 2026-12-01 08:00 to 2026-12-02 00:00) after 24h of warm-up: current default@",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 1 || strings.Contains(r.stderr, "future") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
	from := time.Now().UTC().Add(50 * time.Hour).Format(time.RFC3339)
	r = runCmd(t, context.Background(), "backtest", "--rules", "../../rules/packs/default/rules.yaml", "--from", from, "--to", "2099-01-01",
		"--stored-labels=false", "--no-record", "--set", "clickhouse.addr="+addr, "--set", "clickhouse.dial_timeout=1s")
	if want := "backtest: --from " + from + " is 50h in the future"; !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "in the future: no events are stored there yet") {
		t.Errorf("a --from 50 h ahead: stderr lacks %q:\n%s", want, r.stderr)
	}
	r = runCmd(t, context.Background(), "backtest", "--help")
	if !strings.Contains(r.stdout, "2006-01-02 (UTC midnight: a China day starts at 2006-01-02T00:00:00+08:00)") {
		t.Errorf("--help does not say a date is UTC midnight:\n%s", r.stdout)
	}
}

// backtest reads its candidate pack, or its --labels file, from standard input when given "-", as
// rules lint, label --file and produce do (git show cand:rules.yaml | riskflow backtest --rules -):
// it answered "rules: stat -: no such file or directory". One of them at most: there is one stdin.
func TestBacktestReadsStandardInput(t *testing.T) {
	cleanEnv(t)
	addr := testaddr.Free(t) // nothing listens there: the run ends at the read
	pack, err := os.ReadFile("../../rules/packs/default/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"--from", "1h", "--stored-labels=false", "--no-record", "--set", "clickhouse.addr=" + addr, "--set", "clickhouse.dial_timeout=1s"}
	var r result
	withStdin(t, strings.Replace(string(pack), "pack: default", "pack: piped", 1), func() {
		r = runCmd(t, context.Background(), append([]string{"backtest", "--rules", "-"}, common...)...)
	})
	if r.code != 1 || !strings.Contains(r.stderr, "candidate piped@") {
		t.Errorf("--rules -: exit %d, want 1 (ClickHouse away) after replaying the piped pack:\n%s", r.code, r.stderr)
	}
	withStdin(t, "pack: broken\nrules:\n  - id: x\n    tag: x\n    level: 300\n    when: no_such_variable > 1\n", func() {
		r = runCmd(t, context.Background(), append([]string{"backtest", "--rules", "-"}, common...)...)
	})
	if r.code != 1 || !strings.Contains(r.stderr, "--rules stdin: rejected") || !strings.Contains(r.stderr, "no_such_variable") {
		t.Errorf("a broken pack on stdin: exit %d, want 1 (as rules lint) naming stdin and the problem:\n%s", r.code, r.stderr)
	}
	withStdin(t, "app1,ev-1,fraud\napp1,ev-2,legit\n", func() {
		r = runCmd(t, context.Background(), append([]string{"backtest", "--rules", "../../rules/packs/default/rules.yaml", "--labels", "-"}, common...)...)
	})
	if r.code != 1 || !strings.Contains(r.stderr, "backtest: 2 labelled events from --labels") {
		t.Errorf("--labels -: exit %d:\n%s", r.code, r.stderr)
	}
	r = runCmd(t, context.Background(), append([]string{"backtest", "--rules", "-", "--labels", "-"}, common...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "one of --rules, --current and --labels can read standard input") {
		t.Errorf("--rules - --labels -: exit %d:\n%s", r.code, r.stderr)
	}
}

// What logs through slog's default logger or the standard library's log package — a package
// given no logger falls back to them — is masked as every command's logger masks it.
func TestDefaultLoggerMasksPhones(t *testing.T) {
	before, beforeFlags := slog.Default(), log.Flags()
	t.Cleanup(func() { slog.SetDefault(before); log.SetFlags(beforeFlags) })
	var b syncbuf.Buffer // a goroutine of an earlier test may log through the default too
	maskDefaultLogger(&b)
	slog.Warn("could not read 13812348000", "value", "+86 138 1234 8001", "err", errors.New("bad 13812348002"))
	log.Printf("http: TLS handshake error from 13812348003")
	out := b.String()
	if !strings.Contains(out, "could not read "+schemas.PhoneMask) || !strings.Contains(out, "TLS handshake error from "+schemas.PhoneMask) ||
		schemas.MaskPhones(out) != out || strings.Count(out, schemas.PhoneMask) < 4 {
		t.Errorf("default logger wrote:\n%s", out)
	}
}

// A pack that does not compile is a failure (exit 1) naming its problems, for `backtest` as for
// `rules lint` and `rules test`; no pack to read (a missing file) is a usage error (exit 2) for
// each. backtest exited 2 for the pack lint refused with 1.
func TestRejectedPackExitsAlike(t *testing.T) {
	cleanEnv(t)
	t.Setenv("RISKFLOW_CLICKHOUSE_ADDR", "127.0.0.1:1") // never dialled: the packs are compiled first
	dir := tempDir(t)
	bad := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(bad, []byte("pack: bad\nrules:\n  - {id: r1, tag: t, level: 600, when: 'nope > 1'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte("tests:\n  - {name: t, event: {}, expect: {score: 0}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	good := "../../rules/packs/default/rules.yaml"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rules", "lint", bad}, 1, "rule r1: when: undeclared reference to 'nope'"},
		{[]string{"rules", "test", dir}, 1, "rule r1: when: undeclared reference to 'nope'"},
		{[]string{"backtest", "--rules", bad, "--from", "1h"}, 1, "rule r1: when: undeclared reference to 'nope'"},
		{[]string{"backtest", "--rules", good, "--current", bad, "--from", "1h"}, 1, "--current " + bad + ": rejected"},
		{[]string{"rules", "lint", missing}, 2, "no such file"},
		{[]string{"backtest", "--rules", missing, "--from", "1h"}, 2, "--rules: stat " + missing + ": no such file"},
	} {
		r := runCmd(t, context.Background(), c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("riskflow %s: exit %d, want %d with %q\nstderr: %s", strings.Join(c.args, " "), r.code, c.code, c.want, r.stderr)
		}
	}
}

// A --from or --to ClickHouse cannot store is a usage error naming the flag: a backtest from
// 1900-01-01 exited 1 with "read events: period 1899-12-31… to … is outside what ClickHouse
// DateTime stores", after reading the stored labels, naming neither the flag nor the time typed.
func TestBacktestPeriodOutsideWhatClickHouseStores(t *testing.T) {
	cleanEnv(t)
	addr := testaddr.Free(t) // never reached
	for flag, args := range map[string][]string{
		"--from": {"--from", "1900-01-01"},
		"--to":   {"--from", "24h", "--to", "2200-01-01"},
	} {
		r := runCmd(t, context.Background(), append([]string{"backtest", "--rules", "../../rules/packs/default/rules.yaml",
			"--no-record", "--set", "clickhouse.addr=" + addr, "--set", "clickhouse.dial_timeout=1s"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, flag+": ") || !strings.Contains(r.stderr, "outside what ClickHouse stores") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, r.code, r.stderr)
		}
	}
}
