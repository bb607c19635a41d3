package rules

import (
	"cmp"
	"math"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Vars is an optional interface of an Input: the value of a declared variable by its index in
// Env.Vars(), unboxed. The method called always matches the variable's declared Type. Its answers
// must be the values ResolveName gives for the same variables.
//
// For an Input that implements Vars, Eval runs each rule on the fast path when the rule allows it:
// a rule whose condition uses only declared variables, literals, boolean logic (&&, ||, !, ?:),
// comparisons, int and double arithmetic and `in` over a list of literals is compiled into Go
// closures over typed values, which costs a fraction of cel-go's interpreter (no name lookups, no
// boxing). The fast path gives way to cel-go for the whole rule whenever the answer is not a plain
// true or false (integer overflow, division by zero, NaN), so errors and their messages are
// cel-go's own. Rules with string functions, macros or other constructs, and rules whose cost can
// grow with their input (which run under the runtime cost limit), always run on cel-go.
type Vars interface {
	Int(i int) int64
	Double(i int) float64
	Bool(i int) bool
	String(i int) string
}

// The closures of the fast path. ok false means "no plain value": let cel-go evaluate the rule.
type (
	boolFn   func(Vars) (v, ok bool)
	intFn    func(Vars) (int64, bool)
	doubleFn func(Vars) (float64, bool)
	stringFn func(Vars) (string, bool)
)

// fastNode is one compiled sub-expression: exactly one of its closures is set, per its type.
type fastNode struct {
	typ Type
	b   boolFn
	i   intFn
	d   doubleFn
	s   stringFn
}

// compileFast compiles a checked condition for the fast path; nil when it uses anything the fast
// path does not implement.
func compileFast(a *celast.AST, env *Env) boolFn {
	c := fastCompiler{ast: a, env: env}
	n, ok := c.expr(a.Expr())
	if !ok || n.typ != Bool {
		return nil
	}
	return n.b
}

type fastCompiler struct {
	ast *celast.AST
	env *Env
}

func (c *fastCompiler) expr(e celast.Expr) (fastNode, bool) {
	switch e.Kind() {
	case celast.LiteralKind:
		return literal(e.AsLiteral())
	case celast.IdentKind:
		if r, ok := c.ast.ReferenceMap()[e.ID()]; ok && r.Value != nil {
			return literal(r.Value) // a constant the checker resolved
		}
		i, ok := c.env.identIndex(c.ast, e)
		if !ok {
			return fastNode{}, false
		}
		return varNode(c.env.vars[i].Type, i), true
	case celast.CallKind:
		call := e.AsCall()
		if call.IsMemberFunction() {
			return fastNode{}, false
		}
		src := call.Args()
		if call.FunctionName() == operators.In && len(src) == 2 {
			x, ok := c.expr(src[0])
			if !ok {
				return fastNode{}, false
			}
			return c.in(x, src[1])
		}
		args := make([]fastNode, len(src))
		for j, a := range src {
			n, ok := c.expr(a)
			if !ok {
				return fastNode{}, false
			}
			args[j] = n
		}
		return call1(call.FunctionName(), args)
	}
	return fastNode{}, false
}

func literal(v any) (fastNode, bool) {
	switch v := v.(type) {
	case types.Bool:
		b := bool(v)
		return fastNode{typ: Bool, b: func(Vars) (bool, bool) { return b, true }}, true
	case types.Int:
		i := int64(v)
		return fastNode{typ: Int, i: func(Vars) (int64, bool) { return i, true }}, true
	case types.Double:
		d := float64(v)
		return fastNode{typ: Double, d: func(Vars) (float64, bool) { return d, true }}, true
	case types.String:
		s := string(v)
		return fastNode{typ: String, s: func(Vars) (string, bool) { return s, true }}, true
	}
	return fastNode{}, false
}

func varNode(t Type, i int) fastNode {
	switch t {
	case Int:
		return fastNode{typ: Int, i: func(v Vars) (int64, bool) { return v.Int(i), true }}
	case Double:
		return fastNode{typ: Double, d: func(v Vars) (float64, bool) { return v.Double(i), true }}
	case Bool:
		return fastNode{typ: Bool, b: func(v Vars) (bool, bool) { return v.Bool(i), true }}
	default:
		return fastNode{typ: String, s: func(v Vars) (string, bool) { return v.String(i), true }}
	}
}

func boolNode(f boolFn) (fastNode, bool)     { return fastNode{typ: Bool, b: f}, true }
func intNode(f intFn) (fastNode, bool)       { return fastNode{typ: Int, i: f}, true }
func doubleNode(f doubleFn) (fastNode, bool) { return fastNode{typ: Double, d: f}, true }

// call1 compiles an operator applied to compiled arguments.
func call1(fn string, a []fastNode) (fastNode, bool) {
	switch {
	case (fn == operators.LogicalAnd || fn == operators.LogicalOr) && len(a) >= 2:
		for _, x := range a {
			if x.typ != Bool {
				return fastNode{}, false
			}
		}
		return logical(fn == operators.LogicalAnd, a)
	case fn == operators.LogicalNot && len(a) == 1 && a[0].typ == Bool:
		x := a[0].b
		return boolNode(func(v Vars) (bool, bool) { b, ok := x(v); return !b, ok })
	case fn == operators.Conditional && len(a) == 3 && a[0].typ == Bool && a[1].typ == a[2].typ:
		return conditional(a[0].b, a[1], a[2])
	case fn == operators.Negate && len(a) == 1:
		switch a[0].typ {
		case Int:
			x := a[0].i
			return intNode(func(v Vars) (int64, bool) {
				n, ok := x(v)
				return -n, ok && n != math.MinInt64
			})
		case Double:
			x := a[0].d
			return doubleNode(func(v Vars) (float64, bool) { d, ok := x(v); return -d, ok })
		}
	case len(a) == 2:
		if op, ok := arith[fn]; ok {
			return arithmetic(op, a[0], a[1])
		}
		if op, ok := comparisons[fn]; ok {
			return compare(op, a[0], a[1])
		}
	}
	return fastNode{}, false
}

// logical folds && or || over its arguments, left to right with short-circuit. An argument
// without a plain value before the outcome is decided hands the rule to cel-go, whose
// commutative error semantics then apply.
func logical(and bool, a []fastNode) (fastNode, bool) {
	fs := make([]boolFn, len(a))
	for i := range a {
		fs[i] = a[i].b
	}
	if len(fs) == 2 {
		l, r := fs[0], fs[1]
		return boolNode(func(v Vars) (bool, bool) {
			x, ok := l(v)
			if !ok || x != and {
				return x, ok
			}
			return r(v)
		})
	}
	return boolNode(func(v Vars) (bool, bool) {
		for _, f := range fs {
			x, ok := f(v)
			if !ok || x != and {
				return x, ok
			}
		}
		return and, true
	})
}

func conditional(cond boolFn, yes, no fastNode) (fastNode, bool) {
	switch yes.typ {
	case Bool:
		return boolNode(choose(cond, yes.b, no.b))
	case Int:
		return intNode(choose(cond, yes.i, no.i))
	case Double:
		return doubleNode(choose(cond, yes.d, no.d))
	default:
		return fastNode{typ: String, s: choose(cond, yes.s, no.s)}, true
	}
}

// choose is `cond ? yes : no` for operands of type T.
func choose[T any](cond boolFn, yes, no func(Vars) (T, bool)) func(Vars) (T, bool) {
	return func(v Vars) (T, bool) {
		c, ok := cond(v)
		if !ok {
			var zero T
			return zero, false
		}
		if c {
			return yes(v)
		}
		return no(v)
	}
}

type arithOp uint8

const (
	opAdd arithOp = iota
	opSub
	opMul
	opDiv
	opMod
)

var arith = map[string]arithOp{
	operators.Add: opAdd, operators.Subtract: opSub, operators.Multiply: opMul,
	operators.Divide: opDiv, operators.Modulo: opMod,
}

// arithmetic compiles int or double arithmetic. Integer overflow and division or modulus by zero
// are errors in CEL: they hand the rule to cel-go.
func arithmetic(op arithOp, l, r fastNode) (fastNode, bool) {
	switch {
	case l.typ == Int && r.typ == Int:
		return intNode(binary(op, l.i, r.i, intArith))
	case l.typ == Double && r.typ == Double && op != opMod:
		return doubleNode(binary(op, l.d, r.d, doubleArith))
	}
	return fastNode{}, false
}

// binary applies f to the values of two operands.
func binary[T int64 | float64](op arithOp, lf, rf func(Vars) (T, bool), f func(arithOp, T, T) (T, bool)) func(Vars) (T, bool) {
	return func(v Vars) (T, bool) {
		x, ok := lf(v)
		if !ok {
			return 0, false
		}
		y, ok := rf(v)
		if !ok {
			return 0, false
		}
		return f(op, x, y)
	}
}

// doubleArith is CEL's double arithmetic (IEEE 754: no errors; no modulus).
func doubleArith(op arithOp, x, y float64) (float64, bool) {
	switch op {
	case opAdd:
		return x + y, true
	case opSub:
		return x - y, true
	case opMul:
		return x * y, true
	default:
		return x / y, true
	}
}

// intArith is CEL's int64 arithmetic; ok is false where CEL reports an error.
func intArith(op arithOp, x, y int64) (int64, bool) {
	switch op {
	case opAdd:
		if (y > 0 && x > math.MaxInt64-y) || (y < 0 && x < math.MinInt64-y) {
			return 0, false
		}
		return x + y, true
	case opSub:
		if (y < 0 && x > math.MaxInt64+y) || (y > 0 && x < math.MinInt64+y) {
			return 0, false
		}
		return x - y, true
	case opMul:
		if x == 0 || y == 0 {
			return 0, true
		}
		p := x * y
		if (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) || p/y != x {
			return 0, false
		}
		return p, true
	case opDiv:
		if y == 0 || (x == math.MinInt64 && y == -1) {
			return 0, false
		}
		return x / y, true
	default:
		if y == 0 || (x == math.MinInt64 && y == -1) {
			return 0, false
		}
		return x % y, true
	}
}

type cmpOp uint8

const (
	cmpEq cmpOp = iota
	cmpNe
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

var comparisons = map[string]cmpOp{
	operators.Equals: cmpEq, operators.NotEquals: cmpNe, operators.Less: cmpLt,
	operators.LessEquals: cmpLe, operators.Greater: cmpGt, operators.GreaterEquals: cmpGe,
}

// holds reports whether a comparison result c (-1, 0, 1) satisfies op.
func (op cmpOp) holds(c int) bool {
	switch op {
	case cmpEq:
		return c == 0
	case cmpNe:
		return c != 0
	case cmpLt:
		return c < 0
	case cmpLe:
		return c <= 0
	case cmpGt:
		return c > 0
	default:
		return c >= 0
	}
}

// cmpDoubleInt compares a double with an int as CEL does (cross-type numeric comparison): a double
// beyond the int64 range is below or above every int; otherwise the int is compared as a double.
func cmpDoubleInt(d float64, i int64) int {
	if d < math.MinInt64 {
		return -1
	}
	if d > math.MaxInt64 {
		return 1
	}
	return cmp.Compare(d, float64(i))
}

// compare compiles a comparison. Ordering of bools, and any comparison with NaN (an error for
// ordering, false for equality in CEL), go to cel-go.
func compare(op cmpOp, l, r fastNode) (fastNode, bool) {
	switch {
	case l.typ == Int && r.typ == Int:
		return boolNode(ordered(op, l.i, r.i))
	case l.typ == String && r.typ == String:
		return boolNode(ordered(op, l.s, r.s))
	case l.typ == Bool && r.typ == Bool && (op == cmpEq || op == cmpNe):
		lf, rf := l.b, r.b
		return boolNode(func(v Vars) (bool, bool) {
			x, ok := lf(v)
			if !ok {
				return false, false
			}
			y, ok := rf(v)
			return ok && (x == y) == (op == cmpEq), ok
		})
	case l.typ == Double || r.typ == Double:
		lf, lok := asDouble(l)
		rf, rok := asDouble(r)
		if !lok || !rok {
			return fastNode{}, false
		}
		return boolNode(func(v Vars) (bool, bool) {
			x, ok := lf(v)
			if !ok {
				return false, false
			}
			y, ok := rf(v)
			if !ok || x.nan() || y.nan() {
				return false, false
			}
			return op.holds(x.cmp(y)), true
		})
	}
	return fastNode{}, false
}

// ordered compares two operands of an ordered type.
func ordered[T int64 | string](op cmpOp, lf, rf func(Vars) (T, bool)) boolFn {
	return func(v Vars) (bool, bool) {
		x, ok := lf(v)
		if !ok {
			return false, false
		}
		y, ok := rf(v)
		return ok && op.holds(cmp.Compare(x, y)), ok
	}
}

// num is an int or a double operand of a cross-type comparison.
type num struct {
	isInt bool
	i     int64
	d     float64
}

func (n num) nan() bool { return !n.isInt && math.IsNaN(n.d) }

func (n num) cmp(o num) int {
	switch {
	case n.isInt && o.isInt:
		return cmp.Compare(n.i, o.i)
	case n.isInt:
		return -cmpDoubleInt(o.d, n.i)
	case o.isInt:
		return cmpDoubleInt(n.d, o.i)
	}
	return cmp.Compare(n.d, o.d)
}

func asDouble(n fastNode) (func(Vars) (num, bool), bool) {
	switch n.typ {
	case Int:
		f := n.i
		return func(v Vars) (num, bool) { i, ok := f(v); return num{isInt: true, i: i}, ok }, true
	case Double:
		f := n.d
		return func(v Vars) (num, bool) { d, ok := f(v); return num{d: d}, ok }, true
	}
	return nil, false
}

// in compiles `x in [literal, …]` for an int or string x and literals of x's type.
func (c *fastCompiler) in(x fastNode, l celast.Expr) (fastNode, bool) {
	if l.Kind() != celast.ListKind || len(l.AsList().OptionalIndices()) > 0 {
		return fastNode{}, false
	}
	elems := l.AsList().Elements()
	switch x.typ {
	case Int:
		if set, ok := literals[int64](elems); ok {
			return boolNode(member(x.i, set))
		}
	case String:
		if set, ok := literals[string](elems); ok {
			return boolNode(member(x.s, set))
		}
	}
	return fastNode{}, false
}

// literals returns the values of elems when every one is a literal of type T (CEL int for int64,
// string for string).
func literals[T int64 | string](elems []celast.Expr) ([]T, bool) {
	set := make([]T, 0, len(elems))
	for _, e := range elems {
		if e.Kind() != celast.LiteralKind {
			return nil, false
		}
		v, ok := e.AsLiteral().Value().(T)
		if !ok {
			return nil, false
		}
		set = append(set, v)
	}
	return set, true
}

// member is `x in set`.
func member[T int64 | string](x func(Vars) (T, bool), set []T) boolFn {
	return func(v Vars) (bool, bool) {
		n, ok := x(v)
		if !ok {
			return false, false
		}
		for _, m := range set {
			if m == n {
				return true, true
			}
		}
		return false, true
	}
}
