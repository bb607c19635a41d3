//go:build integration

package chsink

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runbookExportRE finds docs/RUNBOOK.md's command that writes a recorded rule pack to a file
// (RiskflowRulePackFileNotLoaded: a read-only ConfigMap takes the version's bytes instead).
var runbookExportRE = regexp.MustCompile("`(clickhouse-client [^`]*SELECT content FROM[^`]*> rules\\.yaml)`")

// The runbook's command for a read-only ConfigMap, pasted as printed (but for the server's address
// and the database), writes the recorded version's exact bytes on this ClickHouse, 18.16 in CI: the
// file's hash is the version, so the nodes that load it run that version. It named FORMAT RawBLOB,
// which 18.16 does not know ("Unknown format RawBLOB"), where an operator was paged.
func TestRunbookRulePackExportIsExact(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := runbookExportRE.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("docs/RUNBOOK.md has no command %s", runbookExportRE)
	}
	if _, err := exec.LookPath("clickhouse-client"); err != nil {
		t.Fatalf("clickhouse-client (installed with the server by deploy/local/clickhouse.sh): %v", err)
	}
	st := migrated(t)
	// A pack as a file holds it: a final newline, a tab, a backslash, quotes, text beyond ASCII.
	content := "pack: exported\ndescription: \"a\tb \\\\ c 'q' 中文\"\nrules: []\n"
	sum := sha256.Sum256([]byte(content))
	version := hex.EncodeToString(sum[:])[:16]
	if err := st.RecordRuleVersion(testContext(t), RuleVersion{Version: version, Name: "exported", LoadedBy: "test", Source: "test",
		LoadedAt: time.Now(), RuleCount: 0, Content: content}); err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(clickhouseAddr())
	if err != nil {
		t.Fatal(err)
	}
	cmd := strings.Join(strings.Fields(m[1]), " ")
	cmd = strings.NewReplacer(
		"clickhouse-client ", "clickhouse-client --host "+host+" --port "+port+" ",
		"riskflow.rule_versions", st.db+".rule_versions",
		"'VERSION'", "'"+version+"'",
	).Replace(cmd)
	dir := t.TempDir()
	c := exec.Command("sh", "-c", cmd)
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("the runbook's command failed: %v\n%s\n%s", err, cmd, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		gs := sha256.Sum256(got)
		t.Errorf("the runbook's command wrote %q (version %s), want the recorded bytes %q (version %s)\n%s",
			got, hex.EncodeToString(gs[:])[:16], content, version, cmd)
	}
}
