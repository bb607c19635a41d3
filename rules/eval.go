package rules

import (
	"errors"
	"fmt"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/riskflow/riskflow/schemas"
)

// Input supplies variable values at evaluation time. Its method set is exactly cel-go's
// interpreter.Activation, so an Input is handed to the CEL programs as it is, without a wrapper.
//
// ResolveName returns the value of a declared variable: int64 (or int) for Int, float64 for
// Double, bool for Bool, string for String; cel-go's own ref.Val values are accepted as well. It
// reports false for a name it does not know. Parent returns nil (or an Activation consulted for
// names ResolveName does not know).
//
// An implementation with a switch on name over a struct does not allocate, except that boxing an
// int64 outside 0..255 or a non-empty string into an `any` does.
type Input interface {
	ResolveName(name string) (any, bool)
	Parent() interpreter.Activation
}

// The contract above promises that an Input is an Activation.
var _ interpreter.Activation = Input(nil)

// Result is the outcome of evaluating a pack. Reuse one Result per goroutine: Eval resets it and
// keeps the capacity of its slices and map. The strings and slices it holds are overwritten by the
// next Eval, so copy what must outlive it.
type Result struct {
	// Score is the highest Level among matched enforce rules, 0 if none matched (or if an allow
	// rule matched).
	Score int
	// Tags are the tags of matched enforce and tag rules, each once, by level (highest first) and
	// then by the order in which the tag first appears in the pack; the allow rule's tag alone when
	// one matched.
	Tags []string
	// Detail has one entry per tag in Tags: the tag's highest matched level and the reason of the
	// first rule (in pack order) that matched at that level.
	Detail map[string]schemas.TagDetail
	// Hits lists every matched rule, shadow rules included (Mode "shadow"), in pack order.
	Hits []schemas.RuleHit

	best  []int  // per pack tag: index into Hits of the hit that sets the tag's detail, or -1
	order []int  // tag indexes that matched, sorted for Tags
	buf   []byte // reason rendering
}

// Reset clears r for reuse and keeps its capacity.
func (r *Result) Reset() {
	r.Score = 0
	r.Tags = r.Tags[:0]
	clear(r.Detail)
	clear(r.Hits) // drop references to old reasons
	r.Hits = r.Hits[:0]
	r.order = r.order[:0]
}

// RuleError is a rule whose evaluation failed (e.g. it hit RuntimeCostLimit). The rule was
// skipped; the other rules were evaluated and are in the Result.
type RuleError struct {
	Rule string
	Err  error
}

func (e *RuleError) Error() string { return fmt.Sprintf("rule %s: %v", e.Rule, e.Err) }
func (e *RuleError) Unwrap() error { return e.Err }

// Is makes every RuleError a partial result (schemas.ErrPartial): the other rules' verdict stands.
func (e *RuleError) Is(target error) bool { return target == schemas.ErrPartial }

// eval evaluates the rule's condition: on the fast path when it can give a plain answer, on
// cel-go otherwise.
func (r *Rule) eval(in Input, vars Vars) (bool, error) {
	if r.fast != nil && vars != nil {
		if v, ok := r.fast(vars); ok {
			return v, nil
		}
	}
	out, _, err := r.prg.Eval(in)
	if err != nil {
		return false, err
	}
	return out == types.True, nil
}

// Eval evaluates every rule of the pack against in and fills res (after resetting it). A rule
// whose evaluation fails is skipped: Eval still fills res from the other rules and returns the
// failures as *RuleError values joined with errors.Join. Eval is safe for concurrent use with
// distinct Results.
func (p *Pack) Eval(in Input, res *Result) error {
	res.Reset()
	if in == nil {
		return errors.New("rules: eval: input is nil")
	}
	if cap(res.best) < len(p.tags) {
		res.best = make([]int, len(p.tags))
	}
	res.best = res.best[:len(p.tags)]
	for i := range res.best {
		res.best[i] = -1
	}

	var errs []error
	vars, _ := in.(Vars)
	allowed := -1 // index in res.Hits of the first matching allow rule
	for _, r := range p.Rules {
		matched, err := r.eval(in, vars)
		if err != nil {
			errs = append(errs, &RuleError{Rule: r.ID, Err: err})
			continue
		}
		if !matched {
			continue
		}
		res.Hits = append(res.Hits, schemas.RuleHit{
			Rule:   r.ID,
			Tag:    r.Tag,
			Score:  r.Level,
			Mode:   string(r.Mode),
			Reason: r.reason.render(in, &res.buf),
		})
		if r.Mode == Allow && allowed < 0 {
			allowed = len(res.Hits) - 1
		}
		if r.tagIdx < 0 { // shadow or allow
			continue
		}
		res.Score = max(res.Score, r.Level)
		if b := res.best[r.tagIdx]; b < 0 || res.Hits[b].Score < r.Level {
			res.best[r.tagIdx] = len(res.Hits) - 1
		}
	}

	if allowed >= 0 {
		// The allow list decides: pass, with the allow rule as the only tag.
		h := &res.Hits[allowed]
		res.Score = schemas.ScorePass
		res.Tags = append(res.Tags, h.Tag)
		if res.Detail == nil {
			res.Detail = make(map[string]schemas.TagDetail, 1)
		}
		res.Detail[h.Tag] = schemas.TagDetail{Score: schemas.ScorePass, Reason: h.Reason}
		return errors.Join(errs...)
	}
	for j, b := range res.best {
		if b >= 0 {
			res.order = append(res.order, j)
		}
	}
	// Insertion sort (a handful of tags): level descending, then first appearance in the pack.
	for i := 1; i < len(res.order); i++ {
		for k := i; k > 0 && res.Hits[res.best[res.order[k]]].Score > res.Hits[res.best[res.order[k-1]]].Score; k-- {
			res.order[k], res.order[k-1] = res.order[k-1], res.order[k]
		}
	}
	if len(res.order) > 0 && res.Detail == nil {
		res.Detail = make(map[string]schemas.TagDetail, len(p.tags))
	}
	for _, j := range res.order {
		h := &res.Hits[res.best[j]]
		res.Tags = append(res.Tags, h.Tag)
		res.Detail[h.Tag] = schemas.TagDetail{Score: h.Score, Reason: h.Reason}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}
