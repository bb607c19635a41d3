package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/riskflow/riskflow/pipeline/chsink"
)

// ruleStat is one rule's hits in the report window and the window before it.
type ruleStat struct {
	rule, mode, tag string
	level           uint16
	now, before     uint64
	hourly          map[int64]uint64 // hour start (unix) → hits in the report window
}

// cmdRulesReport prints per-rule hit rates over a window from ClickHouse, shadow rules beside
// enforced ones, with the trend against the previous window of the same length.
func cmdRulesReport(ctx context.Context, cfg Config, window time.Duration, app string, asJSON bool, stdout io.Writer) error {
	if cfg.ClickHouse.Addr == "" {
		return configf("clickhouse.addr: required (RISKFLOW_CLICKHOUSE_ADDR)")
	}
	c := cfg.ClickHouse
	end := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	cur, prev := end.Add(-window), end.Add(-2*window)
	// The SQL comes from chsink, complete with its values: CI runs that very text on every
	// ClickHouse release it tests.
	totalsSQL, hitsSQL, err := chsink.RulesReportSQL(c.Database, cur, prev, end, app)
	if err != nil {
		return usageError{fmt.Errorf("rules report: %w", err)}
	}
	conn, err := openStore(ctx, c, nil)
	if err != nil {
		return err
	}
	defer conn.Close()

	var totalNow, totalBefore uint64
	if err := conn.QueryRow(ctx, totalsSQL).Scan(&totalNow, &totalBefore); err != nil {
		return fmt.Errorf("rules report: count events: %w", chsink.MissingTable(err))
	}
	stats := map[string]*ruleStat{}
	rows, err := conn.Query(ctx, hitsSQL)
	if err != nil {
		return fmt.Errorf("rules report: hits: %w", chsink.MissingTable(err))
	}
	defer rows.Close()
	for rows.Next() {
		var rule, mode, tag string
		var level uint16
		var hour uint32
		var inWindow uint8
		var n uint64
		if err := rows.Scan(&rule, &mode, &tag, &level, &hour, &inWindow, &n); err != nil {
			return fmt.Errorf("rules report: scan: %w", err)
		}
		k := mode + "/" + rule
		s := stats[k]
		if s == nil {
			s = &ruleStat{rule: rule, mode: mode, tag: tag, level: level, hourly: map[int64]uint64{}}
			stats[k] = s
		}
		if inWindow == 1 { // not the hour: a window of 90m starts inside one
			s.now += n
			s.hourly[int64(hour)] += n
		} else {
			s.before += n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rules report: %w", err)
	}

	list := make([]*ruleStat, 0, len(stats))
	for _, s := range stats {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].mode != list[j].mode {
			return list[i].mode < list[j].mode // enforce before shadow
		}
		return list[i].now > list[j].now || list[i].now == list[j].now && list[i].rule < list[j].rule
	})
	r := ruleReport{app: app, from: cur, to: end, window: window, events: totalNow, eventsBefore: totalBefore, rules: list}
	if asJSON {
		return r.writeJSON(stdout)
	}
	r.writeText(stdout)
	return nil
}

// ruleReport is what rules report found: the rules that matched in the window [from, to) and
// in the window of the same length before it, and the events of each window.
type ruleReport struct {
	app                  string
	from, to             time.Time
	window               time.Duration
	events, eventsBefore uint64
	rules                []*ruleStat // in the order printed
}

func (r ruleReport) writeText(w io.Writer) {
	scope := "all apps"
	if r.app != "" {
		scope = "app " + r.app
	}
	fmt.Fprintf(w, "rule hits, %s: %s → %s (%d events) vs the %s before (%d events)\n\n",
		scope, r.from.Format(time.RFC3339), r.to.Format(time.RFC3339), r.events, shortDuration(r.window), r.eventsBefore)
	tw := newColumns(w) // text/tabwriter's alignment, by the columns a terminal gives a character
	fmt.Fprintln(tw, "mode\trule\ttag\tlevel\thits\trate\tbefore\ttrend\thourly")
	for _, s := range r.rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", s.mode, s.rule, s.tag, s.level, s.now,
			rate(s.now, r.events), rate(s.before, r.eventsBefore), trend(s.now, r.events, s.before, r.eventsBefore), spark(s.hourly, r.from, r.to))
	}
	tw.Flush()
	if len(r.rules) == 0 {
		fmt.Fprintln(w, "no rule matched in this window")
	}
}

// reportJSON is rules report --json: the numbers of the table, rates as fractions (null when the
// window holds no event), every hour of the window with its hits (0 included), oldest first.
type reportJSON struct {
	App          string           `json:"app,omitempty"`
	From         time.Time        `json:"from"`
	To           time.Time        `json:"to"`
	BeforeFrom   time.Time        `json:"before_from"`
	Events       uint64           `json:"events"`
	EventsBefore uint64           `json:"events_before"`
	Rules        []reportRuleJSON `json:"rules"`
}

type reportRuleJSON struct {
	Mode       string           `json:"mode"`
	Rule       string           `json:"rule"`
	Tag        string           `json:"tag"`
	Level      uint16           `json:"level"`
	Hits       uint64           `json:"hits"`
	Rate       *float64         `json:"rate"`
	HitsBefore uint64           `json:"hits_before"`
	RateBefore *float64         `json:"rate_before"`
	Hourly     []reportHourJSON `json:"hourly"`
}

type reportHourJSON struct {
	Hour time.Time `json:"hour"`
	Hits uint64    `json:"hits"`
}

func (r ruleReport) writeJSON(w io.Writer) error {
	fraction := func(n, total uint64) *float64 {
		if total == 0 {
			return nil
		}
		f := float64(n) / float64(total)
		return &f
	}
	out := reportJSON{App: r.app, From: r.from, To: r.to, BeforeFrom: r.from.Add(-r.window),
		Events: r.events, EventsBefore: r.eventsBefore, Rules: make([]reportRuleJSON, 0, len(r.rules))}
	for _, s := range r.rules {
		j := reportRuleJSON{Mode: s.mode, Rule: s.rule, Tag: s.tag, Level: s.level, Hits: s.now, Rate: fraction(s.now, r.events),
			HitsBefore: s.before, RateBefore: fraction(s.before, r.eventsBefore), Hourly: []reportHourJSON{}}
		for h := r.from.Truncate(time.Hour); h.Before(r.to); h = h.Add(time.Hour) { // a window of 90m starts inside an hour
			j.Hourly = append(j.Hourly, reportHourJSON{Hour: h, Hits: s.hourly[h.Unix()]})
		}
		out.Rules = append(out.Rules, j)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("rules report: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func rate(n, total uint64) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f%%", 100*float64(n)/float64(total))
}

// trend compares hit rates (not counts: traffic changes too).
func trend(now, totalNow, before, totalBefore uint64) string {
	switch {
	case totalBefore == 0 || totalNow == 0:
		return "-"
	case before == 0 && now == 0:
		return "="
	case before == 0:
		return "new"
	}
	r := (float64(now) / float64(totalNow)) / (float64(before) / float64(totalBefore))
	switch {
	case r >= 1.5:
		return fmt.Sprintf("↑ ×%.1f", r)
	case r <= 1/1.5:
		return fmt.Sprintf("↓ ×%.2f", r)
	}
	return fmt.Sprintf("≈ ×%.2f", r)
}

// spark draws hourly hits as a sparkline (at most 48 hours, the latest ones).
func spark(hourly map[int64]uint64, from, to time.Time) string {
	const bars = "▁▂▃▄▅▆▇█"
	var vals []uint64
	var peak uint64
	for h := from.Truncate(time.Hour); h.Before(to); h = h.Add(time.Hour) { // a window of 90m starts inside an hour
		v := hourly[h.Unix()]
		vals = append(vals, v)
		peak = max(peak, v)
	}
	if len(vals) > 48 {
		vals = vals[len(vals)-48:]
	}
	var b strings.Builder
	runes := []rune(bars)
	for _, v := range vals {
		if peak == 0 || v == 0 {
			b.WriteRune(' ')
			continue
		}
		b.WriteRune(runes[int(v*uint64(len(runes)-1)/peak)])
	}
	return b.String()
}
