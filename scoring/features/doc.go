// Package features keeps riskflow's sliding-window state: per phone, IP, network (IPv4 /24, IPv6
// /64), device and number prefix, the recent verification attempts, keyed by event time so that a
// replay or a backtest gives the same answer as live scoring.
//
// # Model
//
// Every key owns a short time-ordered list of entries (the event second with a failure bit, and
// the 32-bit member hashes its kind records: for a phone the device and network, for an IP or app
// the phone and device — 12 bytes; for a network, device or prefix only the phone — 8 bytes).
// Counts and distinct counts over any window up to the retention (24 h by default) are computed
// from that list at query time, so windows are configurable without changing the state layout.
//
// # Layout
//
// The state is 64 shards, each with a read-write lock. A shard holds, per kind, an open-addressing
// hash table (Robin Hood linear probing, 7/8 full at most, growing by a quarter) whose 20-byte
// slots hold the key, its newest second, and the offset, size class and entry count of a block in
// the kind's arena: one pointer-free []uint32 from which blocks of a few size classes are carved
// (a phone's block also holds its two last locations). It holds the event ids in a table of
// 12-byte slots (id, second) and the token sightings in one of 16-byte slots. Nothing there holds
// a pointer, so the garbage collector does not scan the state, and a key costs its bytes only.
//
// # Bounds
//
// A key keeps at most MaxEntriesPerKey exact entries (default 1024). On overflow the oldest fold
// into a coarse tier of 5-minute buckets (first/last second, attempt and failure counts, a
// 64-register HyperLogLog per member field; 43 KiB per overflowing key at 24 h retention), so the
// hottest keys (a carrier NAT address) keep counts over every window — exact inside the exact tier,
// pro-rated at a bucket's edge beyond it. Distinct counts are exact up to DistinctCap (default 512,
// well above every rule threshold) and HyperLogLog estimates (~13% standard error) above it.
// Entries older than the retention (relative to their key's newest entry) are left out of every
// answer at once and dropped from their block when it fills up, and idle keys are swept
// incrementally (one of 64 shards every 4096 applied events). Memory, measured by
// TestMemoryPerKey for traffic of 1–3 attempts per number: about 62 bytes per phone key alone
// (slot, entries, location), and with its share of the IP, network, device, prefix and app keys,
// event ids and token digests, about 235 bytes per phone at 200k phones and 220 at 1M
// (RISKFLOW_MEM_PHONES=1000000).
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
// scoring API) at once; locking is per shard. Apply locks the shards of an attempt's keys together
// (in shard order), so an attempt appears to readers all at once, and AggregatesOf reads the keys
// of an attempt together likewise.
package features
