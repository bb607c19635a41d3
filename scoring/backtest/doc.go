// Package backtest replays stored verification events through two rule packs, the one in
// force and a candidate, and reports what the candidate would change: the score transition
// matrix (how many events go from 0 to 300, from 600 to 900, ...), for every rule the hits it
// gains and loses, example event ids for each, precision and recall against labels, and the
// throughput of the replay. It is what `riskflow backtest` runs; pipeline/chsink/chbacktest.Run reads
// verify_events and records the run in backtest_runs, [Run] takes any [Source].
//
// # Same feature code as production
//
// Each pack gets its own scorer (scoring.Scorer, built by the caller's newScorer), and each
// scorer is fed every event, in time order, through Scorer.Process: the sliding windows,
// number-segment facts, geo lookups and rule evaluation are the production code, applied to
// a feature state that starts empty at the first event. Events before Options.From only go
// through Scorer.Apply, to fill the windows (24 h of warm-up makes the first day's windows
// complete; without it they undercount, under both packs alike). Only events in the period
// are compared. The two scorers run in parallel, each on its own goroutine, over batches of
// events read once.
//
// # Numbers without numbers: stand-ins
//
// ClickHouse never stores a plaintext phone number. An event keeps the number's keyed hash
// (phone_hash), its masked form and its segment (the first 7 digits). The scorer needs an
// 11-digit number, so the replay gives every distinct phone_hash a stand-in number: the
// stored segment followed by 4 digits taken from the hash. Two hashes of one segment that
// would get the same 4 digits are told apart by moving the later one to the next free
// suffix of that segment, so within a run different hashes always get different stand-ins
// and one hash always the same one.
//
// What that keeps exactly as in production:
//   - every per-number window (phone_verifies_*, phone_fails_*, phone_devices_*, phone_nets_*,
//     travel): the number is keyed by its stand-in, which is one-to-one with its hash, which
//     is one-to-one with the real number;
//   - every segment feature (segment_class, segment_carrier, segment_host_carrier,
//     carrier_mismatch, phone_prefix, prefix_listed) and the 连号 bursts (prefix_phones_*,
//     prefix_verifies_*): they read only the first 7 digits, which are the stored ones;
//   - IP, network, device and token features, and everything else read from the event.
//
// What it does not keep:
//   - phone_listed: the risk team's lists name plaintext numbers, which a stand-in does not
//     match; a rule on phone_listed never fires in a backtest, under either pack.
//   - Distinct counts tell numbers apart by a 32-bit digest of the number: a pair that
//     collides there in production (odds of 1 in 4·10^9 per pair seen together) need not
//     collide in the replay, and the other way round.
//   - A number hashed under two keys (a key rotation inside the period) counts as two numbers.
//   - Geo comes from the locator of the scorer newScorer builds, not from the stored geo
//     columns (the scorer looks the IP up itself, and latitude and longitude are not stored);
//     pass the production locator for the same answers.
//   - Order: production scores each Kafka partition in its own order; the replay uses one
//     global order by ts (whole seconds) and event id. Windows that two events enter in the
//     same second may see them in another order.
//   - Only what reached ClickHouse is replayed: events that never were archived (a lagging or
//     failed archiver) are missing, re-delivered copies are read once (FINAL).
//
// The stored masked form (1381234****) reveals nothing beyond the segment, so the last 4 digits
// are not stored anywhere; no rule but phone_listed needs them.
//
// A stand-in is never written anywhere: the report holds event ids only.
package backtest
