package features

import (
	"slices"
	"sort"
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
	NumKinds               // the number of kinds
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

const failBit = 1 << 31

// entry is one attempt seen on a key. t holds seconds since epoch in the low 31 bits and the
// failure flag in the top bit.
type entry struct {
	t    uint32
	a, b uint32
}

func (e entry) sec() uint32 { return e.t &^ failBit }
func (e entry) fail() bool  { return e.t&failBit != 0 }
func mkEntry(t uint32, fail bool, a, b uint32) entry {
	if fail {
		t |= failBit
	}
	return entry{t: t, a: a, b: b}
}

// rec is the state of one key.
type rec struct {
	entries []entry  // ordered by sec()
	loc     *locHist // phones only, nil until a located attempt
	old     *coarse  // entries beyond MaxEntriesPerKey, folded into buckets; nil until then
}

// locHist holds the two most recent located attempts of a phone with distinct seconds, newest
// first (t == 0: empty slot). Two, so that an attempt scored again after it was recorded (a
// re-delivered event) still finds the location before its own.
type locHist struct {
	t        [2]uint32
	lat, lon [2]float32
}

// put records a location at second t, keeping the two newest distinct seconds.
func (h *locHist) put(t uint32, lat, lon float32) {
	switch {
	case t > h.t[0]:
		h.t[1], h.lat[1], h.lon[1] = h.t[0], h.lat[0], h.lon[0]
		h.t[0], h.lat[0], h.lon[0] = t, lat, lon
	case t == h.t[0]:
		h.lat[0], h.lon[0] = lat, lon
	case t >= h.t[1]:
		h.t[1], h.lat[1], h.lon[1] = t, lat, lon
	}
}

func (r *rec) newest() uint32 {
	var n uint32
	if len(r.entries) > 0 {
		n = r.entries[len(r.entries)-1].sec()
	}
	if r.loc != nil {
		n = max(n, r.loc.t[0])
	}
	return n
}

// Config bounds the state.
type Config struct {
	Retention        time.Duration // longest window any rule may use; default 24 h
	MaxEntriesPerKey int           // default 1024
	DistinctCap      int           // distinct counts stop here; default 512
}

func (c Config) withDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	if c.MaxEntriesPerKey <= 0 {
		c.MaxEntriesPerKey = 1024
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
	mu     sync.RWMutex
	recs   [NumKinds]map[uint64]rec
	tokens map[uint64]tokenSeen // token digest → sightings
	seen   map[uint64]uint32    // event id → entry second (dedupe)
}

// tokenSeen summarizes the sightings of one token digest: enough to answer "how many sightings
// at or before second t" exactly when t is before the first, at the first or after the last
// sighting (and, for up to three sightings at distinct seconds, at each sighting's own second —
// what the scorer asks).
type tokenSeen struct {
	first, last uint32 // seconds of the earliest and the latest sighting
	nFirst      uint32 // sightings at second first
	count       uint32 // all sightings
}

func (ts *tokenSeen) add(t uint32) {
	switch {
	case ts.count == 0 || t < ts.first:
		ts.first, ts.nFirst = t, 1
	case t == ts.first:
		ts.nFirst++
	}
	if ts.count == 0 || t > ts.last {
		ts.last = t
	}
	ts.count++
}

// upTo returns the number of sightings at or before second t.
func (ts tokenSeen) upTo(t uint32) int {
	switch {
	case ts.count == 0 || t < ts.first:
		return 0
	case t >= ts.last:
		return int(ts.count)
	case t == ts.first:
		return int(ts.nFirst)
	}
	// Strictly between the first and the last sighting: at least nFirst, at most count-1.
	return int(ts.count - 1)
}

// State is the feature store. The zero value is not usable; call New.
type State struct {
	// applyMu is held shared by every Apply and exclusively by WriteSnapshot, so that a snapshot
	// is one moment of the state (queries do not take it).
	applyMu   sync.RWMutex
	cfg       Config
	retention uint32
	shards    [numShards]shard
	watermark atomic.Uint32 // newest event second applied
	applied   atomic.Uint64
	sweepNext atomic.Uint32
}

// New returns an empty state.
func New(cfg Config) *State {
	cfg = cfg.withDefaults()
	s := &State{cfg: cfg, retention: uint32(cfg.Retention / time.Second)}
	for i := range s.shards {
		sh := &s.shards[i]
		for k := range sh.recs {
			sh.recs[k] = make(map[uint64]rec)
		}
		sh.tokens = make(map[uint64]tokenSeen)
		sh.seen = make(map[uint64]uint32)
	}
	return s
}

// Config returns the bounds in force.
func (s *State) Config() Config { return s.cfg }

func (s *State) shard(key uint64) *shard {
	// Keys are hashes already; mix the high bits in so numeric keys (prefixes) spread too.
	return &s.shards[(key^key>>29^key>>47)%numShards]
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
func (s *State) Apply(k *Keys) bool {
	s.applyMu.RLock()
	defer s.applyMu.RUnlock()
	if k.EventID != 0 {
		sh := s.shard(k.EventID)
		sh.mu.Lock()
		if _, dup := sh.seen[k.EventID]; dup {
			sh.mu.Unlock()
			return false
		}
		sh.seen[k.EventID] = k.T
		sh.mu.Unlock()
	}
	phoneM, deviceM, netM := Member(k.Phone), Member(k.Device), Member(k.Net)
	s.add(KindPhone, k.Phone, mkEntry(k.T, k.Fail, deviceM, netM), k)
	s.add(KindIP, k.IP, mkEntry(k.T, k.Fail, phoneM, deviceM), nil)
	s.add(KindNet, k.Net, mkEntry(k.T, k.Fail, phoneM, 0), nil)
	s.add(KindDevice, k.Device, mkEntry(k.T, k.Fail, phoneM, 0), nil) // no device id: skipped by add
	s.add(KindPrefix, k.Prefix, mkEntry(k.T, k.Fail, phoneM, 0), nil)
	s.add(KindApp, k.App, mkEntry(k.T, k.Fail, phoneM, deviceM), nil)
	if k.Token != 0 {
		sh := s.shard(k.Token)
		sh.mu.Lock()
		ts := sh.tokens[k.Token]
		ts.add(k.T)
		sh.tokens[k.Token] = ts
		sh.mu.Unlock()
	}
	for {
		w := s.watermark.Load()
		if k.T <= w || s.watermark.CompareAndSwap(w, k.T) {
			break
		}
	}
	if n := s.applied.Add(1); n%4096 == 0 {
		s.sweep()
	}
	return true
}

// add inserts e into the key's list in time order, prunes it and, for phones, moves the location.
func (s *State) add(kind Kind, key uint64, e entry, loc *Keys) {
	if key == 0 {
		return
	}
	sh := s.shard(key)
	sh.mu.Lock()
	r := sh.recs[kind][key]
	es := r.entries
	t := e.sec()
	i := len(es)
	if i > 0 && es[i-1].sec() > t {
		// Out of order: usually one step back for a phone, further for a busy key (an app with
		// jittered clocks), so search.
		i = sort.Search(len(es), func(j int) bool { return es[j].sec() > t })
	}
	es = append(es, entry{})
	copy(es[i+1:], es[i:])
	es[i] = e
	// Prune what fell out of the retention relative to the newest entry, then enforce the cap.
	newest := es[len(es)-1].sec()
	drop := 0
	for drop < len(es) && newest-es[drop].sec() > s.retention {
		drop++
	}
	if over := len(es) - drop - s.cfg.MaxEntriesPerKey; over > 0 {
		// Over the cap: the oldest entries move to the coarse tier instead of being forgotten, an
		// eighth of the cap at a time so that a hot key does not shift its whole list per insert.
		over = min(max(over, s.cfg.MaxEntriesPerKey/8), len(es)-drop-1)
		if r.old == nil {
			r.old = newCoarse(s.retention)
		}
		r.old.fold(es[drop : drop+over])
		drop += over
	}
	if drop > 0 {
		n := copy(es, es[drop:])
		es = es[:n]
	}
	r.entries = es
	if loc != nil && loc.HasLoc && t > 0 {
		if r.loc == nil {
			r.loc = new(locHist)
		}
		r.loc.put(t, loc.Lat, loc.Lon)
	}
	sh.recs[kind][key] = r
	sh.mu.Unlock()
}

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
	var idle [NumKinds][]uint64
	var ids, tokens []uint64
	sh.mu.RLock()
	for k := range sh.recs {
		for key, r := range sh.recs[k] {
			if r.newest() < cutoff {
				idle[k] = append(idle[k], key)
			}
		}
	}
	for key, t := range sh.seen {
		if t < cutoff {
			ids = append(ids, key)
		}
	}
	for key, ts := range sh.tokens {
		if ts.last < cutoff {
			tokens = append(tokens, key)
		}
	}
	sh.mu.RUnlock()
	if len(ids)+len(tokens) == 0 && !slices.ContainsFunc(idle[:], func(k []uint64) bool { return len(k) > 0 }) {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k := range idle {
		for _, key := range idle[k] {
			if r, ok := sh.recs[k][key]; ok && r.newest() < cutoff {
				delete(sh.recs[k], key)
			}
		}
	}
	for _, key := range ids {
		if t, ok := sh.seen[key]; ok && t < cutoff {
			delete(sh.seen, key)
		}
	}
	for _, key := range tokens {
		if ts, ok := sh.tokens[key]; ok && ts.last < cutoff {
			delete(sh.tokens, key)
		}
	}
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
			st.Keys[k] += len(sh.recs[k])
			for _, r := range sh.recs[k] {
				st.Entries += len(r.entries)
			}
		}
		st.Tokens += len(sh.tokens)
		st.EventIDs += len(sh.seen)
		sh.mu.RUnlock()
	}
	st.Applied = s.applied.Load()
	return st
}

// Seen reports whether the event id was applied within the retention.
func (s *State) Seen(eventID uint64) bool {
	sh := s.shard(eventID)
	sh.mu.RLock()
	_, ok := sh.seen[eventID]
	sh.mu.RUnlock()
	return ok
}
