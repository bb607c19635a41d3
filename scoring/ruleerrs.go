package scoring

import (
	"sync"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
)

// RuleErrorLogEvery is how often at most a rule that keeps failing at run time is logged: a rule
// that divides by zero on every event would otherwise write a line per event (thousands a second)
// to every scorer's and API node's log.
const RuleErrorLogEvery = 10 * time.Second

// ruleErrors counts the rules that failed at run time (a *rules.RuleError: the rule was skipped,
// the other rules' verdict stands) and logs each failing rule at most once per RuleErrorLogEvery,
// with how many failures the line stands for.
type ruleErrors struct {
	mu     sync.Mutex
	byRule map[string]*ruleErrCount
}

type ruleErrCount struct {
	total    uint64
	unlogged uint64 // failures since the last line
	loggedAt time.Time
}

// noteRuleErrors counts and logs the rule failures in err (an evaluation's error: rules.Pack.Eval's,
// wrapped) of the pack of version; where says what was scored (an event id, "check").
func (s *Scorer) noteRuleErrors(err error, version, where string) {
	var failed []*rules.RuleError
	collectRuleErrors(err, &failed)
	if len(failed) == 0 {
		return
	}
	now := time.Now()
	re := &s.ruleErrs
	re.mu.Lock()
	defer re.mu.Unlock()
	if re.byRule == nil {
		re.byRule = make(map[string]*ruleErrCount)
	}
	for _, f := range failed {
		c := re.byRule[f.Rule]
		if c == nil {
			c = &ruleErrCount{}
			re.byRule[f.Rule] = c
		}
		c.total++
		c.unlogged++
		if !c.loggedAt.IsZero() && now.Sub(c.loggedAt) < RuleErrorLogEvery {
			continue
		}
		s.log.Warn("rule failed at run time: skipped, the other rules' verdict stands (logged at most once per 10 s per rule; riskflow_rule_errors_total counts every failure)",
			"rule", f.Rule, "rules_version", version, "err", schemas.Excerpt(f.Err.Error(), 256), "failures_since_last_line", c.unlogged, "on", where)
		c.unlogged, c.loggedAt = 0, now
	}
}

// collectRuleErrors appends every *rules.RuleError in err's tree (joined and wrapped errors).
func collectRuleErrors(err error, into *[]*rules.RuleError) {
	if re, ok := err.(*rules.RuleError); ok {
		*into = append(*into, re)
		return
	}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			collectRuleErrors(x, into)
		}
	case interface{ Unwrap() error }:
		collectRuleErrors(e.Unwrap(), into)
	}
}

// keepOnly drops the counts of rules p does not have: a node cycling through packs of failing
// rules kept a count, and a riskflow_rule_errors_total series, for every rule that ever failed.
func (re *ruleErrors) keepOnly(p *rules.Pack) {
	ids := packRuleIDs(p)
	re.mu.Lock()
	defer re.mu.Unlock()
	for id := range re.byRule {
		if !ids[id] {
			delete(re.byRule, id)
		}
	}
}

func packRuleIDs(p *rules.Pack) map[string]bool {
	ids := map[string]bool{}
	if p != nil {
		for _, r := range p.Rules {
			ids[r.ID] = true
		}
	}
	return ids
}

// RuleErrors returns, per rule id of the running pack (its live and shadow rules), how many
// evaluations of the rule failed at run time in this scorer (events and checks) since it was built
// or since the rule was last absent from a pack swapped in: a rule a new pack no longer has loses
// its count (and its series of riskflow_rule_errors_total), and starts again from 0 if it comes
// back.
func (s *Scorer) RuleErrors() map[string]uint64 {
	// Only the running pack's: an evaluation of the previous pack may end after the swap.
	ids := packRuleIDs(s.pack.Load())
	re := &s.ruleErrs
	re.mu.Lock()
	defer re.mu.Unlock()
	out := make(map[string]uint64, len(re.byRule))
	for id, c := range re.byRule {
		if ids[id] {
			out[id] = c.total
		}
	}
	return out
}
