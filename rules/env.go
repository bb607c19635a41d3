package rules

import (
	"fmt"
	"regexp"
	"regexp/syntax"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
)

// Type is the type of a declared variable.
type Type int

// The variable types a rule may reference. They map to CEL's int, double, bool and string.
const (
	Int Type = iota
	Double
	Bool
	String
)

// String returns the CEL name of the type.
func (t Type) String() string {
	switch t {
	case Int:
		return "int"
	case Double:
		return "double"
	case Bool:
		return "bool"
	case String:
		return "string"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

func (t Type) celType() *cel.Type {
	switch t {
	case Int:
		return cel.IntType
	case Double:
		return cel.DoubleType
	case Bool:
		return cel.BoolType
	case String:
		return cel.StringType
	}
	return nil
}

// Var declares one variable that rules may reference in `when` and in reason placeholders.
type Var struct {
	Name string
	Type Type
	Doc  string
}

// Env is the declared, documented set of variables rules may reference. It is immutable and safe
// for concurrent use; one Env compiles any number of packs.
type Env struct {
	vars   []Var
	byName map[string]Type
	index  map[string]int // position in vars
	cel    *cel.Env
}

// varName is what a variable may be called: a lower-case CEL identifier.
var varName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// celReserved are CEL's reserved words and literals; none can name a variable.
var celReserved = map[string]bool{
	"true": true, "false": true, "null": true, "in": true, "as": true, "break": true,
	"const": true, "continue": true, "else": true, "for": true, "function": true, "if": true,
	"import": true, "let": true, "loop": true, "package": true, "namespace": true,
	"return": true, "var": true, "void": true, "while": true,
}

// NewEnv declares vars. It fails on an empty, invalid, reserved or duplicate name and on an
// unknown Type. Names are lower-case identifiers: [a-z_][a-z0-9_]*.
func NewEnv(vars []Var) (*Env, error) {
	e := &Env{vars: make([]Var, len(vars)), byName: make(map[string]Type, len(vars)), index: make(map[string]int, len(vars))}
	copy(e.vars, vars)
	opts := make([]cel.EnvOption, 0, len(vars)+2)
	// Lets a double variable be compared with an int literal (`speed_kmh > 1000`).
	opts = append(opts, cel.CrossTypeNumericComparisons(true))
	for _, v := range vars {
		switch {
		case !varName.MatchString(v.Name):
			return nil, fmt.Errorf("rules env: variable name %q is invalid: want [a-z_][a-z0-9_]*", v.Name)
		case celReserved[v.Name]:
			return nil, fmt.Errorf("rules env: variable name %q is a CEL reserved word", v.Name)
		case v.Type.celType() == nil:
			return nil, fmt.Errorf("rules env: variable %s: unknown type %d", v.Name, int(v.Type))
		}
		if _, dup := e.byName[v.Name]; dup {
			return nil, fmt.Errorf("rules env: variable %s is declared twice", v.Name)
		}
		e.byName[v.Name] = v.Type
		e.index[v.Name] = len(e.index)
		opts = append(opts, cel.VariableWithDoc(v.Name, v.Type.celType(), v.Doc))
	}
	ce, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("rules env: %w", err)
	}
	e.cel = ce
	return e, nil
}

// Vars returns the declared variables in declaration order (a copy).
func (e *Env) Vars() []Var {
	out := make([]Var, len(e.vars))
	copy(out, e.vars)
	return out
}

// Lookup reports the type of a declared variable.
func (e *Env) Lookup(name string) (Type, bool) {
	t, ok := e.byName[name]
	return t, ok
}

// Cost bounds. A rule's `when` is rejected at compile time when CEL's static estimate of its
// worst-case cost exceeds MaxEstimatedCost, and a rule whose cost can grow with its input runs
// with a runtime limit of RuntimeCostLimit, after which the evaluation stops with an error (the
// rule is skipped).
//
// Units are CEL cost units: about one per variable read, comparison or arithmetic operation;
// string functions cost 0.1 per byte scanned (contains, startsWith; CEL prices size and == as
// constant), regular
// expressions 0.25 per byte of input times pattern length. For the estimate every string
// variable is assumed to be at most MaxStringSize bytes (phones, IPs, ids and codes are far
// shorter). A typical threshold rule costs 2 to 20; MaxEstimatedCost leaves room for rules with a
// few dozen conditions or a short regex, and RuntimeCostLimit is ten times higher so that a valid
// rule never hits it unless an input is far larger than assumed.
//
// A rule whose worst-case cost does not depend on input sizes (threshold comparisons, equality
// with literals, boolean logic — every rule of the default pack) cannot exceed its static
// estimate, so it runs without runtime cost tracking, which costs more than the rule itself; rules
// whose cost grows with their input (contains, matches, size, concatenation) keep the runtime limit.
//
// MaxPackCost bounds the sum of a pack's estimates: the default pack's 34 rules add up to 181, and
// the limit leaves room for a few hundred threshold rules or a few dozen string and regex ones.
// Measured against it: 3,000 shadow rules of two string functions each (60,680 together) made a
// check take about 13 ms; a pack at the limit costs about a sixth of that at worst.
const (
	MaxStringSize    = 256
	MaxEstimatedCost = 1000
	RuntimeCostLimit = 10000
	MaxPackCost      = 10000
)

// sizeEstimator tells CEL's cost estimator how long declared string variables can be (max, or
// MaxStringSize when max is 0).
type sizeEstimator struct {
	env *Env
	max uint64
}

func (s sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	if len(p) != 1 {
		return nil
	}
	if t, ok := s.env.byName[p[0]]; ok && t == String {
		m := s.max
		if m == 0 {
			m = MaxStringSize
		}
		return &cost.SizeEstimate{Min: 0, Max: m}
	}
	return nil
}

// EstimateCallCost prices a regular expression with a literal pattern by its compiled program
// (see regexInstructions), where CEL prices the pattern's text; every other call as CEL does.
func (s sizeEstimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	var str, re cost.AstNode
	switch {
	case overloadID == overloads.MatchesString && target != nil && len(args) == 1:
		str, re = *target, args[0]
	case overloadID == overloads.Matches && target == nil && len(args) == 2:
		str, re = args[0], args[1]
	default:
		return nil
	}
	if re.Expr().Kind() != celast.LiteralKind {
		return nil
	}
	pattern, ok := re.Expr().AsLiteral().(types.String)
	if !ok {
		return nil
	}
	n := regexInstructions(string(pattern))
	if n <= uint64(len(pattern)) {
		return nil // CEL's price stands
	}
	size := str.ComputedSize()
	if size == nil {
		size = s.EstimateSize(str)
	}
	if size == nil {
		return nil // unknown: CEL prices it unbounded
	}
	// CEL's formula (O(n·m): the string, one more byte, by a quarter of the pattern), with the
	// program's instructions for the pattern's length.
	c := size.Add(cost.SizeEstimate{Min: 1, Max: 1}).MultiplyByCostFactor(cost.StringTraversalCostFactor).
		Multiply(cost.SizeEstimate{Min: n, Max: n}.MultiplyByCostFactor(cost.RegexStringLengthCostFactor))
	return &cost.CallEstimate{CostEstimate: c}
}

// regexInstructions is the length of pattern's compiled program, what matching a string costs per
// byte: a counted repetition makes it far longer than the pattern ("^(.?){1000}$", 12 characters,
// is 4,004 instructions, and took milliseconds to match a string of 40 bytes). 0 for a pattern
// that does not compile (the program's own compilation reports it).
func regexInstructions(pattern string) uint64 {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0
	}
	return uint64(len(prog.Inst))
}
