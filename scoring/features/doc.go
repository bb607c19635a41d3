// Package features keeps riskflow's sliding-window state: per phone, IP, network (IPv4 /24, IPv6
// /64), device and number prefix, the recent verification attempts, keyed by event time so that a
// replay or a backtest gives the same answer as live scoring.
//
// # Model
//
// Every key owns a short time-ordered list of entries (12 bytes each: event second, a failure bit
// and up to two 32-bit member hashes, e.g. the phone and device seen on an IP). Counts and distinct
// counts over any window up to the retention (24 h by default) are computed from that list at query
// time, so windows are configurable without changing the state layout.
//
// # Bounds
//
// A key keeps at most MaxEntriesPerKey exact entries (default 1024). On overflow the oldest fold
// into a coarse tier of 5-minute buckets (first/last second, attempt and failure counts, a
// 64-register HyperLogLog per member field; 43 KiB per overflowing key at 24 h retention), so the
// hottest keys (a carrier NAT address) keep counts over every window — exact inside the exact tier,
// pro-rated at a bucket's edge beyond it. Distinct counts are exact up to DistinctCap (default 512,
// well above every rule threshold) and HyperLogLog estimates (~13% standard error) above it. Entries
// older than the retention are pruned on write, and idle keys are swept incrementally (one of 64
// shards every 4096 applied events). Memory, measured by TestMemoryPerKey: about 87 bytes per key
// plus 12 bytes per kept entry (a phone key with two attempts: ~110 bytes); with its share of the
// IP, network, device, prefix and app keys, event ids and token digests, about 410 bytes per phone for
// traffic of 1–3 attempts per number.
//
// # Idempotency
//
// Apply is idempotent per event id within the retention: a re-delivered event is not counted twice.
// Queries are as of an event time, so scoring a re-delivered event again, after later attempts were
// recorded, gives the answer it had the first time (TokenSeen counts sightings up to the time;
// LastLocation remembers the two most recent located attempts and answers strictly before it).
//
// # Restart
//
// State is in memory only. After a restart it is rebuilt by replaying the retention window of the
// verify.events topic (see pipeline.Replay), which is deterministic because windows use event time.
//
// State is safe for concurrent use: one writer (the scorer or the replica) and many readers (the
// scoring API) at once; locking is per shard.
package features
