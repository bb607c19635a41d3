package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/pipeline/chsink/chbacktest"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/backtest"
	"github.com/riskflow/riskflow/scoring/console"
	"github.com/riskflow/riskflow/scoring/geo"
)

// withConsole serves the risk team's console under /console/ next to the API, when admin keys
// are configured. The console's parts are adapters over what this node has: the rules admin, the
// pack's tests, the backtest, the lists file, ClickHouse's rollups and this node's metrics.
func (a *app) withConsole(srv *api.Server) http.Handler {
	if len(a.cfg.API.AdminKeys) == 0 {
		return srv
	}
	deps := a.consoleDeps()
	deps.ClientAddr = srv.ClientAddr // failed logins per client as the API counts them (api.trusted_proxies)
	deps.AppKey = srv.AppKey         // an app key's login is a 403, as at the admin routes
	c, err := console.New(deps, a.log.With("role", "console"))
	if err != nil {
		a.log.Error("console not served", "err", err)
		return srv
	}
	a.log.Info("console served", "path", "/console/", "admins", len(a.cfg.API.AdminKeys))
	// Everything else is the API's, as sent: a ServeMux in front of it would answer a path not in
	// its clean form ("/v1//risk/check") with an empty redirect instead of the API's Error 404,
	// and one in front of the console would redirect /console//13912345678 with the number in its
	// Location (the console answers unclean paths itself). The console's paths are told by the path
	// as sent: /console%2Foverview, the console's only once decoded, is the API's 404.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.EscapedPath(); {
		case p == "/console":
			http.Redirect(w, r, "/console/", http.StatusSeeOther)
		case strings.HasPrefix(p, "/console/"):
			c.ServeHTTP(w, r)
		default:
			srv.ServeHTTP(w, r)
		}
	})
}

// consoleDeps are the console's parts on this node. Its working state (drafts, promotion
// requests, backtest runs) is kept in ClickHouse's console_state when ClickHouse is configured,
// so that every node behind a load balancer shares it; else in this node's memory.
func (a *app) consoleDeps() console.Deps {
	ch := newLazyStore(a.cfg.ClickHouse, "console", "console", a.log, func(state string) { a.obs.breakerState("console", state) })
	host, _ := os.Hostname()
	deps := console.Deps{
		Rules:     &consoleRules{a: a, ch: ch},
		Lists:     &consoleLists{a: a},
		Explain:   consoleExplain{a: a},
		Labels:    consoleLabels{ch: ch},
		Metrics:   a.reg,
		Admins:    a.cfg.API.AdminKeys,
		Approvals: a.cfg.API.ConsoleApprovals,
		Backtest:  &consoleBacktest{a: a, ch: ch},
		History:   &consoleHistory{ch: ch, hours: newOverviewHours()},
		Node:      strings.TrimSuffix(nodePrefix(host), "-"),
	}
	if a.cfg.ClickHouse.Addr != "" {
		deps.State = consoleState{ch: ch}
	}
	return deps
}

// consoleState is console.State over ClickHouse's console_state.
type consoleState struct{ ch *lazyStore }

func (c consoleState) Put(ctx context.Context, it console.Item) error {
	_, err := useStore(ctx, c.ch, func(st *chsink.Store) (struct{}, error) {
		return struct{}{}, st.PutConsoleItem(ctx, chsink.ConsoleItem{Kind: it.Kind, ID: it.ID, UpdatedAt: it.At, Node: it.Node, Admin: it.Admin,
			Deleted: it.Deleted, Body: string(it.Body)})
	})
	return err
}

func (c consoleState) Get(ctx context.Context, kind, id string) (console.Item, bool, error) {
	its, err := c.items(ctx, kind, id)
	if err != nil || len(its) == 0 {
		return console.Item{}, false, err
	}
	return its[0], true, nil
}

func (c consoleState) List(ctx context.Context, kind string) ([]console.Item, error) {
	return c.items(ctx, kind, "")
}

func (c consoleState) items(ctx context.Context, kind, id string) ([]console.Item, error) {
	rows, err := useStore(ctx, c.ch, func(st *chsink.Store) ([]chsink.ConsoleItem, error) { return st.ConsoleItems(ctx, kind, id) })
	if err != nil {
		return nil, err
	}
	out := make([]console.Item, len(rows))
	for i, r := range rows {
		out[i] = console.Item{Kind: r.Kind, ID: r.ID, Node: r.Node, Admin: r.Admin, At: r.UpdatedAt, Body: []byte(r.Body)}
	}
	return out, nil
}

// lazyStore opens the ClickHouse store on first use (Open does no I/O) and guards every use of
// it with a circuit breaker (see useStore). The console and the rule-pack service's history each
// have one.
type lazyStore struct {
	cfg    ClickHouseConfig
	who    string // whose uses: "console", "rule-pack history"
	cb     *pipeline.Breaker
	mu     sync.Mutex // guards st
	st     *chsink.Store
	schema schemaOnce
}

// newLazyStore is a ClickHouse for who's reads and writes: its breaker opens after
// clickhouse.breaker_failures uses in a row found ClickHouse not answering, as the archiver's
// does, and then fails every use at once for clickhouse.breaker_open_for before one use probes
// it again. A console page then says ClickHouse is away at once instead of waiting out the
// timeouts (a ClickHouse that hangs would hold every page, and every session check, for seconds),
// and a rule pack promoted meanwhile is not held up recording its version. onState (may be nil)
// hears every state change; log may be nil. breaker names the breaker in log lines, as the
// label of riskflow_breaker_state that onState sets does (console, rules), so that the lines of an
// alert's breaker are found by its label.
func newLazyStore(cfg ClickHouseConfig, who, breaker string, log *slog.Logger, onState func(string)) *lazyStore {
	// A caller who went away (a page closed) says nothing about ClickHouse (pipeline.Breaker
	// leaves such uses out); nor does an error ClickHouse answered with (clickHouseAway).
	b := pipeline.NewBreaker(breaker, pipeline.BreakerConfig{Failures: uint32(max(cfg.BreakerFailures, 1)), OpenFor: cfg.BreakerOpenFor.D()},
		clickHouseAway, log, onState)
	return &lazyStore{cfg: cfg, who: who, cb: b}
}

// clickHouseAway reports whether err, from a use of a lazyStore, says ClickHouse did not answer
// (refused, unreachable, timed out, the connection broken), which the breaker counts. An error
// ClickHouse answered with and a request refused before it reached ClickHouse say nothing about
// whether it answers.
func clickHouseAway(err error) bool {
	if err == nil || errors.Is(err, console.ErrInvalid) || errors.Is(err, chsink.ErrNoRuleVersion) {
		return false
	}
	var ex *clickhouse.Exception
	return !errors.As(err, &ex)
}

// breakerOpenError is a use refused at once by an open breaker (or while its probe is under
// way). It is console.ErrNotAvailable and in class schemas.ErrUnavailable.
type breakerOpenError struct {
	l   *lazyStore
	err error // pipeline.ErrOpen or pipeline.ErrProbing
}

func (e *breakerOpenError) Error() string {
	if errors.Is(e.err, pipeline.ErrProbing) {
		return fmt.Sprintf("ClickHouse (%s) did not answer the %s lately; one request is checking whether it is back, try again in a moment",
			e.l.cfg.Addr, e.l.who)
	}
	return fmt.Sprintf("ClickHouse (%s) did not answer the %s's last %d requests; it is asked again within %s (clickhouse.breaker_open_for)",
		e.l.cfg.Addr, e.l.who, max(e.l.cfg.BreakerFailures, 1), e.l.cfg.BreakerOpenFor.D())
}

func (e *breakerOpenError) Unwrap() []error {
	return []error{console.ErrNotAvailable, schemas.ErrUnavailable, e.err}
}

// useStore runs f on l's store behind its breaker; while the breaker is open it fails at once
// with a *breakerOpenError.
func useStore[T any](ctx context.Context, l *lazyStore, f func(*chsink.Store) (T, error)) (T, error) {
	var v T
	if l.cfg.Addr == "" {
		_, err := l.get(ctx)
		return v, err
	}
	err := l.cb.Do(ctx, func() error {
		st, err := l.get(ctx)
		if err == nil {
			v, err = f(st)
		}
		if err != nil && l.tablesGone(err) {
			// A table or the database was dropped under the node (a restore, an operator's
			// clean-up): apply the schema again and retry once, as the archiver does, rather
			// than failing every use until the node restarts.
			if st, err = l.get(ctx); err == nil {
				v, err = f(st)
			}
		}
		return err
	})
	if pipeline.IsBreakerRefusal(err) {
		return v, &breakerOpenError{l: l, err: err}
	}
	return v, err
}

// tablesGone reports whether err says a table or the database of l's store does not exist, and
// if so makes the next get apply the schema again.
func (l *lazyStore) tablesGone(err error) bool {
	if !errors.Is(chsink.MissingTable(err), chsink.ErrNoTable) {
		return false
	}
	l.schema.lost(err)
	return true
}

// get opens the store on first use and applies its schema unless it is in place: the archiver
// may not have written yet, and the reads need the tables. Uses arriving while the schema is
// applied wait for that attempt or their own context (schemaOnce), not for one another.
func (l *lazyStore) get(ctx context.Context) (*chsink.Store, error) {
	if l.cfg.Addr == "" {
		return nil, fmt.Errorf("%w: ClickHouse is not configured (clickhouse.addr)", console.ErrNotAvailable)
	}
	l.mu.Lock()
	if l.st == nil {
		st, err := openStore(ctx, l.cfg, nil) // no I/O
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.st = st
	}
	st := l.st
	l.mu.Unlock()
	if err := l.schema.ensure(ctx, st); err != nil {
		// Both wrapped: the cause stays an error of its own, for the breaker (an error
		// ClickHouse answered with is no outage) and for the hint a command adds to it.
		return nil, fmt.Errorf("%w: ClickHouse: %w", console.ErrNotAvailable, err)
	}
	return st, nil
}

// ---- rules ---------------------------------------------------------------------------------

// consoleRules is console.RulePacks over this process's rule-pack service (rules/rulesvc: the
// pack file, rule_versions, rollback) — the same service as /v1/rules — with loads recorded as
// "console:<admin>".
type consoleRules struct {
	a  *app
	ch *lazyStore
}

func fromRuleVersion(v rulesvc.Version) console.Version {
	return console.Version{Version: v.Version, Name: v.Name, LoadedBy: v.LoadedBy, LoadedAt: v.LoadedAt,
		Source: v.Source, Rules: v.Rules, Content: string(v.Content)}
}

func (c *consoleRules) Live(ctx context.Context) (console.PackInfo, error) {
	v := c.a.rules.Current()
	return console.PackInfo{Name: v.Name, Version: v.Version, Rules: v.Rules, LoadedBy: v.LoadedBy, LoadedAt: v.LoadedAt, Content: v.Content}, nil
}

func (c *consoleRules) Versions(ctx context.Context) ([]console.Version, error) {
	vs, err := c.a.rules.Versions(ctx)
	if errors.Is(err, rulesvc.ErrNoHistory) {
		return nil, fmt.Errorf("%w: %v", console.ErrNotAvailable, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]console.Version, len(vs))
	for i, v := range vs {
		out[i] = fromRuleVersion(v)
	}
	return out, nil
}

// Loads is the audit trail (rule_loads), newest first.
func (c *consoleRules) Loads(ctx context.Context) ([]console.Version, error) {
	if c.ch == nil {
		return nil, fmt.Errorf("%w: no rule-pack history (clickhouse.addr is not set)", console.ErrNotAvailable)
	}
	list, err := useStore(ctx, c.ch, func(st *chsink.Store) ([]chsink.RuleVersion, error) { return st.RuleLoads(ctx, 200) })
	if err != nil {
		return nil, err
	}
	out := make([]console.Version, len(list))
	for i, r := range list {
		out[i] = fromRuleVersion(fromChsink(r))
	}
	return out, nil
}

func (c *consoleRules) Version(ctx context.Context, version string) (console.Version, error) {
	if cur := c.a.rules.Current(); cur.Version == version && len(cur.Content) > 0 {
		return fromRuleVersion(cur), nil
	}
	r, err := useStore(ctx, c.ch, func(st *chsink.Store) (chsink.RuleVersion, error) { return st.RuleVersion(ctx, version) })
	if errors.Is(err, chsink.ErrNoRuleVersion) {
		return console.Version{}, fmt.Errorf("%w: no recorded version %s", console.ErrInvalid, version)
	}
	if err != nil {
		return console.Version{}, err
	}
	return fromRuleVersion(fromChsink(r)), nil
}

// Lint lists every problem of the draft (the console shows them all, as `rules lint` does).
func (c *consoleRules) Lint(draft []byte) []console.LintError {
	_, err := rules.Lint(draft, c.a.scorer.Env())
	return lintErrors(err)
}

// lintErrors flattens Compile's joined errors into one entry per problem.
func lintErrors(err error) []console.LintError {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []console.LintError
	for _, e := range errs {
		var ce *rules.CompileError
		if errors.As(e, &ce) {
			out = append(out, console.LintError{Line: ce.Line, Column: ce.Column, Rule: ce.Rule, Field: ce.Field, Msg: ce.Msg})
		} else {
			out = append(out, console.LintError{Msg: e.Error()})
		}
	}
	return out
}

// tests returns the pack's tests: tests.yaml next to the pack file, or the default pack's.
func (c *consoleRules) tests() ([]byte, error) {
	path := c.a.cfg.Scoring.Rules
	if path == "" {
		return packs.DefaultTests(), nil
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "tests.yaml"))
	if err != nil {
		return nil, fmt.Errorf("%w: no tests.yaml next to %s", console.ErrNotAvailable, path)
	}
	return b, nil
}

func (c *consoleRules) Test(ctx context.Context, draft []byte) ([]console.TestResult, error) {
	tests, err := c.tests()
	if err != nil {
		return nil, err
	}
	res, err := runPackTests(ctx, c.a.packTests, c.a.cfg.Scoring, draft, tests)
	if err != nil {
		return nil, fmt.Errorf("run tests: %w", err)
	}
	out := make([]console.TestResult, len(res))
	for i, r := range res {
		out[i] = console.TestResult{Name: r.Name, Line: r.Line, Failures: r.Failures}
	}
	return out, nil
}

func packInfo(l rulesvc.Loaded) console.PackInfo {
	p := console.PackInfo{Name: l.Name, Version: l.Version.Version, Rules: l.Rules, LoadedBy: l.LoadedBy, LoadedAt: l.LoadedAt, Content: l.Content}
	var notes []string
	if !l.Persisted {
		notes = append(notes, "live on this node only: scoring.rules names no pack file, so other nodes keep their pack and a restart brings the old one back.")
	}
	if !l.Recorded {
		notes = append(notes, "not recorded in rule_versions yet (ClickHouse is off or failing; retried in the background).")
	}
	p.Note = strings.Join(notes, " ")
	return p
}

func (c *consoleRules) Promote(ctx context.Context, draft []byte, who, live string) (console.PackInfo, error) {
	l, err := loadTested(ctx, c.a.packTests, c.a.rules, c.a.cfg.Scoring, draft, "console:"+who, "console", live)
	if errors.Is(err, rulesvc.ErrRejected) {
		return console.PackInfo{}, fmt.Errorf("%w: %v", console.ErrInvalid, err)
	}
	if errors.Is(err, rulesvc.ErrNotLive) {
		return console.PackInfo{}, fmt.Errorf("%w: %v", console.ErrStale, err)
	}
	if err != nil {
		return console.PackInfo{}, err
	}
	return packInfo(l), nil
}

func (c *consoleRules) Rollback(ctx context.Context, version, who, live string) (console.PackInfo, error) {
	l, err := c.a.rules.RollbackOver(ctx, version, "console:"+who, live)
	switch {
	case errors.Is(err, rulesvc.ErrNotLive):
		return console.PackInfo{}, fmt.Errorf("%w: %v", console.ErrStale, err)
	case errors.Is(err, rulesvc.ErrNoHistory):
		return console.PackInfo{}, fmt.Errorf("%w: %v", console.ErrNotAvailable, err)
	case errors.Is(err, rulesvc.ErrUnknownVersion):
		return console.PackInfo{}, fmt.Errorf("%w: %v", console.ErrInvalid, err)
	case errors.Is(err, rulesvc.ErrRejected):
		// A recorded pack this build no longer compiles: the request's problem, not a part away.
		return console.PackInfo{}, fmt.Errorf("%w: version %s no longer compiles: %v", console.ErrInvalid, version, err)
	case err != nil:
		return console.PackInfo{}, err
	}
	return packInfo(l), nil
}

// ---- backtest ------------------------------------------------------------------------------

type consoleBacktest struct {
	a  *app
	ch *lazyStore
}

func (b *consoleBacktest) Backtest(ctx context.Context, draft []byte, from, to time.Time, progress func(backtest.Progress)) (*backtest.Report, error) {
	candidate, err := rules.Compile(draft, b.a.scorer.Env())
	if err != nil {
		return nil, fmt.Errorf("%w: the draft does not compile: %v", console.ErrInvalid, err)
	}
	current := b.a.scorer.Rules().Load()
	log := newLogger(LogConfig{Level: "error", Format: "text"}, io.Discard)
	cfg := b.a.cfg.Scoring
	newScorer := func() (*scoring.Scorer, error) {
		return buildScorer(cfg, schemas.NewPhoneHasher([]byte("backtest")), log)
	}
	opts := backtest.Options{From: from, To: to, WarmUp: backtest.DefaultWarmUp, Progress: progress, ProgressEvery: 20000}
	// Precision and recall against the labels people stored (the console's marks among them). That
	// read goes through the breaker; the backtest's own reads, minutes of them, are the job's and
	// end it with their error.
	st, err := useStore(ctx, b.ch, func(st *chsink.Store) (*chsink.Store, error) {
		return st, mergeStoredLabels(ctx, st, &opts, io.Discard)
	})
	if err != nil {
		return nil, err
	}
	rep, err := chbacktest.Run(ctx, st, current, candidate, newScorer, opts, chsink.ReadOptions{})
	if err != nil && rep != nil && rep.Partial {
		rep = nil // the console shows a stopped run by its error alone
	}
	return rep, err
}

// ---- history -------------------------------------------------------------------------------

type consoleHistory struct {
	ch    *lazyStore
	hours *overviewHours // nil: every overview reads its whole range
}

func (h *consoleHistory) Apps(ctx context.Context) ([]string, error) {
	return useStore(ctx, h.ch, func(st *chsink.Store) ([]string, error) { return st.Apps(ctx) })
}

// Overview reads the hourly rollups — three reads at once: the page waits for the slowest, not the
// sum — for the hours not kept from earlier overviews.
func (h *consoleHistory) Overview(ctx context.Context, f console.Filter) (console.Overview, error) {
	c := h.hours
	if c == nil {
		c = newOverviewHours()
		c.ttl = -1 // nothing is ever fresh enough
	}
	return useStore(ctx, h.ch, func(st *chsink.Store) (console.Overview, error) { return c.overview(ctx, st, f) })
}

func (h *consoleHistory) Activity(ctx context.Context, l console.Lookup, limit int) (console.Activity, error) {
	var act console.Activity
	var key chsink.LookupKey
	switch l.Kind {
	case console.KindPhone:
		key.PhoneHash = l.Value
	case console.KindIP:
		key.IP = l.Value
		if a, err := netip.ParseAddr(l.Value); err == nil {
			key.IP = geo.ClientAddr(a).String() // an embedded IPv4 address's history, as counted
		}
	case console.KindDevice:
		key.DeviceID = l.Value
	}
	type found struct {
		as []chsink.Attempt
		ds []chsink.StoredDecision
	}
	res, err := useStore(ctx, h.ch, func(st *chsink.Store) (found, error) {
		as, ds, err := st.Lookup(ctx, key, chsink.LookupRange{Since: time.Now().Add(-7 * 24 * time.Hour)}, limit)
		return found{as, ds}, err
	})
	as, ds := res.as, res.ds
	if err != nil {
		return act, err
	}
	for _, a := range as {
		act.Attempts = append(act.Attempts, console.Attempt{TS: a.TS, AppID: a.AppID, EventID: a.EventID, DecisionID: a.DecisionID,
			Phone: a.PhoneMasked, IP: a.IP, Device: a.DeviceID, Outcome: a.Outcome, ErrorCode: a.ErrorCode, Score: int(a.Score),
			Tags: a.Tags, RulesVersion: a.RulesVersion})
	}
	for _, d := range ds {
		act.Decisions = append(act.Decisions, console.Decision{TS: d.TS, AppID: d.AppID, DecisionID: d.DecisionID, Phone: d.PhoneMasked,
			IP: d.IP, Device: d.DeviceID, Score: int(d.Score), Tags: d.Tags, Hits: decisionHits(d), RulesVersion: d.RulesVersion, Node: d.Node})
	}
	return act, nil
}

// decisionHits shows a stored decision's hits as "rule (mode): reason", the numbers a disputed
// verdict was given for. The three arrays are one hit each, in the same order.
func decisionHits(d chsink.StoredDecision) []string {
	out := make([]string, 0, len(d.HitRules))
	for i, r := range d.HitRules {
		s := r
		if i < len(d.HitModes) && d.HitModes[i] != "" {
			s += " (" + d.HitModes[i] + ")"
		}
		if i < len(d.HitReasons) && d.HitReasons[i] != "" {
			s += ": " + d.HitReasons[i]
		}
		out = append(out, s)
	}
	return out
}

// ---- live state and labels ----------------------------------------------------------------

// consoleExplain is this node's feature state as scoring.Scorer.Explain reads it.
type consoleExplain struct{ a *app }

func (e consoleExplain) Explain(ctx context.Context, l console.Lookup) ([]console.Feature, error) {
	sub := scoring.Subject{AppID: l.App}
	switch l.Kind {
	case console.KindPhone:
		sub.Phone = l.Value
	case console.KindIP:
		ip, err := netip.ParseAddr(l.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", console.ErrInvalid, err)
		}
		sub.IP = ip
	case console.KindDevice:
		sub.DeviceID = l.Value
	}
	x, err := e.a.scorer.Explain(sub)
	if err != nil {
		return nil, err
	}
	var out []console.Feature
	for _, r := range x.Matching {
		out = append(out, console.Feature{Name: "matches now: " + r.Rule, Value: fmt.Sprintf("%s %d: %s", r.Mode, r.Level, r.Reason)})
	}
	for _, r := range x.Near {
		out = append(out, console.Feature{Name: fmt.Sprintf("within reach (×%g): %s", r.Factor, r.Rule), Value: fmt.Sprintf("%s %d: %s", r.Mode, r.Level, r.Reason)})
	}
	for _, r := range x.Failing {
		out = append(out, console.Feature{Name: "fails at run time: " + r, Value: "skipped, as checks skip it"})
	}
	// The rules that read the key's windows in one app are not judged without an app: said, so
	// that "no rule matches" is not read as every app's verdict.
	for _, r := range x.InAppOnly {
		out = append(out, console.Feature{Name: "not judged without an app: " + r, Value: "reads this key's windows in one app: give the app in the form above, or " + inAppLookup(l)})
	}
	for _, w := range x.Windows {
		v := strconv.FormatInt(w.Value, 10)
		if w.ReadByPack {
			v += " (read by the pack)"
		}
		out = append(out, console.Feature{Name: w.Name, Value: v})
	}
	return out, nil
}

// inAppLookup is the command that explains l with an app's windows: a number is never shown.
func inAppLookup(l console.Lookup) string {
	switch l.Kind {
	case console.KindIP:
		return "riskflow lookup --ip " + l.Value + " --app APP"
	case console.KindDevice:
		return "riskflow lookup --device " + strconv.Quote(l.Value) + " --app APP"
	}
	return "riskflow lookup --phone NUMBER --app APP"
}

// consoleLabels stores labels in ClickHouse's labels table (the backtest reads them).
type consoleLabels struct{ ch *lazyStore }

func (c consoleLabels) Mark(ctx context.Context, appID, target, id, label, who string) error {
	l := schemas.Label{AppID: appID, Label: label, LabeledBy: "console:" + who, LabeledAt: time.Now().UTC()}
	if target == "decision" {
		l.DecisionID = id
	} else {
		l.EventID = id
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%w: %v", console.ErrInvalid, err)
	}
	_, err := useStore(ctx, c.ch, func(st *chsink.Store) (struct{}, error) { return struct{}{}, st.WriteLabels(ctx, []schemas.Label{l}) })
	return err
}

// ---- lists ---------------------------------------------------------------------------------

// consoleLists are the node's shared lists (pipeline.SharedLists): entries added in the console
// go to kafka.lists_topic, one message each, and reach every node's scorer from there; the
// scoring.lists file is the hand-written part, listed here and changed only in the file.
type consoleLists struct {
	a *app
	// The entries as last read (shared by every caller until the lists change), and the file's
	// content and topic entries they were read from: the lists change rarely, and reading them
	// anew on every view of the lists page or investigation (a keyed hash per number of the file)
	// cost each one 160 MB at 300,000 numbers — six at once took an API node from 0.6 to 1.6 GB
	// (held-out run).
	mu    sync.Mutex
	file  []byte
	topic []pipeline.ListEntry
	all   []console.ListEntry
	nFile int // all[:nFile] are the file's
}

var errNoLists = fmt.Errorf("%w: this node holds no lists (no feature state)", console.ErrNotAvailable)

func (l *consoleLists) HashPhone(phone string) string { return l.a.hasher.Hex(phone) }

// parseEntry reads one line of the lists file; ok is false for blank and comment lines.
// Lines the console wrote before the lists topic existed carry who/when/why in a comment:
//
//	block phone_hash 9f86…  # console by=alice at=2026-12-05T06:00:00Z shown=1380013**** why=farm%20number
//
// A number written in the file (block phone 13800138000) is the entry's value as its keyed hash
// (hashPhone), as the console's own entries hold it: the investigation of that number finds the
// entry by its hash (it said "on no allow or block list" of a number the file blocked), and the
// number itself goes no further than the file. A comment is shown with its numbers masked: the
// console shows the entry's number masked, and "# 13800138000 complained" beside it spelled it out.
func parseEntry(line string, hashPhone func(string) string) (e console.ListEntry, ok bool) {
	entry, comment, _ := strings.Cut(line, "#")
	f := strings.Fields(entry)
	if len(f) != 3 {
		return e, false
	}
	e = console.ListEntry{ID: pipeline.ListEntryID(line), Action: f[0], Kind: f[1], Value: f[2], Shown: f[2], File: true}
	e.Kind, e.Shown = consoleKind(e.Kind, e.Value)
	if f[1] == "phone" {
		if p, err := schemas.NormalizePhone(f[2]); err == nil {
			e.Value, e.Shown = hashPhone(p), schemas.MaskPhone(p) // +8613800138000 too: 1380013****
		} else {
			e.Value = "" // not a number the scorer reads either (the file would not have loaded)
		}
	}
	defer func() { e.Who, e.Why = schemas.MaskPhones(e.Who), schemas.MaskPhones(e.Why) }()
	if meta, isConsole := strings.CutPrefix(strings.TrimSpace(comment), "console "); isConsole {
		for _, kv := range strings.Fields(meta) {
			k, v, _ := strings.Cut(kv, "=")
			v, _ = url.QueryUnescape(v)
			switch k {
			case "by":
				e.Who = v
			case "at":
				e.At, _ = time.Parse(time.RFC3339, v)
			case "shown":
				e.Shown = v
			case "why":
				e.Why = v
			}
		}
	} else {
		e.Why = strings.TrimSpace(comment)
	}
	return e, true
}

// consoleKind is the console's kind of a list file's kind, and how the value is shown.
func consoleKind(kind, value string) (string, string) {
	switch kind {
	case "phone_hash":
		return console.KindPhone, "hash " + value[:min(12, len(value))] + "…"
	case "phone":
		return console.KindPhone, schemas.MaskPhone(value)
	case "ip":
		if strings.Contains(value, "/") {
			return console.KindCIDR, value
		}
	}
	return kind, value
}

func (l *consoleLists) Entries(ctx context.Context) ([]console.ListEntry, error) {
	if l.a.lists == nil {
		return nil, errNoLists
	}
	file, entries := l.a.lists.Snapshot()
	l.mu.Lock()
	defer l.mu.Unlock()
	sameFile := l.all != nil && bytes.Equal(file, l.file)
	if sameFile && slices.Equal(entries, l.topic) {
		return l.all, nil
	}
	var fromFile []console.ListEntry
	if sameFile {
		fromFile = l.all[:l.nFile]
	} else {
		for line := range strings.SplitSeq(string(file), "\n") {
			if e, ok := parseEntry(line, l.HashPhone); ok {
				fromFile = append(fromFile, e)
			}
		}
	}
	out := make([]console.ListEntry, len(fromFile), len(fromFile)+len(entries))
	copy(out, fromFile)
	for _, e := range entries {
		ce := console.ListEntry{ID: e.ID, Action: e.Action, Value: e.Value, Who: e.Who, At: e.At, Why: e.Why}
		ce.Kind, ce.Shown = consoleKind(e.Kind, e.Value)
		if e.Shown != "" {
			ce.Shown = e.Shown
		}
		out = append(out, ce)
	}
	l.file, l.topic, l.all, l.nFile = file, entries, out, len(fromFile)
	return out, nil
}

func (l *consoleLists) Add(ctx context.Context, e console.ListEntry) error {
	if l.a.lists == nil {
		return errNoLists
	}
	kind := e.Kind
	switch e.Kind {
	case console.KindPhone:
		kind = "phone_hash"
	case console.KindCIDR:
		kind = "ip"
	}
	_, err := l.a.lists.Add(ctx, pipeline.ListEntry{Action: e.Action, Kind: kind, Value: e.Value, Shown: e.Shown, Who: e.Who, At: e.At.UTC(), Why: e.Why})
	if errors.Is(err, pipeline.ErrListEntry) {
		return fmt.Errorf("%w: %v", console.ErrInvalid, err)
	}
	return err
}

func (l *consoleLists) Remove(ctx context.Context, id, who string) error {
	if l.a.lists == nil {
		return errNoLists
	}
	err := l.a.lists.Remove(ctx, id, who)
	if errors.Is(err, pipeline.ErrListEntry) {
		return fmt.Errorf("%w: %v", console.ErrInvalid, err)
	}
	return err
}

// startLists starts this node's lists: the scoring.lists file (read again when its content
// changes, every scoring.reload_interval) and every entry of kafka.lists_topic, both applied to
// the scorer without a restart. A file that does not parse leaves the running lists.
func (a *app) startLists(ctx context.Context, g *errgroup.Group) {
	w := pipeline.NewListsWriter(a.kc, a.cfg.Kafka.ListsTopic) // one partition: one order of adds and removals
	a.lists = pipeline.NewSharedLists(a.kc, a.cfg.Kafka.ListsTopic, a.restoring(a.kc, w), a.scorer, a.log.With("lists", a.cfg.Kafka.ListsTopic))
	path := a.cfg.Scoring.Lists
	var last []byte
	if path != "" {
		last, _ = os.ReadFile(path)
		if err := a.lists.SetFile(last); err != nil {
			a.log.Error("lists file rejected", "path", path, "err", err)
		}
	}
	g.Go(func() error {
		defer w.Close()
		return a.lists.Follow(ctx)
	})
	a.health.add("lists", listsServing(a.lists, func() error { return nil }))
	if path == "" {
		return
	}
	g.Go(func() error {
		every(ctx, a.cfg.Scoring.ReloadInterval.D(), func() {
			b, err := os.ReadFile(path)
			if err != nil || bytes.Equal(b, last) {
				return
			}
			last = b
			if err := a.lists.SetFile(b); err != nil {
				a.log.Error("lists rejected; the running lists stay", "path", path, "err", err)
				return
			}
			a.log.Info("lists file reloaded", "path", path)
		})
		return nil
	})
}
