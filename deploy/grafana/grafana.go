// Package grafana holds riskflow's Grafana dashboards, embedded so that tests can read them:
// dashboards/*.json (one dashboard each, provisioned by provisioning/dashboards/riskflow.yaml)
// and the two datasources they use (provisioning/datasources/riskflow.yaml): Prometheus, uid
// riskflow-prometheus, scraping every riskflow process, and ClickHouse (plugin
// grafana-clickhouse-datasource), uid riskflow-clickhouse, on the database riskflow.
//
// Tests pin what the dashboards may use: every metric a Prometheus panel names exists on a
// running riskflow's /metrics (deploy/grafana tests), and every ClickHouse panel's SQL runs
// with the same results on ClickHouse 18.16 and on current ClickHouse (pipeline/chsink,
// TestSQLOnBothClickHouses). ClickHouse panels name the database as riskflow and use only the
// plugin's macros $__timeFilter(column), $__fromTime, $__toTime and $__interval_s.
package grafana

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Dashboards holds dashboards/*.json.
//
//go:embed dashboards/*.json
var Dashboards embed.FS

// The datasources the dashboards refer to, by uid.
const (
	PrometheusUID = "riskflow-prometheus"
	ClickHouseUID = "riskflow-clickhouse"
)

// Dashboard is the part of a dashboard's JSON the tests read.
type Dashboard struct {
	File   string  `json:"-"`
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []Panel `json:"panels"`
}

// Panel is one panel (rows hold nested panels).
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
	GridPos    *GridPos    `json:"gridPos"`
}

// GridPos is where a panel sits.
type GridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Datasource names a datasource by type and uid.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel: Expr for Prometheus, RawSQL for ClickHouse.
type Target struct {
	RefID      string      `json:"refId"`
	Datasource *Datasource `json:"datasource"`
	Expr       string      `json:"expr"`
	Legend     string      `json:"legendFormat"`
	RawSQL     string      `json:"rawSql"`
}

// Query is one target of one panel, with where it comes from.
type Query struct {
	Dashboard, Panel, RefID string
	Datasource              Datasource // the target's, else the panel's
	Expr                    string     // PromQL (Prometheus)
	Legend                  string     // the series' name in the legend: {{label}} prints a label
	SQL                     string     // raw SQL (ClickHouse)
}

// Name says which dashboard, panel and target the query is.
func (q Query) Name() string { return fmt.Sprintf("%s / %s / %s", q.Dashboard, q.Panel, q.RefID) }

// Load reads every embedded dashboard.
func Load() ([]Dashboard, error) {
	files, err := fs.Glob(Dashboards, "dashboards/*.json")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards")
	}
	var out []Dashboard
	for _, f := range files {
		b, err := fs.ReadFile(Dashboards, f)
		if err != nil {
			return nil, err
		}
		var d Dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		d.File = f
		out = append(out, d)
	}
	return out, nil
}

// Queries lists every target of every panel of every dashboard.
func Queries() ([]Query, error) {
	ds, err := Load()
	if err != nil {
		return nil, err
	}
	var out []Query
	var walk func(d Dashboard, ps []Panel)
	walk = func(d Dashboard, ps []Panel) {
		for _, p := range ps {
			walk(d, p.Panels)
			for _, t := range p.Targets {
				q := Query{Dashboard: d.UID, Panel: p.Title, RefID: t.RefID, Expr: t.Expr, Legend: t.Legend, SQL: t.RawSQL}
				switch {
				case t.Datasource != nil:
					q.Datasource = *t.Datasource
				case p.Datasource != nil:
					q.Datasource = *p.Datasource
				}
				out = append(out, q)
			}
		}
	}
	for _, d := range ds {
		walk(d, d.Panels)
	}
	return out, nil
}

// ClickHousePanels lists the targets on the ClickHouse datasource.
func ClickHousePanels() ([]Query, error) {
	qs, err := Queries()
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, q := range qs {
		if q.Datasource.UID == ClickHouseUID {
			out = append(out, q)
		}
	}
	return out, nil
}

var macroRE = regexp.MustCompile(`\$__(\w+)(\(([^()]*)\))?|\$\{?\w+`)

// ExpandMacros replaces the ClickHouse plugin's macros in sql as the plugin does for a time
// range [from, to] and an interval: $__timeFilter(col) becomes
// col >= toDateTime(from) AND col <= toDateTime(to); $__fromTime and $__toTime become
// toDateTime(...); $__interval_s the interval in seconds. Any other macro or template variable
// is an error: the dashboards use none, so their SQL runs unchanged on ClickHouse 18.16.
func ExpandMacros(sql string, from, to time.Time, interval time.Duration) (string, error) {
	var bad []string
	dt := func(t time.Time) string { return "toDateTime(" + strconv.FormatInt(t.Unix(), 10) + ")" }
	out := macroRE.ReplaceAllStringFunc(sql, func(m string) string {
		sub := macroRE.FindStringSubmatch(m)
		switch {
		case sub[1] == "timeFilter" && sub[2] != "" && strings.TrimSpace(sub[3]) != "":
			col := strings.TrimSpace(sub[3])
			return col + " >= " + dt(from) + " AND " + col + " <= " + dt(to)
		case sub[1] == "fromTime" && sub[2] == "":
			return dt(from)
		case sub[1] == "toTime" && sub[2] == "":
			return dt(to)
		case sub[1] == "interval_s" && sub[2] == "":
			return strconv.Itoa(max(int(interval.Seconds()), 1))
		}
		bad = append(bad, m)
		return m
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("macros or variables riskflow's panels do not use: %s", strings.Join(bad, ", "))
	}
	return out, nil
}
