//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/schemas"
)

// A bulk labels file of ids not stored (yet) warns about the first ones by name and about the
// rest by count: 2,000 labels gave 2,000 warning lines. The labels are stored all the same.
func TestLabelBulkUnknownWarnsByCount(t *testing.T) {
	cleanEnv(t)
	addr, db, conn, _ := migratedDatabase(t, "riskflow_label")
	var ls []schemas.Label
	for i := range 2000 {
		ls = append(ls, schemas.Label{AppID: "app1", EventID: fmt.Sprintf("bulk-%d", i), Label: schemas.LabelFraud})
	}
	b, _ := json.Marshal(ls)
	file := filepath.Join(t.TempDir(), "labels.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, context.Background(), "label", "--file", file, "--by", "it", "--set", "clickhouse.addr="+addr, "--set", "clickhouse.database="+db)
	warnings := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 0 || len(warnings) != maxUnknownShown+1 || !strings.Contains(r.stderr, "warning: no event bulk-0 of app app1") ||
		!strings.Contains(warnings[len(warnings)-1], fmt.Sprintf("and %d more labelled ids not stored (2000 of the 2000 labels)", 2000-maxUnknownShown)) {
		t.Errorf("exit %d, %d warning lines (want %d):\n%s", r.code, len(warnings), maxUnknownShown+1, strings.Join(warnings[max(0, len(warnings)-3):], "\n"))
	}
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".labels FINAL").Scan(&n); err != nil || n != 2000 {
		t.Errorf("%d labels stored (%v), want 2000", n, err)
	}
}
