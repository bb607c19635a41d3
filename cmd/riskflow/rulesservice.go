package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/ruletest"
)

// openStore opens the ClickHouse store of the configuration: the one place riskflow does.
func openStore(ctx context.Context, c ClickHouseConfig, log *slog.Logger) (*chsink.Store, error) {
	if c.Addr == "" {
		return nil, configf("clickhouse.addr: required (RISKFLOW_CLICKHOUSE_ADDR=127.0.0.1:19000)")
	}
	opts := []chsink.Option{}
	if log != nil {
		opts = append(opts, chsink.WithLogger(log))
	}
	st, err := chsink.Open(ctx, c.Config, opts...)
	if err != nil {
		return nil, configError{fmt.Errorf("clickhouse: %w", err)}
	}
	return st, nil
}

// newRuleService is this process's rule-pack service over scoring.rules, with rule_versions in
// ClickHouse as its history when clickhouse.addr is set. onBreaker (may be nil) hears the
// history's breaker change state.
func newRuleService(cfg Config, target rulesvc.Target, log *slog.Logger, onBreaker func(string)) *rulesvc.Service {
	var store rulesvc.Store
	if cfg.ClickHouse.Addr != "" {
		store = newVersionStore(cfg.ClickHouse, log, onBreaker)
	}
	return rulesvc.New(rulesvc.Config{Path: cfg.Scoring.Rules, Interval: cfg.Scoring.ReloadInterval.D(), Default: packs.Default()}, target, store, log)
}

// versionStore is rule_versions as the rule-pack service's history: the store is opened and the
// schema applied at first use (ClickHouse may be down at start; the service retries), every use
// behind a breaker (lazyStore).
type versionStore struct{ ch *lazyStore }

func newVersionStore(cfg ClickHouseConfig, log *slog.Logger, onBreaker func(string)) *versionStore {
	return &versionStore{ch: newLazyStore(cfg, "rule-pack history", "rules", log, onBreaker)}
}

func (v *versionStore) RecordVersion(ctx context.Context, rv rulesvc.Version) error {
	_, err := useStore(ctx, v.ch, func(st *chsink.Store) (struct{}, error) {
		return struct{}{}, st.RecordRuleVersion(ctx, chsink.RuleVersion{Version: rv.Version, Name: rv.Name, LoadedBy: rv.LoadedBy, Source: rv.Source,
			LoadedAt: rv.LoadedAt, RuleCount: rv.Rules, Content: string(rv.Content)})
	})
	return err
}

func (v *versionStore) Versions(ctx context.Context) ([]rulesvc.Version, error) {
	return v.list(ctx, (*chsink.Store).RuleVersions)
}

// Loads is the audit trail (rule_loads), newest first: every promotion and rollback with who and
// when, where Versions has each version's latest load only.
func (v *versionStore) Loads(ctx context.Context) ([]rulesvc.Version, error) {
	return v.list(ctx, (*chsink.Store).RuleLoads)
}

// list reads a list of versions through the history's breaker.
func (v *versionStore) list(ctx context.Context, read func(*chsink.Store, context.Context, int) ([]chsink.RuleVersion, error)) ([]rulesvc.Version, error) {
	list, err := useStore(ctx, v.ch, func(st *chsink.Store) ([]chsink.RuleVersion, error) { return read(st, ctx, 0) })
	if err != nil {
		return nil, err
	}
	out := make([]rulesvc.Version, len(list))
	for i, r := range list {
		out[i] = fromChsink(r)
	}
	return out, nil
}

func (v *versionStore) Lookup(ctx context.Context, version string) (rulesvc.Version, error) {
	r, err := useStore(ctx, v.ch, func(st *chsink.Store) (chsink.RuleVersion, error) { return st.RuleVersion(ctx, version) })
	if errors.Is(err, chsink.ErrNoRuleVersion) {
		// An excerpt: the version is what a caller typed (CLI, API, console), a number among it masked.
		return rulesvc.Version{}, fmt.Errorf("%w %s in rule_versions", rulesvc.ErrUnknownVersion, schemas.Excerpt(version, 40))
	}
	if err != nil {
		return rulesvc.Version{}, err
	}
	return fromChsink(r), nil
}

func fromChsink(r chsink.RuleVersion) rulesvc.Version {
	v := rulesvc.Version{Version: r.Version, Name: r.Name, Rules: r.RuleCount, LoadedBy: r.LoadedBy, Source: r.Source, LoadedAt: r.LoadedAt}
	if r.Content != "" {
		v.Content = []byte(r.Content)
	}
	return v
}

// rulesAdmin is the rule-pack service as the API's /v1/rules administration.
type rulesAdmin struct {
	s         *rulesvc.Service
	persisted bool // scoring.rules is set: loads are written to it
	// scoring is the node's configuration for the pack's tests (tests.yaml beside scoring.rules)
	// that a new pack must pass; nil: none are run.
	scoring *ScoringConfig
	tests   *testGate // bounds the node's pack-test runs (nil: unbounded)
}

// runPackTests runs tests against pack with fresh scorers built from cfg,
// without its lists (tests describe the pack, not today's lists), once gate gives it a turn.
func runPackTests(ctx context.Context, gate *testGate, cfg ScoringConfig, pack, tests []byte) ([]ruletest.Result, error) {
	newScorer, err := packTestScorers(cfg)
	if err != nil {
		return nil, err
	}
	var res []ruletest.Result
	err = gate.run(ctx, func() error {
		res, err = ruletest.RunContext(ctx, pack, tests, newScorer)
		return err
	})
	return res, err
}

func packTestScorers(cfg ScoringConfig) (ruletest.NewScorer, error) {
	cfg.Lists = ""
	log := newLogger(LogConfig{Level: "error", Format: "text"}, io.Discard)
	sc, opts, err := scorerParts(cfg, schemas.NewPhoneHasher([]byte("rules-test")), log)
	if err != nil {
		return nil, err
	}
	return func() (*scoring.Scorer, error) { return scoring.New(sc, opts...) }, nil
}

// packTestsFile is the tests a new pack must pass before it is loaded: tests.yaml beside the pack
// file, "" without a pack file (a pack living in one process) or without tests there.
func packTestsFile(cfg ScoringConfig) string {
	if cfg.Rules == "" {
		return ""
	}
	path := filepath.Join(filepath.Dir(cfg.Rules), "tests.yaml")
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// loadTested loads a new pack (PUT /v1/rules, the console's promote) once it passes the pack's
// tests (packTestsFile): a pack failing them is refused (rulesvc.ErrRejected) naming each failing
// test, its line and why — the file watcher loads what it finds, but a promotion through a node
// was loaded whatever its tests said. A pack that does not compile is left to Load, which names
// its problems. Rollbacks are not tested: they bring back a pack that ran.
//
// live, when not "", is the version the pack was edited from (If-Match): the pack is loaded only
// while that version runs, checked as it is swapped in, after the tests.
//
// The tests are run once gate gives them a turn (a busy node answers 503 with Retry-After).
func loadTested(ctx context.Context, gate *testGate, s *rulesvc.Service, cfg ScoringConfig, pack []byte, who, source, live string) (rulesvc.Loaded, error) {
	if path := packTestsFile(cfg); path != "" {
		if err := checkPackTests(ctx, gate, cfg, path, pack); err != nil {
			return rulesvc.Loaded{}, err
		}
	}
	return s.LoadOver(ctx, pack, who, source, live)
}

// checkPackTests runs the tests of path against pack.
func checkPackTests(ctx context.Context, gate *testGate, cfg ScoringConfig, path string, pack []byte) error {
	tests, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rules: read the pack's tests %s: %w", path, err)
	}
	newScorer, err := packTestScorers(cfg)
	if err != nil {
		return fmt.Errorf("rules: run the pack's tests %s: %w", path, err)
	}
	sc, err := newScorer()
	if err != nil {
		return fmt.Errorf("rules: run the pack's tests %s: %w", path, err)
	}
	if _, err := rules.Compile(pack, sc.Env()); err != nil {
		return nil // the pack's own problems: Load names them all
	}
	var res []ruletest.Result
	if err := gate.run(ctx, func() (err error) { res, err = ruletest.RunContext(ctx, pack, tests, newScorer); return err }); err != nil {
		if errors.Is(err, schemas.ErrUnavailable) || ctx.Err() != nil {
			return err // the node busy, or the caller gone: not the pack's fault
		}
		return fmt.Errorf("%w:\nthe pack's tests %s cannot be run: %w", rulesvc.ErrRejected, path, err)
	}
	var b strings.Builder
	failed := 0
	var broken []string // rules failing at run time: no update of the tests mends them
	for _, r := range res {
		for _, id := range r.RuleErrors {
			if !slices.Contains(broken, id) {
				broken = append(broken, id)
			}
		}
		if r.Passed() {
			continue
		}
		failed++
		fmt.Fprintf(&b, "\n%s:%d: test %q: %s", path, r.Line, r.Name, strings.Join(r.Failures, "; "))
	}
	if failed == 0 {
		return nil
	}
	if len(broken) > 0 {
		// Named first: the answer is cut at about 1 KB, and a rule dividing by zero fails every test.
		return fmt.Errorf("%w: %d of the pack's %d tests fail (riskflow rules test %s); rules fail at run time, skipped on those events as they would be in production: %s "+
			"(guard their conditions: a division by a count that may be 0, a conversion of a field that may be empty):%s",
			rulesvc.ErrRejected, failed, len(res), filepath.Dir(path), strings.Join(broken, ", "), b.String())
	}
	return fmt.Errorf("%w: %d of the pack's %d tests fail (riskflow rules test %s); if the change is meant, update %s first, or load the pack with PUT /v1/rules?tests=skip (recorded as such):%s",
		rulesvc.ErrRejected, failed, len(res), filepath.Dir(path), path, b.String())
}

func (r rulesAdmin) Current() api.RulesInfo {
	info := rulesInfo(rulesvc.Loaded{Version: r.s.Current()}, false)
	info.Persisted, info.Recorded = r.persisted, r.s.Recorded()
	if f := r.s.File(); f.Problem != "" {
		// Bounded like an error: a rejected pack's problems run to a few KB.
		info.FileProblem = fmt.Sprintf("the pack file is %s since %s; this node runs its previous pack: %s",
			f.Problem, f.Since.Format(time.RFC3339), clipText(f.Err, 1<<10))
	}
	return info
}

// clipText shortens s to at most n bytes, at a character boundary, with an ellipsis.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (r rulesAdmin) Update(ctx context.Context, pack []byte, who string, opts api.UpdateOptions) (api.RulesInfo, error) {
	var l rulesvc.Loaded
	var err error
	switch {
	case opts.SkipTests:
		l, err = r.s.LoadOver(ctx, pack, "api:"+who, "api, tests skipped", opts.IfMatch)
	case r.scoring != nil:
		l, err = loadTested(ctx, r.tests, r.s, *r.scoring, pack, "api:"+who, "api", opts.IfMatch)
	default:
		l, err = r.s.LoadOver(ctx, pack, "api:"+who, "api", opts.IfMatch)
	}
	return rulesInfo(l, true), apiError(err)
}

func (r rulesAdmin) Versions(ctx context.Context) ([]api.RulesInfo, error) {
	list, err := r.s.Versions(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	out := make([]api.RulesInfo, len(list))
	for i, v := range list {
		out[i] = rulesInfo(rulesvc.Loaded{Version: v, Recorded: true}, true)
	}
	return out, nil
}

func (r rulesAdmin) Rollback(ctx context.Context, version, who, ifMatch string) (api.RulesInfo, error) {
	if !isPackVersion(version) {
		// A 400 naming the field, as `riskflow rules rollback` says it: it was a 404 "unknown
		// version" after a look-up in ClickHouse.
		return api.RulesInfo{}, classified{api.ErrRejected, &schemas.FieldError{Field: "version",
			Reason: schemas.Excerpt(version, 40) + " is not a rule pack version: 16 hex digits, as GET /v1/rules/versions lists them"}}
	}
	l, err := r.s.RollbackOver(ctx, version, "api:"+who, ifMatch)
	return rulesInfo(l, true), apiError(err)
}

// apiError classifies the service's errors for the API: a pack that does not compile or an
// unknown version is the caller's (400 and 404), no history is a 404 too, and a promotion over
// one this node has not loaded yet a 409.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rulesvc.ErrRejected):
		return classified{api.ErrRejected, err}
	case errors.Is(err, rulesvc.ErrUnknownVersion), errors.Is(err, rulesvc.ErrNoHistory):
		return classified{api.ErrNotFound, err}
	case errors.Is(err, rulesvc.ErrConflict):
		return classified{api.ErrConflict, err}
	case errors.Is(err, rulesvc.ErrNotLive):
		return classified{api.ErrNotLive, err}
	}
	return err
}

// classified is err in one of the API's classes: errors.Is finds both, and its text is err's
// alone (the class's text before it read "rule pack rejected: rule pack rejected: …").
type classified struct{ class, err error }

func (c classified) Error() string   { return c.err.Error() }
func (c classified) Unwrap() []error { return []error{c.class, c.err} }

func rulesInfo(l rulesvc.Loaded, withFlags bool) api.RulesInfo {
	info := api.RulesInfo{Pack: l.Name, Version: l.Version.Version, Rules: l.Rules, LoadedBy: l.LoadedBy, Source: l.Source}
	if !l.LoadedAt.IsZero() {
		info.LoadedAt = l.LoadedAt.Format(time.RFC3339)
	}
	if withFlags {
		info.Persisted, info.Recorded = l.Persisted, l.Recorded
	}
	return info
}
