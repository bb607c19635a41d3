package rules

import (
	"fmt"
	"strings"
	"testing"
)

// Rules whose worst-case cost cannot grow with their input run untracked; the others keep the
// runtime cost limit.
func TestRuntimeCostTrackingOnlyWhereInputSizeMatters(t *testing.T) {
	env, err := NewEnv([]Var{{Name: "n", Type: Int}, {Name: "s", Type: String}, {Name: "b", Type: Bool}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		when    string
		tracked bool
	}{
		{`n >= 3`, false},
		{`b && n * 2 >= 10 || n > 100`, false},
		{`s == "mvno"`, false}, // CEL prices equality as constant
		{`s in ["a", "b", "c"]`, false},
		{`s + s == "ab"`, true}, // concatenation grows with the input
		{`s.contains("x")`, true},
		{`s.matches("^1(62|65)")`, true},
		{`size(s) > 3`, false}, // size is constant-cost
	}
	for _, c := range cases {
		p, err := Compile([]byte("pack: p\nrules:\n  - id: r\n    tag: t\n    level: 300\n    when: '"+c.when+"'\n"), env)
		if err != nil {
			t.Fatalf("%s: %v", c.when, err)
		}
		if got := p.Rules[0].tracked; got != c.tracked {
			t.Errorf("%s: tracked = %v, want %v (estimated cost %d)", c.when, got, c.tracked, p.Rules[0].Cost)
		}
	}
}

// The cost estimates quoted in README.md.
func TestQuotedCostEstimates(t *testing.T) {
	env, err := NewEnv([]Var{{Name: "phone_verifies_10m", Type: Int}, {Name: "s", Type: String}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		when string
		cost uint64
	}{
		{`phone_verifies_10m >= 3`, 2},
		{`s in ["162","165","167","170","171"]`, 16},
		{`s.matches("^1(62|65|67|70|71)")`, 117},
		{`[1,2,3,4,5,6,7,8,9,10].all(x, [1,2,3,4,5,6,7,8,9,10].all(y, x + y > phone_verifies_10m))`, 951},
	} {
		p, err := Compile([]byte("pack: p\nrules:\n  - id: r\n    tag: t\n    level: 300\n    when: '"+c.when+"'\n"), env)
		if err != nil {
			t.Fatalf("%s: %v", c.when, err)
		}
		if got := p.Rules[0].Cost; got != c.cost {
			t.Errorf("%s: estimated cost %d, README says %d", c.when, got, c.cost)
		}
	}
}

// A pack whose rules together may cost more than MaxPackCost is rejected, naming the costliest
// rules; as many cheap threshold rules as a risk team writes pass. (3,000 shadow rules of two
// string functions each were accepted and made every check take about 13 ms.)
func TestPackCostLimit(t *testing.T) {
	env, err := NewEnv([]Var{{Name: "n", Type: Int}, {Name: "s", Type: String}, {Name: "app", Type: String}})
	if err != nil {
		t.Fatal(err)
	}
	pack := func(rules int, when string) []byte {
		b := []byte("pack: p\nrules:\n")
		for i := range rules {
			b = fmt.Appendf(b, "  - {id: r%d, tag: t, level: 300, mode: shadow, when: '%s'}\n", i, fmt.Sprintf(when, i))
		}
		return b
	}
	if _, err := Compile(pack(500, `n >= %d`), env); err != nil {
		t.Errorf("500 threshold rules: %v", err)
	}
	_, err = Compile(pack(3000, `s.contains("abc%d") && app.startsWith("zz")`), env)
	if err == nil {
		t.Fatal("3,000 string rules compiled")
	}
	msg := err.Error()
	for _, want := range []string{"rules: too expensive together: the 3000 rules' estimated worst-case cost adds up to ", "over the pack's limit of 10000", "the costliest: r"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("one problem expected, got:\n%s", msg)
	}
}

// A regular expression's matching costs what its compiled program holds per byte of the string,
// and a counted repetition makes that program far longer than the pattern: CEL prices the
// pattern's text, so `ip_org.matches("^(.?){1000}$")` (12 characters, 4,004 instructions) was
// estimated at 79, compiled, and took 1–16 ms an evaluation (4 ms a check on a real node, every
// event scored too, where the default pack's whole verdict takes a microsecond). Such a pattern is
// priced by its program and refused, naming the rule; ordinary patterns keep their price, by
// name or member call.
func TestRegexPricedByItsProgram(t *testing.T) {
	env, err := NewEnv([]Var{{Name: "s", Type: String}})
	if err != nil {
		t.Fatal(err)
	}
	compile := func(when string) (*Pack, error) {
		return Compile([]byte("pack: p\nrules:\n  - id: r\n    tag: t\n    level: 300\n    when: '"+when+"'\n"), env)
	}
	for _, when := range []string{`s.matches("^(.?){1000}$")`, `matches(s, "^(.?){1000}$")`, `s.matches("(ab|cd){300}")`} {
		_, err := compile(when)
		if err == nil || !strings.Contains(err.Error(), "rule r: when: too expensive") {
			t.Errorf("%s: %v, want it refused as too expensive", when, err)
		}
	}
	// A pattern built at run time (from a list, a condition, pieces joined) escapes the price: each
	// of these compiled, the first two of the same 4,004 instructions, compiled on every evaluation.
	for _, when := range []string{`["^(.?){1000}$"].exists(p, s.matches(p))`, `s.matches(size(s) > 3 ? "^(.?){1000}$" : "x")`,
		`matches(s, "^(.?){" + "1000}$")`} {
		_, err := compile(when)
		if err == nil || !strings.Contains(err.Error(), "rule r: when: matches: the pattern must be a string literal") {
			t.Errorf("%s: %v, want its pattern refused as built at run time", when, err)
		}
	}
	for when, cost := range map[string]uint64{`s.matches("^1(62|65|67|70|71)")`: 117, `matches(s, "^1(62|65|67|70|71)")`: 117} {
		p, err := compile(when)
		if err != nil {
			t.Errorf("%s: %v", when, err)
			continue
		}
		if got := p.Rules[0].Cost; got != cost {
			t.Errorf("%s: estimated cost %d, want %d", when, got, cost)
		}
	}
	// Priced by program, a pattern of a few dozen instructions stays well under the bound.
	if _, err := compile(`s.matches("^[0-9a-f]{32}$")`); err != nil {
		t.Errorf("a 32-hex-digit pattern: %v", err)
	}
}
