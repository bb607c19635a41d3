package main

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/scoring/console"
)

// hourlySource is what the console's overview is read from: the hourly rollups (chsink.Store).
type hourlySource interface {
	ScoreMix(ctx context.Context, from, to time.Time, app string) ([]chsink.HourScore, error)
	TagHours(ctx context.Context, from, to time.Time, app string) ([]chsink.TagHour, error)
	RuleHourHits(ctx context.Context, from, to time.Time, app string) ([]chsink.RuleHourHit, error)
}

// overviewHours keeps the overview's figures of past hours, per app and hour, so that an overview
// reads from ClickHouse only the hours it has not seen lately — the current hour and the last
// few, or on a cold start the whole range. Merging the rollups' uniq states is what an overview
// costs (a week of 1M events: 12 MB of states for the score mix alone), and past hours do not
// change once the archiver has written them.
//
// An hour is kept once it ended settle ago (rows still arriving: the archiver's batches, a short
// lag) and for ttl (rows of a long archiver outage show within ttl once it caught up). Summing a
// rule's hours is its events over the range: an event falls in one hour.
type overviewHours struct {
	settle, ttl time.Duration
	now         func() time.Time

	mu sync.Mutex
	m  map[hourKey]hourFigures
}

type hourKey struct {
	app  string
	hour time.Time
}

type hourFigures struct {
	at    time.Time // when read
	score *chsink.HourScore
	tags  []chsink.TagHour
	rules []chsink.RuleHourHit
}

// maxCachedHours bounds the cache: 30 days of 13 apps and "all".
const maxCachedHours = 30 * 24 * 14

func newOverviewHours() *overviewHours {
	return &overviewHours{settle: 10 * time.Minute, ttl: 15 * time.Minute, now: time.Now, m: map[hourKey]hourFigures{}}
}

// overview answers f from the hours kept and reads the rest, from the first hour not kept to the
// end of the range, from src.
func (c *overviewHours) overview(ctx context.Context, src hourlySource, f console.Filter) (console.Overview, error) {
	from, to, now := f.From.UTC().Truncate(time.Hour), f.To.UTC(), c.now()
	figures := map[time.Time]hourFigures{}
	q := from
	c.mu.Lock()
	for ; q.Before(to); q = q.Add(time.Hour) {
		h, ok := c.m[hourKey{f.App, q}]
		if !ok || now.Sub(h.at) > c.ttl {
			break
		}
		figures[q] = h
	}
	c.mu.Unlock()
	if q.Before(to) {
		var scores []chsink.HourScore
		var tags []chsink.TagHour
		var hits []chsink.RuleHourHit
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { scores, err = src.ScoreMix(gctx, q, to, f.App); return err })
		g.Go(func() (err error) { tags, err = src.TagHours(gctx, q, to, f.App); return err })
		g.Go(func() (err error) { hits, err = src.RuleHourHits(gctx, q, to, f.App); return err })
		if err := g.Wait(); err != nil {
			return console.Overview{}, err
		}
		read := map[time.Time]hourFigures{}
		for h := q; h.Before(to); h = h.Add(time.Hour) {
			read[h] = hourFigures{at: now}
		}
		for i := range scores {
			h := read[scores[i].Hour.UTC()]
			h.score = &scores[i]
			read[scores[i].Hour.UTC()] = h
		}
		for _, t := range tags {
			h := read[t.Hour.UTC()]
			h.tags = append(h.tags, t)
			read[t.Hour.UTC()] = h
		}
		for _, r := range hits {
			h := read[r.Hour.UTC()]
			h.rules = append(h.rules, r)
			read[r.Hour.UTC()] = h
		}
		c.mu.Lock()
		if len(c.m) > maxCachedHours {
			clear(c.m)
		}
		for hour, h := range read {
			figures[hour] = h
			if !hour.Add(time.Hour + c.settle).After(now) {
				c.m[hourKey{f.App, hour}] = h
			}
		}
		c.mu.Unlock()
	}
	return assemble(figures), nil
}

// assemble is the overview of the hours' figures: scores and tags per hour, rules over them all.
func assemble(figures map[time.Time]hourFigures) console.Overview {
	var ov console.Overview
	hours := make([]time.Time, 0, len(figures))
	for h := range figures {
		hours = append(hours, h)
	}
	slices.SortFunc(hours, func(a, b time.Time) int { return a.Compare(b) })
	type ruleKey struct{ rule, tag, mode string }
	rules := map[ruleKey]int64{}
	for _, hour := range hours {
		h := figures[hour]
		if s := h.score; s != nil {
			ov.Scores = append(ov.Scores, console.HourScores{Hour: s.Hour, S0: int64(s.S0), S300: int64(s.S300), S600: int64(s.S600), S900: int64(s.S900), Events: int64(s.Events)})
		}
		for _, t := range h.tags {
			ov.Tags = append(ov.Tags, console.TagHour{Hour: t.Hour, Tag: t.Tag, Events: int64(t.Events)})
		}
		for _, r := range h.rules {
			rules[ruleKey{r.Rule, r.Tag, r.Mode}] += int64(r.Events)
		}
	}
	for k, n := range rules {
		ov.Rules = append(ov.Rules, console.RuleHits{Rule: k.rule, Tag: k.tag, Mode: k.mode, Events: n})
	}
	slices.SortFunc(ov.Rules, func(a, b console.RuleHits) int {
		return cmp.Or(cmp.Compare(b.Events, a.Events), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Mode, b.Mode), cmp.Compare(a.Tag, b.Tag))
	})
	return ov
}
