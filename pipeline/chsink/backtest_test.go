package chsink

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// The backtest_runs INSERT names every column of the table, in order.
func TestBacktestRunsColumnsMatchDDL(t *testing.T) {
	cols, defaulted := ddlColumns(t, "backtest_runs")
	if len(defaulted) != 0 {
		t.Errorf("backtest_runs has DEFAULT columns %v; the insert names them all", defaulted)
	}
	if !slices.Equal(backtestRunsColumns, cols) {
		t.Errorf("INSERT columns\n %q\nwant\n %q", backtestRunsColumns, cols)
	}
}

func TestBacktestRunRow(t *testing.T) {
	now := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	p := 0.75
	good := BacktestRun{
		RunID: "bt-1", StartedAt: now, FinishedAt: now.Add(time.Minute), From: now.Add(-24 * time.Hour), To: now,
		TransitionFrom: []uint16{0}, TransitionTo: []uint16{300}, TransitionCount: []uint64{3},
		RuleIDs: []string{"r"}, RuleCurrentHits: []uint64{1}, RuleCandidateHits: []uint64{4}, RuleGained: []uint64{3}, RuleLost: []uint64{0},
		CurrentPrecision: &p,
	}
	row, err := backtestRunRow(&good)
	if err != nil {
		t.Fatal(err)
	}
	if len(row) != len(backtestRunsColumns) {
		t.Fatalf("%d values for %d columns", len(row), len(backtestRunsColumns))
	}
	col := func(name string) any { return row[slices.Index(backtestRunsColumns, name)] }
	if col("transitions") != "[]" || col("rule_diffs") != "[]" || col("report") != "{}" {
		t.Errorf("empty JSON columns: %v %v %v", col("transitions"), col("rule_diffs"), col("report"))
	}
	if got := col("current_precision").(*float64); got == nil || *got != 0.75 {
		t.Errorf("current_precision %v", got)
	}
	if got := col("candidate_recall").(*float64); got != nil {
		t.Errorf("candidate_recall %v, want NULL", got)
	}
	// Empty slices, not nil: the driver needs a value for Array columns.
	empty := good
	empty.TransitionFrom, empty.TransitionTo, empty.TransitionCount = nil, nil, nil
	empty.RuleIDs, empty.RuleCurrentHits, empty.RuleCandidateHits, empty.RuleGained, empty.RuleLost = nil, nil, nil, nil, nil
	row, err = backtestRunRow(&empty)
	if err != nil {
		t.Fatal(err)
	}
	if got := row[slices.Index(backtestRunsColumns, "rule_ids")].([]string); got == nil {
		t.Error("nil rule_ids")
	}

	nan := math.NaN()
	for name, mutate := range map[string]func(*BacktestRun){
		"no run id":       func(r *BacktestRun) { r.RunID = "" },
		"zero started_at": func(r *BacktestRun) { r.StartedAt = time.Time{} },
		"to after 2106":   func(r *BacktestRun) { r.To = time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC) },
		"ragged matrix":   func(r *BacktestRun) { r.TransitionTo = nil },
		"ragged rules":    func(r *BacktestRun) { r.RuleLost = []uint64{1, 2} },
		"NaN precision":   func(r *BacktestRun) { r.CurrentPrecision = &nan },
		"infinite rate":   func(r *BacktestRun) { r.EventsPerSec = math.Inf(1) },
	} {
		r := good
		mutate(&r)
		if _, err := backtestRunRow(&r); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "chsink: backtest run") {
			t.Errorf("%s: error %q does not say where it comes from", name, err)
		}
	}
}

func TestReadEventsArguments(t *testing.T) {
	st, err := Open(t.Context(), Config{Addr: "127.0.0.1:1", WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	from := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for name, c := range map[string]struct {
		from, to time.Time
		opts     ReadOptions
	}{
		"empty period":   {from, from, ReadOptions{}},
		"reversed":       {from.Add(time.Hour), from, ReadOptions{}},
		"zero from":      {time.Time{}, from, ReadOptions{}},
		"negative chunk": {from, from.Add(time.Hour), ReadOptions{Chunk: -1}},
		"negative batch": {from, from.Add(time.Hour), ReadOptions{Batch: -1}},
	} {
		if _, err := st.ReadEvents(t.Context(), c.from, c.to, c.opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// No server: the error comes out of Next, and again out of Close.
	rd, err := st.ReadEvents(t.Context(), from, from.Add(time.Hour), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := rd.Next(t.Context()); ok || err == nil || !strings.Contains(err.Error(), "verify_events") {
		t.Errorf("Next without a server: %v %v", ok, err)
	}
	if err := rd.Close(); err == nil {
		t.Error("Close after a failed read: no error")
	}
}
