// Package schemas defines riskflow's wire types — VerifyEvent v1, RiskCheck and ScoreRecord — and
// their strict decoding: every rejected input gets a *FieldError naming the field and the reason.
//
// The JSON Schema files in this directory (verify_event.schema.json, risk_check.schema.json) describe
// the same contract for non-Go producers; a test keeps the two in agreement.
package schemas
