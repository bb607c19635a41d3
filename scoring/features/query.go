package features

import (
	"math"
	"runtime"
	"slices"
	"sync"
)

// Query answers are "as of" time t: entries with a second in (t-window, t]. Self, when true, adds
// the attempt being scored (not yet applied) to the answer, so a check counts the current attempt.

// Field selects an entry member for distinct counts.
type Field uint8

// Member fields (see the Kind constants for what they hold per kind).
const (
	FieldA Field = iota
	FieldB
)

func lo(t, window uint32) uint32 {
	if t > window {
		return t - window
	}
	return 0
}

// span returns the index range of the entries of r within (t-window, t]. Caller holds the shard
// lock.
func (r *recView) span(t, window uint32) (int, int) {
	es, ew, n := r.es, r.ew, r.n()
	start := firstAfter(es, ew, n, lo(t, window))
	// first index with sec > t (usually n: the newest entries are rarely ahead of t)
	end := n
	if end > start && es[(end-1)*ew]&^failBit > t {
		end = start + firstAfter(es[start*ew:], ew, n-start, t)
	}
	return start, end
}

// firstAfter is the index of the first of the n entries of es (ew words each, in time order) with
// a second after x (n: none). A window's answer is mostly at one end of a key's list — the whole
// list for a long window, its few newest entries for a short one — so it looks there first, then
// searches what is left: most spans cost a few predictable comparisons instead of a binary
// search's unpredictable branches.
func firstAfter(es []uint32, ew, n int, x uint32) int {
	if n == 0 || es[0]&^failBit > x {
		return 0
	}
	// es[0] is at or before x; walk back from the newest while entries are after x.
	j := n
	for range spanWalk {
		if j == 1 || es[(j-1)*ew]&^failBit <= x {
			return j
		}
		j--
	}
	// Entries j… are after x, es[0] is not: the first after x is in [1, j].
	i := 1
	for i < j {
		h := int(uint(i+j) >> 1)
		if es[h*ew]&^failBit <= x {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// spanWalk is how many of the newest entries firstAfter compares before it searches.
const spanWalk = 4

// Count returns the number of attempts on key within the window (failures only if failsOnly),
// plus one if self (and, with failsOnly, selfFail). A zero key is absent (an attempt without a
// device): its count is 0.
func (s *State) Count(kind Kind, key uint64, t, window uint32, failsOnly, self, selfFail bool) int {
	var out [1]int
	s.Aggregates(kind, key, t, self, selfFail, []Agg{{Window: window, Fails: failsOnly}}, out[:])
	return out[0]
}

func selfCount(failsOnly, self, selfFail bool) int {
	if self && (!failsOnly || selfFail) {
		return 1
	}
	return 0
}

// count is a count without the attempt itself, for a key's state. Caller holds the shard lock.
func (r *recView) count(t, window uint32, failsOnly bool) int {
	i, j := r.span(t, window)
	n := 0
	if !failsOnly {
		n = j - i
	} else {
		for p := i * r.ew; p < j*r.ew; p += r.ew {
			n += int(r.es[p] >> 31)
		}
	}
	if r.old != nil {
		n += int(math.Round(r.old.count(lo(t, window), t, failsOnly)))
	}
	return n
}

// Agg is one aggregate of a key's window, for Aggregates: a count (of failures only, with Fails)
// or, with Distinct, a distinct count of member Field counting SelfMember too.
type Agg struct {
	Window     uint32
	Distinct   bool
	Fails      bool   // count: failures only
	Field      Field  // distinct: which member
	SelfMember uint32 // distinct: the attempt's own member, 0 for none
}

// Aggregates computes several aggregates of one key under one lock: out[i] is what Count (with
// self and selfFail) or Distinct would return for aggs[i]. A scorer reads every feature of a key
// it needs this way, instead of finding the key once per feature. A zero key is absent: every
// aggregate is 0, the attempt itself included (it has no such key to count under).
func (s *State) Aggregates(kind Kind, key uint64, t uint32, self, selfFail bool, aggs []Agg, out []int) {
	if key == 0 {
		clear(out[:len(aggs)])
		return
	}
	sh := s.shard(key)
	sh.mu.RLock()
	r := sh.recs[kind].view(key)
	s.aggregate(&r, t, self, selfFail, aggs, out)
	sh.mu.RUnlock()
}

// aggregate computes aggs of a key's state into out. Caller holds the shard lock.
func (s *State) aggregate(r *recView, t uint32, self, selfFail bool, aggs []Agg, out []int) {
	for i, a := range aggs {
		if a.Distinct {
			out[i] = s.distinct(r, t, a.Window, a.Field, a.SelfMember)
		} else {
			out[i] = selfCount(a.Fails, self, selfFail) + r.count(t, a.Window, a.Fails)
		}
	}
}

// KeyAggs is one key's aggregates for AggregatesOf: Out[i] receives the answer to Aggs[i] when
// Done.
type KeyAggs struct {
	Kind Kind
	Key  uint64 // 0: absent, every aggregate 0
	Aggs []Agg
	Out  []int
	Done bool // set by AggregatesOf: Out holds the answers
}

// busyEntries is the number of entries above which AggregatesOf leaves a key's distinct counts to
// the caller.
const busyEntries = 64

// maxKeysOf is the number of keys AggregatesOf reads together; more are read in groups.
const maxKeysOf = int(NumKinds) + 2

// AggregatesOf is Aggregates for several keys (an attempt's phone, IP, network, device, prefix
// and app) as of the same t, self and selfFail, in one read: the keys' shards are locked
// together, in shard order, and the keys looked up at once, so that their cache misses overlap
// instead of following one another. The answers are those of Aggregates, key by key, from one
// moment of the state.
//
// A key with distinct counts to compute that holds more than 64 entries (or a coarse tier) is
// left undone (Done false): its distinct counts cost far more than its lookup, and the
// caller, evaluating rules, may not need them (a condition before them is false). It reads such a
// key with Aggregates if and when it does.
func (s *State) AggregatesOf(t uint32, self, selfFail bool, keys []KeyAggs) {
	for len(keys) > maxKeysOf {
		s.AggregatesOf(t, self, selfFail, keys[:maxKeysOf])
		keys = keys[maxKeysOf:]
	}
	var (
		locks  lockSet
		recs   [maxKeysOf]*recTable
		hashes [maxKeysOf]uint32
		slots  [maxKeysOf]uint32
	)
	for j := range keys {
		k := &keys[j]
		k.Done = k.Key == 0
		if k.Key == 0 {
			clear(k.Out[:len(k.Aggs)])
			continue
		}
		si := shardOf(k.Key)
		recs[j] = &s.shards[si].recs[k.Kind]
		hashes[j] = recs[j].hash(k.Key)
		locks.add(si)
	}
	locks.rlock(s)
	var sink uint32
	for j, rt := range recs[:len(keys)] {
		if rt != nil {
			sink += rt.touch(hashes[j])
		}
	}
	for j, rt := range recs[:len(keys)] {
		if rt != nil {
			slots[j] = rt.findHash(keys[j].Key, hashes[j])
			if slots[j] == noSlot {
				continue
			}
			// The block's first and newest entries (viewAt reads both): on their way.
			if v := rt.val(slots[j]); metaClass(v[vMeta]) != 0 {
				sink += rt.a.w[v[vRef]]
				if n := v[vMeta] & nMask; n > 0 {
					sink += rt.a.w[v[vRef]+n*rt.ewOf(v[vMeta])-1]
				}
			}
		}
	}
	runtime.KeepAlive(sink)
	for j, rt := range recs[:len(keys)] {
		if rt == nil {
			continue
		}
		k := &keys[j]
		r := recView{ew: int(rt.ew)}
		if slots[j] != noSlot {
			r = rt.viewAt(slots[j], k.Key)
		}
		if (r.n() > busyEntries || r.old != nil) && slices.ContainsFunc(k.Aggs, func(a Agg) bool { return a.Distinct }) {
			continue
		}
		s.aggregate(&r, t, self, selfFail, k.Aggs, k.Out)
		k.Done = true
	}
	locks.runlock(s)
}

const tableSize = 4096 // > 2 × the largest DistinctCap worth having

var tablePool = sync.Pool{New: func() any { return new([tableSize]uint32) }}

// Distinct returns the number of distinct non-zero members (field f) on key within the window,
// counting selfMember (if non-zero) as well: exact up to Config.DistinctCap, a HyperLogLog
// estimate (~13% standard error) above it. A zero key is absent: 0.
func (s *State) Distinct(kind Kind, key uint64, t, window uint32, f Field, selfMember uint32) int {
	var out [1]int
	s.Aggregates(kind, key, t, false, false, []Agg{{Window: window, Distinct: true, Field: f, SelfMember: selfMember}}, out[:])
	return out[0]
}

// distinct is Distinct for a key's state (empty when the key is unknown). Caller holds the shard
// lock.
func (s *State) distinct(r *recView, t, window uint32, f Field, selfMember uint32) int {
	i, j := r.span(t, window)
	// The members: every ew-th word of ms from the first. A kind without member f (two-word
	// entries have no member b) has none.
	ms, ew := r.es[i*r.ew:j*r.ew], r.ew
	if off := 1 + int(f); off < ew && len(ms) > 0 {
		ms = ms[off:]
	} else {
		ms = nil
	}
	exact := s.distinctExact(ms, ew, selfMember)
	// Exact up to DistinctCap; above it — the exact count reached the cap, or the window reaches
	// back into the coarse tier — a HyperLogLog estimate over the entries and the buckets, never
	// below the exact count.
	from := lo(t, window)
	coarseToo := r.old != nil && (r.n() == 0 || from < r.sec(0))
	if exact < s.cfg.DistinctCap && !coarseToo {
		return exact
	}
	var h hll
	var past *hll
	var share float64
	if coarseToo {
		past, share = r.old.sketch(&h, f, from, t)
	}
	h.add(selfMember)
	prev := uint32(0)
	for p := 0; p < len(ms); p += ew {
		if m := ms[p]; m != prev { // a hot key repeats its members: hash each run once
			h.add(m)
			prev = m
		}
	}
	est := h.estimate()
	if past != nil {
		// The bucket reaching past t holds members after t too. Its members up to t are taken as
		// its share of them (as counts take its share of attempts), added to the rest, and never
		// more than the union with the whole bucket: at a share of 1, the union itself.
		whole := h
		whole.merge(past)
		est = min(est+share*past.estimate(), whole.estimate())
	}
	return max(exact, int(math.Round(est)))
}

// distinctExact counts distinct non-zero members (every ew-th word of ms from the first) and self,
// stopping at DistinctCap.
func (s *State) distinctExact(ms []uint32, ew int, selfMember uint32) int {
	limit := s.cfg.DistinctCap
	entries := (len(ms) + ew - 1) / ew

	// Small lists: compare in place, no table.
	if entries <= 16 {
		var seen [17]uint32
		n := 0
		add := func(m uint32) {
			if m == 0 {
				return
			}
			for _, x := range seen[:n] {
				if x == m {
					return
				}
			}
			seen[n] = m
			n++
		}
		add(selfMember)
		for p := 0; p < len(ms); p += ew {
			add(ms[p])
		}
		return min(n, limit)
	}

	size := 64
	for size < 2*(min(entries, limit)+1) && size < tableSize {
		size <<= 1
	}
	tab := tablePool.Get().(*[tableSize]uint32)
	defer tablePool.Put(tab)
	slots := tab[:size]
	clear(slots)
	mask := uint32(size - 1)
	n := 0
	insert := func(m uint32) bool {
		if m == 0 {
			return false
		}
		i := (m * 0x9E3779B1) & mask
		for {
			switch slots[i] {
			case m:
				return false
			case 0:
				slots[i] = m
				n++
				return true
			}
			i = (i + 1) & mask
		}
	}
	insert(selfMember)
	prev := uint32(0)
	for p := 0; p < len(ms); p += ew {
		if n >= limit {
			break
		}
		// A busy key often repeats one member (a device retrying, a NAT address with one heavy
		// user): skip runs without probing the table.
		if m := ms[p]; m != prev {
			insert(m)
			prev = m
		}
	}
	return min(n, limit)
}

// TokenSeen returns how many times the token digest was applied with an event second at or before
// t (within the retention), so that scoring an attempt again after later sightings were recorded
// gives the answer it had the first time: exact for any t up to 256 sightings of the digest (see
// tokenTable).
func (s *State) TokenSeen(token uint64, t uint32) int {
	if token == 0 {
		return 0
	}
	sh := s.shard(token)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.tokens.upTo(token, t)
}

// LastLocation returns the location of a phone's most recent located attempt strictly before
// second t, among its last locationScan attempts before t, within the retention. Every phone
// entry holds its attempt's location, so the answer is the same however many later attempts the
// state holds already (a scorer behind its feed, an attempt scored again after it was recorded).
func (s *State) LastLocation(phone uint64, t uint32) (at uint32, lat, lon float32, ok bool) {
	if phone == 0 {
		return 0, 0, 0, false
	}
	sh := s.shard(phone)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	rt := &sh.recs[KindPhone]
	i := rt.find(phone)
	if i == noSlot {
		return 0, 0, 0, false
	}
	v := rt.viewAt(i, phone)
	ew := v.ew
	if ew != int(rt.ew)+1 { // never located
		return 0, 0, 0, false
	}
	end := int(firstAtOrAfter(v.es, uint32(ew), uint32(v.n()), t))
	for j := end - 1; j >= max(0, end-locationScan); j-- {
		if e := v.es[j*ew : j*ew+ew]; e[locWord] != 0 {
			lat, lon := cellLoc(e[locWord])
			return e[0] &^ failBit, lat, lon, true
		}
	}
	return 0, 0, 0, false
}

// locationScan bounds how many of a phone's attempts LastLocation looks back through for one with
// a location: a number hammered from addresses without one (thousands of entries) costs no more
// than this.
const locationScan = 64

// lockSet is the set of shards one AggregatesOf read-locks, in shard order. Writers (Apply, the
// sweep) hold one shard lock at a time; readers that hold several take them in shard order, so a
// reader never waits for a lock (blocked by a writer queued on it) while holding one that an
// earlier-ordered reader waits for: there is no deadlock.
type lockSet struct {
	sh [maxKeysOf]uint8
	n  int
}

func (l *lockSet) add(si int) {
	i := l.n
	for i > 0 && int(l.sh[i-1]) >= si {
		if int(l.sh[i-1]) == si {
			return
		}
		i--
	}
	copy(l.sh[i+1:l.n+1], l.sh[i:l.n])
	l.sh[i] = uint8(si)
	l.n++
}

func (l *lockSet) rlock(s *State) {
	for _, si := range l.sh[:l.n] {
		s.shards[si].mu.RLock()
	}
}

func (l *lockSet) runlock(s *State) {
	for _, si := range l.sh[:l.n] {
		s.shards[si].mu.RUnlock()
	}
	l.n = 0
}
