package features

import (
	"math"
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

// span returns the entries of r within (t-window, t]. Caller holds the shard lock.
func span(es []entry, t, window uint32) []entry {
	lo := lo(t, window)
	// first index with sec > lo
	i, j := 0, len(es)
	for i < j {
		h := int(uint(i+j) >> 1)
		if es[h].sec() <= lo {
			i = h + 1
		} else {
			j = h
		}
	}
	start := i
	// first index with sec > t (usually len(es): the newest entries are rarely ahead of t)
	end := len(es)
	if end > start && es[end-1].sec() > t {
		i, j := start, end
		for i < j {
			h := int(uint(i+j) >> 1)
			if es[h].sec() <= t {
				i = h + 1
			} else {
				j = h
			}
		}
		end = i
	}
	return es[start:end]
}

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

// count is a count without the attempt itself, for a key's record. Caller holds the shard lock.
func (r *rec) count(t, window uint32, failsOnly bool) int {
	n := 0
	es := span(r.entries, t, window)
	if !failsOnly {
		n = len(es)
	} else {
		for _, e := range es {
			if e.fail() {
				n++
			}
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
	r := sh.recs[kind][key]
	for i, a := range aggs {
		if a.Distinct {
			out[i] = s.distinct(&r, t, a.Window, a.Field, a.SelfMember)
		} else {
			out[i] = selfCount(a.Fails, self, selfFail) + r.count(t, a.Window, a.Fails)
		}
	}
	sh.mu.RUnlock()
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

// distinct is Distinct for a key's record (empty when the key is unknown). Caller holds the shard
// lock.
func (s *State) distinct(r *rec, t, window uint32, f Field, selfMember uint32) int {
	es := span(r.entries, t, window)
	exact := s.distinctExact(es, f, selfMember)
	// Exact up to DistinctCap; above it — the exact count reached the cap, or the window reaches
	// back into the coarse tier — a HyperLogLog estimate over the entries and the buckets, never
	// below the exact count.
	from := lo(t, window)
	coarseToo := r.old != nil && (len(r.entries) == 0 || from < r.entries[0].sec())
	if exact < s.cfg.DistinctCap && !coarseToo {
		return exact
	}
	var h hll
	if coarseToo {
		r.old.sketch(&h, f, from, t)
	}
	h.add(selfMember)
	prev := uint32(0)
	for _, e := range es {
		if m := pick(e, f); m != prev { // a hot key repeats its members: hash each run once
			h.add(m)
			prev = m
		}
	}
	return max(exact, int(math.Round(h.estimate())))
}

// distinctExact counts distinct non-zero members of es (and self), stopping at DistinctCap.
func (s *State) distinctExact(es []entry, f Field, selfMember uint32) int {
	limit := s.cfg.DistinctCap

	// Small lists: compare in place, no table.
	if len(es) <= 16 {
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
		for _, e := range es {
			add(pick(e, f))
		}
		return min(n, limit)
	}

	size := 64
	for size < 2*(min(len(es), limit)+1) && size < tableSize {
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
	for _, e := range es {
		if n >= limit {
			break
		}
		// A busy key often repeats one member (a device retrying, a NAT address with one heavy
		// user): skip runs without probing the table.
		if m := pick(e, f); m != prev {
			insert(m)
			prev = m
		}
	}
	return min(n, limit)
}

func pick(e entry, f Field) uint32 {
	if f == FieldB {
		return e.b
	}
	return e.a
}

// TokenSeen returns how many times the token digest was applied with an event second at or before
// t (within the retention), so that scoring an attempt again after later sightings were recorded
// gives the answer it had the first time. The answer is exact when t is before the first sighting,
// at it, or at or after the last one; strictly between them it is the number of sightings minus
// one (for up to three sightings at distinct seconds, exact at each sighting's own second, which
// is where the scorer asks for a re-delivered event).
func (s *State) TokenSeen(token uint64, t uint32) int {
	if token == 0 {
		return 0
	}
	sh := s.shard(token)
	sh.mu.RLock()
	ts := sh.tokens[token]
	sh.mu.RUnlock()
	return ts.upTo(t)
}

// LastLocation returns the most recent known location of a phone strictly before second t. It
// remembers the two most recent located seconds, so it answers for the newest attempt as well as
// for the one before it (an attempt scored again after it was recorded).
func (s *State) LastLocation(phone uint64, t uint32) (at uint32, lat, lon float32, ok bool) {
	if phone == 0 {
		return 0, 0, 0, false
	}
	sh := s.shard(phone)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	h := sh.recs[KindPhone][phone].loc
	if h == nil {
		return 0, 0, 0, false
	}
	for i := range h.t {
		if h.t[i] != 0 && h.t[i] < t {
			return h.t[i], h.lat[i], h.lon[i], true
		}
	}
	return 0, 0, 0, false
}
