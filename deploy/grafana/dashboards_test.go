package grafana

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	promrules "github.com/riskflow/riskflow/deploy/prometheus"
)

// The dashboards the brief promises and metrics each must show.
var requiredDashboards = map[string][]string{
	"riskflow-pipeline": {
		"riskflow_scored_total", "riskflow_archived_total", "riskflow_batch_seconds_bucket",
		"riskflow_loop_stalled_seconds", "riskflow_replica_lag_messages", "riskflow_replica_staleness_seconds",
		"riskflow_dead_lettered_total", "riskflow_breaker_state",
	},
	"riskflow-api":   {"riskflow_api_requests_total", "riskflow_api_request_seconds_bucket", "riskflow_api_request_seconds_count", "riskflow_api_scores_total"},
	"riskflow-rules": {"riskflow_scored_total"},
	"riskflow-risk":  {},
}

// Every Prometheus panel's expression parses with Prometheus's own PromQL parser once Grafana's
// interval variables are filled in, and names the metrics MetricNames finds (what the reference
// test, TestMetricsReferencedExist, checks on running nodes).
func TestDashboardPromQL(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h")
	n := 0
	for _, q := range qs {
		if q.Datasource.UID != PrometheusUID {
			continue
		}
		n++
		expr, err := parser.ParseExpr(vars.Replace(q.Expr))
		if err != nil {
			t.Errorf("%s: %v\n%s", q.Name(), err, q.Expr)
			continue
		}
		if got, loose := promrules.SelectorNames(expr), promrules.MetricNames(q.Expr); !slices.Equal(got, loose) {
			t.Errorf("%s: Prometheus reads the metrics %q, MetricNames %q", q.Name(), got, loose)
		}
	}
	if n < 10 {
		t.Errorf("only %d Prometheus targets", n)
	}
	if _, err := parser.ParseExpr(vars.Replace(`sum(rate(riskflow_scored_total[$__rate_interval])`)); err == nil {
		t.Error("the parser took an unbalanced expression")
	}
}

// legendLabelRE finds the labels a legend prints ({{route}}).
var legendLabelRE = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// A label a panel's legend prints survives the panel's expression: every aggregation in it keeps
// the label (by), or there is none. One aggregated away prints as nothing, and the series of a
// panel "by instance" all read the same in the legend.
func TestDashboardLegendsPrintKeptLabels(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h")
	for _, q := range qs {
		if q.Datasource.UID != PrometheusUID || q.Legend == "" {
			continue
		}
		expr, err := parser.ParseExpr(vars.Replace(q.Expr))
		if err != nil {
			continue // TestDashboardPromQL says so
		}
		for _, m := range legendLabelRE.FindAllStringSubmatch(q.Legend, -1) {
			label := m[1]
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				agg, ok := n.(*parser.AggregateExpr)
				if !ok {
					return nil
				}
				if agg.Without == slices.Contains(agg.Grouping, label) {
					t.Errorf("%s: the legend %q prints {{%s}}, which %s aggregates away", q.Name(), q.Legend, label, agg)
				}
				return nil
			})
		}
	}
	// The check sees a label aggregated away.
	e, _ := parser.ParseExpr(`sum by (route) (rate(riskflow_api_requests_total[1m]))`)
	var caught bool
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if agg, ok := n.(*parser.AggregateExpr); ok && !slices.Contains(agg.Grouping, "code") {
			caught = true
		}
		return nil
	})
	if !caught {
		t.Error("an aggregation without the label goes unseen")
	}
}

// ClickHouse tables each ClickHouse-backed dashboard reads, at least.
var requiredTables = map[string][]string{
	"riskflow-rules": {"rule_hits_hourly"},
	"riskflow-risk":  {"verify_events_hourly", "risk_scores_hourly", "rule_hits_hourly", "verify_events", "risk_scores"},
}

func TestDashboards(t *testing.T) {
	ds, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	declared, err := promrules.DeclaredMetrics(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]bool{}
	for _, d := range ds {
		if d.UID == "" || uids[d.UID] || !strings.HasPrefix(d.Title, "riskflow / ") {
			t.Errorf("%s: uid %q, title %q: want a unique uid and a title riskflow / …", d.File, d.UID, d.Title)
		}
		if want := "dashboards/" + d.UID + ".json"; d.File != want {
			t.Errorf("%s: name the file after the uid (%s)", d.File, want)
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		var walk func([]Panel)
		walk = func(ps []Panel) {
			for _, p := range ps {
				if ids[p.ID] || p.ID == 0 {
					t.Errorf("%s: panel %q: id %d missing or not unique", d.UID, p.Title, p.ID)
				}
				ids[p.ID] = true
				if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
					t.Errorf("%s: panel %q: gridPos %+v", d.UID, p.Title, p.GridPos)
				}
				if p.Type != "row" && (p.Title == "" || len(p.Targets) == 0) {
					t.Errorf("%s: panel %q has no title or no query", d.UID, p.Title)
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
	}
	raw := map[string]string{}
	files, _ := fs.Glob(Dashboards, "dashboards/*.json")
	for _, f := range files {
		b, _ := fs.ReadFile(Dashboards, f)
		var generic map[string]any
		if err := json.Unmarshal(b, &generic); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, k := range []string{"uid", "title", "panels", "schemaVersion", "time"} {
			if _, ok := generic[k]; !ok {
				t.Errorf("%s: no %q", f, k)
			}
		}
		raw[generic["uid"].(string)] = string(b)
	}

	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string][]string{}   // dashboard → metrics
	tables := map[string][]string{} // dashboard → ClickHouse tables
	for _, q := range qs {
		switch q.Datasource.UID {
		case PrometheusUID:
			if q.Datasource.Type != "prometheus" || strings.TrimSpace(q.Expr) == "" || q.SQL != "" {
				t.Errorf("%s: a Prometheus target needs type prometheus and an expr", q.Name())
			}
			names := promrules.MetricNames(q.Expr)
			if len(names) == 0 {
				t.Errorf("%s: names no metric: %s", q.Name(), q.Expr)
			}
			for _, m := range names {
				if !promrules.Known(m, declared) {
					t.Errorf("%s: %s is not a metric riskflow declares", q.Name(), m)
				}
			}
			used[q.Dashboard] = append(used[q.Dashboard], names...)
		case ClickHouseUID:
			if q.Datasource.Type != "grafana-clickhouse-datasource" || strings.TrimSpace(q.SQL) == "" || q.Expr != "" {
				t.Errorf("%s: a ClickHouse target needs type grafana-clickhouse-datasource and rawSql", q.Name())
			}
			if _, err := ExpandMacros(q.SQL, time.Unix(1700000000, 0), time.Unix(1700086400, 0), time.Minute); err != nil {
				t.Errorf("%s: %v", q.Name(), err)
			}
			if strings.HasSuffix(strings.TrimSpace(q.SQL), ";") {
				t.Errorf("%s: no ; at the end (the plugin sends one statement)", q.Name())
			}
			for _, m := range regexp.MustCompile(`\briskflow\.(\w+)`).FindAllStringSubmatch(q.SQL, -1) {
				tables[q.Dashboard] = append(tables[q.Dashboard], m[1])
			}
			if regexp.MustCompile(`(?i)\bFROM\s+(verify_events|risk_scores|rule_|backtest)`).MatchString(q.SQL) {
				t.Errorf("%s: name tables with their database (riskflow.table)", q.Name())
			}
		default:
			t.Errorf("%s: datasource %+v; use %s or %s", q.Name(), q.Datasource, PrometheusUID, ClickHouseUID)
		}
	}
	for uid, metrics := range requiredDashboards {
		if !uids[uid] {
			t.Errorf("no dashboard %s", uid)
			continue
		}
		for _, m := range metrics {
			if !slices.Contains(used[uid], m) {
				t.Errorf("dashboard %s does not show %s", uid, m)
			}
		}
		for _, tb := range requiredTables[uid] {
			if !slices.Contains(tables[uid], tb) {
				t.Errorf("dashboard %s does not read ClickHouse table %s", uid, tb)
			}
		}
	}
	if panels, _ := ClickHousePanels(); len(panels) < 8 {
		t.Errorf("%d ClickHouse panels", len(panels))
	}
	if !strings.Contains(raw["riskflow-risk"], "连号") || !strings.Contains(raw["riskflow-risk"], "猫池") {
		t.Error("the risk overview lacks the number-block and device-farm panels")
	}
}

func TestProvisioning(t *testing.T) {
	var dsf struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name     string         `yaml:"name"`
			UID      string         `yaml:"uid"`
			Type     string         `yaml:"type"`
			URL      string         `yaml:"url"`
			JSONData map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, "provisioning/datasources/riskflow.yaml", &dsf)
	got := map[string]string{}
	for _, d := range dsf.Datasources {
		got[d.UID] = d.Type
		if d.Type == "grafana-clickhouse-datasource" {
			if d.JSONData["defaultDatabase"] != "riskflow" || d.JSONData["protocol"] != "native" || d.JSONData["host"] == nil {
				t.Errorf("ClickHouse datasource jsonData %v", d.JSONData)
			}
			if _, ok := d.JSONData["port"].(int); !ok {
				t.Errorf("ClickHouse datasource port %v is not a number", d.JSONData["port"])
			}
		}
		if d.Type == "prometheus" && !strings.HasPrefix(d.URL, "http") {
			t.Errorf("Prometheus datasource url %q", d.URL)
		}
	}
	if dsf.APIVersion != 1 || got[PrometheusUID] != "prometheus" || got[ClickHouseUID] != "grafana-clickhouse-datasource" {
		t.Errorf("datasources: apiVersion %d, %v", dsf.APIVersion, got)
	}
	var dbf struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Folder  string `yaml:"folder"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "provisioning/dashboards/riskflow.yaml", &dbf)
	if dbf.APIVersion != 1 || len(dbf.Providers) != 1 || dbf.Providers[0].Type != "file" || dbf.Providers[0].Options.Path == "" {
		t.Errorf("dashboard provider: %+v", dbf)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestExpandMacros(t *testing.T) {
	from, to := time.Unix(1700000000, 0), time.Unix(1700086400, 0)
	got, err := ExpandMacros("SELECT $__interval_s FROM t WHERE $__timeFilter(hour) AND x < $__toTime AND y > $__fromTime", from, to, 90*time.Second)
	want := "SELECT 90 FROM t WHERE hour >= toDateTime(1700000000) AND hour <= toDateTime(1700086400) AND x < toDateTime(1700086400) AND y > toDateTime(1700000000)"
	if err != nil || got != want {
		t.Errorf("ExpandMacros =\n%s, %v\nwant\n%s", got, err, want)
	}
	for _, bad := range []string{"WHERE $__timeInterval(ts)", "WHERE app_id = '$app'", "WHERE $__timeFilter()", "${var}"} {
		if _, err := ExpandMacros(bad, from, to, time.Minute); err == nil {
			t.Errorf("ExpandMacros(%q): no error", bad)
		}
	}
}
