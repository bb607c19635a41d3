package prometheus

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// Tests evaluate alert and panel expressions with Prometheus's own engine over series they
// make up: each series is scraped every ScrapeEvery for Stretch, and Eval evaluates at the end.
const (
	ScrapeEvery = 15 * time.Second
	Stretch     = 40 * time.Minute
)

// Series is one scraped series: its labels and a value per scrape.
type Series struct {
	lset    labels.Labels
	samples []chunks.Sample
}

// Counter is a counter, sel in the exposition's form (name{label="value",...}), growing by
// perSecond over the stretch.
func Counter(sel string, perSecond float64) Series {
	s := Series{lset: mustLabels(sel)}
	for at := time.Duration(0); at <= Stretch; at += ScrapeEvery {
		s.samples = append(s.samples, sample{t: at.Milliseconds(), f: perSecond * at.Seconds()})
	}
	return s
}

// Gauge is a gauge that reads v at every scrape.
func Gauge(sel string, v float64) Series {
	s := Series{lset: mustLabels(sel)}
	for at := time.Duration(0); at <= Stretch; at += ScrapeEvery {
		s.samples = append(s.samples, sample{t: at.Milliseconds(), f: v})
	}
	return s
}

// Stepped is a gauge whose value at each scrape (the n-th, from 0 at the start of the stretch)
// is value(n): a state that comes and goes between scrapes.
func Stepped(sel string, value func(n int) float64) Series {
	s := Series{lset: mustLabels(sel)}
	for n, at := 0, time.Duration(0); at <= Stretch; n, at = n+1, at+ScrapeEvery {
		s.samples = append(s.samples, sample{t: at.Milliseconds(), f: value(n)})
	}
	return s
}

func mustLabels(sel string) labels.Labels {
	name, rest, _ := strings.Cut(sel, "{")
	m := map[string]string{"__name__": name}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return labels.FromMap(m)
}

// Eval evaluates expr at the end of the stretch over the series, as an instant query.
func Eval(expr string, ss []Series) (promql.Vector, error) {
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := eng.NewInstantQuery(context.Background(), memQueryable(ss), nil, expr, time.UnixMilli(0).Add(Stretch))
	if err != nil {
		return nil, err
	}
	res := q.Exec(context.Background())
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Vector()
}

// Fires says whether an alerting rule with this expression and `for:` fires at the end of the
// stretch, as Prometheus's rule manager decides it: the same series is in the expression's
// result at every evaluation (one each ScrapeEvery, prometheus.yml's evaluation_interval) of the
// last `for` (at the last one alone with no `for`). One evaluation without it resets the alert
// to inactive, so a condition that comes and goes between evaluations never fires.
func Fires(expr string, forDur time.Duration, ss []Series) (bool, error) {
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	end := time.UnixMilli(0).Add(Stretch)
	q, err := eng.NewRangeQuery(context.Background(), memQueryable(ss), nil, expr, end.Add(-forDur), end, ScrapeEvery)
	if err != nil {
		return false, err
	}
	res := q.Exec(context.Background())
	if res.Err != nil {
		return false, res.Err
	}
	m, err := res.Matrix()
	if err != nil {
		return false, err
	}
	evaluations := int(forDur/ScrapeEvery) + 1
	for _, s := range m {
		if len(s.Floats) == evaluations {
			return true, nil
		}
	}
	return false, nil
}

type sample struct {
	t int64
	f float64
}

func (s sample) T() int64                      { return s.t }
func (s sample) F() float64                    { return s.f }
func (s sample) H() *histogram.Histogram       { return nil }
func (s sample) FH() *histogram.FloatHistogram { return nil }
func (s sample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s sample) Copy() chunks.Sample           { return s }

func memQueryable(ss []Series) storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			var out []storage.Series
			for _, s := range ss {
				if matchesAll(s.lset, ms) {
					out = append(out, storage.NewListSeries(s.lset, s.samples))
				}
			}
			sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels(), out[j].Labels()) < 0 })
			return &seriesSet{list: out, i: -1}
		}}, nil
	})
}

func matchesAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

type seriesSet struct {
	list []storage.Series
	i    int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.list) }
func (s *seriesSet) At() storage.Series                { return s.list[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }
