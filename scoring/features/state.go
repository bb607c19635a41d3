package features

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Kind names a family of keys.
type Kind uint8

// Key kinds. The member fields of an entry depend on the kind (see Apply).
const (
	KindPhone  Kind = iota // a = device, b = network
	KindIP                 // a = phone, b = device
	KindNet                // a = phone
	KindDevice             // a = phone
	KindPrefix             // a = phone
	KindApp                // a = phone, b = device (a tenant's whole traffic: always in the coarse tier)
	// Per-app variants: the key is derived from (app, key) by the caller (Keys.AppIP, AppPrefix),
	// so a large app's traffic on an address or a number block is counted apart from the others';
	// KindAppBlocks counts the blocks of an app's numbers, the base a block's count is compared with.
	KindAppIP     // a = phone, b = device
	KindAppPrefix // a = phone
	KindAppBlocks // keyed by the app (Keys.App): a = number block (Member of Keys.Prefix) — the blocks an app's numbers come from
	NumKinds      // the number of kinds
)

// epoch is the zero of entry time: entries store uint32 seconds since 2000-01-01 UTC.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

// MaxSec is the largest entry second (2068-01-19 03:14:07 UTC): entries keep the seconds in 31
// bits, the top bit being the failure flag.
const MaxSec = 1<<31 - 1

// Sec converts a time to entry seconds, clamped to [0, MaxSec].
func Sec(t time.Time) uint32 {
	s := t.Unix() - epoch
	if s < 0 {
		return 0
	}
	if s > MaxSec {
		return MaxSec
	}
	return uint32(s)
}

// SecTime is the time of entry second sec (the inverse of Sec within its range).
func SecTime(sec uint32) time.Time { return time.Unix(int64(sec)+epoch, 0).UTC() }

// failBit marks a failed attempt in the first word of its entry, whose low 31 bits are the
// second. An entry is that word and one or two 32-bit members (see the Kind constants).
const failBit = 1 << 31

func f32bits(f float32) uint32 { return math.Float32bits(f) }

// Config bounds the state.
//
// Its one YAML key, max_entries_per_key, is a key of riskflow's scoring section; the retention
// follows the scorer's windows.
type Config struct {
	Retention        time.Duration `yaml:"-"`                   // longest window any rule may use; default 24 h
	MaxEntriesPerKey int           `yaml:"max_entries_per_key"` // default 1024, at most 1,048,574
	DistinctCap      int           `yaml:"-"`                   // distinct counts stop here; default 512
}

// Validate reports every key that is wrong, each error starting with the key's name.
func (c Config) Validate() error {
	if c.MaxEntriesPerKey < 0 || c.MaxEntriesPerKey > maxEntriesLimit {
		return fmt.Errorf("max_entries_per_key: %d is outside 1..%d (0: 1024)", c.MaxEntriesPerKey, maxEntriesLimit)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	if c.MaxEntriesPerKey <= 0 {
		c.MaxEntriesPerKey = 1024
	}
	if c.MaxEntriesPerKey > maxEntriesLimit {
		c.MaxEntriesPerKey = maxEntriesLimit
	}
	if c.DistinctCap <= 0 {
		c.DistinctCap = 512
	}
	if c.DistinctCap > c.MaxEntriesPerKey {
		c.DistinctCap = c.MaxEntriesPerKey
	}
	if c.DistinctCap > tableSize/2-1 { // the counting table must never fill up
		c.DistinctCap = tableSize/2 - 1
	}
	return c
}

const numShards = 64

type shard struct {
	mu     shardLock
	recs   [NumKinds]recTable
	tokens tokenTable
	seen   table // event id → entry second (dedupe)
	// swept is the cutoff of the shard's last sweep: every key idle then was removed, so the next
	// sweep reads the newest entries of the generations between the two cutoffs only (genSet).
	swept atomic.Uint32
}

const (
	tokenStride = tableKeyWords + 2
	seenStride  = tableKeyWords + 1
)

// State is the feature store. The zero value is not usable; call New.
type State struct {
	// applyMu is held shared by every Apply and exclusively by WriteSnapshot, so that a snapshot
	// is one moment of the state (queries do not take it).
	applyMu   sync.RWMutex
	cfg       Config
	retention uint32
	seed      uint64
	shards    [numShards]shard
	watermark atomic.Uint32 // newest event second applied
	applied   atomic.Uint64
	sweepNext atomic.Uint32
	sweepAt   atomic.Uint32 // watermark at which the next shard is swept
	sweepStep uint32        // event seconds between two shard sweeps
}

// New returns an empty state.
func New(cfg Config) *State {
	cfg = cfg.withDefaults()
	s := &State{cfg: cfg, retention: uint32(cfg.Retention / time.Second), seed: rand.Uint64()}
	s.sweepStep = max(s.retention/(numShards*sweepRounds), 1)
	for i := range s.shards {
		s.shards[i].init(s.seed, s.retention)
	}
	return s
}

func (sh *shard) init(seed uint64, retention uint32) {
	for k := range sh.recs {
		sh.recs[k] = newRecTable(Kind(k), seed, retention)
	}
	sh.tokens = newTokenTable(seed)
	sh.seen = newTable(seenStride, seed)
}

// Config returns the bounds in force.
func (s *State) Config() Config { return s.cfg }

func (s *State) shard(key uint64) *shard { return &s.shards[shardOf(key)] }

func shardOf(key uint64) int {
	// Keys are hashes already; mix the high bits in so numeric keys (prefixes) spread too.
	return int((key ^ key>>29 ^ key>>47) % numShards)
}

// Keys are the hashed identities of one attempt. Zero means absent (no device, no token).
type Keys struct {
	EventID uint64
	T       uint32 // entry seconds (Sec)
	Fail    bool
	Phone   uint64
	IP      uint64
	Net     uint64
	Device  uint64
	Prefix  uint64
	App     uint64
	Token   uint64
	HasLoc  bool
	Lat     float32
	Lon     float32
	// AppIP and AppPrefix are the per-app keys of IP and Prefix (0: not counted per app).
	AppIP, AppPrefix uint64
}

// keyEntry is what an attempt records on a key of one kind: the key (0: none), the entry's second
// with the failure bit (e) and its members (a, b; see the Kind constants).
type keyEntry struct {
	key     uint64
	e, a, b uint32
}

// entries returns what the attempt records on its key of each kind. Apply and ApplyBatch both
// record these, so that they cannot differ.
func (k *Keys) entries() [NumKinds]keyEntry {
	e := k.T
	if k.Fail {
		e |= failBit
	}
	phoneM, deviceM, netM := Member(k.Phone), Member(k.Device), Member(k.Net)
	return [NumKinds]keyEntry{
		KindPhone:     {k.Phone, e, deviceM, netM},
		KindIP:        {k.IP, e, phoneM, deviceM},
		KindNet:       {k.Net, e, phoneM, 0},
		KindDevice:    {k.Device, e, phoneM, 0},
		KindPrefix:    {k.Prefix, e, phoneM, 0},
		KindApp:       {k.App, e, phoneM, deviceM},
		KindAppIP:     {k.AppIP, e, phoneM, deviceM},
		KindAppPrefix: {k.AppPrefix, e, phoneM, 0},
		KindAppBlocks: {k.App, e, Member(k.Prefix), 0},
	}
}

// Member folds a 64-bit key into the 32-bit member stored in entries (0 stays 0).
func Member(k uint64) uint32 {
	m := uint32(k) ^ uint32(k>>32)
	if m == 0 && k != 0 {
		m = 1
	}
	return m
}

// Apply records one attempt. It reports false (and changes nothing) when the event id was already
// applied within the retention.
//
// Apply holds one shard lock at a time: the event id's (checked and recorded at once, so a
// concurrent Apply of the same event loses), then each key's in turn, then the token's. Readers
// therefore wait for at most one key's insert, never for the whole attempt, and may see an attempt
// on some of its keys before the others (as with any feed that is read while it is applied).
func (s *State) Apply(k *Keys) bool {
	s.applyMu.RLock()
	defer s.applyMu.RUnlock()
	if k.EventID != 0 {
		sh := s.shard(k.EventID)
		sh.mu.Lock()
		i, added := sh.seen.upsert(k.EventID)
		if added {
			sh.seen.val(i)[0] = k.T
		}
		sh.mu.Unlock()
		if !added {
			return false
		}
	}
	for kind, en := range k.entries() {
		var loc *Keys
		if Kind(kind) == KindPhone {
			loc = k
		}
		s.add(Kind(kind), en.key, en.e, en.a, en.b, loc) // a zero key (no device id …) is skipped
	}
	if k.Token != 0 {
		sh := s.shard(k.Token)
		sh.mu.Lock()
		i, _ := sh.tokens.upsert(k.Token)
		sh.tokens.add(i, k.Token, k.T)
		sh.mu.Unlock()
	}
	w := s.watermark.Load()
	for k.T > w && !s.watermark.CompareAndSwap(w, k.T) {
		w = s.watermark.Load()
	}
	w = max(w, k.T)
	s.applied.Add(1)
	// The sweep is paced by event time: one shard each time the watermark has moved on by
	// sweepStep, so a key idle past the retention is gone within retention/sweepRounds of event
	// time, however fast or slow the traffic.
	if next := s.sweepAt.Load(); w >= next && s.sweepAt.CompareAndSwap(next, w+s.sweepStep) {
		s.sweep()
	}
	return true
}

// sweepRounds is how many times the sweep goes round every shard per retention of event time:
// keys idle past the retention linger at most retention/sweepRounds (3 hours at 24 hours). Each
// round reads every key once.
const sweepRounds = 8

// add inserts the entry (second with the failure bit e, members a and b) into key's list under
// its shard's lock, and, for a located phone attempt (loc), records the location.
func (s *State) add(kind Kind, key uint64, e, a, b uint32, loc *Keys) {
	if key == 0 {
		return
	}
	if loc != nil && (!loc.HasLoc || loc.T == 0) {
		loc = nil
	}
	sh := s.shard(key)
	sh.mu.Lock()
	rt := &sh.recs[kind]
	rt.add(s, rt.prepare(key, rt.hash(key)), key, e, a, b, loc)
	sh.mu.Unlock()
}

// sweepBuf holds the keys one sweep found idle.
var sweepBuf = sync.Pool{New: func() any { return new([]uint64) }}

// sweep removes idle keys and old dedupe ids from one shard (round robin). It finds them under the
// read lock, so checks reading the shard (the API) are not held up by the scan, and deletes them
// under the write lock, checking each again: a key may have been used since.
func (s *State) sweep() {
	w := s.watermark.Load()
	if w <= s.retention {
		return
	}
	cutoff := w - s.retention
	sh := &s.shards[s.sweepNext.Add(1)%numShards]
	last := sh.swept.Load()
	gens := genSet(last, cutoff, genMulOf(s.retention))
	// Idle keys of each table, one after the other: recs by kind, then seen, then tokens.
	const nTables = NumKinds + 2
	bp := sweepBuf.Get().(*[]uint64)
	defer sweepBuf.Put(bp)
	keys := (*bp)[:0]
	var ends [nTables]int
	sh.mu.RLock()
	for k := range sh.recs {
		keys = sh.recs[k].idle(keys, cutoff, gens)
		ends[k] = len(keys)
	}
	keys = sh.seen.idle(keys, 0, cutoff) // the id's second
	ends[NumKinds] = len(keys)
	keys = sh.tokens.idle(keys, 0, cutoff) // the token's last sighting
	ends[NumKinds+1] = len(keys)
	sh.mu.RUnlock()
	*bp = keys
	// Once the keys found are removed (below), none idle at this cutoff is left but those added
	// meanwhile by events late by more than the retention (see genSet).
	defer sh.swept.CompareAndSwap(last, max(last, cutoff))
	if len(keys) == 0 {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	from := 0
	for j := range ends {
		for _, key := range keys[from:ends[j]] {
			switch {
			case j < int(NumKinds):
				rt := &sh.recs[j]
				if i := rt.find(key); i != noSlot && rt.newestAt(i) < cutoff {
					rt.removeAt(i)
				}
			case j == int(NumKinds):
				if i := sh.seen.find(key); i != noSlot && sh.seen.val(i)[0] < cutoff {
					sh.seen.remove(i)
				}
			default:
				if i := sh.tokens.find(key); i != noSlot && sh.tokens.val(i)[0] < cutoff {
					sh.tokens.removeAt(i)
				}
			}
		}
		from = ends[j]
	}
}

// idle appends to keys the keys whose value word v is before cutoff.
func (t *table) idle(keys []uint64, v int, cutoff uint32) []uint64 {
	s, off := int(t.stride), tableKeyWords+v
	for p := 0; p+s <= len(t.w); p += s {
		if t.w[p+off] < cutoff && t.w[p]|t.w[p+1] != 0 {
			keys = append(keys, uint64(t.w[p])|uint64(t.w[p+1])<<32)
		}
	}
	return keys
}

// Stats describes the state's size.
type Stats struct {
	Keys     [NumKinds]int
	Entries  int
	Tokens   int
	EventIDs int
	Applied  uint64
}

// Stats counts keys and entries (walks every shard; for metrics and tests, not the hot path).
func (s *State) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k := range sh.recs {
			rt := &sh.recs[k]
			st.Keys[k] += int(rt.n)
			st.Entries += rt.entries()
		}
		st.Tokens += int(sh.tokens.n)
		st.EventIDs += int(sh.seen.n)
		sh.mu.RUnlock()
	}
	st.Applied = s.applied.Load()
	return st
}

// Watermark is the newest event second (Sec) applied, 0 before the first.
func (s *State) Watermark() uint32 { return s.watermark.Load() }

// Seen reports whether the event id was applied within the retention.
func (s *State) Seen(eventID uint64) bool {
	_, ok := s.SeenAt(eventID)
	return ok
}

// SeenAt reports whether the event id was applied within the retention and, if it was, the entry
// second (Sec) it was applied with: a re-delivered event carries the same second, an id reused
// for another attempt most often another.
func (s *State) SeenAt(eventID uint64) (sec uint32, ok bool) {
	if eventID == 0 {
		return 0, false
	}
	sh := s.shard(eventID)
	sh.mu.RLock()
	if i := sh.seen.find(eventID); i != noSlot {
		sec, ok = sh.seen.val(i)[0], true
	}
	sh.mu.RUnlock()
	return sec, ok
}
