// Package schemas defines riskflow's wire types — VerifyEvent v1, RiskCheck and ScoreRecord — and
// their strict decoding: every rejected input gets a *FieldError naming the field and the reason.
//
// Decoding is strict about text too: a string that is not valid Unicode (a byte that is not UTF-8,
// a \u escape of half a surrogate pair) is refused rather than turned into U+FFFD, and the
// free-text fields (event_id, app_id, device_id, error_code, ex_id) must not hold a mobile phone
// number in any common format (ContainsPhone): riskflow keeps those fields as they are, while a
// number exists past the decoder only as a keyed hash, a masked form and its 7-digit segment.
//
// Error messages are safe to return to callers and to log: they show a caller's value only
// through Excerpt — at most a few dozen bytes, escaped, every phone-like number replaced by
// <phone> — never show a phone field's value at all, and are at most MaxErrorLen bytes long.
//
// The JSON Schema files in this directory (verify_event.schema.json, risk_check.schema.json) describe
// the same contract for non-Go producers; a test keeps the two in agreement.
package schemas
