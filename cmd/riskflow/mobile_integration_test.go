//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/pipeline/loadgen"
	"github.com/riskflow/riskflow/schemas"
)

// TestBacktestMobileNetworksPack (issue #14): three hours of loadgen history — the mobility
// behaviours, a large regional app, every attack scenario — stored in a throwaway ClickHouse
// database, then `riskflow backtest` of the previous default pack (RISKFLOW_BACKTEST_OLD_PACK, a
// rules.yaml; the test is skipped without it) against the current one, with the loadgen labels.
// The report is logged; the test asserts that the current pack steps up fewer ordinary users and
// keeps the attacks.
//
//	git show <old>:rules/packs/default/rules.yaml > /tmp/old.yaml
//	RISKFLOW_BACKTEST_OLD_PACK=/tmp/old.yaml go test -tags integration -run BacktestMobileNetworksPack -v ./cmd/riskflow
func TestBacktestMobileNetworksPack(t *testing.T) {
	old := os.Getenv("RISKFLOW_BACKTEST_OLD_PACK")
	if old == "" {
		t.Skip("RISKFLOW_BACKTEST_OLD_PACK is not set")
	}
	addr, db, _, st := migratedDatabase(t, "riskflow_i14")
	ctx := context.Background()

	span := 3 * time.Hour
	start := time.Now().UTC().Add(-span - 10*time.Minute).Truncate(time.Second)
	g, err := loadgen.New(loadgen.Config{Seed: 14, Rate: 20, Duration: span, Start: start,
		Apps: []string{"news-cn", "shop-cn", "game-cn"}, LargeApp: "bigapp-gd", LargeAppShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	s, err := buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte("k")), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	labels := filepath.Join(tempDir(t), "labels.jsonl")
	lf, err := os.Create(labels)
	if err != nil {
		t.Fatal(err)
	}
	var recs []schemas.ScoreRecord
	n := 0
	for {
		l, ok := g.Next()
		if !ok {
			break
		}
		rec, err := s.Process(&l.Event)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		json.NewEncoder(lf).Encode(map[string]any{"event_id": l.Event.EventID, "app_id": l.Event.AppID, "label": l.Label, "attack": l.Attack})
		if len(recs) == 50000 {
			if err := st.WriteBatch(ctx, recs); err != nil {
				t.Fatal(err)
			}
			n += len(recs)
			recs = recs[:0]
		}
	}
	lf.Close()
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n += len(recs)
	t.Logf("stored %d events of loadgen history in %s", n, db)

	env := []string{"--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}
	from := start.Add(30 * time.Minute).Format(time.RFC3339) // the first half hour fills the windows
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"backtest", "--current", old, "--rules", "../../rules/packs/default/rules.yaml",
		"--from", from, "--labels", labels, "--no-record"}, env...), &out, &errb)
	if code != 0 {
		t.Fatalf("backtest exited %d: %s", code, errb.String())
	}
	t.Logf("backtest, previous default pack → current:\n%s", out.String())
	out.Reset()
	code = run(ctx, append([]string{"backtest", "--current", old, "--rules", "../../rules/packs/default/rules.yaml",
		"--from", from, "--labels", labels, "--no-record", "--json"}, env...), &out, &errb)
	if code != 0 {
		t.Fatalf("backtest --json exited %d: %s", code, errb.String())
	}
	var rep struct {
		Transitions []struct{ From, To, Count int } `json:"transitions"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("backtest JSON: %v\n%s", err, out.String())
	}
	down, up := 0, 0
	for _, tr := range rep.Transitions {
		switch {
		case tr.From >= 600 && tr.To < 600:
			down += tr.Count
		case tr.From < 600 && tr.To >= 600:
			up += tr.Count
		}
	}
	if down <= up {
		t.Errorf("the current pack steps up %d events the previous did not and drops %d: want fewer step-ups\n%s", up, down, out.String())
	}
	if !strings.Contains(out.String(), "prefix_burst") {
		t.Errorf("no prefix_burst change in the report: %s", fmt.Sprint(out.String()[:min(len(out.String()), 2000)]))
	}
}
