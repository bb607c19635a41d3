package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// testEnv is a small feature environment used across the tests.
func testEnv(t testing.TB) *Env {
	return mustEnv(t,
		Var{Name: "phone_verifies_10m", Type: Int, Doc: "verifications of this phone in 10 min"},
		Var{Name: "ip_phones_10m", Type: Int, Doc: "distinct phones from this IP in 10 min"},
		Var{Name: "speed_kmh", Type: Double, Doc: "speed since the previous login"},
		Var{Name: "ip_is_mobile", Type: Bool, Doc: "IP belongs to a mobile carrier"},
		Var{Name: "token_seen", Type: Bool, Doc: "token digest seen before"},
		Var{Name: "ip_type", Type: String, Doc: "mobile, broadband, idc, unknown"},
		Var{Name: "device_id", Type: String, Doc: "device fingerprint"},
	)
}

func mustCompile(t testing.TB, env *Env, src string) *Pack {
	t.Helper()
	p, err := Compile([]byte(src), env)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestCompileValidPack(t *testing.T) {
	src := `pack: default
description: test pack
rules:
  - id: phone_velocity_observe
    tag: phone_velocity
    description: many verifications of one number
    owner: risk-team
    level: 300
    when: phone_verifies_10m >= 3
    reason: "{phone_verifies_10m} verifications in 10 min"
  - id: fast_travel
    tag: impossible_travel
    description: moved too fast
    level: 600
    mode: shadow
    when: |
      speed_kmh > 1000 &&
      !ip_is_mobile
`
	p := mustCompile(t, testEnv(t), src)
	if p.Name != "default" || p.Description != "test pack" {
		t.Errorf("name, description = %q, %q", p.Name, p.Description)
	}
	sum := sha256.Sum256([]byte(src))
	if want := hex.EncodeToString(sum[:])[:16]; p.Version != want || len(p.Version) != 16 {
		t.Errorf("Version = %q, want %q", p.Version, want)
	}
	if len(p.Rules) != 2 {
		t.Fatalf("%d rules, want 2", len(p.Rules))
	}
	r := p.Rules[0]
	if r.ID != "phone_velocity_observe" || r.Tag != "phone_velocity" || r.Owner != "risk-team" ||
		r.Level != 300 || r.Mode != Enforce || r.When != "phone_verifies_10m >= 3" ||
		r.Reason != "{phone_verifies_10m} verifications in 10 min" || r.Description != "many verifications of one number" {
		t.Errorf("rule 0 = %+v", r)
	}
	if r.Cost == 0 || r.Cost > MaxEstimatedCost {
		t.Errorf("rule 0 cost estimate = %d", r.Cost)
	}
	r = p.Rules[1]
	if r.Mode != Shadow || r.Level != 600 || r.Reason != "moved too fast" {
		t.Errorf("rule 1: mode %q level %d reason %q (reason must default to the description)", r.Mode, r.Level, r.Reason)
	}
	if p.Env() == nil {
		t.Error("Env() is nil")
	}
}

// compileErrs compiles src and returns the individual error messages.
func compileErrs(t *testing.T, src string) []string {
	t.Helper()
	_, err := Compile([]byte(src), testEnv(t))
	if err == nil {
		t.Fatalf("Compile succeeded, want errors")
	}
	var msgs []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			var ce *CompileError
			if !errors.As(e, &ce) {
				t.Errorf("error %v is not a *CompileError", e)
			}
			msgs = append(msgs, e.Error())
		}
	} else {
		msgs = append(msgs, err.Error())
	}
	return msgs
}

func TestCompileErrors(t *testing.T) {
	const head = "pack: p\nrules:\n"
	cases := []struct {
		name string
		src  string
		want string // one error's full text
	}{
		{"undeclared variable", head + `  - id: r1
    tag: t
    level: 300
    when: phone_verifies_10m >= 3 && foo > 1
`, "line 6:38: rule r1: when: undeclared reference to 'foo'"},
		// A string value left unquoted: "undeclared reference to 'idc'" alone sent analysts
		// looking for a variable named idc.
		{"unquoted string", head + `  - id: r1
    tag: t
    level: 300
    when: phone_verifies_10m >= 3 && ip_type == idc
`, "line 6:49: rule r1: when: undeclared reference to 'idc' (a string is written in quotes: \"idc\")"},
		{"unquoted string in a list", head + `  - id: r1
    tag: t
    level: 300
    when: ip_type in ["idc", proxy]
`, "line 6:30: rule r1: when: undeclared reference to 'proxy' (a string is written in quotes: \"proxy\")"},
		{"syntax error", head + `  - id: r1
    tag: t
    level: 300
    when: "phone_verifies_10m >= "
`, "line 6:"},
		{"non-bool", head + `  - id: r1
    tag: t
    level: 300
    when: phone_verifies_10m + 1
`, `line 6:11: rule r1: when: must be a bool expression, but "phone_verifies_10m + 1" has type int`},
		{"type mismatch", head + `  - id: r1
    tag: t
    level: 300
    when: ip_type > 3
`, `line 6:19: rule r1: when: '>' cannot be applied to string and int (numbers are written without quotes: 3, not "3"; strings in quotes: "idc")`},
		{"error in a literal block", head + `  - id: r1
    tag: t
    level: 300
    when: |
      phone_verifies_10m >= 3 &&
        nope
`, "line 8:9: rule r1: when: undeclared reference to 'nope'"},
		{"empty when", head + `  - id: r1
    tag: t
    level: 300
    when: ""
`, "line 6:11: rule r1: when: is empty"},
		{"missing when", head + `  - id: r1
    tag: t
    level: 300
`, "line 3:5: rule r1: when: is required"},
		{"bad level", head + `  - id: r1
    tag: t
    level: 500
    when: token_seen
`, `line 5:12: rule r1: level: "500" is not a level`},
		{"zero level", head + `  - id: r1
    tag: t
    level: 0
    when: token_seen
`, `line 5:12: rule r1: level: "0" is not a level`},
		{"missing level", head + `  - id: r1
    tag: t
    when: token_seen
`, "line 3:5: rule r1: level: is required"},
		{"bad mode", head + `  - id: r1
    tag: t
    level: 300
    mode: dry_run
    when: token_seen
`, `line 6:11: rule r1: mode: "dry_run" is not a mode: want enforce, shadow, allow or tag`},
		{"unknown key", head + `  - id: r1
    tag: t
    level: 300
    severity: high
    when: token_seen
`, "line 6:5: rule r1: severity: unknown key"},
		{"unknown pack key", "pack: p\nversion: 3\nrules:\n  - {id: r1, tag: t, level: 300, when: token_seen}\n",
			"line 2:1: version: unknown key"},
		{"bad id", head + `  - id: Phone-Velocity
    tag: t
    level: 300
    when: token_seen
`, `line 3:9: rule Phone-Velocity: id: "Phone-Velocity" is not valid`},
		{"missing id", head + `  - tag: t
    level: 300
    when: token_seen
`, "line 3:5: rule #1: id: is required"},
		{"bad tag", head + `  - id: r1
    tag: "ip velocity"
    level: 300
    when: token_seen
`, `line 4:10: rule r1: tag: "ip velocity" is not valid`},
		{"placeholder not declared", head + `  - id: r1
    tag: t
    level: 300
    when: token_seen
    reason: "seen {token_seen} from {ip}"
`, "line 7:37: rule r1: reason: placeholder {ip} is not a declared variable"},
		{"unbalanced open brace", head + `  - id: r1
    tag: t
    level: 300
    when: token_seen
    reason: "seen {token_seen"
`, "line 7:19: rule r1: reason: unclosed '{'"},
		{"unbalanced close brace", head + `  - id: r1
    tag: t
    level: 300
    when: token_seen
    reason: seen token_seen}
`, "line 7:28: rule r1: reason: unbalanced '}'"},
		{"empty placeholder", head + `  - id: r1
    tag: t
    level: 300
    when: token_seen
    reason: "seen {}"
`, "line 7:19: rule r1: reason: empty placeholder {}"},
		{"too expensive", head + `  - id: r1
    tag: t
    level: 300
    when: "[1,2,3,4,5,6,7,8,9,10].all(x, [1,2,3,4,5,6,7,8,9,10].all(y, [1,2,3,4,5,6,7,8,9,10].all(z, x*y*z != phone_verifies_10m)))"
`, "line 6:11: rule r1: when: too expensive: estimated worst-case cost"},
		{"rule not a mapping", head + "  - just a string\n", "line 3:5: rule #1: must be a mapping"},
		{"string field given a list", head + `  - id: r1
    tag: [a, b]
    level: 300
    when: token_seen
`, "line 4:10: rule r1: tag: must be a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs := compileErrs(t, c.src)
			for _, m := range msgs {
				if strings.HasPrefix(m, c.want) {
					return
				}
			}
			t.Errorf("no error starts with %q; got:\n%s", c.want, strings.Join(msgs, "\n"))
		})
	}
}

func TestCompileDuplicateIDs(t *testing.T) {
	msgs := compileErrs(t, `pack: p
rules:
  - {id: r1, tag: t, level: 300, when: token_seen}
  - {id: r2, tag: t, level: 600, when: token_seen}
  - {id: r1, tag: u, level: 900, when: token_seen}
`)
	if len(msgs) != 1 || msgs[0] != "line 5:10: rule r1: id: duplicate id (first defined at line 3)" {
		t.Fatalf("got %q", msgs)
	}
}

func TestCompileCollectsAllErrors(t *testing.T) {
	msgs := compileErrs(t, `pack: p
rules:
  - id: a
    tag: t
    level: 301
    when: nope
  - id: b
    tag: t
    level: 300
    mode: loud
    when: token_seen
    reason: "{x}"
  - id: c
    tag: t
    level: 300
    when: token_seen
`)
	want := []string{
		`line 5:12: rule a: level: "301" is not a level`,
		"line 6:11: rule a: when: undeclared reference to 'nope'",
		`line 10:11: rule b: mode: "loud" is not a mode`,
		"line 12:14: rule b: reason: placeholder {x} is not a declared variable",
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(msgs), len(want), strings.Join(msgs, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(msgs[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, msgs[i], want[i])
		}
	}
}

// A rule's problems come in the order of its text, as the README's example shows them: its
// level (line 6) before its mode (line 7), though the compiler reads the mode first.
func TestCompileListsARulesProblemsInTextOrder(t *testing.T) {
	msgs := compileErrs(t, `pack: p
rules:
  - id: ip_many_phones
    tag: ip_many
    when: ip_phones_10m >= 20
    level: "500"
    mode: dry_run
    reason: "{ip} phones from this IP"
`)
	want := []string{
		`line 6:12: rule ip_many_phones: level: "500" is not a level`,
		`line 7:11: rule ip_many_phones: mode: "dry_run" is not a mode`,
		"line 8:14: rule ip_many_phones: reason: placeholder {ip} is not a declared variable",
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(msgs), len(want), strings.Join(msgs, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(msgs[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, msgs[i], want[i])
		}
	}
}

func TestCompileEmptyPack(t *testing.T) {
	for name, src := range map[string]string{
		"no document": "",
		"comment":     "# nothing\n",
		"no rules":    "pack: p\n",
		"null rules":  "pack: p\nrules:\n",
		"empty list":  "pack: p\nrules: []\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Compile([]byte(src), testEnv(t))
			if err == nil || !strings.Contains(err.Error(), "empty pack") {
				t.Fatalf("err = %v, want an empty pack error", err)
			}
		})
	}
}

func TestCompilePackLevelErrors(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"missing name":   {"rules:\n  - {id: r1, tag: t, level: 300, when: token_seen}\n", "line 1:1: pack: is required"},
		"bad name":       {"pack: Default Pack\nrules:\n  - {id: r1, tag: t, level: 300, when: token_seen}\n", `line 1:7: pack: "Default Pack" is not a valid name`},
		"not a mapping":  {"- a\n- b\n", "line 1:1: a pack must be a mapping"},
		"rules not list": {"pack: p\nrules: {a: 1}\n", "line 2:8: rules: must be a list"},
		"two documents":  {"pack: p\nrules: []\n---\npack: q\n", "one YAML document"},
		"bad yaml":       {"pack: p\nrules:\n  - id: [\n", "line 4: rule #1: YAML: did not find expected node content"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Compile([]byte(c.src), testEnv(t))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	if _, err := Compile([]byte("pack: p\n"), nil); err == nil {
		t.Fatal("Compile with a nil env succeeded")
	}
}

func TestCompileFileNamesThePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "default.yaml")
	if err := os.WriteFile(path, []byte("pack: p\nrules:\n  - {id: r1, tag: t, level: 300, when: foo}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := CompileFile(path, testEnv(t))
	want := path + ":3:40: rule r1: when: undeclared reference to 'foo'"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if _, err := CompileFile(filepath.Join(dir, "missing.yaml"), testEnv(t)); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestCompileErrorFallbackPosition(t *testing.T) {
	// An escape in a double-quoted scalar breaks the one-to-one mapping between value and source,
	// so the error points at the scalar and says where in the value.
	msgs := compileErrs(t, "pack: p\nrules:\n  - id: r1\n    tag: t\n    level: 300\n    when: \"ip_type == \\\"x\\\" && nope\"\n")
	want := "line 6:11: rule r1: when: undeclared reference to 'nope' (at 1:19 of the value)"
	if len(msgs) != 1 || msgs[0] != want {
		t.Fatalf("got %q, want %q", msgs, want)
	}
}

// A number anywhere in a pack — an id, a description, an owner, an expression, a reason, the
// pack's own description — is refused at its rule and field: the pack is recorded as written.
func TestCompileRefusesPhoneNumbers(t *testing.T) {
	src := `pack: p
description: "VIPs, e.g. +86 139 1234 5678"
rules:
  - id: vip_13912345678
    tag: t
    level: 300
    when: phone_verifies_10m >= 3
  - id: r2
    tag: t
    description: the CEO's number 139-1234-5678
    owner: "ops (tel:13912345678)"
    level: 300
    when: device_id == "13912345678"
    reason: "device 139 1234 5678"
`
	msgs := compileErrs(t, src)
	for _, want := range []string{"line 2:14: description: holds a phone number", "rule vip_", "rule r2: description: holds a phone number",
		"rule r2: owner: holds a phone number", "rule r2: when: holds a phone number", "rule r2: reason: holds a phone number"} {
		found := false
		for _, m := range msgs {
			found = found || strings.Contains(m, want) && strings.Contains(m, "holds a phone number")
		}
		if !found {
			t.Errorf("no error %q among:\n%s", want, strings.Join(msgs, "\n"))
		}
	}
	for _, m := range msgs {
		if strings.Contains(m, "12345678") || strings.Contains(m, "1234 5678") || strings.Contains(m, "1234-5678") {
			t.Errorf("error echoes the number: %s", m)
		}
	}
}

// A condition that joins string literals with '+' spells the number they make, though the quotes
// between the pieces split it in the text: `error_code == "139" + "12345678"` was loaded and
// recorded in rule_versions as written. Pieces joined with a variable between them make no number.
func TestCompileRefusesPhoneNumbersSplitAcrossLiterals(t *testing.T) {
	for _, when := range []string{
		`device_id == "139" + "12345678"`,
		`device_id == "" + "139" + "1234" + "5678"`,
		`device_id == ip_type + "139 1234" + " 5678"`,
		`device_id in ["x", "13" + "9" + "12345678"]`,
		`size(device_id + ("139" + "12345678")) > 0`,
		`device_id.startsWith("1391" + "2345678") || device_id == "a" + ("139" + "12345678")`,
	} {
		src := "pack: p\nrules:\n  - id: r\n    tag: t\n    level: 300\n    when: '" + when + "'\n"
		msgs := compileErrs(t, src)
		if len(msgs) != 1 || !strings.Contains(msgs[0], "rule r: when: holds a phone number") {
			t.Errorf("when %s: errors %q, want the number refused", when, msgs)
		}
	}
	for _, when := range []string{
		`device_id == "139" + ip_type + "12345678"`,
		`device_id == "1" + "03911" || device_id == "-40101"`,
	} {
		src := "pack: p\nrules:\n  - id: r\n    tag: t\n    level: 300\n    when: '" + when + "'\n"
		if _, err := Compile([]byte(src), testEnv(t)); err != nil {
			t.Errorf("when %s: %v, want it compiled", when, err)
		}
	}
}

// A comment is recorded with the pack as written (the pack file, rule_versions, the console's
// diffs) though nothing reads it: a number there is refused as in a field, at its rule.
func TestCompileRefusesPhoneNumbersInComments(t *testing.T) {
	src := `# pack of ops, on call 139 1234 5678
pack: p # or tel:13912345678
rules:
  # VIP 13912345678 below
  - id: r1
    tag: t
    level: 300 # +86 139-1234-5678
    when: phone_verifies_10m >= 3
  - id: r2
    tag: t
    level: 300
    when: >-
      phone_verifies_10m >= 5
    # 13912345678 complained
# end: 139 1234 5678
`
	msgs := compileErrs(t, src)
	if len(msgs) < 4 {
		t.Fatalf("%d errors, want one per comment holding the number:\n%s", len(msgs), strings.Join(msgs, "\n"))
	}
	// Each at the comment's own line, a foot comment far below its node too.
	for _, want := range []string{"line 1:1: comment: holds a phone number", "line 2:9: comment: holds", "line 4:3: rule r1: comment: holds", "line 7:16: rule r1: comment: holds a phone number",
		"line 14:5: rule r2: comment: holds a phone number", "line 15:1: comment: holds"} {
		found := false
		for _, m := range msgs {
			found = found || strings.Contains(m, want)
		}
		if !found {
			t.Errorf("no error %q among:\n%s", want, strings.Join(msgs, "\n"))
		}
	}
	for _, m := range msgs {
		if strings.Contains(m, "12345678") || strings.Contains(m, "1234 5678") || strings.Contains(m, "1234-5678") {
			t.Errorf("error echoes the number: %s", m)
		}
	}
	// Comments without a number stay welcome, ids and counts beside them too.
	ok := "# owner: risk team, ticket RISK-1733390000 (evt_1733390000_5)\npack: p\nrules:\n  - id: r1 # raised 2026-12-05\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 3\n"
	if _, err := Compile([]byte(ok), testEnv(t)); err != nil {
		t.Errorf("a pack with harmless comments: %v", err)
	}
}

// The same comment may stand beside several rules (a number noted on each): each error cites its
// own line, not the first line of the pack holding that text.
func TestCompilePhoneCommentsCitedAtTheirOwnLines(t *testing.T) {
	src := "pack: p\nrules:\n" +
		"  - id: r1\n    tag: t\n    level: 300 # ask 13912345678\n    when: phone_verifies_10m >= 3\n" +
		"  - id: r2\n    tag: t\n    level: 300 # ask 13912345678\n    when: phone_verifies_10m >= 5\n"
	msgs := compileErrs(t, src)
	for _, want := range []string{"line 5:16: rule r1: comment: holds a phone number", "line 9:16: rule r2: comment: holds a phone number"} {
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, want) }) {
			t.Errorf("no error %q among:\n%s", want, strings.Join(msgs, "\n"))
		}
	}
}

// Finding a comment's line read the whole pack again for every comment holding a number: a
// 720 KB pack of 30,000 commented list items (under the API's and the console's 1 MiB) took 17 s
// of CPU to refuse, twice per PUT /v1/rules (its tests' compile, then the load's, which holds the
// node's pack lock: GET /v1/rules waited a minute and the PUT got no answer at all). What the
// refusal allocates grows with the pack, not with its square.
func TestCompileManyPhoneCommentsLinear(t *testing.T) {
	env := testEnv(t)
	alloc := func(n int) uint64 {
		var b strings.Builder
		b.WriteString("pack: p\nrules:\n  - id: r1\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 3\n    owner:\n")
		for i := range n {
			fmt.Fprintf(&b, "      - x # 13912345%03d\n", i%1000)
		}
		src := []byte(b.String())
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := Compile(src, env); err == nil {
			t.Fatalf("a pack of %d commented numbers compiled", n)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := alloc(1000), alloc(4000)
	if large > 8*small {
		t.Errorf("refusing 4,000 commented numbers allocated %d bytes, %.1f× what 1,000 did (%d): want about 4×", large, float64(large)/float64(small), small)
	}
}

// Each problem of a reason is located by walking its value from the start: a reason of 40,000
// undeclared placeholders (240 KB) took 7.7 s of CPU to refuse, and one of a megabyte, under the
// 1 MiB of PUT /v1/rules, minutes under the node's pack lock. A reason's problems are listed up to
// maxFieldProblems, and how many more there are, as CEL lists a condition's.
func TestReasonProblemsBounded(t *testing.T) {
	src := "pack: p\nrules:\n  - id: r\n    tag: t\n    level: 300\n    when: phone_verifies_10m > 3\n    reason: \"" + strings.Repeat("{nope}", 40000) + "\"\n"
	_, err := Lint([]byte(src), testEnv(t))
	if err == nil {
		t.Fatal("a reason of undeclared placeholders compiled")
	}
	msgs := strings.Split(err.Error(), "\n")
	if len(msgs) != maxFieldProblems+1 {
		t.Fatalf("%d problems listed, want the first %d and a count of the rest", len(msgs), maxFieldProblems)
	}
	if !strings.HasPrefix(msgs[0], "line 7:14: rule r: reason: placeholder {nope} is not a declared variable") {
		t.Errorf("first problem: %s", msgs[0])
	}
	// At the first problem not shown.
	if want := fmt.Sprintf("line 7:%d: rule r: reason: %d more problems in this reason not shown", 14+6*maxFieldProblems, 40000-maxFieldProblems); msgs[len(msgs)-1] != want {
		t.Errorf("last line %q, want %q", msgs[len(msgs)-1], want)
	}
}

// A pack is recorded as written, so a number is refused wherever the YAML holds it: in an
// anchor's name, a tag, a %TAG directive — as in a value or a comment. Each was accepted
// ("riskflow rules lint" ok; a PUT would have stored it in rule_versions), since only values and
// comments were looked at (held-out run).
func TestCompileRefusesPhoneNumbersInAnchorsTagsAndDirectives(t *testing.T) {
	for name, src := range map[string]string{
		"anchor":    "pack: p\ndescription: &vip_13912345678 VIPs\nrules:\n  - id: r1\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 3\n",
		"tag":       "pack: !ceo-139-1234-5678 p\nrules:\n  - id: r1\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 3\n",
		"directive": "%TAG !x! tag:tel13912345678,2026:\n---\npack: p\nrules:\n  - id: r1\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 3\n",
		"mapping":   "pack: p\nrules:\n  - !!map &r_139_1234_5678\n    id: r1\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 3\n",
	} {
		msgs := compileErrs(t, src)
		found := false
		for _, m := range msgs {
			found = found || strings.Contains(m, "holds a phone number")
			if strings.Contains(m, "12345678") || strings.Contains(m, "1234 5678") || strings.Contains(m, "1234-5678") || strings.Contains(m, "1234_5678") {
				t.Errorf("%s: error echoes the number: %s", name, m)
			}
		}
		if !found {
			t.Errorf("%s: no error says the pack holds a phone number:\n%s", name, strings.Join(msgs, "\n"))
		}
	}
	// Anchors and tags without a number stay welcome.
	ok := "pack: p\ndescription: &d !!str shared\nrules:\n  - !!map &r1\n    id: r1\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 3\n"
	if _, err := Compile([]byte(ok), testEnv(t)); err != nil {
		t.Errorf("a pack with harmless anchors and tags: %v", err)
	}
}

// YAML escapes decode to control characters that a reason or a description would carry into
// answers, risk.scores, ClickHouse and terminals: refused at their field; tabs and line breaks
// stay text.
func TestCompileRefusesControlCharacters(t *testing.T) {
	src := "pack: p\ndescription: \"nul \\0 here\"\nrules:\n  - id: r1\n    tag: t\n    level: 300\n    description: \"line one\\nline two\\tand a tab\"\n    when: phone_verifies_10m >= 3\n    reason: \"\\e[31mred\\e[0m {phone_verifies_10m}\"\n"
	msgs := compileErrs(t, src)
	for _, want := range []string{"line 2:14: description: contains a control character", "rule r1: reason: contains a control character"} {
		found := false
		for _, m := range msgs {
			found = found || strings.Contains(m, want)
		}
		if !found {
			t.Errorf("no error %q among:\n%s", want, strings.Join(msgs, "\n"))
		}
	}
	if len(msgs) != 2 {
		t.Errorf("%d errors, want 2 (a tab and a line break are text):\n%s", len(msgs), strings.Join(msgs, "\n"))
	}
	// A right-to-left override (U+202E) or isolate (U+2066) would show the text reordered.
	bidi := "pack: p\nrules:\n  - id: r1\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 3\n    reason: \"ok \u202Edesrever\"\n  - id: r2\n    tag: t\n    level: 300\n    when: phone_verifies_10m >= 4\n    description: \"\u2066isolated\u2069 الخطر\"\n"
	msgs = compileErrs(t, bidi)
	if len(msgs) != 2 || !strings.Contains(strings.Join(msgs, "\n"), "rule r1: reason: contains a control character") ||
		!strings.Contains(strings.Join(msgs, "\n"), "rule r2: description: contains a control character") {
		t.Errorf("bidirectional controls: %d errors, want r1's reason and r2's description (Arabic text itself is fine):\n%s", len(msgs), strings.Join(msgs, "\n"))
	}
}

// A YAML syntax error is cited like every other problem — file, line and the rule it is in — not
// as yaml.v3's "rules: FILE: yaml: line N: …" that named no rule.
func TestCompileYAMLSyntaxErrorNamesTheRule(t *testing.T) {
	const head = "pack: p\nrules:\n  - id: first\n    tag: t\n    level: 300\n    when: token_seen\n"
	cases := map[string]struct{ src, want string }{
		"unclosed quote": {head + "  - id: second\n    tag: t\n    level: 300\n    when: \"token_seen\n",
			"line 10: rule second: YAML: found unexpected end of stream"},
		"tab": {head + "  - id: second\n    tag: t\n\tlevel: 300\n    when: token_seen\n",
			"line 8: rule second: YAML: found a tab character that violates indentation"},
		"colon in a plain value": {head + "  - tag: t\n    level: 300\n    when: token_seen: 3\n    id: third\n",
			"line 9: rule third: YAML: mapping values are not allowed in this context"},
		"flow rule without id": {head + "  - {tag: t, level: [300}\n",
			"line 7: rule #2: YAML: did not find expected ',' or ']'"},
		"block mapping": {head + "  - id: second\n    tag: \"t\"x\n    level: 300\n",
			"line 7: rule second: YAML: did not find expected key"},
		"list item out of line": {head + "  - id: second\n    tag: t\n   - id: third\n",
			"line 3: YAML: did not find expected '-' indicator (in the list or document that starts here: look below for a line indented differently)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Compile([]byte(c.src), testEnv(t))
			if err == nil || err.Error() != c.want {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Line == 0 {
				t.Errorf("not a *CompileError with a line: %#v", err)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(path, []byte(cases["tab"].src), 0o600)
	if _, err := CompileFile(path, testEnv(t)); err == nil || err.Error() != path+":8: rule second: YAML: found a tab character that violates indentation" {
		t.Errorf("CompileFile: %v", err)
	}
}

// A pack saved in another encoding than UTF-8 is cited at the first byte that is not UTF-8, with
// its rule and field: it was "rules: pack: yaml: invalid trailing UTF-8 octet", naming neither.
func TestCompileNonUTF8NamesTheRuleAndLine(t *testing.T) {
	const head = "pack: p\nrules:\n  - id: first\n    tag: t\n    level: 300\n    when: token_seen\n"
	cases := map[string]struct{ src, want string }{
		"latin-1 description": {head + "  - id: second\n    tag: t\n    description: caf\xe9 logins\n    level: 300\n    when: token_seen\n",
			"line 9:21: rule second: description: byte 0xE9 is not UTF-8"},
		"gbk reason after utf-8": {head + "  - id: third\n    tag: t\n    level: 300\n    when: token_seen\n    reason: \"é \xc9\xe8\xb1\xb8\"\n",
			"line 11:16: rule third: reason: byte 0xC9 is not UTF-8"},
		"pack key": {"pack: p\xff\nrules: []\n", "line 1:8: pack: byte 0xFF is not UTF-8"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Compile([]byte(c.src), testEnv(t))
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to start %q", err, c.want)
			}
			if !utf8.ValidString(err.Error()) {
				t.Errorf("error is not UTF-8: %q", err)
			}
		})
	}
	// A UTF-8 byte order mark, and UTF-16 with its mark, are still read.
	for name, src := range map[string][]byte{
		"utf-8 bom":    append([]byte("\xef\xbb\xbf"), head...),
		"utf-16le bom": utf16LE("\ufeff" + head),
	} {
		if _, err := Compile(src, testEnv(t)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func utf16LE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// A compile error shows the control characters of a pack's ids and keys escaped: the errors go to
// terminals (`riskflow rules lint`, `rules test`), logs and the console, and an id "\e[2J…" or a
// key "\e]0;…\a" acted on the terminal of whoever linted the pack.
func TestCompileErrorsEscapeControlCharacters(t *testing.T) {
	src := "pack: p\nrules:\n  - id: \"\\e[2J\\e[31mPWNED\"\n    tag: \"a\\u202Eb\"\n    level: 300\n    when: phone_verifies_10m >= 3\n    \"\\e]0;title\\a\": 1\n    \"two\\nlines\": 1\n"
	msgs := compileErrs(t, src)
	all := strings.Join(msgs, "\n")
	if strings.ContainsFunc(all, func(r rune) bool { return r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) }) {
		t.Errorf("control characters in the errors: %q", all)
	}
	for _, want := range []string{`rule \x1b[2J\x1b[31mPWNED: id: "\x1b[2J\x1b[31mPWNED" is not valid`, `rule \x1b[2J\x1b[31mPWNED: \x1b]0;title\a: unknown key`,
		`rule \x1b[2J\x1b[31mPWNED: two\nlines: unknown key`, `tag: "a\u202eb" is not valid`} {
		if !strings.Contains(all, want) {
			t.Errorf("no error %q among:\n%s", want, all)
		}
	}
}
