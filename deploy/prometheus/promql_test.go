package prometheus

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// alerts.yml as Prometheus itself reads it (promtool check rules does the same): the rule file
// format, every expression parsed by the PromQL parser and its templates; and each expression's
// metrics as the parser sees them are those MetricNames finds, so the reference test
// (deploy/grafana, TestMetricsReferencedExist) checks every metric an alert uses.
func TestAlertsParseAsPrometheus(t *testing.T) {
	groups, errs := rulefmt.Parse(AlertsYAML, false)
	for _, err := range errs {
		t.Errorf("alerts.yml: %v", err)
	}
	if len(errs) > 0 {
		return
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			expr, err := parser.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			if expr.Type() != parser.ValueTypeVector {
				t.Errorf("%s: the expression is a %s; an alert needs an instant vector", r.Alert, expr.Type())
			}
			if got, loose := SelectorNames(expr), MetricNames(r.Expr); !slices.Equal(got, loose) {
				t.Errorf("%s: Prometheus reads the metrics %q, MetricNames %q", r.Alert, got, loose)
			}
		}
	}
	if n < len(requiredAlerts) {
		t.Errorf("Prometheus read %d rules", n)
	}

	// The parser refuses what a loose reading lets through.
	for _, bad := range []string{
		"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(riskflow_x_total[5m])\n",                              // unbalanced
		"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(riskflow_x_total)\n",                                      // rate needs a range
		"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      summary: '{{ $labels.job '\n", // template
		"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    severity: page\n",                                 // unknown key
	} {
		if _, errs := rulefmt.Parse([]byte(bad), false); len(errs) == 0 {
			t.Errorf("rulefmt took %q", bad)
		}
	}
	if got := SelectorNames(mustParse(t, `sum by (le) (rate(riskflow_a_bucket{x="riskflow_b"}[5m])) / on() group_left riskflow_c`)); !slices.Equal(got, []string{"riskflow_a_bucket", "riskflow_c"}) {
		t.Errorf("SelectorNames = %q", got)
	}
}

func mustParse(t *testing.T, s string) parser.Expr {
	t.Helper()
	e, err := parser.ParseExpr(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
