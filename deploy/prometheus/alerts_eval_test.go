package prometheus

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// The alerts evaluated by Prometheus's own engine over scraped series of situations the
// descriptions name: an alert must fire in the situation it describes and stay quiet in normal
// operation. Each series is scraped every 15 s for 40 minutes; the expression is evaluated at
// the end (the `for:` durations are shorter than the stretch the situation lasts).
func TestAlertsFireWhenTheyShould(t *testing.T) {
	for _, c := range []struct {
		alert, situation string
		series           []series
		fires            bool
	}{
		{"RiskflowArchiverIdle", "scorers score, the archiver archives", []series{
			counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
			counter(`riskflow_archived_total{job="riskflow-archiver",instance="a1"}`, 50),
		}, false},
		{"RiskflowArchiverIdle", "scorers score, the archiver is up and stores nothing (stalled)", []series{
			counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
			counter(`riskflow_archived_total{job="riskflow-archiver",instance="a1"}`, 0),
		}, true},
		{"RiskflowArchiverIdle", "scorers score, no archiver is running or scraped", []series{
			counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
		}, true},
		{"RiskflowAPIErrors", "checks answered, probes ready", []series{
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 500),
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="200"}`, 0.1),
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="healthz",code="200"}`, 0.1),
		}, false},
		{"RiskflowAPIErrors", "5% of checks answered 503", []series{
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 475),
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="503"}`, 25),
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="200"}`, 0.1),
		}, true},
		{"RiskflowAPIErrors", "a node replays its state at start, out of rotation: only the probes reach it, /readyz says 503", []series{
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="503"}`, 0.1),
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="healthz",code="200"}`, 0.1),
		}, false},
		{"RiskflowAPIErrors", "a node in rotation, a few checks, and /readyz 503 to a probe of a stale state", []series{
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 2),
			counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="503"}`, 0.1),
		}, false},
	} {
		t.Run(c.alert+"/"+c.situation, func(t *testing.T) {
			expr := alertExpr(t, c.alert)
			got := evalAt(t, expr, c.series)
			if fires := len(got) > 0; fires != c.fires {
				t.Errorf("%s fires = %v (%v), want %v\nexpr: %s", c.alert, fires, got, c.fires, expr)
			}
		})
	}
}

func alertExpr(t *testing.T, name string) string {
	t.Helper()
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == name {
				return r.Expr
			}
		}
	}
	t.Fatalf("no alert %s", name)
	return ""
}

const (
	scrapeEvery = 15 * time.Second
	stretch     = 40 * time.Minute
)

// series is one scraped series: its labels and a value per scrape.
type series struct {
	lset    labels.Labels
	samples []chunks.Sample
}

// counter is a counter growing by perSecond.
func counter(sel string, perSecond float64) series {
	s := series{lset: mustLabels(sel)}
	for at := time.Duration(0); at <= stretch; at += scrapeEvery {
		s.samples = append(s.samples, sample{t: at.Milliseconds(), f: perSecond * at.Seconds()})
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

// evalAt evaluates expr at the end of the stretch over the series.
func evalAt(t *testing.T, expr string, ss []series) promql.Vector {
	t.Helper()
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := eng.NewInstantQuery(context.Background(), memQueryable(ss), nil, expr, time.UnixMilli(0).Add(stretch))
	if err != nil {
		t.Fatal(err)
	}
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", expr, res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		t.Fatal(err)
	}
	return v
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

func memQueryable(ss []series) storage.Queryable {
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
