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
// hash table (Robin Hood linear probing, 90% full at most, growing by a quarter) whose 16-byte
// slots hold the key and the offset, size class and entry count of a block in the kind's arena
// (and the generation of its newest second, so that the sweep reads only the blocks that may be idle):
// one pointer-free []uint32 from which blocks of a few size classes are carved (a phone's entries
// also hold their attempts' locations). It holds the event ids in a table of 12-byte slots (id,
// second) and the token sightings in one of 16-byte slots. Nothing there holds a pointer, so the
// garbage collector does not scan the state, and a key costs its bytes only.
//
// Phone keys are keyed hashes (the scoring package derives them with SipHash from the phone-hash
// key), and so are the phone members of other keys' entries: a snapshot holds no hash of a number
// that could be recomputed from the number alone.
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
// incrementally, paced by event time: one of the 64 shards each time the newest event second has
// moved on by 1/512 of the retention, so every shard is swept 8 times per retention and a key idle
// past it lingers at most 3 hours (at 24 h), however fast or slow the traffic. Memory, measured by
// TestMemoryPerKey (RISKFLOW_MEM_PHONES=1000000) for 1M phones and 100k IPs: about 60 bytes per
// phone key alone (slot, entries, location); with its share of the IP, network, device, prefix and
// app keys, event ids and token digests, about 200 bytes per phone right after loading a day of
// 1–3 attempts per number, and about 225 per live phone in the steady state after two days of
// traffic (phones arriving and going idle, windows sliding, the sweep keeping up).
//
// # Idempotency
//
// Apply is idempotent per event id within the retention: a re-delivered event is not counted twice.
// Queries are as of an event time, so scoring a re-delivered event again, after later attempts were
// recorded, gives the answer it had the first time (TokenSeen counts sightings up to the time;
// LastLocation reads the located attempts strictly before it).
//
// # Restart
//
// State is in memory only. After a restart it is rebuilt by replaying the retention window of the
// verify.events topic (see pipeline.Replay), which is deterministic because windows use event time.
//
// State is safe for concurrent use: writers (the scorer, the feed) and many readers (the scoring
// API) at once. Apply holds one shard lock at a time (the event id's, then each key's, then the
// token's), so a reader waits for at most one key's insert; AggregatesOf read-locks the shards of
// an attempt's keys together, in shard order, so their lookups overlap. ApplyBatch applies many
// attempts (a feed's batch) with the same result as Apply one by one, grouping their event ids and
// key inserts by shard so that a shard is locked once for up to 16 inserts: a reader waits for at
// most those.
package features
