package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/ruletest"
)

// rulesCommand is `riskflow rules` and its subcommands.
func rulesCommand() *command {
	return &command{name: "rules", args: "COMMAND [flags] [arguments]", summary: "lint, test and report on rule packs",
		doc: "Works with rule packs: CEL rules over the variables this build declares (rules vars).",
		subs: []*command{
			{name: "lint", args: "[flags] FILE", summary: "compile a pack against the declared variables and say which rules are off the fast path",
				doc: "Compiles FILE against the variables this build declares; names the file and each rule that\n" +
					"does not compile, and lists the rules evaluated by cel-go's interpreter rather than the fast path.\n" +
					"FILE - reads the pack from standard input (git show main:rules/packs/default/rules.yaml | riskflow rules lint -).",
				examples: []string{"riskflow rules lint my-pack/rules.yaml"},
				run:      cmdRulesLint},
			{name: "test", args: "[flags] DIR", summary: "run DIR/tests.yaml against DIR/rules.yaml",
				doc: "Runs the rule tests DIR/tests.yaml (given events, an event, the expected score and tags)\n" +
					"against the pack DIR/rules.yaml with fresh scorers; exit 1 when a test fails.",
				examples: []string{"riskflow rules test rules/packs/default"},
				run:      cmdRulesTest},
			{name: "vars", args: "[flags]", summary: "list the variables rules may use, with type and meaning",
				run: cmdRulesVars},
			{name: "report", args: "[flags]", summary: "per-rule hit rates from ClickHouse, shadow beside enforced, with the trend",
				doc: "Prints each rule's hits over --window from ClickHouse, shadow rules beside enforced ones,\n" +
					"with the trend against the window before it and an hourly sparkline.",
				examples: []string{"riskflow rules report --window 24h --app app1"},
				run:      cmdRulesReportCmd},
			{name: "versions", args: "[flags]", summary: "list the rule pack versions recorded in ClickHouse, newest first",
				doc: "Lists rule_versions: each version's latest load — when, by whom, from where — newest first.\n" +
					"--loads lists the audit trail instead (rule_loads): every promotion and rollback, and each\n" +
					"version's first load by a node, newest first, a version as often as it was loaded.",
				examples: []string{"riskflow rules versions --loads"},
				run:      cmdRulesVersions},
			{name: "rollback", args: "[flags] VERSION", summary: "load a recorded version again: its exact bytes, into the pack file",
				doc: "Reads VERSION's exact bytes from rule_versions, compiles them against this build's variables,\n" +
					"writes them to scoring.rules (every node watching the file loads them within\n" +
					"scoring.reload_interval) and records the load with who did it. On a node, the same is\n" +
					"POST /v1/rules/rollback {\"version\": \"VERSION\"} with an admin key. --from LIVE refuses it when the\n" +
					"file no longer holds LIVE (a promotion came meanwhile), instead of undoing that one unseen.",
				examples: []string{"riskflow rules rollback 20a5efa98aff89c6 --from 7c41d0e2b9a85f13 --config riskflow.yaml"},
				run:      cmdRulesRollback},
		}}
}

// rulesScorer builds a scorer from the configuration (without its rule pack file) for the
// commands that compile packs against its declared variables.
func rulesScorer(cf *commonFlags, stderr io.Writer) (Config, *scoring.Scorer, error) {
	cfg, err := cf.load(nil)
	if err != nil {
		return cfg, nil, err
	}
	log := newLogger(LogConfig{Level: "error", Format: "text"}, stderr)
	s, err := buildScorerWithoutPack(cfg.Scoring, schemas.NewPhoneHasher([]byte("rules-cli")), log)
	return cfg, s, err
}

func cmdRulesVars(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules vars", stderr)
	var cf commonFlags
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("rules vars: takes no arguments")
	}
	_, s, err := rulesScorer(&cf, stderr)
	if err != nil {
		return err
	}
	vars := s.Env().Vars()
	sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
	for _, v := range vars {
		fmt.Fprintf(stdout, "%-24s %-7s %s\n", v.Name, v.Type, v.Doc)
	}
	return nil
}

// maxLintBytes bounds a pack read from standard input.
const maxLintBytes = 16 << 20

func cmdRulesLint(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules lint", stderr)
	var cf commonFlags
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("rules lint: exactly one FILE (- for standard input) is required")
	}
	name := fs.Arg(0)
	var data []byte
	if name == "-" {
		// A pack piped in (an editor's buffer, git show REV:rules/packs/default/rules.yaml): named "stdin" in errors.
		b, err := io.ReadAll(io.LimitReader(os.Stdin, maxLintBytes+1))
		switch {
		case err != nil:
			return fmt.Errorf("rules lint: read standard input: %w", err)
		case len(b) > maxLintBytes:
			return usagef("rules lint: standard input holds more than %d MiB: no rule pack is that large", maxLintBytes>>20)
		}
		data, name = b, "stdin"
	} else {
		st, err := os.Stat(name)
		if err != nil {
			// Not a pack that was rejected: no pack at all, as rules test says of a missing DIR.
			return usageError{fmt.Errorf("rules lint: %w", err)}
		}
		if st.IsDir() {
			return usagef("rules lint: %s is a directory: give its pack file (riskflow rules lint %s)", name, filepath.Join(name, "rules.yaml"))
		}
	}
	_, s, err := rulesScorer(&cf, stderr)
	if err != nil {
		return err
	}
	var p *rules.Pack
	if data != nil {
		p, err = rules.Lint(data, s.Env())
	} else {
		p, err = rules.LintFile(name, s.Env())
	}
	if err != nil {
		return fmt.Errorf("%s: rejected:\n%w", name, err)
	}
	fmt.Fprintf(stdout, "%s: pack %q version %s, %d rules: ok\n", name, p.Name, p.Version, len(p.Rules))
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
}

func cmdRulesTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules test", stderr)
	var cf commonFlags
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("rules test: exactly one DIR (holding rules.yaml and tests.yaml) is required")
	}
	if st, err := os.Stat(fs.Arg(0)); err == nil && !st.IsDir() {
		return usagef("rules test: %s is a file: give the pack's directory, holding rules.yaml and tests.yaml (riskflow rules test %s)", fs.Arg(0), filepath.Dir(fs.Arg(0)))
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	return runRuleTests(ctx, filepath.Join(fs.Arg(0), "rules.yaml"), filepath.Join(fs.Arg(0), "tests.yaml"), cfg.Scoring, stdout)
}

func cmdRulesReportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules report", stderr)
	var cf commonFlags
	cf.register(fs)
	window := spanFlag(24 * time.Hour)
	fs.Var(&window, "window", "the period to report, compared with the period before it (at least 1h): 24h, 90m, 7d")
	app := fs.String("app", "", "one app_id only")
	asJSON := fs.Bool("json", false, "print the report as one JSON object (rates as fractions, every hour of the window)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("rules report: takes no arguments")
	}
	// Checked as the API checks an app_id: the report prints it, so it must not hold a number.
	if err := schemas.CheckID("app_id", *app, schemas.MaxAppIDLen); err != nil {
		return usagef("--app: %s", err.(*schemas.FieldError).Reason)
	}
	// Checked with the other flags, before the configuration: a window too short was named only once
	// clickhouse.addr was set (and without its value).
	if time.Duration(window) < time.Hour {
		return usagef("--window: %s is shorter than the report's hours: give 1h or more (24h, 90m, 7d)", window.String())
	}
	// The report compares the window with the one before it: both must lie after 1970, where
	// ClickHouse's DateTime begins (20000d was refused by the query, naming no flag).
	if most := time.Since(time.Unix(0, 0)) / 2; time.Duration(window) > most {
		return usagef("--window: %s, and the period before it that the report compares, reach back before 1970, where ClickHouse's history begins: at most %s",
			window.String(), shortDuration(most/(24*time.Hour)*(24*time.Hour)))
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	return cmdRulesReport(ctx, cfg, time.Duration(window), *app, *asJSON, stdout)
}

// runRuleTests runs DIR/tests.yaml against DIR/rules.yaml with fresh scorers built from cfg.
func runRuleTests(ctx context.Context, packPath, testsPath string, cfg ScoringConfig, stdout io.Writer) error {
	pack, err := rules.ReadPackFile(packPath)
	if err != nil {
		return usageError{fmt.Errorf("rules test: %w", err)}
	}
	tests, err := os.ReadFile(testsPath)
	if err != nil {
		return usageError{fmt.Errorf("rules test: %w", err)}
	}
	log := newLogger(LogConfig{Level: "error", Format: "text"}, io.Discard)
	newScorer := func() (*scoring.Scorer, error) {
		return buildScorerWithoutPack(cfg, schemas.NewPhoneHasher([]byte("rules-test")), log)
	}
	// The pack first, so that its problems name its file (and all of them, as lint does); then
	// a problem of Run's is one of tests.yaml's: "line 6:11: …" named neither.
	s, err := newScorer()
	if err != nil {
		return err
	}
	p, err := rules.LintFile(packPath, s.Env())
	if err != nil {
		return fmt.Errorf("rules test: %s: rejected:\n%w", packPath, err)
	}
	results, err := ruletest.RunContext(ctx, pack, tests, newScorer)
	if err != nil {
		return fmt.Errorf("rules test: %s: %w", testsPath, err)
	}
	text, failed := ruletest.Summary(results)
	fmt.Fprint(stdout, text)
	if idle := ruletest.Unmatched(p, results); len(idle) > 0 {
		// Passing tests say nothing of a rule that never matches (a misspelt value it compares).
		names := strings.Join(idle[:min(len(idle), 20)], ", ")
		if len(idle) > 20 {
			names += fmt.Sprintf(" and %d more", len(idle)-20)
		}
		fmt.Fprintf(stdout, "note: %d of the pack's %d rules matched in no test: %s; a rule no test makes match may never match in production either "+
			"(platform == \"iOS\" for \"ios\"): add a test in which each one matches\n", len(idle), len(p.Rules), names)
	}
	if failed > 0 {
		return fmt.Errorf("rules test: %d of %d tests failed", failed, len(results))
	}
	return nil
}

func cmdRulesVersions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules versions", stderr)
	var cf commonFlags
	cf.register(fs)
	loads := fs.Bool("loads", false, "list every load (rule_loads, the audit trail), not each version's latest")
	asJSON := fs.Bool("json", false, "print the list as one JSON object, as GET /v1/rules/versions names the fields")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("rules versions: takes no arguments")
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	if cfg.ClickHouse.Addr == "" {
		return configf("clickhouse.addr: required to read rule_versions (RISKFLOW_CLICKHOUSE_ADDR)")
	}
	// Read as rules report and lookup read: without applying the schema first, as a node's store
	// does. A database of another name (a typo in clickhouse.database) is said to be missing; it
	// was created, with every table, and listed as holding no version.
	st, err := openStore(ctx, cfg.ClickHouse, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	read := (*chsink.Store).RuleVersions
	if *loads {
		read = (*chsink.Store).RuleLoads
	}
	rows, err := read(st, ctx, 0)
	if err != nil {
		return fmt.Errorf("rules versions: %w", chsink.MissingTable(err))
	}
	list := make([]rulesvc.Version, len(rows))
	for i, r := range rows {
		list[i] = fromChsink(r)
	}
	if *asJSON {
		return writeVersionsJSON(stdout, list)
	}
	tw := newColumns(stdout) // text/tabwriter's alignment, by the columns a terminal gives a character
	fmt.Fprintln(tw, "version\tpack\trules\tloaded at\tloaded by\tsource")
	for _, v := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", v.Version, v.Name, v.Rules, v.LoadedAt.Format(time.RFC3339), v.LoadedBy, v.Source)
	}
	tw.Flush()
	if len(list) == 0 && *loads {
		fmt.Fprintln(stdout, "no rule pack load recorded yet")
	} else if len(list) == 0 {
		fmt.Fprintln(stdout, "no rule pack version recorded yet")
	}
	return nil
}

// versionJSON is one version of rules versions --json, named as GET /v1/rules/versions names it.
type versionJSON struct {
	Version  string    `json:"version"`
	Pack     string    `json:"pack"`
	Rules    int       `json:"rules"`
	LoadedAt time.Time `json:"loaded_at"`
	LoadedBy string    `json:"loaded_by"`
	Source   string    `json:"source"`
}

// writeVersionsJSON prints list as {"versions": [...]}, newest first; none is an empty list.
func writeVersionsJSON(w io.Writer, list []rulesvc.Version) error {
	out := struct {
		Versions []versionJSON `json:"versions"`
	}{Versions: make([]versionJSON, 0, len(list))}
	for _, v := range list {
		out.Versions = append(out.Versions, versionJSON{Version: v.Version, Pack: v.Name, Rules: v.Rules,
			LoadedAt: v.LoadedAt.UTC(), LoadedBy: v.LoadedBy, Source: v.Source})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("rules versions: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func cmdRulesRollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules rollback", stderr)
	var cf commonFlags
	cf.register(fs)
	from := fs.String("from", "", "roll back only if the pack file still holds this `VERSION` (the live one you mean to undo): a promotion or rollback made meanwhile is then refused, not undone unseen")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("rules rollback: exactly one VERSION is required (riskflow rules versions lists them)")
	}
	if !isPackVersion(fs.Arg(0)) {
		return usagef("rules rollback: VERSION %s is not a rule pack version: 16 hex digits, as riskflow rules versions lists them", schemas.Excerpt(fs.Arg(0), 40))
	}
	if *from != "" && !isPackVersion(*from) {
		return usagef("rules rollback: --from %s is not a rule pack version: 16 hex digits, as riskflow rules versions lists them", schemas.Excerpt(*from, 40))
	}
	cfg, s, err := rulesScorer(&cf, stderr)
	if err != nil {
		return err
	}
	var problems []string
	if cfg.ClickHouse.Addr == "" {
		problems = append(problems, "clickhouse.addr: required to read rule_versions (RISKFLOW_CLICKHOUSE_ADDR)")
	}
	if cfg.Scoring.Rules == "" {
		problems = append(problems, "scoring.rules: required: the rollback is written to the pack file the nodes watch (on one node: POST /v1/rules/rollback)")
	}
	if len(problems) > 0 {
		return configf("%s", strings.Join(problems, "\n"))
	}
	// The version is read first as rules versions reads: without applying the schema. The rule-pack
	// service's history applies it at its first use, and against a clickhouse.database that does
	// not exist (a typo) it created that database with every table, then found no such version.
	st, err := openStore(ctx, cfg.ClickHouse, nil)
	if err != nil {
		return err
	}
	_, err = st.RuleVersion(ctx, fs.Arg(0))
	st.Close()
	if err != nil && !errors.Is(err, chsink.ErrNoRuleVersion) {
		return fmt.Errorf("rules rollback: ClickHouse %s, database %s (clickhouse.addr, clickhouse.database): %w",
			cfg.ClickHouse.Addr, cfg.ClickHouse.Database, chsink.MissingTable(err))
	}
	svc := newRuleService(cfg, s, newLogger(LogConfig{Level: "error", Format: "text"}, stderr), nil)
	// Read the pack file as a node does, so that the write below is refused if the file changes
	// in between (rulesvc.ErrConflict), and say which version the rollback replaces. A file that
	// cannot be read or does not compile is what a rollback may be for: it is replaced, unless
	// --from expected a version there.
	replaced := ""
	if _, err := svc.Start(ctx); err == nil {
		replaced = svc.Current().Version
	} else if *from != "" {
		return fmt.Errorf("rules rollback: --from %s: the pack file %s (scoring.rules) holds no pack that loads: %w", *from, cfg.Scoring.Rules, err)
	}
	if *from != "" && replaced != *from {
		return fmt.Errorf("rules rollback: the pack file %s (scoring.rules) holds version %s, not %s (--from): another promotion or rollback came meanwhile; "+
			"see riskflow rules versions --loads, and roll back with --from %s if that one is to be undone", cfg.Scoring.Rules, replaced, *from, replaced)
	}
	l, err := svc.Rollback(ctx, fs.Arg(0), "cli:"+userName())
	if err != nil {
		return fmt.Errorf("rules rollback: %w", err)
	}
	rec := "recorded in rule_versions"
	if !l.Recorded {
		rec = "NOT recorded in rule_versions (ClickHouse failed; see above)"
	}
	if replaced != "" {
		rec += ", replacing version " + replaced
	}
	fmt.Fprintf(stdout, "rolled back to pack %q version %s (%d rules), written to %s, %s\n", l.Name, l.Version.Version, l.Rules, cfg.Scoring.Rules, rec)
	return nil
}

// userName is who runs the CLI, for rule_versions.loaded_by and labels.labeled_by.
func userName() string { return recordedUser(user.Current, os.Getenv("USER")) }

// recordedUser is the account name current (or env, $USER, when current fails) returns, as a
// record of who did something keeps it: "unknown" for none, and for one that is no id riskflow
// stores — a phone number used as a login name (it was recorded in plaintext in labels.labeled_by
// and rule_versions.loaded_by), control characters, over 64 bytes.
func recordedUser(current func() (*user.User, error), env string) string {
	name := env
	if u, err := current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" || schemas.CheckID("user", name, schemas.MaxAppIDLen) != nil {
		return "unknown"
	}
	return name
}

// isPackVersion reports whether v has the form of a rule pack version (rules.Pack.Version: the
// first 16 hex digits of the pack's SHA-256).
func isPackVersion(v string) bool {
	if len(v) != 16 {
		return false
	}
	for _, c := range v {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
