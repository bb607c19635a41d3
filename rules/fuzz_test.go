package rules_test

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"cel.dev/cel-go/interpreter"

	"github.com/riskflow/riskflow/internal/bounded"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// Bounds of FuzzCompilePack. A pack file is a few KB; the target skips larger inputs so that an
// input's time is the compiler's, not the size's.
const (
	fuzzMaxPack    = 64 << 10
	fuzzMaxErr     = 8 << 10
	fuzzMaxCompile = 20 * time.Second // a hang, on a loaded 2-core CI machine
)

var (
	fuzzEnvOnce sync.Once
	fuzzEnv     *rules.Env
	fuzzEnvErr  error
)

// productionEnv is the environment packs are compiled against in production: the scorer's
// variable catalog.
func productionEnv(t testing.TB) *rules.Env {
	fuzzEnvOnce.Do(func() {
		var s *scoring.Scorer
		if s, fuzzEnvErr = scoring.New(scoring.Config{}); fuzzEnvErr == nil {
			fuzzEnv = s.Env()
		}
	})
	if fuzzEnvErr != nil {
		t.Fatalf("scoring.New: %v", fuzzEnvErr)
	}
	return fuzzEnv
}

// FuzzCompilePack feeds rule packs to Compile (the path of `riskflow rules lint` and of every
// hot reload). Whatever the input, Compile returns (no panic, no hang); a failure is an error of
// bounded size in valid UTF-8; a success is a pack with a version and only valid rules, which
// evaluates without panicking and gives the same answer on the fast path as on cel-go.
//
// Seeds: every shipped pack and tests file (packs.FS), plus broken packs in testdata/fuzz.
//
//	go test -run '^$' -fuzz '^FuzzCompilePack$' -fuzztime 30s ./rules
func FuzzCompilePack(f *testing.F) {
	names, err := fs.Glob(packs.FS, "*/*.yaml")
	if err != nil || len(names) == 0 {
		f.Fatalf("no shipped packs to seed from: %v", err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(packs.FS, name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	env := productionEnv(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxPack {
			t.Skip()
		}
		p, err := compileBounded(t, data, env)
		if err != nil {
			if p != nil {
				t.Errorf("Compile returned a pack and an error: %v", err)
			}
			msg := err.Error()
			switch {
			case msg == "":
				t.Error("Compile failed with an empty error message")
			case len(msg) > fuzzMaxErr:
				t.Errorf("error message of %d bytes (bound %d) for a %d-byte pack; it starts %q",
					len(msg), fuzzMaxErr, len(data), msg[:200])
			case !utf8.ValidString(msg):
				t.Errorf("error message is not valid UTF-8: %q", msg)
			case strings.ContainsFunc(msg, func(r rune) bool {
				return unicode.IsControl(r) && r != '\n' && r != '\t' || unicode.Is(unicode.Bidi_Control, r)
			}):
				// Errors go to terminals (rules lint), logs and the console: escapes are shown escaped.
				t.Errorf("error message holds a control character: %q", msg)
			}
			return
		}
		checkPack(t, p, env)
		evalBothWays(t, p, env)
	})
}

// compileBounded runs Compile and turns a panic or a hang into a test failure.
func compileBounded(t *testing.T, data []byte, env *rules.Env) (*rules.Pack, error) {
	type result struct {
		p   *rules.Pack
		err error
	}
	r := bounded.Run(t, fuzzMaxCompile, fmt.Sprintf("Compile of a %d-byte pack", len(data)), func() result {
		p, err := rules.Compile(data, env)
		return result{p, err}
	})
	return r.p, r.err
}

// checkPack checks what a compiled pack promises.
func checkPack(t *testing.T, p *rules.Pack, env *rules.Env) {
	t.Helper()
	if p == nil {
		t.Fatal("Compile returned neither a pack nor an error")
	}
	if len(p.Version) != 16 {
		t.Errorf("Version %q, want 16 hex digits", p.Version)
	}
	if p.Name == "" {
		t.Error("compiled pack has no name")
	}
	if p.Env() != env {
		t.Error("Env() is not the environment compiled against")
	}
	if len(p.Rules) == 0 {
		t.Error("compiled pack has no rules")
	}
	ids := map[string]bool{}
	for i, r := range p.Rules {
		if r == nil {
			t.Fatalf("rule %d is nil", i)
		}
		if r.ID == "" || ids[r.ID] {
			t.Errorf("rule %d: id %q empty or repeated", i, r.ID)
		}
		ids[r.ID] = true
		if r.Tag == "" {
			t.Errorf("rule %s: no tag", r.ID)
		}
		switch r.Mode {
		case rules.Enforce, rules.Shadow:
			if r.Level == schemas.ScorePass || !schemas.ValidScore(r.Level) {
				t.Errorf("rule %s: %s rule with level %d", r.ID, r.Mode, r.Level)
			}
		case rules.Allow, rules.Tag:
			if r.Level != schemas.ScorePass {
				t.Errorf("rule %s: %s rule with level %d", r.ID, r.Mode, r.Level)
			}
		default:
			t.Errorf("rule %s: mode %q", r.ID, r.Mode)
		}
		if r.Cost > rules.MaxEstimatedCost {
			t.Errorf("rule %s: estimated cost %d above %d", r.ID, r.Cost, rules.MaxEstimatedCost)
		}
	}
	n := len(env.Vars())
	uses := p.Uses()
	if !slices.IsSorted(uses) || len(slices.Compact(slices.Clone(uses))) != len(uses) {
		t.Errorf("Uses() %v not ascending and distinct", uses)
	}
	for _, u := range uses {
		if u < 0 || u >= n {
			t.Errorf("Uses() holds %d, outside the %d variables", u, n)
		}
	}
}

// fuzzInput supplies values for every variable of an Env by name: every rule runs on cel-go.
type fuzzInput struct {
	env    []rules.Var
	byName map[string]int
	ints   []int64
	dbls   []float64
	bools  []bool
	strs   []string
}

func (in *fuzzInput) ResolveName(name string) (any, bool) {
	i, ok := in.byName[name]
	if !ok {
		return nil, false
	}
	switch in.env[i].Type {
	case rules.Int:
		return in.ints[i], true
	case rules.Double:
		return in.dbls[i], true
	case rules.Bool:
		return in.bools[i], true
	case rules.String:
		return in.strs[i], true
	}
	return nil, false
}
func (*fuzzInput) Parent() interpreter.Activation { return nil }

// fastInput is a fuzzInput with the rules.Vars methods (the same values by index): rules run on
// the fast path where they can.
type fastInput struct{ *fuzzInput }

func (in fastInput) Int(i int) int64      { return in.ints[i] }
func (in fastInput) Double(i int) float64 { return in.dbls[i] }
func (in fastInput) Bool(i int) bool      { return in.bools[i] }
func (in fastInput) String(i int) string  { return in.strs[i] }

var _ rules.Vars = fastInput{}

// evalBothWays evaluates p against a few inputs (zeros, typical values, extremes) on the fast path
// and on cel-go only: neither panics, and both give the same verdict.
func evalBothWays(t *testing.T, p *rules.Pack, env *rules.Env) {
	t.Helper()
	vars := env.Vars()
	ints := []int64{0, 1, 3, 10, 1000, -1, math.MaxInt64, math.MinInt64}
	dbls := []float64{0, 0.5, 1000, 1e300, -1, math.Inf(1), math.NaN()}
	strs := []string{"", "idc", "CM", "android", "block", "CN", "中国", "\x00"}
	for set := range 4 {
		in := &fuzzInput{env: vars, byName: map[string]int{}, ints: make([]int64, len(vars)),
			dbls: make([]float64, len(vars)), bools: make([]bool, len(vars)), strs: make([]string, len(vars))}
		for i, v := range vars {
			in.byName[v.Name] = i
			if set == 0 {
				continue // all zero
			}
			k := i*(set+1) + set
			in.ints[i] = ints[k%len(ints)]
			in.dbls[i] = dbls[k%len(dbls)]
			in.bools[i] = k%2 == 1
			in.strs[i] = strs[k%len(strs)]
		}
		var slow, fast rules.Result
		errSlow := evalNoPanic(t, p, in, &slow)
		errFast := evalNoPanic(t, p, fastInput{in}, &fast)
		if a, b := verdict(&slow, errSlow), verdict(&fast, errFast); a != b {
			t.Errorf("input set %d: cel-go and the fast path disagree:\ncel-go: %s\nfast:   %s", set, a, b)
		}
	}
}

func evalNoPanic(t *testing.T, p *rules.Pack, in rules.Input, res *rules.Result) (err error) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("Eval panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return p.Eval(in, res)
}

func verdict(r *rules.Result, err error) string {
	s := fmt.Sprintf("score %d tags %v detail %v hits %v", r.Score, r.Tags, r.Detail, r.Hits)
	if err != nil {
		s += " err " + err.Error()
	}
	return s
}

// Found by FuzzCompilePack: a pack whose name is null or empty compiled, nameless.
func TestCompileRequiresPackName(t *testing.T) {
	env := productionEnv(t)
	const rulesYAML = "rules:\n  - {id: a, tag: a, level: 300, when: \"phone_verifies_10m > 1\"}\n"
	for _, name := range []string{"pack:\n", "pack: ~\n", "pack: null\n", "pack: \"\"\n", "pack: ''\n"} {
		p, err := rules.Compile([]byte(name+rulesYAML), env)
		if err == nil {
			t.Errorf("%q: compiled (name %q), want an error", name, p.Name)
			continue
		}
		if want := "line 1:"; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "pack: is required (the pack's name)") {
			t.Errorf("%q: error %q, want %q… pack: is required (the pack's name)", name, err, want)
		}
	}
	if _, err := rules.Compile([]byte("pack: [a]\n"+rulesYAML), env); err == nil || strings.Contains(err.Error(), "is required") {
		t.Errorf("pack: [a]: error %v, want only \"must be a string\"", err)
	}
	if _, err := rules.Compile([]byte("pack: ok\n"+rulesYAML), env); err != nil {
		t.Errorf("pack: ok: %v", err)
	}
}

// Found by FuzzCompilePack's error bound: a 60 KB pack of broken rules gave a 1 MB error, a 60 KB
// id a 120 KB one. The error lists the first problems, clipped, and counts the rest.
func TestCompileErrorIsBounded(t *testing.T) {
	env := productionEnv(t)
	for name, src := range map[string]string{
		"many non-mappings": "pack: x\nrules:\n" + strings.Repeat("  - x\n", 10000),
		"many broken rules": "pack: x\nrules:\n" + strings.Repeat("  - {id: a, tag: a, level: 1, when: x}\n", 1500),
		"long id":           "pack: x\nrules:\n  - {id: " + strings.Repeat("A", 60000) + ", tag: a, level: 300, when: \"true\"}\n",
		"long identifier":   "pack: x\nrules:\n  - {id: a, tag: a, level: 300, when: " + strings.Repeat("a", 60000) + "}\n",
		"long multibyte":    "pack: x\nrules:\n  - {id: a, tag: \"" + strings.Repeat("界\\0", 20000) + "\", level: 300, when: \"true\"}\n",
	} {
		_, err := rules.Compile([]byte(src), env)
		if err == nil {
			t.Errorf("%s: compiled", name)
			continue
		}
		msg := err.Error()
		if len(msg) > fuzzMaxErr || !utf8.ValidString(msg) {
			t.Errorf("%s: %d-byte error (valid UTF-8: %v) for a %d-byte pack", name, len(msg), utf8.ValidString(msg), len(src))
		}
		var ce *rules.CompileError
		if !errors.As(err, &ce) || ce.Line == 0 {
			t.Errorf("%s: first problem %v, want a *CompileError with a position", name, ce)
		}
	}

	// Few problems are listed in full, and many end with a count.
	_, err := rules.Compile([]byte("pack: x\nrules:\n"+strings.Repeat("  - x\n", 1000)), env)
	if msg := err.Error(); !strings.HasPrefix(msg, "line 3:5: rule #1: must be a mapping") || !strings.HasSuffix(msg, " more problems not shown") {
		t.Errorf("1000 problems: error %.200q … %q", msg, msg[max(0, len(msg)-100):])
	}
	_, err = rules.Compile([]byte("pack: x\nrules:\n"+strings.Repeat("  - x\n", 3)), env)
	if msg := err.Error(); strings.Count(msg, "must be a mapping") != 3 || strings.Contains(msg, "not shown") {
		t.Errorf("3 problems: error %q", msg)
	}
}
