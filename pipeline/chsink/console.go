package chsink

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The console's overview reads (scoring/console through cmd/riskflow). Charts and hit rates come
// from the hourly rollups (0007, 0008), never from the event tables, so they stay fast on a long
// history. (Its investigation of one key uses Lookup.)

// HourScore is the score mix of one hour.
type HourScore struct {
	Hour                         time.Time
	S0, S300, S600, S900, Events uint64
}

// TagHour is one tag's events in one hour.
type TagHour struct {
	Hour   time.Time
	Tag    string
	Events uint64
}

// RuleHit is one rule's events over a range in one mode.
type RuleHit struct {
	Rule, Tag, Mode string
	Events          uint64
}

// appFilter is the WHERE clause and arguments of the console's hourly reads.
func appFilter(from, to time.Time, app string) (string, []any) {
	w := "hour >= ? AND hour < ?"
	args := []any{from.UTC().Truncate(time.Hour), to.UTC()}
	if app != "" {
		w += " AND app_id = ?"
		args = append(args, app)
	}
	return w, args
}

// The hourly views' counters are uniq states of event_id, which is unique per app only: merged
// across apps, two apps' events with the same id would count once. So every read below merges
// each app's states alone and sums the apps' counts.

// ScoreMixSQL is the score mix per hour (risk_scores_hourly).
func ScoreMixSQL(database, where string) string {
	return "SELECT hour, sum(n0) AS s0, sum(n300) AS s300, sum(n600) AS s600, sum(n900) AS s900, sum(n) AS events FROM (" +
		"SELECT hour, app_id, uniqIfMerge(score_0) AS n0, uniqIfMerge(score_300) AS n300, uniqIfMerge(score_600) AS n600, " +
		"uniqIfMerge(score_900) AS n900, uniqMerge(events) AS n FROM " + database + ".risk_scores_hourly WHERE " + where +
		" GROUP BY hour, app_id) GROUP BY hour ORDER BY hour"
}

// TagHoursSQL is the events per tag and hour of enforce and tag-mode hits (rule_hits_hourly).
func TagHoursSQL(database, where string) string {
	return "SELECT hour, tag, sum(n) AS events FROM (SELECT hour, tag, app_id, uniqMerge(events) AS n FROM " + database +
		".rule_hits_hourly WHERE " + where + " AND mode IN ('enforce', 'tag') GROUP BY hour, tag, app_id) GROUP BY hour, tag ORDER BY hour, tag"
}

// RuleHitsSQL is the events per rule and mode over the range (rule_hits_hourly).
func RuleHitsSQL(database, where string) string {
	return "SELECT rule, tag, mode, sum(n) AS events FROM (SELECT rule, tag, mode, app_id, uniqMerge(events) AS n FROM " + database +
		".rule_hits_hourly WHERE " + where + " GROUP BY rule, tag, mode, app_id) GROUP BY rule, tag, mode ORDER BY events DESC, rule, mode"
}

// RuleHourHitsSQL is the events per hour, rule and mode (rule_hits_hourly). An event falls in one
// hour, so summing a rule's hours gives its events over the range (what RuleHitsSQL merges).
func RuleHourHitsSQL(database, where string) string {
	return "SELECT hour, rule, tag, mode, sum(n) AS events FROM (SELECT hour, rule, tag, mode, app_id, uniqMerge(events) AS n FROM " + database +
		".rule_hits_hourly WHERE " + where + " GROUP BY hour, rule, tag, mode, app_id) GROUP BY hour, rule, tag, mode ORDER BY hour, rule, mode"
}

// RuleHourHit is one rule's events in one hour in one mode.
type RuleHourHit struct {
	Hour time.Time
	RuleHit
}

// RuleHourHits returns events per hour, rule and mode of [from, to).
func (s *Store) RuleHourHits(ctx context.Context, from, to time.Time, app string) ([]RuleHourHit, error) {
	where, args := appFilter(from, to, app)
	return queryRows(ctx, s, "rule hits per hour", RuleHourHitsSQL(s.db, where), func(rows driver.Rows, h *RuleHourHit) error {
		return rows.Scan(&h.Hour, &h.Rule, &h.Tag, &h.Mode, &h.Events)
	}, args...)
}

// ScoreMix returns the score mix per hour of [from, to), for one app or all ("").
func (s *Store) ScoreMix(ctx context.Context, from, to time.Time, app string) ([]HourScore, error) {
	where, args := appFilter(from, to, app)
	return queryRows(ctx, s, "score mix", ScoreMixSQL(s.db, where), func(rows driver.Rows, h *HourScore) error {
		return rows.Scan(&h.Hour, &h.S0, &h.S300, &h.S600, &h.S900, &h.Events)
	}, args...)
}

// TagHours returns events per tag and hour of [from, to).
func (s *Store) TagHours(ctx context.Context, from, to time.Time, app string) ([]TagHour, error) {
	where, args := appFilter(from, to, app)
	return queryRows(ctx, s, "tags per hour", TagHoursSQL(s.db, where), func(rows driver.Rows, t *TagHour) error {
		return rows.Scan(&t.Hour, &t.Tag, &t.Events)
	}, args...)
}

// RuleHits returns events per rule and mode over [from, to).
func (s *Store) RuleHits(ctx context.Context, from, to time.Time, app string) ([]RuleHit, error) {
	where, args := appFilter(from, to, app)
	return queryRows(ctx, s, "rule hits", RuleHitsSQL(s.db, where), func(rows driver.Rows, h *RuleHit) error {
		return rows.Scan(&h.Rule, &h.Tag, &h.Mode, &h.Events)
	}, args...)
}

// Apps returns the apps with scored events in the last 30 days, sorted, the first 1,000 (the
// console's MaxApps).
func (s *Store) Apps(ctx context.Context) ([]string, error) {
	return queryRows(ctx, s, "apps", AppsSQL(s.db), func(rows driver.Rows, a *string) error {
		return rows.Scan(a)
	}, time.Now().UTC().Add(-30*24*time.Hour).Truncate(time.Hour))
}

// AppsSQL lists the apps with scored events since a time (a parameter).
func AppsSQL(database string) string {
	return "SELECT DISTINCT app_id FROM " + database + ".risk_scores_hourly WHERE hour >= ? ORDER BY app_id LIMIT 1000"
}
