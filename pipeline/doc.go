// Package pipeline wires riskflow's streams: verify.events → scorer → risk.scores (+ the dead-letter
// topic), and risk.scores → archiver → a history sink behind a circuit breaker. It decides, in one
// place per stage, what is retried, what is dead-lettered and when offsets may be committed.
package pipeline
