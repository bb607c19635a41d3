package rules

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// The fast path must agree with cel-go wherever it answers. These tests evaluate the same rules
// both ways over edge values (overflow, NaN, infinities, ±0, values beyond the int64 range) and
// over randomly generated expressions.

var fastVars = []Var{
	{Name: "i1", Type: Int}, {Name: "i2", Type: Int},
	{Name: "d1", Type: Double}, {Name: "d2", Type: Double},
	{Name: "b1", Type: Bool}, {Name: "b2", Type: Bool},
	{Name: "s1", Type: String}, {Name: "s2", Type: String},
}

// fastInput serves values both ways: by name (cel-go) and by index (the fast path).
type fastInput struct {
	ints    [2]int64
	doubles [2]float64
	bools   [2]bool
	strs    [2]string
}

func (f *fastInput) ResolveName(name string) (any, bool) {
	if len(name) != 2 {
		return nil, false
	}
	j := int(name[1] - '1')
	if j < 0 || j > 1 {
		return nil, false
	}
	switch name[0] {
	case 'i':
		return types.Int(f.ints[j]), true
	case 'd':
		return types.Double(f.doubles[j]), true
	case 'b':
		return types.Bool(f.bools[j]), true
	case 's':
		return types.String(f.strs[j]), true
	}
	return nil, false
}
func (f *fastInput) Parent() interpreter.Activation { return nil }
func (f *fastInput) Int(i int) int64                { return f.ints[i] }
func (f *fastInput) Double(i int) float64           { return f.doubles[i-2] }
func (f *fastInput) Bool(i int) bool                { return f.bools[i-4] }
func (f *fastInput) String(i int) string            { return f.strs[i-6] }

// slowOnly hides Vars: the same input, seen by cel-go alone.
type slowOnly struct{ Input }

var (
	edgeInts    = []int64{0, 1, -1, 2, 3, 7, 10, 1000, 1<<53 + 1, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	edgeDoubles = []float64{0, math.Copysign(0, -1), 1, -1, 1.5, 3, 1000, 1000.5, 1e19, -1e19, 9.223372036854775807e18,
		-9.223372036854775808e18, 9007199254740993, math.Inf(1), math.Inf(-1), math.NaN()}
	edgeStrings = []string{"", "a", "b", "idc", "A", "ab", "é"}
)

func randomInput(r *rand.Rand) *fastInput {
	f := &fastInput{}
	for j := range 2 {
		f.ints[j] = edgeInts[r.IntN(len(edgeInts))]
		f.doubles[j] = edgeDoubles[r.IntN(len(edgeDoubles))]
		f.bools[j] = r.IntN(2) == 0
		f.strs[j] = edgeStrings[r.IntN(len(edgeStrings))]
	}
	return f
}

func fastEnv(t testing.TB) *Env {
	t.Helper()
	env, err := NewEnv(fastVars)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func compileOne(t testing.TB, env *Env, when string) (*Pack, error) {
	t.Helper()
	y := fmt.Sprintf("pack: t\nrules:\n  - id: r\n    tag: t\n    level: 300\n    when: %q\n", when)
	return Compile([]byte(y), env)
}

// fastOf compiles the pack's one rule for the fast path even when the pack would not use it (a
// rule under the runtime cost limit), so that its agreement is tested all the same.
func fastOf(t testing.TB, p *Pack) boolFn {
	t.Helper()
	r := p.Rules[0]
	if r.fast != nil {
		return r.fast
	}
	ast, iss := p.env.cel.Compile(r.When)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	return compileFast(ast.NativeRep(), p.env)
}

// agree evaluates the pack's one rule both ways on in and fails on any disagreement. It reports
// whether the fast path gave the answer (rather than handing over to cel-go).
func agree(t *testing.T, p *Pack, fast boolFn, in *fastInput) bool {
	t.Helper()
	r := p.Rules[0]
	want, wantErr := r.eval(slowOnly{in}, nil)
	got, ok := fast(in)
	if ok && (wantErr != nil || got != want) {
		t.Fatalf("%s with %+v: fast path says %v, cel-go says %v (err %v)", r.When, *in, got, want, wantErr)
	}
	// And through Eval: the same result whichever way it went.
	gotE, errE := r.eval(in, in)
	if gotE != want || (errE == nil) != (wantErr == nil) {
		t.Fatalf("%s with %+v: eval says %v (err %v), cel-go says %v (err %v)", r.When, *in, gotE, errE, want, wantErr)
	}
	return ok
}

func TestFastPathAgreesWithCEL(t *testing.T) {
	env := fastEnv(t)
	exprs := []string{
		"i1 >= 3", "i1 > i2", "i1 == i2", "i1 != 10", "i1 <= i2 && i2 < 1000", "i1 < 0 || i2 >= 10",
		"i1 + i2 > 10", "i1 - i2 < 0", "i1 * i2 >= 100", "i1 * 2 >= i2", "i1 / i2 == 1", "i1 % i2 == 0",
		"-i1 > 0", "i1 * 4 <= i2 && i2 >= 20",
		"d1 > 1000.0", "d1 > 1000", "1000 < d1", "d1 == d2", "d1 != d2", "d1 <= i1", "i1 >= d1",
		"d1 + d2 > 1.0", "d1 * d2 < 0.0", "d1 / d2 > 1.0", "-d1 < d2", "d1 - d2 == 0.0",
		"b1", "!b1", "b1 && b2", "b1 || b2", "b1 == b2", "b1 != b2", "!(b1 && !b2)",
		"s1 == 'idc'", "s1 != 'idc'", "s1 < s2", "s1 >= s2", "s1 == s2",
		"s1 in ['idc', 'proxy']", "i1 in [1, 2, 3]", "!(s2 in ['a'])",
		"b1 ? i1 > 2 : i2 > 2", "(b1 ? i1 : i2) >= 3", "(b1 ? d1 : d2) > 1.5", "(b1 ? s1 : s2) == 'a'",
		"i1 >= 100 && s1 != 'idc' || s1 == 'idc' && i1 >= 30",
		"i1 / i2 > 0 || b1", "b1 && i1 / i2 > 0", "i1 + 1 > i1 || b2",
		"true", "false && b1", "1 + 2 == 3",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, e := range exprs {
		p, err := compileOne(t, env, e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		fast := fastOf(t, p)
		if fast == nil {
			t.Errorf("%s: not compiled for the fast path", e)
			continue
		}
		answered := 0
		for range 2000 {
			if agree(t, p, fast, randomInput(r)) {
				answered++
			}
		}
		if answered == 0 {
			t.Errorf("%s: the fast path never answered", e)
		}
	}
}

func TestFastPathOnlyForUntrackedRules(t *testing.T) {
	env := fastEnv(t)
	p, err := compileOne(t, env, "s1 == s2") // cost grows with the strings: runtime limit
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Rules[0]; !r.tracked || r.FastPath() {
		t.Fatalf("s1 == s2: tracked %v, fast path %v; want tracked and not on the fast path", r.tracked, r.FastPath())
	}
}

func TestFastPathHandsOverWhatItDoesNotImplement(t *testing.T) {
	env := fastEnv(t)
	for _, e := range []string{
		"s1.startsWith('a')", "s1.contains(s2)", "size(s1) > 1", "s1 + s2 == 'ab'", "s1.matches('^a')",
		"[1, 2].exists(x, x > i1)", "int(d1) > 3", "double(i1) > 3.5", "i1 in [i2, 3]", "has({'a': 1}.a)",
		"b1 < b2", "string(i1) == '3'", "d1 % 2.0 == 1.0",
	} {
		p, err := compileOne(t, env, e)
		if err != nil {
			continue // not valid CEL for this env: nothing to hand over
		}
		if fastOf(t, p) != nil {
			t.Errorf("%s: compiled for the fast path, which does not implement it", e)
		}
	}
}

// TestFastPathRandomExpressions generates typed expressions over the fast path's grammar and
// checks both engines agree on every input.
func TestFastPathRandomExpressions(t *testing.T) {
	env := fastEnv(t)
	r := rand.New(rand.NewPCG(3, 4))
	g := &exprGen{r: r}
	n := 400
	if testing.Short() {
		n = 100
	}
	fast := 0
	for range n {
		e := g.boolean(4)
		p, err := compileOne(t, env, e)
		if err != nil {
			t.Fatalf("generated %s: %v", e, err)
		}
		f := fastOf(t, p)
		if f == nil {
			t.Fatalf("generated %s: not compiled for the fast path", e)
		}
		fast++
		for range 200 {
			agree(t, p, f, randomInput(r))
		}
	}
	if fast == 0 {
		t.Fatal("no expression ran")
	}
}

// exprGen writes random well-typed CEL over fastVars.
type exprGen struct{ r *rand.Rand }

func (g *exprGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *exprGen) boolean(d int) string {
	if d == 0 {
		return g.pick("b1", "b2", "true", "false")
	}
	switch g.r.IntN(9) {
	case 0:
		return "(" + g.boolean(d-1) + " && " + g.boolean(d-1) + ")"
	case 1:
		return "(" + g.boolean(d-1) + " || " + g.boolean(d-1) + ")"
	case 2:
		return "!" + g.boolean(d-1)
	case 3:
		return "(" + g.boolean(d-1) + " ? " + g.boolean(d-1) + " : " + g.boolean(d-1) + ")"
	case 4:
		return "(" + g.integer(d-1) + g.pick(" < ", " <= ", " > ", " >= ", " == ", " != ") + g.integer(d-1) + ")"
	case 5:
		return "(" + g.double(d-1) + g.pick(" < ", " <= ", " > ", " >= ", " == ", " != ") + g.double(d-1) + ")"
	case 6:
		// cross-type ordering
		return "(" + g.double(d-1) + g.pick(" < ", " <= ", " > ", " >= ") + g.integer(d-1) + ")"
	case 7:
		return "(" + g.str() + g.pick(" < ", " <= ", " > ", " >= ", " == ", " != ") + g.str() + ")"
	default:
		return "(" + g.str() + " in ['a', 'idc', ''] || " + g.integer(d-1) + " in [0, 3, -1])"
	}
}

func (g *exprGen) integer(d int) string {
	if d == 0 || g.r.IntN(3) == 0 {
		return g.pick("i1", "i2", "0", "1", "-1", "3", "9223372036854775807", "-9223372036854775807")
	}
	switch g.r.IntN(3) {
	case 0:
		return "(-" + g.integer(d-1) + ")"
	case 1:
		return "(" + g.boolean(d-1) + " ? " + g.integer(d-1) + " : " + g.integer(d-1) + ")"
	default:
		op, y := g.pick(" + ", " - ", " * ", " / ", " % "), g.integer(d-1)
		if (op == " / " || op == " % ") && (y == "0" || y == "(-0)") {
			y = "(0 * i1)" // a literal 0 divisor is refused at compile time; zero at run time is not
		}
		return "(" + g.integer(d-1) + op + y + ")"
	}
}

func (g *exprGen) double(d int) string {
	if d == 0 || g.r.IntN(3) == 0 {
		return g.pick("d1", "d2", "0.0", "1.5", "-2.0", "1e19")
	}
	switch g.r.IntN(3) {
	case 0:
		return "(-" + g.double(d-1) + ")"
	case 1:
		return "(" + g.boolean(d-1) + " ? " + g.double(d-1) + " : " + g.double(d-1) + ")"
	default:
		return "(" + g.double(d-1) + g.pick(" + ", " - ", " * ", " / ") + g.double(d-1) + ")"
	}
}

func (g *exprGen) str() string { return g.pick("s1", "s2", "'a'", "''", "'idc'") }

func TestIntArithMatchesCEL(t *testing.T) {
	ops := map[arithOp]func(types.Int, types.Int) any{
		opAdd: func(x, y types.Int) any { return x.Add(y) },
		opSub: func(x, y types.Int) any { return x.Subtract(y) },
		opMul: func(x, y types.Int) any { return x.Multiply(y) },
		opDiv: func(x, y types.Int) any { return x.Divide(y) },
		opMod: func(x, y types.Int) any { return x.Modulo(y) },
	}
	for op, celOp := range ops {
		for _, x := range edgeInts {
			for _, y := range append(edgeInts, -2, math.MaxInt64/2, math.MinInt64/2) {
				got, ok := intArith(op, x, y)
				want := celOp(types.Int(x), types.Int(y))
				if w, isInt := want.(types.Int); isInt != ok || (ok && int64(w) != got) {
					t.Errorf("op %d on %d, %d: fast %d (ok %v), cel-go %v", op, x, y, got, ok, want)
				}
			}
		}
	}
}

func TestDefaultShapedRulesRunFast(t *testing.T) {
	env, err := NewEnv(benchVars)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("pack: bench\nrules:\n")
	for _, r := range benchRules {
		fmt.Fprintf(&b, "  - {id: %s, tag: %s, level: 300, mode: %s, when: %q}\n", r.id, r.tag, r.mode, r.when)
	}
	p, err := Compile([]byte(b.String()), env)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Rules {
		if !r.FastPath() {
			t.Errorf("rule %s (%s) is not on the fast path", r.ID, r.When)
		}
	}
}

func TestPackUses(t *testing.T) {
	env := fastEnv(t)
	y := "pack: t\nrules:\n" +
		"  - {id: a, tag: t, level: 300, when: 'i2 > 3 && s1 == \"x\"', reason: '{d1}'}\n" +
		"  - {id: b, tag: t, level: 300, when: '[1, 2].exists(x, x == i2) || b1'}\n"
	p, err := Compile([]byte(y), env)
	if err != nil {
		t.Fatal(err)
	}
	// i2 (1), b1 (4), s1 (6); the comprehension variable x is not a declared variable, and d1
	// appears in a reason only.
	if got, want := p.Uses(), []int{1, 4, 6}; !slices.Equal(got, want) {
		t.Errorf("Uses() = %v, want %v", got, want)
	}
}
