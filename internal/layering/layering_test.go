package layering

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/riskflow/riskflow/"

// layers ranks the top-level directories. A package may import packages of its own directory tree
// and of lower layers only; directories of one layer do not import each other (consumers knows
// only schemas, and rules nothing of Kafka). Tests may import anything.
var layers = map[string]int{
	"schemas":   0,
	"deploy":    0, // SQL, dashboards and manifests embedded as data
	"rules":     1,
	"consumers": 1,
	"scoring":   2,
	"pipeline":  3,
	"cmd":       4,
	"internal":  4,
}

type pkg struct {
	ImportPath string
	Imports    []string
}

func topDir(path string) string {
	rest := strings.TrimPrefix(path, module)
	top, _, _ := strings.Cut(rest, "/")
	return top
}

// violations names every import of pkgs that runs up the layers or sideways between directories
// of one layer, and every directory the table does not rank.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		from := topDir(p.ImportPath)
		lf, ok := layers[from]
		if !ok {
			out = append(out, fmt.Sprintf("%s: directory %s/ has no layer (add it to layers)", p.ImportPath, from))
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to := topDir(imp)
			lt, ok := layers[to]
			switch {
			case to == from:
			case !ok:
				out = append(out, fmt.Sprintf("%s imports %s: directory %s/ has no layer", p.ImportPath, imp, to))
			case lt > lf:
				out = append(out, fmt.Sprintf("%s (layer %d, %s) imports %s (layer %d, %s): an upward import", p.ImportPath, lf, from, imp, lt, to))
			case lt == lf:
				out = append(out, fmt.Sprintf("%s imports %s: %s/ and %s/ are one layer and stay apart", p.ImportPath, imp, from, to))
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestNoUpwardImports(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "-tags", "integration,chdb", module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// The check fails on what it is there to catch.
func TestViolationsCatchesUpwardAndSidewaysImports(t *testing.T) {
	got := violations([]pkg{
		{module + "scoring/backtest", []string{module + "pipeline/chsink", module + "scoring", module + "rules", "fmt"}},
		{module + "consumers", []string{module + "schemas", module + "rules"}},
		{module + "schemas", []string{module + "scoring/geo"}},
		{module + "cmd/riskflow", []string{module + "pipeline", module + "scoring/api", module + "schemas"}},
		{module + "tools/x", nil},
	})
	want := []string{
		module + "consumers imports " + module + "rules: consumers/ and rules/ are one layer and stay apart",
		module + "schemas (layer 0, schemas) imports " + module + "scoring/geo (layer 2, scoring): an upward import",
		module + "scoring/backtest (layer 2, scoring) imports " + module + "pipeline/chsink (layer 3, pipeline): an upward import",
		module + "tools/x: directory tools/ has no layer (add it to layers)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
