package main

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/scoring/console"
)

// fakeRollups answers as the rollups would over fixed hours, and records the ranges asked.
type fakeRollups struct {
	mu    sync.Mutex
	asked []time.Time // from of each read
}

func (f *fakeRollups) hours(from, to time.Time) []time.Time {
	f.mu.Lock()
	f.asked = append(f.asked, from)
	f.mu.Unlock()
	var out []time.Time
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		if h.Hour()%5 != 3 { // some hours have no events
			out = append(out, h)
		}
	}
	return out
}

func (f *fakeRollups) ScoreMix(_ context.Context, from, to time.Time, app string) ([]chsink.HourScore, error) {
	var out []chsink.HourScore
	for _, h := range f.hours(from, to) {
		n := uint64(h.Hour() + 1)
		out = append(out, chsink.HourScore{Hour: h, S0: n, S300: 2, Events: n + 2})
	}
	return out, nil
}

func (f *fakeRollups) TagHours(_ context.Context, from, to time.Time, app string) ([]chsink.TagHour, error) {
	var out []chsink.TagHour
	for _, h := range f.hours(from, to) {
		out = append(out, chsink.TagHour{Hour: h, Tag: "t", Events: 2})
	}
	return out, nil
}

func (f *fakeRollups) RuleHourHits(_ context.Context, from, to time.Time, app string) ([]chsink.RuleHourHit, error) {
	var out []chsink.RuleHourHit
	for _, h := range f.hours(from, to) {
		out = append(out, chsink.RuleHourHit{Hour: h, RuleHit: chsink.RuleHit{Rule: "r1", Tag: "t", Mode: "enforce", Events: 2}},
			chsink.RuleHourHit{Hour: h, RuleHit: chsink.RuleHit{Rule: "r2", Tag: "u", Mode: "shadow", Events: 1}})
	}
	return out, nil
}

// The overview reads only the hours it does not keep: a second overview within the ttl reads from
// the first hour that had not settled; the figures are those of reading the whole range; after
// the ttl the whole range is read again.
func TestOverviewKeepsSettledHours(t *testing.T) {
	now := time.Date(2026, 12, 5, 9, 20, 0, 0, time.UTC)
	c := newOverviewHours()
	c.now = func() time.Time { return now }
	src := &fakeRollups{}
	f := console.Filter{From: now.Truncate(time.Hour).Add(-23 * time.Hour), To: now.Truncate(time.Hour).Add(time.Hour)}
	ctx := context.Background()
	first, err := c.overview(ctx, src, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.asked) != 3 || !src.asked[0].Equal(f.From) {
		t.Fatalf("first overview read from %v", src.asked)
	}
	if len(first.Rules) != 2 || first.Rules[0].Rule != "r1" || first.Rules[0].Events != 2*int64(len(first.Scores)) {
		t.Errorf("rules over the range: %+v (%d hours with events)", first.Rules, len(first.Scores))
	}
	now = now.Add(5 * time.Minute)
	src.asked = nil
	second, err := c.overview(ctx, src, f)
	if err != nil {
		t.Fatal(err)
	}
	// 09:25: the 08:00 hour ended 25 minutes ago, settled; 09:00 is still going: read from 09:00.
	if want := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC); len(src.asked) != 3 || !src.asked[0].Equal(want) {
		t.Errorf("second overview read from %v, want %v", src.asked, want)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("from kept hours:\n%+v\nread whole:\n%+v", second, first)
	}
	now = now.Add(c.ttl)
	src.asked = nil
	if _, err := c.overview(ctx, src, f); err != nil || len(src.asked) != 3 || !src.asked[0].Equal(f.From) {
		t.Errorf("after the ttl: read from %v (%v)", src.asked, err)
	}
	// Another app keeps its own hours.
	src.asked = nil
	f.App = "other"
	if _, err := c.overview(ctx, src, f); err != nil || len(src.asked) != 3 || !src.asked[0].Equal(f.From) {
		t.Errorf("another app: read from %v (%v)", src.asked, err)
	}
}
