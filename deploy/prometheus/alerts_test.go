package prometheus

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The alerts the brief promises, by what they watch: each must exist and name its metric.
var requiredAlerts = map[string]string{
	"RiskflowLoopStalled":           "riskflow_loop_stalled_seconds",
	"RiskflowReplicaLagGrowing":     "riskflow_replica_lag_messages",
	"RiskflowBreakerOpen":           "riskflow_breaker_state",
	"RiskflowAPIErrors":             "riskflow_api_requests_total",
	"RiskflowReplicaStale":          "riskflow_replica_staleness_seconds",
	"RiskflowDecisionsDropped":      "riskflow_decisions_total",
	"RiskflowRulePackFileNotLoaded": "riskflow_rules_file_ok",
	"RiskflowRuleFailing":           "riskflow_rule_errors_total",
}

var (
	durationRE  = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	alertNameRE = regexp.MustCompile(`^Riskflow[A-Z][A-Za-z0-9]+$`)
	labelRefRE  = regexp.MustCompile(`\$labels\.(\w+)`)
)

func TestAlertRules(t *testing.T) {
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	declared, err := DeclaredMetrics(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(declared) < 10 {
		t.Fatalf("found only %d declared riskflow metrics: %v", len(declared), declared)
	}
	seen := map[string]Rule{}
	groups := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a unique name and rules", g.Name)
		}
		groups[g.Name] = true
		for _, r := range g.Rules {
			name := r.Alert
			switch {
			case r.Record != "":
				t.Errorf("%s: recording rules belong elsewhere; this file holds alerts", r.Record)
			case !alertNameRE.MatchString(name):
				t.Errorf("alert %q: name it RiskflowSomething", name)
			case seen[name].Alert != "":
				t.Errorf("alert %s defined twice", name)
			}
			seen[name] = r
			if r.For != "" && !durationRE.MatchString(r.For) {
				t.Errorf("%s: for %q is not a Prometheus duration", name, r.For)
			}
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", name, sev)
			}
			for _, a := range []string{"summary", "description"} {
				if len(strings.TrimSpace(r.Annotations[a])) < 20 {
					t.Errorf("%s: annotation %s missing or too short", name, a)
				}
			}
			if err := balanced(r.Expr); err != "" {
				t.Errorf("%s: expr %s: %s", name, r.Expr, err)
			}
			metrics := MetricNames(r.Expr)
			if len(metrics) == 0 {
				t.Errorf("%s: expr names no riskflow metric: %s", name, r.Expr)
			}
			for _, m := range metrics {
				if !Known(m, declared) {
					t.Errorf("%s: %s is not a metric riskflow declares", name, m)
				}
			}
			// A label an annotation prints must survive the aggregation.
			for _, a := range r.Annotations {
				for _, m := range labelRefRE.FindAllStringSubmatch(a, -1) {
					if !regexp.MustCompile(`\bby \([^)]*\b` + m[1] + `\b`).MatchString(r.Expr) {
						t.Errorf("%s: annotation prints $labels.%s, which the expression aggregates away", name, m[1])
					}
				}
			}
		}
	}
	for name, metric := range requiredAlerts {
		r, ok := seen[name]
		if !ok {
			t.Errorf("no alert %s", name)
			continue
		}
		if !slices.Contains(MetricNames(r.Expr), metric) {
			t.Errorf("%s does not watch %s: %s", name, metric, r.Expr)
		}
	}
}

// balanced reports unbalanced brackets or quotes, the typos a loose reading can catch.
func balanced(expr string) string {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	code := stringLitRE.ReplaceAllString(expr, `""`)
	if strings.Count(code, `"`)%2 != 0 {
		return "unterminated string"
	}
	for _, c := range code {
		switch c {
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return "unbalanced " + string(c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return "unclosed " + string(stack[len(stack)-1])
	}
	return ""
}

// The example scrape configuration loads the rules and has one job per role, the job names the
// dashboards select (job=~"riskflow.*").
func TestPrometheusConfig(t *testing.T) {
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(ConfigYAML, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("rule_files %q", cfg.RuleFiles)
	}
	var jobs []string
	for _, s := range cfg.ScrapeConfigs {
		jobs = append(jobs, s.JobName)
		if len(s.StaticConfigs) == 0 || len(s.StaticConfigs[0].Targets) == 0 {
			t.Errorf("job %s has no targets", s.JobName)
		}
	}
	if !slices.Equal(jobs, []string{"riskflow-api", "riskflow-scorer", "riskflow-archiver"}) {
		t.Errorf("jobs %q", jobs)
	}
}

func TestMetricNames(t *testing.T) {
	got := MetricNames(`histogram_quantile(0.99, sum by (le) (rate(riskflow_api_request_seconds_bucket{route="riskflow_not_a_metric"}[$__rate_interval])))
		/ on (instance) go_goroutines{job=~"riskflow.*"} + process_cpu_seconds_total + riskflow_api_request_seconds_bucket`)
	want := []string{"go_goroutines", "process_cpu_seconds_total", "riskflow_api_request_seconds_bucket"}
	if !slices.Equal(got, want) {
		t.Errorf("MetricNames = %q, want %q", got, want)
	}
	declared := map[string]string{"riskflow_x_seconds": "x.go"}
	for name, want := range map[string]bool{
		"riskflow_x_seconds_bucket": true, "riskflow_x_seconds": true, "riskflow_y": false, "go_goroutines": true, "go_nothing": false,
	} {
		if Known(name, declared) != want {
			t.Errorf("Known(%s) = %v", name, !want)
		}
	}
	for expr, ok := range map[string]bool{`sum(rate(x[5m]))`: true, `sum(rate(x[5m])`: false, `x{a="}"}`: true, `x{a="b}`: false} {
		if (balanced(expr) == "") != ok {
			t.Errorf("balanced(%s) = %q", expr, balanced(expr))
		}
	}
}

// runbookURLRE is the form of every alert's runbook_url: the runbook's section for the alert,
// whose anchor is the alert's name in lower case (GitHub's anchor for the heading "## Name").
var runbookURLRE = regexp.MustCompile(`^https://github\.com/riskflow/riskflow/blob/main/(docs/RUNBOOK\.md)#([a-z0-9-]+)$`)

// Every alert links to its section of docs/RUNBOOK.md, which exists and names the alert, and the
// runbook has no section for an alert that is gone: whoever is paged lands on what to do.
func TestAlertsHaveRunbooks(t *testing.T) {
	f, err := Alerts()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "RUNBOOK.md"))
	if err != nil {
		t.Fatalf("the alerts' runbook: %v", err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (Riskflow\w*)\s*$`).FindAllStringSubmatch(string(b), -1) {
		sections[m[1]] = true
	}
	alerts := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			u := r.Annotations["runbook_url"]
			m := runbookURLRE.FindStringSubmatch(u)
			switch {
			case u == "":
				t.Errorf("%s: no runbook_url annotation", r.Alert)
			case m == nil:
				t.Errorf("%s: runbook_url %q is not %s", r.Alert, u, runbookURLRE)
			case m[2] != strings.ToLower(r.Alert):
				t.Errorf("%s: runbook_url %q points at #%s, want #%s", r.Alert, u, m[2], strings.ToLower(r.Alert))
			}
			if !sections[r.Alert] {
				t.Errorf("%s: docs/RUNBOOK.md has no section \"## %s\"", r.Alert, r.Alert)
			}
		}
	}
	for s := range sections {
		if !alerts[s] {
			t.Errorf("docs/RUNBOOK.md has a section %q, which is no alert of alerts.yml", s)
		}
	}
	// Each section says how urgent the alert is, as its severity label does, and what to do: at
	// least one step (a list item) after the paragraph that says what happened.
	bodies := map[string]string{}
	for _, part := range regexp.MustCompile(`(?m)^## `).Split(string(b), -1)[1:] {
		name, body, _ := strings.Cut(part, "\n")
		bodies[strings.TrimSpace(name)] = body
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			body, ok := bodies[r.Alert]
			if !ok {
				continue // reported above
			}
			sev := map[string]string{"page": "**Page.**", "ticket": "**Ticket.**"}[r.Labels["severity"]]
			if first := strings.TrimSpace(body); sev == "" || !strings.HasPrefix(first, sev) {
				t.Errorf("docs/RUNBOOK.md, %s: the section should start with %q (severity %q)", r.Alert, sev, r.Labels["severity"])
			}
			if !regexp.MustCompile(`(?m)^- \S`).MatchString(body) {
				t.Errorf("docs/RUNBOOK.md, %s: no step to take (a list item \"- …\")", r.Alert)
			}
		}
	}
}
