// Package ruletest runs a rule pack's tests.yaml (format: rules.ParseTests) against real feature
// state: each test gets a fresh scorer, its `given` events are scored and recorded in order, then
// its `event` is scored and the verdict compared with `expect`. Used by `go test` and by
// `riskflow rules test DIR`.
//
// The event is scored at the test's `now` (DefaultNow when absent; the event's own `ts` when it
// has one and the test no `now`; rules.ParseTests refuses a `now` and a `ts` that differ). `given` events without a `ts` lead up to that time in order,
// one second apart (closer when there are more than 59, so all stay inside the last minute).
// An expectation naming a tag or rule id the pack does not have fails the test: a misspelt name
// would otherwise make `not_tags`/`not_hits` pass whatever the rules do. A rule failing at run
// time (a division by zero) on a given event or the event fails the test too, named once with the
// event it failed on; it is skipped, as production skips it, and the test's checks still run.
package ruletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// DefaultNow is the time a test's event is scored at when the test gives no `now`.
var DefaultNow = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

// NewScorer builds a fresh scorer for one test (no pack; Run compiles and sets it).
type NewScorer func() (*scoring.Scorer, error)

// Result is one test's outcome.
type Result struct {
	Name     string
	Line     int
	Failures []string // empty when the test passed
	Verdict  schemas.ScoreRecord
	// RuleErrors are the rules that failed at run time on the test's events (each also a
	// failure), in the order they first failed.
	RuleErrors []string
}

// Passed reports whether the test passed.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Run compiles pack and runs every test of tests against it.
func Run(pack, tests []byte, newScorer NewScorer) ([]Result, error) {
	return RunContext(context.Background(), pack, tests, newScorer)
}

// givenBetweenChecks is how many given events a test applies between two looks at its context.
const givenBetweenChecks = 1024

// RunContext is Run that stops when ctx is done (a Ctrl-C of riskflow rules test): between tests
// and within a test's given events, returning ctx's error and no results.
func RunContext(ctx context.Context, pack, tests []byte, newScorer NewScorer) ([]Result, error) {
	suite, err := rules.ParseTests(tests)
	if err != nil {
		return nil, err
	}
	var out []Result
	var p *rules.Pack // compiled once, against the first scorer (they all declare the same variables)
	for i, tc := range suite.Tests {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("stopped after %d of %d tests: %w", i, len(suite.Tests), err)
		}
		s, err := newScorer()
		if err != nil {
			return nil, fmt.Errorf("build scorer: %w", err)
		}
		if p == nil {
			if p, err = rules.Compile(pack, s.Env()); err != nil {
				return nil, err
			}
		}
		s.SetPack(p)
		res, err := runOne(ctx, s, i, tc)
		if err != nil {
			return nil, fmt.Errorf("stopped in test %q (line %d), %d of %d tests run: %w", tc.Name, tc.Line, i, len(suite.Tests), err)
		}
		// A misspelt rule id or tag would make a negative expectation pass vacuously: report it.
		res.Failures = append(unknownNames(p, tc.Expect), res.Failures...)
		out = append(out, res)
	}
	return out, nil
}

// unknownNames reports expectation entries that name no rule (hits, not_hits) or no tag (tags,
// not_tags; shadow rules' tags count) of the pack.
func unknownNames(p *rules.Pack, e rules.Expectation) []string {
	var ids, tags []string
	for _, r := range p.Rules {
		ids = append(ids, r.ID)
		tags = append(tags, r.Tag)
	}
	var out []string
	check := func(key string, names, known []string, what string) {
		for _, n := range names {
			if !slices.Contains(known, n) {
				out = append(out, fmt.Sprintf("%s: pack %q has no %s %q", key, p.Name, what, n))
			}
		}
	}
	check("tags", e.Tags, tags, "tag")
	check("not_tags", e.NotTags, tags, "tag")
	check("hits", e.Hits, ids, "rule")
	check("not_hits", e.NotHits, ids, "rule")
	reasons := slices.Sorted(maps.Keys(e.Reasons))
	check("reasons", reasons, ids, "rule")
	return out
}

// defaults fill the required fields a test leaves out.
var defaults = map[string]any{
	"app_id": "test-app", "flow": schemas.FlowOneClickLogin, "outcome": schemas.OutcomeSuccess,
	"phone": "13800138000", "ip": "203.0.113.10", "carrier": "CM", "platform": "android",
}

// runOne runs one test; its error is ctx's, when ctx is done before the test's event is scored.
func runOne(ctx context.Context, s *scoring.Scorer, idx int, tc rules.TestCase) (Result, error) {
	res := Result{Name: tc.Name, Line: tc.Line}
	now := tc.Now
	if now.IsZero() {
		now = DefaultNow
	}
	// The ids the runner gives events without one must not be an id the test gives (a given
	// event_id "t3-event" made test 3's event a second delivery of it, scored as nothing).
	taken := map[string]bool{}
	for _, fields := range append([]map[string]any{tc.Event}, givenFields(tc.Given)...) {
		if id, ok := fields["event_id"].(string); ok {
			taken[id] = true
		}
	}
	genID := func(id string) string {
		for taken[id] {
			id += "'"
		}
		return id
	}
	ev, err := build(tc.Event, genID(fmt.Sprintf("t%d-event", idx)), now)
	if err != nil {
		res.Failures = append(res.Failures, fmt.Sprintf("event: %v", err))
		return res, nil
	}
	if tc.Now.IsZero() {
		now = ev.TS // an event with its own ts and no `now`: the givens lead up to that ts
	}
	total := 0
	for _, g := range tc.Given {
		total += g.Count
	}
	// Given events without a ts are spread over the minute before now, in order: one second apart,
	// closer when there are more than 59 so that all of them stay inside a 1m window.
	step := time.Second
	if total > 59 {
		step = 59 * time.Second / time.Duration(total)
	}
	n := 0
	for gi, g := range tc.Given {
		for k := 0; k < g.Count; k++ {
			if n%givenBetweenChecks == 0 && ctx.Err() != nil {
				return res, ctx.Err()
			}
			ts := now.Add(-time.Duration(total-n) * step)
			fields := g.Event
			if g.Vary != "" {
				if fields, err = vary(g.Event, g.Vary, k); err != nil {
					res.Failures = append(res.Failures, fmt.Sprintf("given[%d]: %v", gi, err))
					return res, nil
				}
			}
			gev, err := build(fields, genID(fmt.Sprintf("t%d-g%d-%d", idx, gi, k)), ts)
			n++
			if err != nil {
				res.Failures = append(res.Failures, fmt.Sprintf("given[%d]: %v", gi, err))
				return res, nil
			}
			if _, err := s.Process(&gev); err != nil {
				if !errors.Is(err, schemas.ErrPartial) {
					res.Failures = append(res.Failures, fmt.Sprintf("given[%d]: %v", gi, err))
					return res, nil
				}
				// A rule failed at run time: skipped, as production does, and the test goes on.
				res.Failures, res.RuleErrors = ruleFailures(res.Failures, res.RuleErrors, fmt.Sprintf("given[%d]", gi), err)
			}
		}
	}
	rec, err := s.Process(&ev)
	switch {
	case errors.Is(err, schemas.ErrPartial):
		res.Failures, res.RuleErrors = ruleFailures(res.Failures, res.RuleErrors, "the event", err)
	case err != nil:
		res.Failures = append(res.Failures, fmt.Sprintf("event: %v", err))
	}
	res.Verdict = rec
	e := tc.Expect
	if e.Score != nil && rec.Score != *e.Score {
		res.Failures = append(res.Failures, fmt.Sprintf("score: got %d, want %d (tags %v)", rec.Score, *e.Score, rec.Tags))
	}
	for _, t := range e.Tags {
		if !slices.Contains(rec.Tags, t) {
			res.Failures = append(res.Failures, fmt.Sprintf("tags: %q missing (got %v)", t, rec.Tags))
		}
	}
	for _, t := range e.NotTags {
		if slices.Contains(rec.Tags, t) {
			res.Failures = append(res.Failures, fmt.Sprintf("tags: %q present but must not be (%s)", t, rec.Detail[t].Reason))
		}
	}
	hits := make([]string, len(rec.Hits))
	for i, h := range rec.Hits {
		hits[i] = h.Rule
	}
	for _, h := range e.Hits {
		if !slices.Contains(hits, h) {
			res.Failures = append(res.Failures, fmt.Sprintf("hits: rule %q did not match (hits %v)", h, hits))
		}
	}
	for _, h := range e.NotHits {
		if slices.Contains(hits, h) {
			res.Failures = append(res.Failures, fmt.Sprintf("hits: rule %q matched but must not", h))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(e.Reasons)) {
		want := e.Reasons[id]
		i := slices.Index(hits, id)
		switch {
		case i < 0:
			res.Failures = append(res.Failures, fmt.Sprintf("reasons: rule %q did not match (hits %v)", id, hits))
		case rec.Hits[i].Reason != want:
			res.Failures = append(res.Failures, fmt.Sprintf("reasons: rule %q: got %q, want %q", id, rec.Hits[i].Reason, want))
		}
	}
	return res, nil
}

// ruleFailures reports the rules of err (a partial result: rules that failed at run time, skipped)
// that have not been reported yet in this test, where naming the event, and adds them to reported. Such a rule never fires on
// such events in production; the test still checks the verdict of the other rules. A shadow rule
// dividing by a count that may be 0 made a given event end its test, before the test's checks ran.
func ruleFailures(out, reported []string, where string, err error) ([]string, []string) {
	for _, re := range ruleErrors(err, nil) {
		if slices.Contains(reported, re.Rule) {
			continue
		}
		reported = append(reported, re.Rule)
		out = append(out, fmt.Sprintf("rule %s failed at run time on %s: %v (skipped, as in production, where it never fires on such events: guard the condition, %s)",
			re.Rule, where, re.Err, guardHint(re.Err)))
	}
	return out, reported
}

// guardHint says how to guard a condition against err: the division's guard was given for a
// missing map key too ("no such key: … e.g. `b > 0 && a / b > 0.5`").
func guardHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such key"):
		return "e.g. `ip_type in {\"idc\": 2} && {\"idc\": 2}[ip_type] > 1`: a key the map lacks fails, `in` tests it first"
	case strings.Contains(msg, "by zero"):
		return "e.g. `b > 0 && a / b > 0.5`"
	default:
		return "so that what fails is never evaluated: `&&` evaluates its right side only when its left is true"
	}
}

// ruleErrors appends every *rules.RuleError in err's tree (joined and wrapped errors) to into.
func ruleErrors(err error, into []*rules.RuleError) []*rules.RuleError {
	if re, ok := err.(*rules.RuleError); ok {
		return append(into, re)
	}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			into = ruleErrors(x, into)
		}
	case interface{ Unwrap() error }:
		into = ruleErrors(e.Unwrap(), into)
	}
	return into
}

// givenFields returns the fields of each entry of given.
func givenFields(given []rules.GivenEvent) []map[string]any {
	out := make([]map[string]any, len(given))
	for i, g := range given {
		out[i] = g.Event
	}
	return out
}

// build turns a test's event fields into a validated VerifyEvent (same decoder as production).
func build(fields map[string]any, id string, ts time.Time) (schemas.VerifyEvent, error) {
	m := make(map[string]any, len(fields)+4)
	for k, v := range defaults {
		m[k] = v
	}
	for k, v := range fields {
		m[k] = v
	}
	if _, ok := m["event_id"]; !ok {
		m["event_id"] = id
	}
	if _, ok := m["ts"]; !ok {
		m["ts"] = ts.Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return schemas.VerifyEvent{}, err
	}
	return schemas.DecodeEvent(b)
}

// vary returns copy k of a `vary` given event: its number moved k places along the block
// (rules.VaryPhone: the last 4 digits) or along the blocks (rules.VaryBlock: digits 4–7; with
// "block/N", block k mod N and the last 4 digits moved k/N places), wrapping within the 4 digits.
func vary(fields map[string]any, v string, k int) (map[string]any, error) {
	how, blocks, err := rules.ParseVary(v)
	if err != nil {
		return nil, err
	}
	phone, _ := fields["phone"].(string)
	if phone == "" {
		phone, _ = defaults["phone"].(string)
	}
	p, err := schemas.NormalizePhone(phone)
	if err != nil || len(p) != 11 {
		return nil, fmt.Errorf("vary: the phone must be an 11-digit number")
	}
	block, _ := strconv.Atoi(p[3:7])
	last, _ := strconv.Atoi(p[7:])
	switch {
	case how == rules.VaryPhone:
		last += k
	case blocks > 0:
		block, last = block+k%blocks, last+k/blocks
	default:
		block += k
	}
	out := make(map[string]any, len(fields))
	for key, val := range fields {
		out[key] = val
	}
	out["phone"] = fmt.Sprintf("%s%04d%04d", p[:3], block%10000, last%10000)
	return out, nil
}

// Unmatched lists the rules of p (ids, in pack order) that matched in none of the tests' events. A
// rule comparing a variable with a misspelt value (platform == "iOS") never matches, in tests as in
// production, and tests expecting only that it does not match (not_hits) pass.
func Unmatched(p *rules.Pack, results []Result) []string {
	matched := make(map[string]bool)
	for _, r := range results {
		for _, h := range r.Verdict.Hits {
			matched[h.Rule] = true
		}
	}
	var out []string
	for _, r := range p.Rules {
		if !matched[r.ID] {
			out = append(out, r.ID)
		}
	}
	return out
}

// Summary renders results as lines for people: "ok name" / "FAIL name (line N): why". A phone
// number in a test's name or in a failure (an expected reason quoting one) is masked, as in every
// error riskflow prints: the summary goes to terminals and CI logs, and a name read "login of
// 13812345678 observed" there while the same test's error on stderr masked it.
func Summary(results []Result) (string, int) {
	var b strings.Builder
	failed := 0
	for _, r := range results {
		name := schemas.MaskPhones(r.Name)
		if r.Passed() {
			fmt.Fprintf(&b, "ok    %s\n", name)
			continue
		}
		failed++
		fmt.Fprintf(&b, "FAIL  %s (line %d)\n", name, r.Line)
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "        %s\n", schemas.MaskPhones(f))
		}
	}
	fmt.Fprintf(&b, "%d passed, %d failed\n", len(results)-failed, failed)
	return b.String(), failed
}
