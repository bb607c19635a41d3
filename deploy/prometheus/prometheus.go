// Package prometheus holds riskflow's Prometheus alerting rules (alerts.yml) and an example
// scrape configuration (prometheus.yml), embedded so tests can read them, and the loose PromQL
// reading those tests share with the dashboards' (deploy/grafana): which metrics an expression
// names.
package prometheus

import (
	_ "embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// AlertsYAML is alerts.yml.
//
//go:embed alerts.yml
var AlertsYAML []byte

// ConfigYAML is prometheus.yml.
//
//go:embed prometheus.yml
var ConfigYAML []byte

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []Group `yaml:"groups"`
}

// Group is a group of rules.
type Group struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is an alerting (or recording) rule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Alerts parses alerts.yml, refusing unknown keys.
func Alerts() (RuleFile, error) {
	var f RuleFile
	dec := yaml.NewDecoder(strings.NewReader(string(AlertsYAML)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return RuleFile{}, fmt.Errorf("alerts.yml: %w", err)
	}
	return f, nil
}

var (
	stringLitRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	metricRE    = regexp.MustCompile(`\b(?:riskflow|go|process|promhttp)_[a-zA-Z0-9_]*[a-zA-Z0-9]\b`)
)

// MetricNames lists the metrics a PromQL expression (or a Grafana query, with its $__ macros)
// names: identifiers of riskflow's own metrics (riskflow_*) and of the Go and process collectors
// (go_*, process_*, promhttp_*), outside string literals, sorted and each once. It reads PromQL
// loosely — names, not grammar — which is enough for "does this metric exist".
func MetricNames(expr string) []string {
	code := stringLitRE.ReplaceAllString(expr, `""`)
	var out []string
	for _, m := range metricRE.FindAllString(code, -1) {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// SelectorNames are the metric names of the vector and matrix selectors of a parsed PromQL
// expression (Prometheus's own parser), sorted, without repeats: what MetricNames must find.
func SelectorNames(e parser.Expr) []string {
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" && !slices.Contains(out, vs.Name) {
			out = append(out, vs.Name)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// BaseName is the metric family a sample name belongs to: a histogram's or summary's _bucket,
// _count and _sum samples belong to the family without the suffix.
func BaseName(sample string) []string {
	out := []string{sample}
	for _, suf := range []string{"_bucket", "_count", "_sum"} {
		if b, ok := strings.CutSuffix(sample, suf); ok {
			out = append(out, b)
		}
	}
	return out
}

// CollectorMetrics are metrics of the Go and process collectors every riskflow process
// registers (cmd/riskflow: collectors.NewGoCollector, collectors.NewProcessCollector) that
// dashboards and alerts may name; the integration test finds them on live processes.
var CollectorMetrics = []string{
	"go_goroutines", "go_threads", "go_gc_duration_seconds", "go_memstats_alloc_bytes", "go_memstats_heap_inuse_bytes",
	"go_gc_gomemlimit_bytes",
	"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
	"process_open_fds", "process_max_fds", "process_start_time_seconds",
}

var declRE = regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(riskflow_[a-z0-9_]+)"`)

// DeclaredMetrics finds the riskflow_* metrics the Go code under root declares (the Name of
// prometheus.*Opts, the first argument of prometheus.NewDesc), in files that are not tests,
// with the file that declares each. It reads source, not a process: a metric declared but only
// registered by some roles is here too; the integration test checks live processes.
func DeclaredMetrics(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range declRE.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = path
		}
		return nil
	})
	return out, err
}

// Known reports whether a sample name used in a query belongs to a declared metric or to the
// collectors: riskflow_x_bucket is known when riskflow_x is declared.
func Known(sample string, declared map[string]string) bool {
	for _, b := range BaseName(sample) {
		if _, ok := declared[b]; ok || slices.Contains(CollectorMetrics, b) {
			return true
		}
	}
	return false
}
