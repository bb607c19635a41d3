package prometheus

import (
	"testing"
)

// The alerts evaluated by Prometheus's own engine (Eval) over scraped series of situations the
// descriptions name: an alert must fire in the situation it describes and stay quiet in normal
// operation (the `for:` durations are shorter than the stretch the situation lasts).
func TestAlertsFireWhenTheyShould(t *testing.T) {
	for _, c := range []struct {
		alert, situation string
		series           []Series
		fires            bool
	}{
		{"RiskflowArchiverIdle", "scorers score, the archiver archives", []Series{
			Counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
			Counter(`riskflow_archived_total{job="riskflow-archiver",instance="a1"}`, 50),
		}, false},
		{"RiskflowArchiverIdle", "scorers score, the archiver is up and stores nothing (stalled)", []Series{
			Counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
			Counter(`riskflow_archived_total{job="riskflow-archiver",instance="a1"}`, 0),
		}, true},
		{"RiskflowArchiverIdle", "scorers score, no archiver is running or scraped", []Series{
			Counter(`riskflow_scored_total{job="riskflow-scorer",instance="s1",score="0"}`, 50),
		}, true},
		{"RiskflowAPIErrors", "checks answered, probes ready", []Series{
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 500),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="200"}`, 0.1),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="healthz",code="200"}`, 0.1),
		}, false},
		{"RiskflowAPIErrors", "5% of checks answered 503", []Series{
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 475),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="503"}`, 25),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="200"}`, 0.1),
		}, true},
		{"RiskflowAPIErrors", "a node replays its state at start, out of rotation: only the probes reach it, /readyz says 503", []Series{
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="503"}`, 0.1),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="healthz",code="200"}`, 0.1),
		}, false},
		{"RiskflowAPIErrors", "a node in rotation, a few checks, and /readyz 503 to a probe of a stale state", []Series{
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="check",code="200"}`, 2),
			Counter(`riskflow_api_requests_total{job="riskflow-api",instance="a1",route="readyz",code="503"}`, 0.1),
		}, false},
	} {
		t.Run(c.alert+"/"+c.situation, func(t *testing.T) {
			expr := alertExpr(t, c.alert)
			got, err := Eval(expr, c.series)
			if err != nil {
				t.Fatal(err)
			}
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
