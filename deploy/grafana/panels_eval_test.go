package grafana

import (
	"slices"
	"strings"
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
		v, err := promrules.Eval(strings.ReplaceAll(q.Expr, "$__rate_interval", "1m"), series)
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

// The process panels find riskflow's processes however Prometheus names their job: the
// Kubernetes manifest has pods scraped by annotation (prometheus.io/scrape), under the job of
// the pod scrape config (kubernetes-pods), not riskflow-*; other processes of that job (Kafka,
// an exporter) stay out. The panels filtered job=~"riskflow.*" and showed nothing there.
func TestProcessPanelsWhateverTheJob(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	var series []promrules.Series
	for _, inst := range []string{"10.0.0.1:9464", "10.0.0.2:8080"} {
		l := `{job="kubernetes-pods",instance="` + inst + `"}`
		series = append(series, promrules.Gauge("riskflow_build_info"+l, 1), promrules.Gauge("process_resident_memory_bytes"+l, 5e8),
			promrules.Counter("process_cpu_seconds_total"+l, 0.5), promrules.Gauge("go_goroutines"+l, 40))
	}
	other := `{job="kubernetes-pods",instance="10.0.0.9:7071"}`
	series = append(series, promrules.Gauge("process_resident_memory_bytes"+other, 2e9), promrules.Counter("process_cpu_seconds_total"+other, 1))
	n := 0
	for _, q := range qs {
		if q.Panel != "Resident memory" && q.Panel != "CPU and goroutines" {
			continue
		}
		n++
		v, err := promrules.Eval(strings.ReplaceAll(q.Expr, "$__rate_interval", "1m"), series)
		if err != nil {
			t.Fatalf("%s: %v", q.Name(), err)
		}
		var got []string
		for _, s := range v {
			got = append(got, s.Metric.Get("instance"))
		}
		slices.Sort(got)
		if want := []string{"10.0.0.1:9464", "10.0.0.2:8080"}; !slices.Equal(got, want) {
			t.Errorf("%s: instances %q, want %q", q.Name(), got, want)
		}
	}
	if n != 3 {
		t.Fatalf("%d process panel targets", n)
	}
}
