// Package loadgen produces synthetic, labelled VerifyEvent v1 traffic: an ordinary population
// logging in with carrier one-click login, mixed with named attack scenarios, each event carrying
// its ground truth ("benign" or the scenario name). It feeds load tests, demos, rule backtests and
// detection-quality measurements.
//
// # Benign population
//
// Users are derived on demand from the seed (no per-user memory), so the population can be large:
// about one user per three daily logins at the configured rate, at least 5,000. A user has one
// 11-digit number drawn from the basic segments of segment.Default() (carrier shares CM 60 %,
// CU 20 %, CT 20 %; China Broadnet's 192 is left out because its gateway carrier is ambiguous), one
// or two devices (android, ios, harmony, h5), one app, and a home address behind carrier NAT: many
// users share each IPv4 address of a pool drawn from carrier mobile ranges, and one user in five
// has an IPv6 /64 of their own. None of these ranges is in geo.DefaultIDCList. Logins follow a
// daily rhythm in China time (few between 00:00 and 06:00, a peak in the evening) whose average is
// the configured Rate. About 3 % of attempts fail with error codes taken from the carrier SDK
// documentation (-40101, 103111, 200023, 8001, …); some failed gateway attempts are followed by an
// SMS fallback. Gateway attempts carry the SHA-256 hex digest of a fresh loginToken; SMS fallback
// attempts have no loginToken and no token_digest.
//
// # Attack scenarios
//
// Each scenario emits episodes (one burst of one attacker) sized to cross the default rule pack's
// thresholds; see Scenarios for the list and the scenario constants for what each one does. Every
// enabled scenario receives an equal share of the attack events, and attack events as a whole
// make up Config.AttackShare of the stream. Episodes start while the benign stream runs, so attack
// traffic follows the same daily rhythm and shares carrier NAT addresses with ordinary users.
//
// # Determinism
//
// The same Config yields the same events, in the same order, with the same event ids, on every
// run and every platform: the generator uses its own SplitMix64 stream, not math/rand. Event ids
// embed a hash of the whole Config, so a run with any other setting never collides with an earlier
// one, while re-running one Config re-delivers the same ids (which riskflow deduplicates). A
// Generator is not safe for concurrent use.
package loadgen
