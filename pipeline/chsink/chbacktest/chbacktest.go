// Package chbacktest runs backtests (package scoring/backtest) over the history in ClickHouse:
// events read from verify_events through chsink, the run recorded in backtest_runs. It sits beside
// the store so that scoring/backtest knows nothing of ClickHouse.
package chbacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/backtest"
)

// Source is a backtest.Source over the stream of [chsink.Store.ReadEvents]: verify_events
// FINAL, in ts order.
type Source struct {
	r *chsink.EventReader
}

// NewSource wraps r. Closing r remains the caller's job.
func NewSource(r *chsink.EventReader) *Source { return &Source{r: r} }

// Next implements backtest.Source.
func (s *Source) Next(ctx context.Context) (backtest.Event, bool, error) {
	e, ok, err := s.r.Next(ctx)
	if !ok || err != nil {
		return backtest.Event{}, false, err
	}
	return backtest.Event(e), true, nil
}

// Run backtests candidate against current over the events stored in st's
// verify_events with opts.From <= ts < opts.To (both required), reading opts.WarmUp more
// history before From to fill the feature windows, and records the run in backtest_runs
// (unless opts.NoRecord). This is `riskflow backtest`.
//
// When the run succeeds but recording it fails, Run returns the report together
// with the error, so the caller can still print it; so it does, unrecorded, with a partial report
// (Report.Partial) when the run stopped early (ctx cancelled, the read failed). read tunes the
// read of the events (its zero value is a good default; a read broken off by a ClickHouse
// restart is resumed, see chsink.ReadOptions.Resumes).
func Run(ctx context.Context, st *chsink.Store, current, candidate *rules.Pack,
	newScorer func() (*scoring.Scorer, error), opts backtest.Options, read chsink.ReadOptions) (*backtest.Report, error) {
	if st == nil {
		return nil, errors.New("backtest: no ClickHouse store")
	}
	if opts.From.IsZero() || opts.To.IsZero() {
		return nil, errors.New("backtest: from and to are required to read ClickHouse")
	}
	if opts.WarmUp < 0 {
		return nil, fmt.Errorf("backtest: warm-up %s is negative", opts.WarmUp)
	}
	rd, err := st.ReadEvents(ctx, warmUpFrom(opts), opts.To, read)
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	rep, err := backtest.Run(ctx, NewSource(rd), current, candidate, newScorer, opts)
	if cerr := rd.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("backtest: %w", cerr)
	}
	if err != nil {
		// rep, when not nil, is partial (interrupted, or the read failed): not recorded.
		return rep, err
	}
	if !opts.NoRecord {
		if err := Record(ctx, st, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// Record writes rep to backtest_runs. A report of a Run without From or To records the
// first and last event's ts instead.
func Record(ctx context.Context, st *chsink.Store, rep *backtest.Report) error {
	row, err := runRow(rep)
	if err != nil {
		return err
	}
	if err := st.RecordBacktestRun(ctx, row); err != nil {
		return fmt.Errorf("backtest: record run %s: %w", rep.RunID, err)
	}
	return nil
}

// runRow is rep as a backtest_runs row.
func runRow(rep *backtest.Report) (chsink.BacktestRun, error) {
	from, to := rep.From, rep.To
	if from.IsZero() {
		from = rep.FirstEvent
	}
	if to.IsZero() {
		to = rep.LastEvent.Add(time.Second)
	}
	if from.IsZero() {
		// nothing was read: record the moment of the run
		from, to = rep.StartedAt, rep.StartedAt
	}
	row := chsink.BacktestRun{
		RunID: rep.RunID, StartedAt: rep.StartedAt, FinishedAt: rep.FinishedAt, From: from, To: to,
		CurrentName: rep.Current.Name, CurrentVersion: rep.Current.Version,
		CandidateName: rep.Candidate.Name, CandidateVersion: rep.Candidate.Version,
		Events: uint64(rep.Events), WarmUpEvents: uint64(rep.WarmUpEvents),
		SkippedEvents: uint64(rep.Skipped), ChangedEvents: uint64(rep.Changed),
		EventsPerSec: rep.EventsPerSec,
		FlagAt:       uint16(schemas.ScoreStepUp), // backtest's default flag level
	}
	for _, t := range rep.Transitions {
		row.TransitionFrom = append(row.TransitionFrom, uint16(t.From))
		row.TransitionTo = append(row.TransitionTo, uint16(t.To))
		row.TransitionCount = append(row.TransitionCount, uint64(t.Count))
	}
	for _, d := range rep.Rules {
		row.RuleIDs = append(row.RuleIDs, d.Rule)
		row.RuleCurrentHits = append(row.RuleCurrentHits, uint64(d.CurrentHits))
		row.RuleCandidateHits = append(row.RuleCandidateHits, uint64(d.CandidateHits))
		row.RuleGained = append(row.RuleGained, uint64(d.Gained))
		row.RuleLost = append(row.RuleLost, uint64(d.Lost))
	}
	if q := rep.Quality; q != nil {
		row.FlagAt = uint16(q.FlagAt)
		row.Labeled = uint64(q.Labeled)
		row.CurrentPrecision, row.CurrentRecall = q.Current.Precision, q.Current.Recall
		row.CandidatePrecision, row.CandidateRecall = q.Candidate.Precision, q.Candidate.Recall
	}
	for _, part := range []struct {
		v   any
		dst *string
	}{{nonNilSlice(rep.Transitions), &row.TransitionsJSON}, {nonNilSlice(rep.Rules), &row.RuleDiffsJSON}, {rep, &row.ReportJSON}} {
		b, err := json.Marshal(part.v)
		if err != nil {
			return chsink.BacktestRun{}, fmt.Errorf("backtest: record run %s: %w", rep.RunID, err)
		}
		*part.dst = string(b)
	}
	return row, nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// StoredLabels reads the labels people stored in ClickHouse (`riskflow label`, POST
// /v1/admin/labels) as backtest.Labels: labels of events, and labels of decisions through the
// event that carries the decision's id. It returns nil when there are none.
func StoredLabels(ctx context.Context, st *chsink.Store) (backtest.Labels, error) {
	ls, err := st.ReadLabels(ctx)
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	if len(ls) == 0 {
		return nil, nil
	}
	out := make(backtest.Labels, len(ls))
	for _, l := range ls {
		out[backtest.LabelKey{AppID: l.AppID, EventID: l.EventID}] = l.Fraud
	}
	return out, nil
}

// The times ClickHouse's DateTime stores, which a backtest's period must lie within.
var (
	Earliest = time.Unix(0, 0).UTC()
	Latest   = time.Unix(math.MaxUint32, 0).UTC()
)

// firstRead is the earliest time a read of verify_events may begin at (chsink.ReadEvents).
var firstRead = Earliest.Add(time.Second)

// warmUpFrom is where the read of a run begins: opts.WarmUp before opts.From, but not before
// what ClickHouse stores (a warm-up before it reads nothing anyway): a backtest from
// 1970-01-01, "everything", failed on its warm-up's 1969.
func warmUpFrom(opts backtest.Options) time.Time {
	if lo := opts.From.Add(-opts.WarmUp); lo.After(firstRead) {
		return lo
	}
	return firstRead
}
