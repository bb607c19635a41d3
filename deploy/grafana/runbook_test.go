package grafana

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	promrules "github.com/riskflow/riskflow/deploy/prometheus"
)

var (
	codeSpanRE      = regexp.MustCompile("`([^`]+)`")
	dashboardNameRE = regexp.MustCompile(`\*(riskflow [^*]+)\*`)
	upJobRE         = regexp.MustCompile(`\bup\{job="([^"]+)"\}`)
	adapterNameRE   = regexp.MustCompile(`name: \{as: (riskflow_[a-z0-9_]+)\}`)
	scrapePortRE    = regexp.MustCompile(`prometheus\.io/port:\s*"([0-9]+)"`)
	runbookMetricRE = regexp.MustCompile(`\briskflow_[a-z0-9_]*[a-z0-9]\b`)
)

// What docs/RUNBOOK.md tells an operator to look at exists: every metric it names is declared by
// the code (or is the name the Kubernetes manifest's prometheus-adapter rule gives one), every
// query it quotes parses as PromQL, every dashboard it names by title is one of deploy/grafana's,
// and every scrape job its `up{job=…}` names is one of deploy/prometheus/prometheus.yml's. The
// runbook is read on a bad day, with no time to find out that a name has drifted.
func TestRunbookNamesWhatExists(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "docs", "RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	runbook := string(b)
	for _, p := range runbookProblems(t, root, runbook) {
		t.Error(p)
	}
	// The check itself: names that drifted are found, each named.
	drifted := "*riskflow pipeline*, `up{job=\"riskflow-scorers\"}`, `riskflow_scored_totals`, `sum by (reason) (rate(riskflow_dead_lettered_total[10m])`, the `prometheus.io/port:\n  \"8080\"` annotation"
	got := strings.Join(runbookProblems(t, root, drifted), "\n")
	for _, want := range []string{`"riskflow pipeline"`, `"riskflow-scorers"`, `riskflow_scored_totals`, `does not parse`, `prometheus.io/port "8080"`} {
		if !strings.Contains(got, want) {
			t.Errorf("a runbook naming %s: the check says %q, nothing of %s", drifted, got, want)
		}
	}
}

// The other documents a user reads hold the same names — metrics and the queries over them in
// README.md and docs/SCALING.md, the dashboards in deploy/grafana/README.md — and are held to the
// same check: today every one exists.
func TestDocsNameWhatExists(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, d := range []string{"README.md", "docs/SCALING.md", "rules/README.md", "deploy/clickhouse/SCHEMA.md",
		"deploy/grafana/README.md", "deploy/clickhouse/migrations/README.md"} {
		b, err := os.ReadFile(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range runbookProblems(t, root, string(b)) {
			t.Errorf("%s %s", d, p)
		}
	}
}

// runbookProblems lists what text names that does not exist.
func runbookProblems(t *testing.T, root, text string) []string {
	t.Helper()
	declared, err := promrules.DeclaredMetrics(root)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "riskflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range adapterNameRE.FindAllStringSubmatch(string(manifest), -1) {
		declared[m[1]] = "deploy/kubernetes/riskflow.yaml (prometheus-adapter)"
	}
	ds, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	titles := map[string]bool{}
	for _, d := range ds {
		titles[d.Title] = true
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	pb, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(pb, &cfg); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	for _, s := range cfg.ScrapeConfigs {
		jobs[s.JobName] = true
	}

	var out []string
	seen := map[string]bool{}
	for _, m := range runbookMetricRE.FindAllString(text, -1) {
		if !seen[m] && !promrules.Known(m, declared) {
			out = append(out, "names the metric "+m+", which no code declares")
		}
		seen[m] = true
	}
	for _, m := range codeSpanRE.FindAllStringSubmatch(text, -1) {
		span := m[1]
		// A query: a function or aggregation applied to a riskflow metric.
		if !strings.Contains(span, "riskflow_") || !strings.Contains(span, "(") {
			continue
		}
		if _, err := parser.ParseExpr(span); err != nil {
			out = append(out, "quotes the query "+span+", which does not parse: "+err.Error())
		}
	}
	for _, m := range dashboardNameRE.FindAllStringSubmatch(text, -1) {
		if !titles[m[1]] {
			out = append(out, "names the dashboard \""+m[1]+"\", which no dashboard of deploy/grafana is titled")
		}
	}
	for _, m := range upJobRE.FindAllStringSubmatch(text, -1) {
		if !jobs[m[1]] {
			out = append(out, "names the scrape job \""+m[1]+"\", which deploy/prometheus/prometheus.yml has not")
		}
	}
	// The port it tells an operator to check the scrape annotation for is the manifest's: the
	// API pods' section said "8080", where an API pod answers /metrics with a 404.
	ports := map[string]bool{}
	for _, m := range scrapePortRE.FindAllStringSubmatch(string(manifest), -1) {
		ports[m[1]] = true
	}
	for _, m := range scrapePortRE.FindAllStringSubmatch(text, -1) {
		if !ports[m[1]] {
			out = append(out, "names the scrape annotation prometheus.io/port \""+m[1]+"\", which no pod of deploy/kubernetes/riskflow.yaml has")
		}
	}
	return out
}
