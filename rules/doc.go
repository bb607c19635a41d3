// Package rules is riskflow's rule language: YAML rule packs whose conditions are CEL expressions,
// compiled once against a declared environment of variables and evaluated per event.
//
// # Environment
//
// An Env (NewEnv) declares the variables rules may reference, each with a Type (Int, Double, Bool,
// String) and a doc string. Package scoring builds it from its features and supplies the values
// at evaluation time through an Input.
//
// # Pack format
//
//	pack: default                  # name, [a-z0-9_-]+
//	description: riskflow default rules
//	rules:
//	  - id: phone_velocity_observe   # unique in the pack, [a-z0-9_]+
//	    tag: phone_velocity          # [a-z0-9_]+; rules may share a tag at different levels
//	    description: many verifications of one number
//	    owner: risk-team
//	    level: 300                   # 300 observe | 600 step up | 900 block (0 or none: allow, tag)
//	    mode: enforce                # enforce (default) | shadow | allow | tag
//	    when: phone_verifies_10m >= 3
//	    reason: "{phone_verifies_10m} verifications of this number in 10 min"
//
// `when` is a CEL expression that must type-check to bool against the Env; a double variable may
// be compared with an int literal. `reason` is a template: `{name}` is replaced by the value of a
// declared variable (integers in decimal, doubles with at most two decimals, bools as true/false,
// strings as they are) and `{{` / `}}` stand for literal braces. Without a reason the description
// is used as is. Unknown keys are errors.
//
// Compile reports every problem of a pack in one error (errors.Join of *CompileError), each with
// the line and column in the YAML text and the rule id, e.g.
//
//	line 14:31: rule phone_velocity_observe: when: undeclared reference to 'foo'
//
// # Cost
//
// A `when` whose worst-case cost, as estimated by CEL's checker, exceeds MaxEstimatedCost is
// rejected at compile time (string variables are assumed to be at most MaxStringSize bytes), and
// a rule whose cost can grow with its input runs with cel.CostLimit(RuntimeCostLimit). A threshold
// comparison costs about 2. A pack whose rules' estimates add up to more than MaxPackCost is
// rejected too: every rule runs on every check. So is a pack of more than MaxRules rules, or one
// whose verdict, were every rule to match, would take more than MaxVerdictBytes (its hits, tags
// and detail go to the caller, risk.scores, risk.decisions and ClickHouse); a rendered reason is
// cut at MaxReasonBytes.
//
// # Evaluation
//
// Pack.Eval runs every rule and fills a reusable Result: Score is the highest level among
// matched enforce rules, Tags and Detail describe them and the matched tag rules (level 0; one
// entry per tag, at the tag's highest matched level), and Hits lists every matched rule including
// shadow rules, which never count in Score, Tags or Detail. A matching allow rule decides: score
// 0 and its tag alone. A rule whose evaluation fails is skipped and reported as a *RuleError;
// the others still count. Packs are immutable; a Holder swaps them atomically. Package rulesvc
// runs a process's pack lifecycle: file watch, PUT, rollback, version history.
//
// # Tests as data
//
// ParseTests reads a tests.yaml file (TestSuite); package scoring runs it, because it needs the
// features. See README.md in this directory for both formats.
package rules
