package chsink

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RulesReportSQL returns the two queries of `riskflow rules report`, complete with their values,
// so the text the command sends is the text CI runs on every ClickHouse release it tests
// (TestSQLOnBothClickHouses).
//
// The report window is [cur, end), the window it is compared with [prev, cur); app limits both
// to one tenant ("" = all apps).
//
//	totals: one row, the events scored in the report window and in the one before it
//	hits:   per rule, mode and hour of [prev, end), and whether in the report window: rule, mode,
//	        tag, level, hour (unix seconds), in_window (1: in [cur, end), 0: in [prev, cur)), hits
//
// database must be a plain identifier, as Config.Validate requires.
func RulesReportSQL(database string, cur, prev, end time.Time, app string) (totals, hits string, err error) {
	if !identRE.MatchString(database) {
		return "", "", fmt.Errorf("chsink: rules report: database %q must be letters, digits and _", database)
	}
	if !(prev.Before(cur) && cur.Before(end)) || !storableTime(prev) || !storableTime(end) {
		return "", "", fmt.Errorf("chsink: rules report: windows %s, %s, %s are not in order or not storable",
			prev.Format(time.RFC3339), cur.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	tbl := database + ".risk_scores"
	where := "ts >= " + dateTime(prev) + " AND ts < " + dateTime(end)
	if app != "" {
		where += " AND app_id = " + quoteString(app)
	}
	totals = "SELECT countIf(ts >= " + dateTime(cur) + "), countIf(ts < " + dateTime(cur) + ") FROM " + tbl + " FINAL WHERE " + where
	// in_window splits the hours by the report window's start, as totals does: a window of
	// 90 minutes starts inside an hour, whose hits belong to both.
	hits = "SELECT rule, mode, any(tag), any(level), toUnixTimestamp(toStartOfHour(ts)) AS hour, ts >= " + dateTime(cur) + " AS in_window, count() FROM " + tbl + " FINAL " +
		"ARRAY JOIN hit_rules AS rule, hit_tags AS tag, hit_scores AS level, hit_modes AS mode " +
		"WHERE " + where + " GROUP BY rule, mode, hour, in_window"
	return totals, hits, nil
}

// dateTime is t as a ClickHouse DateTime literal: whole seconds since 1970, whatever the
// server's time zone.
func dateTime(t time.Time) string {
	return "toDateTime(" + strconv.FormatInt(t.Unix(), 10) + ")"
}

// quoteString is s as a ClickHouse string literal: quoted, with backslash and quote escaped.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
