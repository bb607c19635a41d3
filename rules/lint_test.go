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

// An integer division or remainder by a literal 0 fails whenever it is evaluated: that part of
// the rule can never be true, its only trace an error counter. It is refused where it stands (at the 0); a double
// divided by 0.0 (±Inf), a non-zero divisor and a divisor that is not a literal are not.
func TestZeroDivisorIsRefused(t *testing.T) {
	env := productionEnv(t)
	for when, col := range map[string]int{
		"phone_verifies_10m / 0 > 1":                           22,
		"phone_verifies_10m % 0 == 1":                          22,
		"ip_phones_1h > 2 || uint(ip_phones_1h) % 0u == 1u":    42,
		"[1, 2].exists(x, x / 0 == phone_verifies_10m)":        22,
		"phone_verifies_10m >= 1 && (ip_phones_1h / (0)) >= 2": 45,
	} {
		pack := "pack: x\nrules:\n  - id: r\n    tag: t\n    level: 300\n    when: '" + when + "'\n"
		_, err := rules.Lint([]byte(pack), env)
		want := fmt.Sprintf("line 6:%d: rule r: when: a ", 11+col)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "by zero: it fails whenever it is evaluated") {
			t.Errorf("%s: %v; want an error at the 0 (%q)", when, err, want)
		}
		if _, err := rules.Compile([]byte(pack), env); err == nil {
			t.Errorf("%s: compiled", when)
		}
	}
	for _, when := range []string{
		"double(phone_verifies_10m) / 0.0 > 1.0",
		"phone_verifies_10m / 2 >= 1 && ip_phones_1h % 3 == 0",
		"phone_verifies_10m / (ip_phones_1h - ip_phones_1h) > 1",
	} {
		pack := "pack: x\nrules:\n  - {id: r, tag: t, level: 300, when: '" + when + "'}\n"
		if _, err := rules.Lint([]byte(pack), env); err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
}
