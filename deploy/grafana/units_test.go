package grafana

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// unitPanel is the part of a panel the unit check reads: its unit, and the units its overrides
// give one target's series (matcher byFrameRefID).
type unitPanel struct {
	Title       string `json:"title"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options any    `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Datasource *Datasource  `json:"datasource"`
	Targets    []Target     `json:"targets"`
	Panels     []*unitPanel `json:"panels"`
}

// unit is the unit Grafana shows target refID's series in.
func (p *unitPanel) unit(refID string) string {
	u := p.FieldConfig.Defaults.Unit
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID != "byFrameRefID" || o.Matcher.Options != refID {
			continue
		}
		for _, pr := range o.Properties {
			if s, ok := pr.Value.(string); ok && pr.ID == "unit" {
				u = s
			}
		}
	}
	return u
}

// perSecond are Grafana's units of a rate.
var perSecond = []string{"ops", "reqps", "rps", "wps", "cps", "eps"}

// expectedUnits says which units fit what a PromQL expression computes: a ratio of two rates a
// share (percentunit: 0.05 shows as 5 %), a latency quantile or a gauge in seconds seconds, bytes
// bytes, a rate per second; "" when the check has no opinion (CPU seconds per second are cores).
func expectedUnits(expr parser.Expr) []string {
	switch e := expr.(type) {
	case *parser.ParenExpr:
		return expectedUnits(e.Expr)
	case *parser.AggregateExpr:
		return expectedUnits(e.Expr)
	case *parser.BinaryExpr:
		switch {
		case e.Op == parser.DIV:
			return []string{"percentunit"}
		case e.Op == parser.LAND || e.Op == parser.LUNLESS || e.Op == parser.LOR:
			return expectedUnits(e.LHS)
		case e.Op == parser.SUB || e.Op == parser.ADD:
			return expectedUnits(e.LHS)
		}
		return nil
	case *parser.Call:
		switch e.Func.Name {
		case "histogram_quantile": // a quantile of what the buckets count: the metric's unit
			names := selectorNames(e.Args[1])
			if len(names) != 1 {
				return nil
			}
			return expectedUnits(&parser.VectorSelector{Name: names[0]})
		case "rate", "irate":
			if names := selectorNames(e); len(names) == 1 && strings.HasSuffix(names[0], "_seconds_total") {
				return nil
			}
			return perSecond
		}
		return nil
	case *parser.MatrixSelector:
		return expectedUnits(e.VectorSelector)
	case *parser.VectorSelector:
		name := strings.TrimSuffix(e.Name, "_bucket")
		switch {
		case strings.HasSuffix(name, "_seconds"):
			return []string{"s"}
		case strings.HasSuffix(name, "_bytes"):
			return []string{"bytes"}
		}
		return []string{"short", "none", ""}
	}
	return nil
}

func selectorNames(e parser.Node) []string {
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

// Every Prometheus series is shown in a unit that fits it: a panel's unit is its targets', and a
// target that computes something else (waits per second beside a latency in seconds) has an
// override of its own. "Scorer feed wait, p99" showed the waits per second of its target B in
// seconds: 12 waits a second read as a 12 s wait.
func TestDashboardUnitsFitTheQueries(t *testing.T) {
	files, err := fs.Glob(Dashboards, "dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h")
	n := 0
	for _, f := range files {
		b, err := fs.ReadFile(Dashboards, f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []*unitPanel `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func([]*unitPanel)
		walk = func(ps []*unitPanel) {
			for _, p := range ps {
				walk(p.Panels)
				for _, tg := range p.Targets {
					if tg.Expr == "" {
						continue
					}
					expr, err := parser.ParseExpr(vars.Replace(tg.Expr))
					if err != nil {
						continue // TestDashboardPromQL says so
					}
					n++
					if want := expectedUnits(expr); want != nil && !slices.Contains(want, p.unit(tg.RefID)) {
						t.Errorf("%s / %s / %s: shown in %q, but %s computes %s", f, p.Title, tg.RefID, p.unit(tg.RefID), tg.Expr, strings.Join(want, " or "))
					}
				}
			}
		}
		walk(d.Panels)
	}
	if n < 10 {
		t.Errorf("checked %d Prometheus targets", n)
	}
	// The check itself.
	for expr, want := range map[string]string{
		`sum(rate(riskflow_scored_total[1m]))`: "ops", `histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[1m])))`: "s",
		`sum(rate(a_total{code=~"5.."}[1m])) / sum(rate(a_total[1m]))`: "percentunit", `max(riskflow_snapshot_age_seconds)`: "s",
		`process_resident_memory_bytes and on (job) riskflow_build_info`: "bytes", `max(riskflow_replica_lag_messages)`: "short",
	} {
		e, err := parser.ParseExpr(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := expectedUnits(e); !slices.Contains(got, want) {
			t.Errorf("expectedUnits(%s) = %q, want %s among them", expr, got, want)
		}
	}
}
