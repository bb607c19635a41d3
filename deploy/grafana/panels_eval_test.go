package grafana

import (
	"testing"

	promrules "github.com/riskflow/riskflow/deploy/prometheus"
)

// Panels evaluated by Prometheus's engine over the series riskflow processes export. Every
// process with the scorer or api role holds the whole feature state (a replica fed from every
// partition), so three of them report the same keys: the panel shows the size of one, not three
// times it (it summed over processes: 507 phone keys for 169 numbers on an api and two scorers).
func TestPanelsOverSeveralProcesses(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	var series []promrules.Series
	for _, inst := range []string{"api-1", "scorer-1", "scorer-2"} {
		series = append(series,
			promrules.Gauge(`riskflow_state_keys{job="riskflow-scorer",instance="`+inst+`",kind="phone"}`, 169),
			promrules.Gauge(`riskflow_state_keys{job="riskflow-scorer",instance="`+inst+`",kind="ip"}`, 85),
			promrules.Gauge(`riskflow_state_entries{job="riskflow-scorer",instance="`+inst+`"}`, 1377))
	}
	want := map[string]float64{"phone": 169, "ip": 85, "": 1377}
	n := 0
	for _, q := range qs {
		if q.Panel != "Feature state keys, by kind" {
			continue
		}
		n++
		v, err := promrules.Eval(q.Expr, series)
		if err != nil {
			t.Fatalf("%s: %v", q.Name(), err)
		}
		for _, s := range v {
			if w := want[s.Metric.Get("kind")]; s.F != w {
				t.Errorf("%s: %s = %v, want %v (one process's state)", q.Name(), s.Metric, s.F, w)
			}
		}
	}
	if n != 2 {
		t.Fatalf("panel Feature state keys, by kind: %d targets", n)
	}
}
