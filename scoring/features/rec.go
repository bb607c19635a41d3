package features

// recTable holds the keys of one kind in one shard: a table whose slots are the key, the block's
// offset and a word of metadata (entry count, block class, flags), and the arena of the blocks
// holding the entries. A slot is 16 bytes (four to a cache line, none straddling two); a key's entries cost 8 bytes each (net, device and
// prefix keys: second and phone) or 12 (phone, IP and app keys: second and two members); a phone
// whose attempts carry a location keeps it in each entry (16 bytes: flagLoc).
type recTable struct {
	table
	a         arena
	ew        uint32             // words per entry: 2 (second, member a) or 3 (and member b); +1 with flagLoc
	locs      bool               // the kind's entries may hold locations (phones)
	retention uint32             // seconds
	genMul    uint64             // a generation's reciprocal (genMulOf)
	old       map[uint64]*coarse // keys with a coarse tier (flagCoarse)
}

// Slot value words.
const (
	vRef      = iota // block offset in the arena
	vMeta            // entries (bits 0–19), class (20–26), flags (27, 28), generation (29–31)
	recStride = tableKeyWords + 2

	nMask      = 1<<20 - 1
	clsShift   = 20
	clsMask    = 1<<7 - 1
	flagLoc    = 1 << 27 // each entry holds a location word after its members (locWord)
	flagCoarse = 1 << 28 // entries beyond MaxEntriesPerKey were folded into old[key]
	genShift   = 29      // the generation of the newest entry's second (genOf)
	genMask    = 1<<3 - 1
)

// The sweep looks for keys whose newest entry fell out of the retention. Reading that entry is a
// cache miss per key (the block is anywhere in the arena), so a slot also keeps the generation of
// its newest second — the second divided by about a sixth of the retention, modulo 8 — in its
// metadata, which the sweep reads in slot order anyway: only keys whose generation is one the
// cutoff has passed since the shard's last sweep are read (State.sweep). Eight generations span
// more than the retention, so a key active now never shares its generation with the cutoff's.
// Measured on BenchmarkApply (100k phones a day), reading every key's newest entry was a tenth of
// Apply.
const genBuckets = 8 // generations told apart (genMask+1)

// genMulOf is, for a retention, the multiplier that numbers generations of a sixth of it (so at
// most six generations and a part span it, fewer than genBuckets): a second's generation is
// sec×genMul>>32 (genIndex), which the sweep computes for every insert, where a division took
// 3% of Apply. It is sec divided by the generation's length, give or take one at a boundary
// second — a generation is numbered the same wherever it is computed, and later seconds never
// have earlier generations, which is all the sweep relies on.
func genMulOf(retention uint32) uint64 {
	period := uint64(max(retention/6, 1))
	return (1<<32 + period - 1) / period
}

// genIndex is the generation of second sec (genMulOf).
func genIndex(sec uint32, mul uint64) uint32 { return uint32(uint64(sec) * mul >> 32) }

// genOf is the generation of second sec in the slot's metadata bits.
func (rt *recTable) genOf(sec uint32) uint32 { return genIndex(sec, rt.genMul) & genMask << genShift }

// genSet is the set of generations (bit g set: generation g) a key idle at cutoff may have when
// every key idle at the shard's previous cutoff, last, was removed: its newest second is in
// [last, cutoff), whose generations are those from last's to cutoff's. A key added later with an
// entry already older than last (an event late by more than the retention) has another one: it is
// found when the cutoff comes round to its generation again, within 8/6 of a retention.
func genSet(last, cutoff uint32, mul uint64) uint8 {
	lo, hi := genIndex(last, mul), genIndex(cutoff, mul)
	if last > cutoff || hi-lo >= genBuckets-1 {
		return 1<<genBuckets - 1
	}
	var set uint8
	for g := lo; g <= hi; g++ {
		set |= 1 << (g & genMask)
	}
	return set
}

// entryWords is the entry size of each kind: net, device and prefix keys only record the phone.
// Once a phone has a located attempt, its entries gain a word each, the attempt's location
// (locCell; 0 for an attempt without one), so that the location before any second is known
// (LastLocation), however far the state runs ahead of the attempt being scored; a phone never
// located pays nothing for it.
var entryWords = [NumKinds]uint32{KindPhone: 3, KindIP: 3, KindNet: 2, KindDevice: 2, KindPrefix: 2, KindApp: 3, KindAppIP: 3, KindAppPrefix: 2, KindAppBlocks: 2}

// locWord is where a located phone's entry (flagLoc) holds its location.
const locWord = 3

// locCell packs a location into one word: latitude and longitude on grids of 65,535 steps (about
// 300 m and 600 m at the equator, finer than the city-level locations travel is measured
// between), never 0 (no location).
func locCell(lat, lon float32) uint32 {
	grid := func(v, span float32) uint32 {
		x := (v + span/2) / span * 65534
		return uint32(min(max(x, 0), 65534)+0.5) + 1
	}
	return grid(lat, 180)<<16 | grid(lon, 360)
}

// cellLoc is the location of a cell (locCell).
func cellLoc(c uint32) (lat, lon float32) {
	deg := func(g uint32, span float32) float32 { return float32(g-1)/65534*span - span/2 }
	return deg(c>>16, 180), deg(c&0xffff, 360)
}

func newRecTable(kind Kind, seed uint64, retention uint32) recTable {
	return recTable{table: newTable(recStride, seed), ew: entryWords[kind], locs: kind == KindPhone, retention: retention, genMul: genMulOf(retention)}
}

// ewOf is the entry size of a key with slot metadata meta.
func (rt *recTable) ewOf(meta uint32) uint32 {
	if meta&flagLoc != 0 {
		return rt.ew + 1
	}
	return rt.ew
}

func metaClass(meta uint32) uint32 { return meta >> clsShift & clsMask }

// capOf is the number of entries of ew words a block of class c holds. A block holds the entries
// one after the other, so that inserting one touches one cache line.
func capOf(c, ew uint32) uint32 {
	if c == 0 {
		return 0
	}
	return classWords[c] / ew
}

// recView is a key's state for queries: its live entries (ew words each: the second with the
// failure bit, member a and, for three- and five-word kinds, member b; two-word kinds have no
// member b: it is always 0) and its coarse tier (nil: none). The slices alias the arena: valid
// under the shard lock only.
type recView struct {
	es  []uint32
	ew  int
	cnt int // entries: len(es)/ew, kept so that queries do not divide
	old *coarse
}

// n is the number of entries.
func (v *recView) n() int { return v.cnt }

// sec is the second of entry i.
func (v *recView) sec(i int) uint32 { return v.es[i*v.ew] &^ failBit }

// view returns the state of key, empty when the key is unknown.
func (rt *recTable) view(key uint64) recView {
	i := rt.find(key)
	if i == noSlot {
		return recView{ew: int(rt.ew)}
	}
	return rt.viewAt(i, key)
}

func (rt *recTable) viewAt(i uint32, key uint64) recView {
	val := rt.val(i)
	ref, meta := val[vRef], val[vMeta]
	n, ew := meta&nMask, rt.ewOf(meta)
	es := rt.a.w[ref : ref+n*ew : ref+n*ew]
	// Entries that fell out of the retention but were not dropped yet are left out.
	stale := staleCount(es, ew, n, rt.retention)
	v := recView{es: es[stale*ew:], ew: int(ew), cnt: int(n - stale)}
	if meta&flagCoarse != 0 {
		v.old = rt.old[key]
	}
	return v
}

// staleCount is the number of the n entries of es (ew words each, in time order) older than the
// newest by more than the retention.
func staleCount(es []uint32, ew, n, retention uint32) uint32 {
	if n == 0 {
		return 0
	}
	newest := es[(n-1)*ew] &^ failBit
	if newest <= retention || es[0]&^failBit >= newest-retention {
		return 0
	}
	return firstAtOrAfter(es, ew, n, newest-retention)
}

// firstAtOrAfter is the index of the first of the n entries of es with a second at or after from.
func firstAtOrAfter(es []uint32, ew, n, from uint32) uint32 {
	i, j := uint32(0), n
	for i < j {
		h := (i + j) / 2
		if es[h*ew]&^failBit < from {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// alloc returns a block of class c. When the arena is full it is compacted if an eighth of it is
// free blocks (every block moves: offsets read from slots before are stale), else it grows.
func (rt *recTable) alloc(c uint32) uint32 {
	if off := rt.a.alloc(c); off != noSlot {
		return off
	}
	need := int(classWords[c])
	if rt.a.freeWords*arenaCompactDen >= len(rt.a.w) {
		rt.compact(need)
	} else {
		rt.a.grow(need)
	}
	return rt.a.alloc(c)
}

// compact copies every block into a new arena with room for need more words, in slot order, and
// forgets the free blocks.
func (rt *recTable) compact(need int) {
	size := len(rt.a.w) - rt.a.freeWords + need
	w := allocWords(nil, max(size+size/arenaGrowDen, arenaMinWords))
	for p := uint32(0); p < uint32(len(rt.w)); p += rt.stride {
		if rt.w[p]|rt.w[p+1] == 0 {
			continue
		}
		v := rt.w[p+tableKeyWords : p+rt.stride]
		if c := metaClass(v[vMeta]); c != 0 {
			ref := v[vRef]
			v[vRef] = uint32(len(w))
			w = append(w, rt.a.w[ref:ref+classWords[c]]...)
		}
	}
	rt.a.w = w
	rt.a.forget()
}

// widen gives the key in slot i (a phone's) a location word in each entry (flagLoc), 0 in those
// it has: its first located attempt is being added.
func (rt *recTable) widen(i uint32) {
	val := rt.val(i)
	meta := val[vMeta]
	n := meta & nMask
	if n == 0 {
		val[vMeta] = meta | flagLoc
		return
	}
	ew := rt.ew
	c := classFor(n * (ew + 1))
	nref := rt.alloc(c) // may move every block: read the slot after it
	val = rt.val(i)
	ref, oc := val[vRef], metaClass(val[vMeta])
	w := rt.a.w
	for j := range n {
		copy(w[nref+j*(ew+1):][:ew], w[ref+j*ew:][:ew])
		w[nref+j*(ew+1)+ew] = 0
	}
	rt.a.release(ref, oc)
	val[vRef], val[vMeta] = nref, val[vMeta]&^(clsMask<<clsShift)|c<<clsShift|flagLoc
}

// relayout moves the block of slot i, holding n entries, to a block of class c and records it in
// the slot. The old block is freed.
func (rt *recTable) relayout(i, meta, n, c uint32) {
	nref := rt.alloc(c) // may move every block: read the slot after it
	val := rt.val(i)
	ref, oldMeta := val[vRef], val[vMeta]
	if oc := metaClass(oldMeta); oc != 0 {
		w, ew := rt.a.w, rt.ewOf(oldMeta)
		copyWords(w[nref:nref+n*ew], w[ref:ref+n*ew])
		rt.a.release(ref, oc)
	}
	val[vRef], val[vMeta] = nref, meta&^(clsMask<<clsShift|nMask)|c<<clsShift|n
}

// copyWords copies src to dst (the same length, not overlapping): a loop for the few words of
// most blocks, which beats a call to memmove.
func copyWords(dst, src []uint32) {
	if len(src) > 16 {
		copy(dst, src)
		return
	}
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = v
	}
}

// prepare finds (or inserts) key's slot for add.
func (rt *recTable) prepare(key uint64, h uint32) uint32 {
	i, _ := rt.upsertHash(key, h)
	return i
}

// add inserts one entry (second with the failure bit e, members a and b) into the list of key,
// in slot i (see prepare), in time order. A located attempt (loc non-nil) of a phone gives its
// entries a location word (widen), which then holds each attempt's location (0: none).
//
// Entries that fell out of the retention (older than the key's newest entry by more than the
// retention) are not dropped at once: views leave them out, and they are dropped when the block
// is full, before it would grow, so that a busy key does not shift its whole list at every
// insert. Live entries beyond MaxEntriesPerKey are folded into the coarse tier at once.
func (rt *recTable) add(s *State, i uint32, key uint64, e, a, b uint32, loc *Keys) {
	val := rt.val(i)
	meta := val[vMeta]
	if loc != nil && rt.locs && meta&flagLoc == 0 {
		rt.widen(i)
		meta = val[vMeta]
	}
	ew, n := rt.ewOf(meta), meta&nMask
	t := e &^ failBit
	if c := capOf(metaClass(meta), ew); n == c {
		// Full: drop what fell out of the retention (relative to the newest entry once this one
		// is in), then move to a block of the size needed.
		if n > 0 {
			n -= rt.drop(key, val, max(t, rt.a.w[val[vRef]+(n-1)*ew]&^failBit), 0)
		}
		if nc := classFor((n + 1) * ew); n == c || classWords[nc] <= classWords[metaClass(meta)]/2 {
			rt.relayout(i, meta, n, nc)
			meta = val[vMeta]
		}
	}
	ref := val[vRef]
	es := rt.a.w[ref : ref+(n+1)*ew : ref+(n+1)*ew]
	p := n * ew
	if n > 0 && es[p-ew]&^failBit > t {
		// Out of order: usually one step back for a phone, further for a busy key (an app with
		// jittered clocks), so search for the first entry after t.
		lo, hi := uint32(0), n
		for lo < hi {
			h := (lo + hi) / 2
			if es[h*ew]&^failBit <= t {
				lo = h + 1
			} else {
				hi = h
			}
		}
		p = lo * ew
		copy(es[p+ew:], es[p:n*ew])
	}
	es[p], es[p+1] = e, a
	if ew >= 3 {
		es[p+2] = b
	}
	if meta&flagLoc != 0 {
		es[p+locWord] = 0
		if loc != nil {
			es[p+locWord] = locCell(loc.Lat, loc.Lon)
		}
	}
	n++
	val[vMeta] = meta&^(nMask|genMask<<genShift) | n | rt.genOf(es[(n-1)*ew]&^failBit)
	if limit := uint32(s.cfg.MaxEntriesPerKey); n > limit {
		// Over the cap unless enough fell out of the retention: the oldest live entries move to
		// the coarse tier instead of being forgotten, an eighth of the cap at a time so that a
		// hot key does not shift its whole list per insert.
		if meta&flagCoarse == 0 && n-staleCount(es, ew, n, rt.retention) > limit {
			if rt.old == nil {
				rt.old = make(map[uint64]*coarse)
			}
			rt.old[key] = newCoarse(rt.retention)
			val[vMeta] |= flagCoarse
		}
		rt.drop(key, val, es[(n-1)*ew]&^failBit, limit)
	}
}

// drop removes from the block of key (slot value val) the entries older than newest by more than
// the retention and, with a limit, folds the oldest live entries beyond it into the coarse tier
// (which must exist). It returns the number of entries removed.
func (rt *recTable) drop(key uint64, val []uint32, newest, limit uint32) uint32 {
	ref, meta := val[vRef], val[vMeta]
	n, ew := meta&nMask, rt.ewOf(meta)
	es := rt.a.w[ref : ref+n*ew]
	var d uint32
	if newest > rt.retention && es[0]&^failBit < newest-rt.retention {
		d = firstAtOrAfter(es, ew, n, newest-rt.retention)
	}
	if limit > 0 && n-d > limit {
		over := min(max(n-d-limit, limit/8), n-d-1)
		rt.old[key].fold(es[d*ew:(d+over)*ew], int(ew))
		d += over
	}
	if d > 0 {
		copy(es, es[d*ew:])
		val[vMeta] = meta&^nMask | (n - d)
	}
	return d
}

// entries counts the live entries of every key (those a view shows).
func (rt *recTable) entries() int {
	n := 0
	for p := uint32(0); p < uint32(len(rt.w)); p += recStride {
		v := rt.w[p+tableKeyWords : p+recStride]
		if k := v[vMeta] & nMask; k > 0 {
			base, ew := v[vRef], rt.ewOf(v[vMeta])
			n += int(k - staleCount(rt.a.w[base:base+k*ew], ew, k, rt.retention))
		}
	}
	return n
}

// newestAt is the second of the newest entry of the key in slot i, the one the sweep compares with
// its cutoff (0 for a key without entries). Entries are dropped oldest first and never the
// newest, so it is the key's last activity.
func (rt *recTable) newestAt(i uint32) uint32 {
	val := rt.val(i)
	n := val[vMeta] & nMask
	if n == 0 {
		return 0
	}
	return rt.a.w[val[vRef]+(n-1)*rt.ewOf(val[vMeta])] &^ failBit
}

// idle appends to keys the keys whose newest entry is before cutoff, among those without entries
// and those of the generations in gens (see genSet); the others' newest entries are not read.
func (rt *recTable) idle(keys []uint64, cutoff uint32, gens uint8) []uint64 {
	for i := uint32(0); i < rt.cap; i++ {
		p := i * rt.stride
		if rt.w[p]|rt.w[p+1] == 0 {
			continue
		}
		if meta := rt.w[p+tableKeyWords+vMeta]; meta&nMask != 0 && gens&(1<<(meta>>genShift&genMask)) == 0 {
			continue
		}
		if rt.newestAt(i) < cutoff {
			keys = append(keys, rt.key(i))
		}
	}
	return keys
}

// removeAt drops the key in slot i with its block and coarse tier.
func (rt *recTable) removeAt(i uint32) {
	val := rt.val(i)
	if c := metaClass(val[vMeta]); c != 0 {
		rt.a.release(val[vRef], c)
	}
	if val[vMeta]&flagCoarse != 0 {
		delete(rt.old, rt.key(i))
	}
	rt.remove(i)
}
