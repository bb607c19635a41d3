package chsink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// BacktestRun is one row of backtest_runs: the summary of a backtest (package
// scoring/backtest) that compared a candidate rule pack with the pack in force over stored
// events. The transitions and rule differences come twice, as JSON with examples and as
// parallel slices (element i of each Transition... slice describes one matrix cell, element i
// of each Rule... slice one rule), which SQL can ARRAY JOIN.
type BacktestRun struct {
	RunID      string
	StartedAt  time.Time
	FinishedAt time.Time
	From, To   time.Time // the replayed period, [From, To)

	CurrentName, CurrentVersion     string
	CandidateName, CandidateVersion string

	Events, WarmUpEvents, SkippedEvents, ChangedEvents uint64
	EventsPerSec                                       float64

	TransitionFrom  []uint16
	TransitionTo    []uint16
	TransitionCount []uint64
	TransitionsJSON string

	RuleIDs           []string
	RuleCurrentHits   []uint64
	RuleCandidateHits []uint64
	RuleGained        []uint64
	RuleLost          []uint64
	RuleDiffsJSON     string

	FlagAt  uint16
	Labeled uint64
	// Precision and recall per pack; nil when undefined (no labels, nothing flagged, no
	// labeled attack), stored as NULL.
	CurrentPrecision, CurrentRecall     *float64
	CandidatePrecision, CandidateRecall *float64

	ReportJSON string
}

var backtestRunsColumns = []string{
	"run_id", "started_at", "finished_at", "from_ts", "to_ts",
	"current_name", "current_version", "candidate_name", "candidate_version",
	"events", "warmup_events", "skipped_events", "changed_events", "events_per_sec",
	"transition_from", "transition_to", "transition_count", "transitions",
	"rule_ids", "rule_current_hits", "rule_candidate_hits", "rule_gained", "rule_lost", "rule_diffs",
	"flag_at", "labeled",
	"current_precision", "current_recall", "candidate_precision", "candidate_recall",
	"report",
}

// RecordBacktestRun stores r in backtest_runs. Writing the same run again is harmless: the
// table keeps one row per run_id (the latest FinishedAt). Like WriteBatch, it may be retried
// after any error.
func (s *Store) RecordBacktestRun(ctx context.Context, r BacktestRun) error {
	row, err := backtestRunRow(&r)
	if err != nil {
		return err
	}
	return s.insert(ctx, "backtest_runs", backtestRunsColumns, 1, func(int) ([]any, error) { return row, nil })
}

func backtestRunRow(r *BacktestRun) ([]any, error) {
	if r.RunID == "" {
		return nil, errors.New("chsink: backtest run: run id is required")
	}
	for name, t := range map[string]time.Time{"started_at": r.StartedAt, "finished_at": r.FinishedAt, "from": r.From, "to": r.To} {
		if !storableTime(t) {
			return nil, fmt.Errorf("chsink: backtest run %s: %s %s is outside what ClickHouse DateTime stores", r.RunID, name, t.Format(time.RFC3339))
		}
	}
	if n := len(r.TransitionFrom); len(r.TransitionTo) != n || len(r.TransitionCount) != n {
		return nil, fmt.Errorf("chsink: backtest run %s: transition slices differ in length", r.RunID)
	}
	if n := len(r.RuleIDs); len(r.RuleCurrentHits) != n || len(r.RuleCandidateHits) != n || len(r.RuleGained) != n || len(r.RuleLost) != n {
		return nil, fmt.Errorf("chsink: backtest run %s: rule slices differ in length", r.RunID)
	}
	if math.IsNaN(r.EventsPerSec) || math.IsInf(r.EventsPerSec, 0) {
		return nil, fmt.Errorf("chsink: backtest run %s: events per second is %v", r.RunID, r.EventsPerSec)
	}
	for _, p := range []*float64{r.CurrentPrecision, r.CurrentRecall, r.CandidatePrecision, r.CandidateRecall} {
		if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
			return nil, fmt.Errorf("chsink: backtest run %s: precision or recall is %v; use nil for undefined", r.RunID, *p)
		}
	}
	return []any{
		r.RunID, r.StartedAt.UTC(), r.FinishedAt.UTC(), r.From.UTC(), r.To.UTC(),
		r.CurrentName, r.CurrentVersion, r.CandidateName, r.CandidateVersion,
		r.Events, r.WarmUpEvents, r.SkippedEvents, r.ChangedEvents, r.EventsPerSec,
		nonNil(r.TransitionFrom), nonNil(r.TransitionTo), nonNil(r.TransitionCount), jsonOr(r.TransitionsJSON, "[]"),
		nonNil(r.RuleIDs), nonNil(r.RuleCurrentHits), nonNil(r.RuleCandidateHits), nonNil(r.RuleGained), nonNil(r.RuleLost),
		jsonOr(r.RuleDiffsJSON, "[]"),
		r.FlagAt, r.Labeled,
		r.CurrentPrecision, r.CurrentRecall, r.CandidatePrecision, r.CandidateRecall,
		jsonOr(r.ReportJSON, "{}"),
	}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func jsonOr(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}
