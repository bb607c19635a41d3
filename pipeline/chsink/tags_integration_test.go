//go:build integration

package chsink

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
	"github.com/riskflow/riskflow/deploy/grafana"
	"github.com/riskflow/riskflow/schemas"
)

// Tags are given by enforce rules and by tag rules (level 0: odd_hour, roaming), and a rule can
// run in any of the four modes: the tag counts of tag_trends.sql and of the "Tags given per
// hour" panel are those of risk_scores.tags, what the callers got, and rule_hits_by_mode.sql
// shows every hit of a rule, a tag rule's too (they counted enforce hits only, so odd_hour,
// given to most night logins, showed no tag and a rule row of zeros).
func TestTagsGivenAndRuleHitsOfEveryMode(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	now := time.Now().UTC().Truncate(time.Second)
	h := schemas.NewPhoneHasher([]byte("test key"))
	var recs []schemas.ScoreRecord
	for i := range 90 {
		phone := fmt.Sprintf("1380013%04d", i)
		r := schemas.ScoreRecord{
			EventID: fmt.Sprintf("tg-%03d", i), TS: now.Add(-time.Duration(i) * 7 * time.Second), AppID: "app-1",
			Flow: schemas.FlowOneClickLogin, PhoneHash: h.Hex(phone), PhoneMasked: schemas.MaskPhone(phone),
			PhoneSegment: schemas.PhoneSegment(phone), IP: "10.2.0.1", Carrier: "CM", Outcome: schemas.OutcomeSuccess,
			RulesVersion: "v1",
		}
		odd := schemas.RuleHit{Rule: "odd_hour", Tag: "odd_hour", Mode: "tag", Reason: "night"}
		switch i % 3 {
		case 0: // an enforce hit and a tag hit: both tags given
			r.Score, r.Tags = 300, []string{"phone_velocity", "odd_hour"}
			r.Hits = []schemas.RuleHit{{Rule: "phone_velocity_observe", Tag: "phone_velocity", Score: 300, Mode: "enforce", Reason: "many"}, odd}
		case 1: // a tag hit alone: score 0, tag given
			r.Tags = []string{"odd_hour"}
			r.Hits = []schemas.RuleHit{odd}
		case 2: // a shadow hit: nothing given
			r.Hits = []schemas.RuleHit{{Rule: "ip_burst_try", Tag: "ip_burst", Score: 600, Mode: "shadow", Reason: "burst"}}
		}
		r.ScoredAt = r.TS.Add(time.Second)
		recs = append(recs, r)
	}
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}

	// By hand from the rows: tags given, hits per rule.
	given := counts(t, st, "SELECT tag, count() FROM "+st.table("risk_scores")+" FINAL ARRAY JOIN tags AS tag GROUP BY tag")
	hits := counts(t, st, "SELECT rule, count() FROM "+st.table("risk_scores")+" FINAL ARRAY JOIN hit_rules AS rule GROUP BY rule")
	if want := map[string]uint64{"phone_velocity": 30, "odd_hour": 60}; !maps.Equal(given, want) {
		t.Fatalf("tags in risk_scores: %v, want %v", given, want)
	}

	query := func(file string) string {
		stmts := statementsOf(t, chschema.Queries, "queries/"+file, st.db)
		return stmts[0]
	}
	if got := counts(t, st, "SELECT tag, sum(tagged_events) FROM ("+query("tag_trends.sql")+") GROUP BY tag"); !maps.Equal(got, given) {
		t.Errorf("tag_trends.sql counts tags %v; risk_scores.tags gave %v", got, given)
	}
	if got := counts(t, st, "SELECT rule, sum(enforce_hits + shadow_hits + tag_hits + allow_hits) FROM ("+query("rule_hits_by_mode.sql")+") GROUP BY rule"); !maps.Equal(got, hits) {
		t.Errorf("rule_hits_by_mode.sql counts hits %v; risk_scores has %v", got, hits)
	}
	panels, err := grafana.ClickHousePanels()
	if err != nil {
		t.Fatal(err)
	}
	var tagPanel string
	for _, p := range panels {
		if p.Panel == "Tags given per hour" {
			tagPanel = p.SQL
		}
	}
	if tagPanel == "" {
		t.Fatal("no panel Tags given per hour")
	}
	sql, err := grafana.ExpandMacros(tagPanel, now.Add(-6*time.Hour), now.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sql = strings.ReplaceAll(sql, "riskflow.", st.db+".")
	if got := counts(t, st, "SELECT tag, sum(events) FROM ("+sql+") GROUP BY tag"); !maps.Equal(got, given) {
		t.Errorf("panel Tags given per hour counts %v; risk_scores.tags gave %v", got, given)
	}
}

// counts runs a query of (name, count) rows.
func counts(t *testing.T, st *Store, q string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, row := range runQuery(t, st, q) {
		k, v, _ := strings.Cut(row, " | ")
		var n uint64
		if _, err := fmt.Sscan(v, &n); err != nil {
			t.Fatalf("%s: row %q", q, row)
		}
		out[k] = n
	}
	return out
}

// A re-delivered event is scored again by a state that has moved on, and its copy can differ:
// distinct counts above 512 are estimates that change as older attempts fold into buckets (a
// loadgen run re-delivering 279 of 5,595 events: one copy lost prefix_burst_sudden, "500
// numbers" then "517"). risk_scores FINAL keeps the latest scoring; the hourly views count the
// event once in events and under every score and rule any copy got, as SCHEMA.md says.
func TestRescoredCopyInHourlyViews(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	r := recentRecords(1)[0]
	r.Score, r.Tags = 600, []string{"prefix_burst"}
	r.Hits = []schemas.RuleHit{
		{Rule: "prefix_burst", Tag: "prefix_burst", Score: 600, Mode: "enforce", Reason: "17 numbers"},
		{Rule: "prefix_burst_sudden", Tag: "prefix_burst", Score: 600, Mode: "enforce", Reason: "17 in 10 min"},
	}
	again := r
	again.Score, again.Tags = 300, []string{"carrier_mismatch"}
	again.Hits = []schemas.RuleHit{{Rule: "carrier_mismatch", Tag: "carrier_mismatch", Score: 300, Mode: "enforce", Reason: "CM number on CU"}}
	again.ScoredAt = r.ScoredAt.Add(time.Second)
	for _, b := range [][]schemas.ScoreRecord{{r}, {again}} {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryUint(t, st, "SELECT toUInt64(score) FROM "+st.table("risk_scores")+" FINAL"); got != 300 {
		t.Errorf("risk_scores FINAL: score %d, want the latest scoring's 300", got)
	}
	for q, want := range map[string]uint64{
		"SELECT uniqMerge(events) FROM " + st.table("risk_scores_hourly"):                                       1,
		"SELECT uniqIfMerge(score_300) + uniqIfMerge(score_600) FROM " + st.table("risk_scores_hourly"):         2,
		"SELECT uniqMerge(events) FROM " + st.table("rule_hits_hourly") + " WHERE rule = 'prefix_burst_sudden'": 1,
		"SELECT uniqMerge(events) FROM " + st.table("rule_hits_hourly") + " WHERE tag = 'prefix_burst'":         1,
	} {
		if got := queryUint(t, st, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

// A tag that stops firing shows in tag_trends.sql as a drop: a row of 0 events in the hour a day
// after the last one it fired in, with the share it had then as the change. The query listed only
// tags that fired, so an attack rule broken by a change, or an attack that moved elsewhere,
// simply left the list.
func TestTagTrendsShowsATagThatStoppedFiring(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	h := schemas.NewPhoneHasher([]byte("test key"))
	// Two hours ago (a whole hour, not the current one) and the same hour a day earlier.
	today := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	yesterday := today.Add(-24 * time.Hour)
	var recs []schemas.ScoreRecord
	add := func(at time.Time, i int, tag string) {
		phone := fmt.Sprintf("1390013%04d", i)
		r := schemas.ScoreRecord{
			EventID: fmt.Sprintf("tt-%s-%03d", at.Format("0102"), i), TS: at.Add(time.Duration(i) * time.Second), AppID: "app-1",
			Flow: schemas.FlowOneClickLogin, PhoneHash: h.Hex(phone), PhoneMasked: schemas.MaskPhone(phone),
			PhoneSegment: schemas.PhoneSegment(phone), IP: "10.2.0.1", Carrier: "CM", Outcome: schemas.OutcomeSuccess,
			RulesVersion: "v1",
		}
		if tag != "" {
			r.Score, r.Tags = 600, []string{tag}
			r.Hits = []schemas.RuleHit{{Rule: tag, Tag: tag, Score: 600, Mode: "enforce", Reason: "r"}}
		}
		r.ScoredAt = r.TS.Add(time.Second)
		recs = append(recs, r)
	}
	for i := range 40 { // yesterday: 10 of 40 events ip_burst
		tag := ""
		if i < 10 {
			tag = "ip_burst"
		}
		add(yesterday, i, tag)
	}
	for i := range 40 { // today: 5 of 40 phone_velocity, ip_burst gone
		tag := ""
		if i < 5 {
			tag = "phone_velocity"
		}
		add(today, i, tag)
	}
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	q := statementsOf(t, chschema.Queries, "queries/tag_trends.sql", st.db)[0]
	rows := runQuery(t, st, "SELECT toString(hour), tag, tagged_events, share, share_change_vs_day_before FROM ("+q+") ORDER BY hour, tag")
	hr := func(at time.Time) string { return at.Format("2006-01-02 15:04:05") }
	want := []string{
		hr(yesterday) + " | ip_burst | 10 | 0.25 | 0.25",
		hr(today) + " | ip_burst | 0 | 0 | -0.25",
		hr(today) + " | phone_velocity | 5 | 0.125 | 0.125",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("tag_trends.sql rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}
