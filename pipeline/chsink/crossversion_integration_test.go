//go:build integration && chdb

package chsink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
	"github.com/riskflow/riskflow/schemas"
)

// TestSQLOnBothClickHouses runs every statement riskflow ships or sends — migrations (those
// meant for each release), the archiver's inserts, the backfill, the migrator's and the
// backtest's reads, `riskflow rules report`, the analyst queries, riskflow demo's questions
// and the dashboards' ClickHouse panels — on the ClickHouse 18.16 server of CI and on current
// ClickHouse embedded by chDB (deploy/local/chdb.sh installs it from PyPI), over one fixture,
// and requires the same results from both.
//
// On 18.16 the migrations and inserts go through chsink itself (Store.Migrate, WriteBatch,
// RecordRuleVersion, RecordBacktestRun, over the native protocol); chDB gets the same
// statements as text, with the same rows as JSONEachRow. Every other statement is text on
// both (18.16 over HTTP, RISKFLOW_CLICKHOUSE_HTTP, default 127.0.0.1:18123). Statements that
// read the clock run twice: as shipped (both must succeed) and with now() pinned to the
// fixture's clock (results compared).
//
//	make chdb    (CI: .ci/run), or
//	go test -count=1 -tags integration,chdb -run TestSQLOnBothClickHouses -v ./pipeline/chsink/
func TestSQLOnBothClickHouses(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	chdb := filepath.Join("..", "..", "deploy", "local", "chdb.sh")

	// The clock both servers see: half past, in the past (the data ends there).
	now := time.Now().UTC().Truncate(time.Hour).Add(-30 * time.Minute)
	fx := newCrossFixture(now)

	// 18.16: the real migrator and writers, then every other statement over HTTP.
	st := newTestStoreAt(t, slog.LevelInfo)
	oldVersion, err := st.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldPlan, err := buildCrossPlan(st.db, now, oldVersion, fx)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := st.Migrate(ctx)
	if err != nil {
		t.Fatalf("migrate on %s: %v", oldVersion, err)
	}
	if !slices.Equal(applied, oldPlan.migrations) {
		t.Fatalf("Migrate applied %q on %s; the plan has %q", applied, oldVersion, oldPlan.migrations)
	}
	for _, batch := range [][]schemas.ScoreRecord{fx.records, fx.redelivered} {
		if err := st.WriteBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range fx.versions {
		if err := st.RecordRuleVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range fx.runs {
		if err := st.RecordBacktestRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.WriteDecisions(ctx, fx.decisions); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteLabels(ctx, fx.labels); err != nil {
		t.Fatal(err)
	}
	oldStart := time.Now()
	oldResults := map[string]stepResult{}
	for _, s := range oldPlan.steps {
		if s.kind == stepMigration || s.kind == stepInsert {
			continue
		}
		out, err := httpQuery(ctx, s.SQL, s.Result)
		oldResults[s.Name] = stepResult{Name: s.Name, OK: err == nil, Error: errText(err), Output: out}
	}
	oldTook := time.Since(oldStart)

	// Current ClickHouse: the whole plan, as text, in a fresh chDB session.
	verOut, err := exec.CommandContext(ctx, chdb, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v (%s)", chdb, err, stderrOf(err))
	}
	newVersion, err := chschema.ParseVersion(strings.TrimSpace(string(verOut)))
	if err != nil {
		t.Fatal(err)
	}
	newPlan, err := buildCrossPlan(st.db, now, newVersion, fx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	planFile, outFile := filepath.Join(dir, "plan.json"), filepath.Join(dir, "results.json")
	b, err := json.Marshal(map[string]any{"steps": newPlan.steps})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, chdb, "run", planFile, outFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chDB runner: %v", err)
	}
	var res struct {
		Version string       `json:"version"`
		Chdb    string       `json:"chdb"`
		Seconds float64      `json:"seconds"`
		Steps   []stepResult `json:"steps"`
	}
	if b, err = os.ReadFile(outFile); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	newResults := map[string]stepResult{}
	for _, r := range res.Steps {
		newResults[r.Name] = r
	}

	// RISKFLOW_CROSS_DUMP=DIR keeps what both servers answered, one file per statement and server.
	if dump := os.Getenv("RISKFLOW_CROSS_DUMP"); dump != "" {
		if err := os.MkdirAll(dump, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range newPlan.steps {
			if !s.Result {
				continue
			}
			base := filepath.Join(dump, fmt.Sprintf("%03d_%s", i, strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
					return r
				}
				return '_'
			}, strings.ToLower(s.Name))))
			_ = os.WriteFile(base+".sql", []byte(s.SQL+"\n"), 0o644)
			_ = os.WriteFile(base+".18.tsv", []byte(oldResults[s.Name].Output+oldResults[s.Name].Error), 0o644)
			_ = os.WriteFile(base+".chdb.tsv", []byte(newResults[s.Name].Output+newResults[s.Name].Error), 0o644)
		}
	}

	// Everything ran; the same answers.
	counts := map[string]int{}
	failed := 0
	for _, s := range newPlan.steps {
		nr, ok := newResults[s.Name]
		switch {
		case !ok:
			t.Errorf("chDB: no result for %s", s.Name)
			failed++
			continue
		case !nr.OK:
			t.Errorf("chDB %s: %s failed:\n%s\n%s", res.Version, s.Name, nr.Error, clip(s.SQL))
			failed++
			continue
		}
		counts[s.kind]++
		if s.kind == stepMigration || s.kind == stepInsert {
			continue
		}
		or, ok := oldResults[s.Name]
		switch {
		case !ok:
			t.Errorf("18.16: no result for %s", s.Name)
			failed++
		case !or.OK:
			t.Errorf("ClickHouse %s: %s failed:\n%s\n%s", oldVersion, s.Name, or.Error, clip(s.SQL))
			failed++
		case s.kind == stepExpect:
			if want := s.expect(oldPlan.current); or.Output != want {
				t.Errorf("ClickHouse %s: %s:\n got %q\nwant %q", oldVersion, s.Name, or.Output, want)
				failed++
			}
			if want := s.expect(newPlan.current); nr.Output != want {
				t.Errorf("chDB %s: %s:\n got %q\nwant %q", res.Version, s.Name, nr.Output, want)
				failed++
			}
		case s.kind == stepCompare:
			if diff := sameResults(or.Output, nr.Output, s.ordered); diff != "" {
				t.Errorf("%s: results differ between ClickHouse %s and %s: %s\n%s", s.Name, oldVersion, res.Version, diff, clip(s.SQL))
				failed++
			} else if strings.TrimSpace(or.Output) == "" && !emptyAllowed(s.Name) {
				t.Errorf("%s: no rows on either server; the fixture should give it some\n%s", s.Name, clip(s.SQL))
				failed++
			}
		}
	}
	migStatements := counts[stepMigration]
	t.Logf("chDB pass: ClickHouse %s (server) and %s (chDB %s), database %s, clock pinned at %s",
		oldVersion, res.Version, res.Chdb, st.db, now.Format(time.RFC3339))
	t.Logf("chDB pass: migrations: %d files on %s, %d on %s (%d statements); skipped on %s: %s",
		len(oldPlan.migrations), oldVersion, len(newPlan.migrations), res.Version, migStatements, oldVersion,
		strings.Join(missing(newPlan.migrations, oldPlan.migrations), ", "))
	t.Logf("chDB pass: %d inserts (%d events, %d re-delivered, %d rule versions, %d backtest runs), %d backfill statements",
		counts[stepInsert], len(fx.records), len(fx.redelivered), len(fx.versions), len(fx.runs), counts[stepExec])
	t.Logf("chDB pass: %d statements with identical results, %d clock-dependent statements ran on both, %d storage checks",
		counts[stepCompare], counts[stepRuns], counts[stepExpect])
	t.Logf("chDB pass: %d failed; 18.16 checks %.1fs, chDB %.1fs, total %.1fs",
		failed, oldTook.Seconds(), res.Seconds, time.Since(start).Seconds())
	if failed == 0 {
		fmt.Printf("chdb: %d passed, 0 failed\n", len(newPlan.steps))
	}
}

type stepResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Output string `json:"output"`
}

// emptyAllowed names the compared statements that may find nothing in the fixture.
func emptyAllowed(name string) bool {
	return strings.HasPrefix(name, "migrate: ") || strings.HasPrefix(name, "backtest read ")
}

func missing(all, some []string) (out []string) {
	for _, a := range all {
		if !slices.Contains(some, a) {
			out = append(out, a)
		}
	}
	return out
}

func clickhouseHTTP() string {
	if a := os.Getenv("RISKFLOW_CLICKHOUSE_HTTP"); a != "" {
		return a
	}
	return "127.0.0.1:18123"
}

// httpQuery runs one statement on the 18.16 server; a SELECT answers TabSeparated.
func httpQuery(ctx context.Context, sql string, result bool) (string, error) {
	if result {
		sql += "\nFORMAT TabSeparated"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+clickhouseHTTP()+"/?"+url.Values{"max_execution_time": {"60"}}.Encode(), strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func clip(s string) string {
	if len(s) > 1500 {
		return s[:1500] + " …"
	}
	return s
}
