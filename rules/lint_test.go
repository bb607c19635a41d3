package rules_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/rules"
)

// `riskflow rules lint` promises every problem of a pack: LintFile lists all of them where
// CompileFile (logged on every failed reload, answered to PUT) stops after a few KB. A pack with
// 200 misspelt variables showed 35 and "165 more problems not shown", with no way to see the rest.
func TestLintFileListsEveryProblem(t *testing.T) {
	env := productionEnv(t)
	var b strings.Builder
	b.WriteString("pack: x\nrules:\n")
	for i := range 200 {
		fmt.Fprintf(&b, "  - {id: r%d, tag: t, level: 300, when: 'phone_verifies_10mm >= %d'}\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := rules.LintFile(path, env)
	if err == nil {
		t.Fatal("compiled")
	}
	msg := err.Error()
	if n := strings.Count(msg, "undeclared reference to 'phone_verifies_10mm'"); n != 200 || strings.Contains(msg, "not shown") {
		t.Errorf("LintFile listed %d of 200 problems: …%s", n, msg[max(0, len(msg)-200):])
	}
	if !strings.Contains(msg, path+":201:") || !strings.Contains(msg, "rule r199: when:") {
		t.Errorf("the last problem is not named by file, line and rule: …%s", msg[max(0, len(msg)-200):])
	}
	// Lint, the same for a pack in hand (the console's draft).
	if _, err := rules.Lint([]byte(b.String()), env); err == nil || strings.Count(err.Error(), "undeclared reference") != 200 {
		t.Errorf("Lint did not list the 200 problems: %v", err)
	}
	// The bounded form stays bounded.
	if _, err := rules.CompileFile(path, env); err == nil || !strings.HasSuffix(err.Error(), " more problems not shown") {
		t.Errorf("CompileFile: %v", err)
	}
}
