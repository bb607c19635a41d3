// Package pipeline wires riskflow's streams: verify.events → scorer → risk.scores (+ the dead-letter
// topic), risk.scores → archiver → a history sink behind a circuit breaker, and the decision log:
// API verdicts → a bounded queue → risk.decisions (DecisionLog) → archiver → risk_decisions
// (DecisionArchiveStage). It decides, in one place per stage, what is retried, what is
// dead-lettered and when offsets may be committed.
package pipeline
