package rules_test

import (
	"regexp"
	"strings"
	"testing"

	"cel.dev/cel-go/interpreter"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
)

// oneInput gives every int variable the value 1 (doubles 1, strings "X", bools true).
type oneInput struct{ env *rules.Env }

func (o oneInput) ResolveName(name string) (any, bool) {
	t, ok := o.env.Lookup(name)
	if !ok {
		return nil, false
	}
	switch t {
	case rules.Int:
		return int64(1), true
	case rules.Double:
		return float64(1), true
	case rules.Bool:
		return true, true
	}
	return "X", true
}

func (o oneInput) Parent() interpreter.Activation { return nil }

// Every count in the default pack's reasons reads right at 1 — a risk team lowering a threshold
// (the console's editor, a backtest of a candidate) or a shadow copy at 1 wrote "1 verifications of
// this number", "1 phones from this IP", "1 devices": each count has its singular form.
func TestDefaultPackReasonsReadRightAtOne(t *testing.T) {
	env := productionEnv(t)
	// Every rule matching, whatever its condition.
	src := regexp.MustCompile(`(?m)^(\s+)when: .*$`).ReplaceAllString(string(packs.Default()), "${1}when: 'true'")
	p, err := rules.Compile([]byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	var res rules.Result
	if err := p.Eval(oneInput{env}, &res); err != nil {
		t.Fatal(err)
	}
	plural := regexp.MustCompile(`\b1 (\w+ )?(verifications|phones|numbers|devices|networks|failures|attempts|blocks|times)\b`)
	n := 0
	for _, h := range res.Hits {
		n++
		if m := plural.FindString(h.Reason); m != "" {
			t.Errorf("rule %s at 1: %q (%q)", h.Rule, h.Reason, m)
		}
	}
	if want := strings.Count(src, "\n  - id: "); n != want {
		t.Errorf("%d rules matched, want all %d", n, want)
	}
}
