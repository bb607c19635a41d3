//go:build integration

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// The rule-pack lifecycle on ClickHouse: a node starts on the pack file and records it once; a PUT
// is recorded with who and its exact bytes; `riskflow rules versions` lists both; `riskflow rules
// rollback` writes the recorded bytes back to the pack file and records the load; a second node
// starting on that file does not record it again.
func TestRulePackLifecycleOnClickHouse(t *testing.T) {
	addr, db, _, conn := throwawayDatabase(t, "riskflow_rules")
	ctx := context.Background()

	path := filepath.Join(tempDir(t), "rules.yaml")
	v1 := []byte("pack: lifecycle\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 3'}\n")
	v2 := []byte("pack: lifecycle\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 5'}\n")
	os.WriteFile(path, v1, 0o644)
	cfg := Default()
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database, cfg.Scoring.Rules = addr, db, path
	log := slog.New(slog.DiscardHandler)
	node := func() *rulesAdminNode {
		s, err := buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte("k")), log)
		if err != nil {
			t.Fatal(err)
		}
		svc := newRuleService(cfg, s, log, nil)
		if _, err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		svc.Tick(ctx) // records the startup load
		return &rulesAdminNode{rulesAdmin{s: svc, persisted: true}}
	}
	n1 := node()
	start := n1.Current()
	if start.Version != sum16(v1) {
		t.Fatalf("started on %s, want %s", start.Version, sum16(v1))
	}
	info, err := n1.Update(ctx, v2, "lead", api.UpdateOptions{})
	if err != nil || !info.Recorded || !info.Persisted {
		t.Fatalf("PUT: %+v %v", info, err)
	}
	rows := func() uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".rule_versions").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n != 2 {
		t.Errorf("rule_versions has %d rows after startup and one PUT, want 2", n)
	}

	flags := []string{"--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db, "--set", "scoring.rules=" + path}
	r := runCmd(t, ctx, append([]string{"rules", "versions"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("rules versions: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], info.Version) || !strings.Contains(lines[1], "api:lead@") || !strings.HasPrefix(lines[2], start.Version) || !strings.Contains(lines[2], "startup@") {
		t.Errorf("rules versions, newest first with who:\n%s", r.stdout)
	}
	// --json: the same list, newest first, named as GET /v1/rules/versions names it.
	r = runCmd(t, ctx, append([]string{"rules", "versions", "--json"}, flags...)...)
	var asJSON struct {
		Versions []struct {
			Version, Pack, LoadedBy, Source string
			Rules                           int
			LoadedAt                        time.Time `json:"loaded_at"`
		} `json:"versions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &asJSON); r.code != 0 || err != nil {
		t.Fatalf("rules versions --json: exit %d, %v: %s%s", r.code, err, r.stdout, r.stderr)
	}
	if v := asJSON.Versions; len(v) != 2 || v[0].Version != info.Version || v[1].Version != start.Version || v[0].Rules == 0 ||
		v[0].LoadedAt.Before(v[1].LoadedAt) || !strings.Contains(r.stdout, `"loaded_by": "api:lead@`) {
		t.Errorf("rules versions --json:\n%s", r.stdout)
	}

	// --from names the live version the rollback means to undo: another one there (a promotion
	// made meanwhile) refuses it and leaves the file.
	r = runCmd(t, ctx, append([]string{"rules", "rollback", start.Version, "--from", start.Version}, flags...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "holds version "+info.Version+", not "+start.Version+" (--from)") {
		t.Errorf("rollback --from a version no longer live: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(path); string(b) != string(v2) {
		t.Errorf("a refused rollback changed the pack file: %q", b)
	}
	// Flags after the version, as anywhere.
	r = runCmd(t, ctx, append([]string{"rules", "rollback", start.Version, "--from", info.Version}, flags...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "rolled back to pack \"lifecycle\" version "+start.Version) || !strings.Contains(r.stdout, "recorded in rule_versions, replacing version "+info.Version) {
		t.Fatalf("rules rollback: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(path); string(b) != string(v1) {
		t.Errorf("the pack file after the rollback: %q, want the recorded bytes", b)
	}
	var by, source, content string
	if err := conn.QueryRow(ctx, "SELECT loaded_by, source, content FROM "+db+".rule_versions FINAL WHERE version = '"+start.Version+"'").Scan(&by, &source, &content); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(by, "cli:") || source != "rollback" || content != string(v1) {
		t.Errorf("the rollback's row: %q %q %q", by, source, content)
	}
	if n := rows(); n != 3 {
		t.Errorf("rule_versions has %d rows after a rollback, want 3", n)
	}
	// The running node picks the rolled-back file up without recording it again; so does a node
	// that starts on it.
	n1.s.Tick(ctx)
	node()
	if got := n1.Current().Version; got != start.Version {
		t.Errorf("node 1 runs %s after the rollback, want %s", got, start.Version)
	}
	if n := rows(); n != 3 {
		t.Errorf("rule_versions has %d rows after two nodes loaded a recorded version, want 3", n)
	}
	if r := runCmd(t, ctx, append([]string{"rules", "rollback", "0123456789abcdef"}, flags...)...); r.code != 1 || !strings.Contains(r.stderr, "unknown rule pack version") {
		t.Errorf("rollback to an unknown version: exit %d: %s", r.code, r.stderr)
	}
}

type rulesAdminNode struct{ rulesAdmin }

func sum16(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])[:16]
}

// The audit trail keeps every load: alice promotes v2, bob rolls back to v1, carol promotes v2
// again. rule_versions holds two rows (each version's latest load), so alice's promotion and the
// startup load were gone from the history; `rules versions --loads` lists all four. (One admin's
// two loads of one version within a second are one row: loaded_at has seconds.)
func TestRulePackAuditTrailKeepsEveryLoad(t *testing.T) {
	addr, db, _, _ := throwawayDatabase(t, "riskflow_rule_loads")
	ctx := context.Background()
	path := filepath.Join(tempDir(t), "rules.yaml")
	v1 := []byte("pack: audit\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 3'}\n")
	v2 := []byte("pack: audit\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 4'}\n")
	os.WriteFile(path, v1, 0o644)
	cfg := Default()
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database, cfg.Scoring.Rules = addr, db, path
	log := slog.New(slog.DiscardHandler)
	s, err := buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte("k")), log)
	if err != nil {
		t.Fatal(err)
	}
	svc := newRuleService(cfg, s, log, nil)
	if _, err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	svc.Tick(ctx) // records the startup load
	ra := rulesAdmin{s: svc, persisted: true}
	for _, step := range []func() (api.RulesInfo, error){
		func() (api.RulesInfo, error) { return ra.Update(ctx, v2, "alice", api.UpdateOptions{}) },
		func() (api.RulesInfo, error) { return ra.Rollback(ctx, sum16(v1), "bob", "") },
		func() (api.RulesInfo, error) { return ra.Update(ctx, v2, "carol", api.UpdateOptions{}) },
	} {
		if info, err := step(); err != nil || !info.Recorded {
			t.Fatalf("load: %+v %v", info, err)
		}
	}
	flags := []string{"--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db, "--set", "scoring.rules=" + path}
	r := runCmd(t, ctx, append([]string{"rules", "versions"}, flags...)...)
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || n != 2 {
		t.Fatalf("rules versions: exit %d, %d versions\n%s%s", r.code, n, r.stdout, r.stderr)
	}
	r = runCmd(t, ctx, append([]string{"rules", "versions", "--loads"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("rules versions --loads: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")[1:]
	var got []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 6 {
			t.Fatalf("rules versions --loads line %q", l)
		}
		got = append(got, f[0]+" "+strings.SplitN(f[4], "@", 2)[0]+" "+f[5])
	}
	slices.Sort(got)
	want := []string{sum16(v1) + " api:bob rollback", sum16(v1) + " startup " + path, sum16(v2) + " api:alice api", sum16(v2) + " api:carol api"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("rules versions --loads: %q, want every load %q\n%s", got, want, r.stdout)
	}
}

// rules versions reads rule_versions as rules report and lookup read their tables: a database of
// another name (clickhouse.database mistyped) is said to be missing, and left so. It was created
// with every table of the schema, and the command answered "no rule pack version recorded yet",
// exit 0, as if the versions had never been recorded.
func TestRulesVersionsDoesNotCreateTheDatabase(t *testing.T) {
	addr, db, _, conn := throwawayDatabase(t, "riskflow_rulesread") // never created: the typo
	ctx := context.Background()
	// rules rollback reads the version the same way: the rule-pack service it writes the pack
	// through applied the schema at its first use, creating the database, then found no version.
	pack, err := os.ReadFile(filepath.Join("..", "..", "rules", "packs", "default", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	packFile := filepath.Join(tempDir(t), "rules.yaml")
	if err := os.WriteFile(packFile, pack, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"rules", "versions"}, {"rules", "versions", "--loads"}, {"rules", "versions", "--json"},
		{"rules", "rollback", "8f35964b1ae4a0c3", "--set", "scoring.rules=" + packFile}} {
		r := runCmd(t, ctx, append(args, "--set", "clickhouse.addr="+addr, "--set", "clickhouse.database="+db)...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "table missing (riskflow migrate creates it)") || !strings.Contains(r.stderr, db) {
			t.Errorf("%v on a database that does not exist: exit %d, want 1 saying it is missing\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%v created database %s", args, db)
		}
	}
}
