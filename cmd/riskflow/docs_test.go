package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The documents a user reads to configure and run riskflow.
var userDocs = []string{
	"README.md",
	"docs/RUNBOOK.md",
	"docs/SCALING.md",
	"rules/README.md",
	"deploy/clickhouse/SCHEMA.md",
	"deploy/grafana/README.md",
	"deploy/clickhouse/migrations/README.md",
}

var (
	// section.key as the docs write a key: a section of Config, a dot, a lower-case name not
	// followed by another dot and a letter (a host name, a file name).
	docKeyRE = regexp.MustCompile(`\b(api|clickhouse|kafka|log|ops|scoring)\.([a-z][a-z_]*[a-z])\b(?:[^.a-z(]|\.[^a-z]|\.$|$)`)
	// RISKFLOW_ variables (RISKFLOW_SECTION_KEY is the README's placeholder).
	docEnvRE = regexp.MustCompile(`\bRISKFLOW_[A-Z0-9_]*[A-Z0-9]\b`)
	fileExt  = map[string]bool{"go": true, "md": true, "yaml": true, "yml": true, "json": true, "sql": true, "sh": true, "txt": true}
)

// docKeyProblems lists the configuration keys and RISKFLOW_ variables text names that do not exist.
func docKeyProblems(name, text string) []string {
	keys := configKeys()
	var out []string
	for i, line := range strings.Split(text, "\n") {
		for _, m := range docKeyRE.FindAllStringSubmatch(line, -1) {
			k := m[1] + "." + m[2]
			if fileExt[m[2]] {
				continue // scoring.go, api.md: a file
			}
			if _, ok := keys.paths[k]; !ok {
				out = append(out, fmt.Sprintf("%s:%d names the configuration key %s, which does not exist (%s)", name, i+1, k, closest(k)))
			}
		}
		for _, v := range docEnvRE.FindAllString(line, -1) {
			base := strings.TrimSuffix(v, "_FILE")
			if _, ok := keys.byEnv[base]; ok || scriptEnv[v] || scriptEnv[base] || v == "RISKFLOW_SECTION_KEY" {
				continue
			}
			out = append(out, fmt.Sprintf("%s:%d names the variable %s, which riskflow refuses as unknown", name, i+1, v))
		}
	}
	return out
}

func closest(k string) string {
	if s := configKeys().suggestPath(k); s != "" {
		return "did you mean " + s + "?"
	}
	return "no close key"
}

// Every configuration key and RISKFLOW_ variable the user documents name is one riskflow takes:
// the runbook told an operator short of memory to shorten scoring.retention, a key that does not
// exist (riskflow would refuse it at start, exit 2).
func TestDocsNameRealConfigKeys(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, d := range userDocs {
		b, err := os.ReadFile(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range docKeyProblems(d, string(b)) {
			t.Error(p)
		}
	}
	// The check itself finds a drifted name, and leaves host and file names alone.
	got := docKeyProblems("x", "a shorter `scoring.retention`, RISKFLOW_API_KESY=…, api.example.com, scoring.go, `kafka.brokers`.")
	if len(got) != 2 || !strings.Contains(got[0], "scoring.retention") || !strings.Contains(got[1], "RISKFLOW_API_KESY") {
		t.Errorf("the check on a drifted text says %q", got)
	}
}

// The README's configuration table has a row for every key, names no key that does not exist,
// and each default it gives as a value (`5s`, 100000, — for none) is Default()'s.
func TestReadmeConfigTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	keys := configKeys()
	def := Default()
	seen := map[string]bool{}
	in := false
	for i, line := range strings.Split(string(b), "\n") {
		if line == "| key | default | meaning |" {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "| ") {
			if len(seen) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 3 {
			t.Errorf("README.md:%d: a row of the configuration table without key, default and meaning", i+1)
			continue
		}
		names := strings.Split(strings.TrimPrefix(cells[0], "| "), " / ")
		defaults := strings.Split(cells[1], " / ")
		section := ""
		for j, n := range names {
			n = strings.Trim(n, "`")
			if s, k, ok := strings.Cut(n, "."); ok {
				section = s
				n = s + "." + k
			} else {
				n = section + "." + n
			}
			seen[n] = true
			if _, ok := keys.paths[n]; !ok {
				t.Errorf("README.md:%d: the configuration table names %s, which is not a key (%s)", i+1, n, closest(n))
				continue
			}
			if len(defaults) != len(names) {
				continue
			}
			if p := defaultProblem(&def, n, defaults[j]); p != "" {
				t.Errorf("README.md:%d: %s", i+1, p)
			}
		}
	}
	var missing []string
	for _, k := range keys.sorted() {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the README's configuration table has no row for %s", strings.Join(missing, ", "))
	}
	// The check itself: a default that drifted is named.
	if p := defaultProblem(&def, "kafka.stall_after", "`1m`"); !strings.Contains(p, "kafka.stall_after") {
		t.Errorf("a table giving kafka.stall_after 1m: the check says %q", p)
	}
}

// defaultProblem compares the default cell of key's row with Default()'s value when the cell
// gives a value: a backticked value, a number, or — / none for no value; words (embedded table,
// 1 MiB) are left to the reader.
func defaultProblem(def *Config, key, cell string) string {
	v, _, _ := strings.Cut(strings.TrimSpace(cell), " (")
	var want reflect.Value
	switch {
	case v == "—" || v == "none":
		want = reflect.Zero(configKeys().field(def, key).Type())
	case strings.HasPrefix(v, "`") && strings.HasSuffix(v, "`") && len(v) > 2, regexp.MustCompile(`^[0-9]+$|^true$|^false$`).MatchString(v):
		var c Config
		if err := setKey(&c, key, strings.Trim(v, "`")); err != nil {
			return fmt.Sprintf("%s: the default %s does not parse: %v", key, cell, err)
		}
		want = configKeys().field(&c, key)
	default:
		return ""
	}
	got := configKeys().field(def, key)
	if got.IsZero() && want.IsZero() {
		return ""
	}
	if !reflect.DeepEqual(got.Interface(), want.Interface()) {
		return fmt.Sprintf("%s: the table's default is %s, Default() has %v", key, cell, got.Interface())
	}
	return ""
}

// Every test, benchmark and fuzz target the user documents cite as evidence (TestMemoryPerKey,
// `-bench 'Process(Fed)?$'`) is defined, so that a reader can run it; a name ending in … stands for
// those it begins.
func TestDocsNameRealTests(t *testing.T) {
	root := filepath.Join("..", "..")
	defined := map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Za-z0-9_]+)\(`)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range funcRE.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	nameRE := regexp.MustCompile(`\b((?:Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*)(…)?`)
	for _, d := range userDocs {
		b, err := os.ReadFile(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range nameRE.FindAllStringSubmatch(line, -1) {
				if defined[m[1]] {
					continue
				}
				if m[2] != "" && slices.ContainsFunc(sortedKeysOf(defined), func(n string) bool { return strings.HasPrefix(n, m[1]) }) {
					continue
				}
				t.Errorf("%s:%d cites %s, which no _test.go file defines", d, i+1, m[1])
			}
		}
	}
}

func sortedKeysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
