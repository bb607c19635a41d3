package scoring_test

import (
	"testing"
	"time"

	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// An event scored after later attempts of its keys were applied — re-delivered after a restart or
// a rebalance, or uploaded late by its app — counts its whole windows, as when it was scored in
// order (and as a backtest, which replays in time order, counts them). The state dropped every
// entry older than a key's newest by the longest window, so a 24 h window lost its oldest part to
// the attempts applied after the event: re-delivered 30 minutes later, an attempt on a device with
// two other numbers 23 h 50 min before lost them (device_phones_24h 3 → 1) and its stored verdict
// went from 600 (phones_per_device) to 0; an attempt uploaded 25 minutes late lost them too.
func TestProcessLateOrRedeliveredCountsItsWholeWindow(t *testing.T) {
	s := newScorer(t, scoring.Config{}, withProbes(nil, "device_phones_24h"))
	ev := func(id string, at time.Duration, phone string) schemas.VerifyEvent {
		e := event(id, t0.Add(at), phone, ip1)
		e.DeviceID = "dev-farm-1"
		return e
	}
	process(t, s, ev("p1", 0, "13800138001"))
	process(t, s, ev("p2", time.Second, "13800138002"))
	e := ev("p3", 23*time.Hour+50*time.Minute, "13800138003")
	first := process(t, s, e)
	if got := probes(first.Hits)["device_phones_24h"]; got != "3" || first.Score != 600 {
		t.Fatalf("in order: device_phones_24h %s, score %d; want 3 and 600", got, first.Score)
	}
	// Later attempts of the device, half an hour on.
	process(t, s, ev("p4", 24*time.Hour+20*time.Minute, "13800138003"))

	again := process(t, s, e)
	if got := probes(again.Hits)["device_phones_24h"]; got != "3" || again.Score != first.Score {
		t.Errorf("re-delivered 30 min later: device_phones_24h %s, score %d; want 3 and %d as the first time", got, again.Score, first.Score)
	}
	late := process(t, s, ev("p5", 23*time.Hour+55*time.Minute, "13800138005"))
	if got := probes(late.Hits)["device_phones_24h"]; got != "4" {
		t.Errorf("uploaded 25 min late: device_phones_24h %s, want 4 (the two numbers of 23 h 55 min before, p3's and its own)", got)
	}
}

// Events scored more than LateAllowance behind the newest event applied are counted
// (ScoredLate): their longest windows may miss their oldest part, and an operator learns of it
// from riskflow_scored_late_total instead of from verdicts lower than a backtest's. Events in
// order, re-deliveries and events late by less than the allowance are not.
func TestProcessCountsEventsScoredBeyondTheLateAllowance(t *testing.T) {
	s := newScorer(t, scoring.Config{}, packs.Default())
	process(t, s, event("a1", t0, "13800138001", ip1))
	process(t, s, event("a2", t0.Add(2*time.Hour), "13800138002", ip1))
	process(t, s, event("a2", t0.Add(2*time.Hour), "13800138002", ip1)) // re-delivered
	process(t, s, event("a3", t0.Add(time.Hour+time.Minute), "13800138003", ip1))
	if n := s.ScoredLate(); n != 0 {
		t.Fatalf("in order, re-delivered, 59 min late: %d scored late, want 0", n)
	}
	process(t, s, event("a4", t0.Add(30*time.Minute), "13800138004", ip1))
	process(t, s, event("a1", t0, "13800138001", ip1)) // a re-delivery 2 h behind is late too
	if n := s.ScoredLate(); n != 2 {
		t.Errorf("1 h 30 min and 2 h late: %d scored late, want 2", n)
	}
}
