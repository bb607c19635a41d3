package chbacktest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/backtest"
)

func newScorer() (*scoring.Scorer, error) { return backtest.NewScorer(scoring.Config{})() }

func compile(t *testing.T, yaml []byte) *rules.Pack {
	t.Helper()
	s, err := newScorer()
	if err != nil {
		t.Fatal(err)
	}
	p, err := rules.Compile(yaml, s.Env())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func edit(t *testing.T, old, new string) []byte {
	t.Helper()
	src := string(packs.Default())
	if strings.Count(src, old) != 1 {
		t.Fatalf("%q occurs %d times in the default pack", old, strings.Count(src, old))
	}
	return []byte(strings.Replace(src, old, new, 1))
}

// A stored event converts to a backtest event field for field.
func TestStoredEventIsABacktestEvent(t *testing.T) {
	st := chsink.StoredEvent{EventID: "e", TS: time.Unix(1, 0), AppID: "a", Flow: "f", PhoneHash: "h", PhoneSegment: "s", IP: "i",
		Carrier: "c", Platform: "p", DeviceID: "d", Outcome: "o", ErrorCode: "x", TokenDigest: "t"}
	if got := backtest.Event(st); fmt.Sprint(got) != fmt.Sprint(st) {
		t.Errorf("%+v → %+v", st, got)
	}
}

func TestRunRow(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	var evs []backtest.Event
	for i := range 50 {
		h := sha256.Sum256(fmt.Appendf(nil, "n%d", i%10))
		evs = append(evs, backtest.Event{EventID: fmt.Sprintf("e%d", i), TS: t0.Add(time.Duration(i) * time.Second), AppID: "app-1",
			Flow: "one_click_login", PhoneHash: hex.EncodeToString(h[:]), PhoneSegment: "1380013", IP: "203.0.113.7",
			Carrier: "CM", Platform: "android", DeviceID: "d", Outcome: "success"})
	}
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "when: phone_verifies_10m >= 3\n", "when: phone_verifies_10m >= 2\n"))
	rep, err := backtest.Run(context.Background(), backtest.NewSliceSource(evs), current, candidate, newScorer, backtest.Options{RunID: "bt-test"})
	if err != nil {
		t.Fatal(err)
	}
	row, err := runRow(rep)
	if err != nil {
		t.Fatal(err)
	}
	if row.RunID != "bt-test" || len(row.TransitionFrom) != len(rep.Transitions) || len(row.RuleIDs) != len(rep.Rules) ||
		row.Events != 50 || row.CurrentPrecision != nil || !strings.HasPrefix(row.TransitionsJSON, "[{") || row.FlagAt != 600 ||
		!row.From.Equal(t0) || !row.To.Equal(t0.Add(50*time.Second)) || row.CandidateVersion != candidate.Version {
		t.Errorf("backtest_runs row %+v", row)
	}
}

// The warm-up is read from opts.WarmUp before From, but not from before what ClickHouse stores: a
// backtest from 1970-01-01 failed with "period 1969-12-31… is outside what ClickHouse DateTime
// stores", a time nobody typed.
func TestWarmUpFromStopsAtTheFirstStorableTime(t *testing.T) {
	from := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	if got := warmUpFrom(backtest.Options{From: from, WarmUp: 24 * time.Hour}); !got.Equal(from.Add(-24 * time.Hour)) {
		t.Errorf("warm-up from %s", got)
	}
	for _, from := range []time.Time{Earliest, time.Unix(3600, 0), time.Unix(86400, 0)} {
		if got := warmUpFrom(backtest.Options{From: from, WarmUp: 24 * time.Hour}); !got.Equal(firstRead) {
			t.Errorf("from %s: warm-up from %s, want %s", from, got, firstRead)
		}
	}
}
