//go:build integration

package chsink

import (
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// Event ids are unique per app only. Two apps whose events share ids in one hour are two apps'
// events in the console's figures over every app: the hourly views' uniq states of event_id,
// merged across apps, counted them once.
func TestConsoleFiguresCountEveryAppsEvents(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	a, b := testRecord(0), testRecord(0)
	a.AppID, b.AppID = "app-a", "app-b"
	c := testRecord(1) // another event of app-a in the hour
	c.AppID, c.TS = "app-a", a.TS.Add(time.Minute)
	if err := st.WriteBatch(ctx, []schemas.ScoreRecord{a, b, c}); err != nil {
		t.Fatal(err)
	}
	from, to := a.TS.Truncate(time.Hour), a.TS.Truncate(time.Hour).Add(time.Hour)
	for _, app := range []string{"", "app-a", "app-b"} {
		want := map[string]uint64{"": 3, "app-a": 2, "app-b": 1}[app]
		mix, err := st.ScoreMix(ctx, from, to, app)
		if err != nil {
			t.Fatal(err)
		}
		if len(mix) != 1 || mix[0].Events != want || mix[0].S600 != want {
			t.Errorf("score mix of %q: %+v, want %d events, all at 600", app, mix, want)
		}
		tags, err := st.TagHours(ctx, from, to, app)
		if err != nil {
			t.Fatal(err)
		}
		if len(tags) != 1 || tags[0].Events != want {
			t.Errorf("tags of %q: %+v, want %d events", app, tags, want)
		}
		for _, hits := range [][]RuleHit{mustRuleHits(t, st, from, to, app)} {
			for _, h := range hits {
				if h.Events != want {
					t.Errorf("rule hits of %q: %+v, want %d events each", app, h, want)
				}
			}
		}
		hours, err := st.RuleHourHits(ctx, from, to, app)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hours {
			if h.Events != want {
				t.Errorf("rule hits per hour of %q: %+v, want %d events each", app, h, want)
			}
		}
	}
}

func mustRuleHits(t *testing.T, st *Store, from, to time.Time, app string) []RuleHit {
	t.Helper()
	hits, err := st.RuleHits(testContext(t), from, to, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 3 {
		t.Errorf("rule hits of %q: %+v, want 3 rules", app, hits)
	}
	return hits
}
