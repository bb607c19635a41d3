package features

// table is an open-addressing hash table of fixed-size slots keyed by a non-zero uint64: linear
// probing with Robin Hood ordering (a resident closer to its home slot gives way to one farther
// from its own), so that a lookup of an absent key stops early even at a high load, and
// backward-shift deletion (no tombstones). A slot is stride uint32 words, the key's low and high
// halves first (key 0: empty slot), the caller's value words after them. The words are one
// pointer-free slice: the garbage collector never scans them, and a slot costs its bytes and its
// share of the free space only (no bucket headers, no pointers).
//
// Capacities are not powers of two (a slot's home is a fixed-point multiply of the hash by the
// capacity), so the table grows by a quarter at a time and stays between 72% and 90% full: the
// average load is near 80% where a Go map's is near 60%.
type table struct {
	w      []uint32 // cap × stride words
	cap    uint32   // slots
	n      uint32   // used slots
	stride uint32
	seed   uint64
}

const (
	maxStride     = 6
	tableMinCap   = 8
	loadNum       = 9 // maximum load: 9/10
	loadDen       = 10
	growNum       = 5 // capacity × 5/4 on growth
	growDen       = 4
	noSlot        = ^uint32(0)
	tableKeyWords = 2
)

func newTable(stride uint32, seed uint64) table {
	return table{stride: stride, seed: seed | 1}
}

// hash spreads a key: keys are hashes already, but numeric keys such as IPv4 addresses, networks
// and number blocks are not — a shard's keys of a dense range form an arithmetic progression
// (numbers 64 apart). The key is xored with the state's random seed, so that keys cannot be
// crafted to pile up in one run of slots, then multiplied, xor-shifted and multiplied again
// (murmur3's finalizer constants), and the high half taken. A multiply-shift by the random odd
// seed alone spread such progressions by the seed's luck: over 20 seeds, 10,000 dense number
// blocks probed 0.03–5.4 slots on average (a key's distance from its home slot) and 20,000
// addresses of a carrier pool up to 10 in one shard, where random keys probe about 2.3
// (TestTableSpreadsNumericKeysWhateverTheSeed).
func (t *table) hash(key uint64) uint32 {
	x := (key ^ t.seed) * 0xff51afd7ed558ccd
	x ^= x >> 32
	return uint32(x * 0xc4ceb9fe1a85ec53 >> 32)
}

// home is the slot a key with hash h starts probing at.
func (t *table) home(h uint32) uint32 { return uint32(uint64(h) * uint64(t.cap) >> 32) }

// dist is how far slot i is from the home of the key it holds.
func (t *table) dist(i uint32) uint32 {
	p := i * t.stride
	h := t.home(t.hash(uint64(t.w[p]) | uint64(t.w[p+1])<<32))
	if i >= h {
		return i - h
	}
	return i + t.cap - h
}

// key returns the key in slot i (0: empty).
func (t *table) key(i uint32) uint64 {
	p := i * t.stride
	return uint64(t.w[p]) | uint64(t.w[p+1])<<32
}

// val returns the value words of slot i (valid until the table changes).
func (t *table) val(i uint32) []uint32 {
	p := i*t.stride + tableKeyWords
	return t.w[p : p+t.stride-tableKeyWords : p+t.stride-tableKeyWords]
}

// find returns the slot holding key, or noSlot.
func (t *table) find(key uint64) uint32 { return t.findHash(key, t.hash(key)) }

// findHash is find with the key's hash computed already.
func (t *table) findHash(key uint64, h uint32) uint32 {
	if t.n == 0 {
		return noSlot
	}
	lo, hi := uint32(key), uint32(key>>32)
	i, d := t.home(h), uint32(0)
	for {
		p := i * t.stride
		klo, khi := t.w[p], t.w[p+1]
		if klo == lo && khi == hi {
			return i
		}
		if klo|khi == 0 || t.dist(i) < d {
			return noSlot
		}
		if i++; i == t.cap {
			i = 0
		}
		d++
	}
}

// upsert returns the slot holding key, inserting it (value words zero) when absent; added
// reports an insertion. An insertion may move other slots: slot numbers taken before it are
// stale.
func (t *table) upsert(key uint64) (slot uint32, added bool) {
	return t.upsertHash(key, t.hash(key))
}

// upsertHash is upsert with the key's hash computed already.
func (t *table) upsertHash(key uint64, h uint32) (slot uint32, added bool) {
	if (t.n+1)*loadDen > t.cap*loadNum {
		t.grow()
	}
	lo, hi := uint32(key), uint32(key>>32)
	i, d := t.home(h), uint32(0)
	for {
		p := i * t.stride
		klo, khi := t.w[p], t.w[p+1]
		if klo == lo && khi == hi {
			return i, false
		}
		if klo|khi == 0 {
			t.w[p], t.w[p+1] = lo, hi
			t.n++
			return i, true
		}
		if rd := t.dist(i); rd < d {
			// The key is absent and belongs here: the residents from here on move one slot along.
			t.shiftFrom(i)
			t.w[p], t.w[p+1] = lo, hi
			clear(t.w[p+tableKeyWords : p+t.stride])
			t.n++
			return i, true
		}
		if i++; i == t.cap {
			i = 0
		}
		d++
	}
}

// touch reads the first word of the home slot of hash h, so that the cache line is on its way
// while other work goes on (see State.Apply).
func (t *table) touch(h uint32) uint32 {
	if t.cap == 0 {
		return 0
	}
	return t.w[t.home(h)*t.stride]
}

// shiftFrom moves the run of occupied slots starting at i one slot along (to the first empty
// slot), leaving slot i's old contents in slot i+1. Shifting a run keeps Robin Hood order: every
// moved key gets one slot farther from home, and the key put at i is farther than each of them
// was.
func (t *table) shiftFrom(i uint32) {
	s, w := t.stride, t.w
	j := i
	for {
		if j++; j == t.cap {
			j = 0
		}
		if p := j * s; w[p]|w[p+1] == 0 {
			break
		}
	}
	if j > i {
		copy(w[(i+1)*s:(j+1)*s], w[i*s:j*s])
		return
	}
	// The run wraps past the last slot: [i, cap) then [0, j).
	c := t.cap
	copy(w[s:(j+1)*s], w[:j*s])
	copy(w[:s], w[(c-1)*s:c*s])
	copy(w[(i+1)*s:c*s], w[i*s:(c-1)*s])
}

// remove empties slot i, moving the following slots of the run one step back towards their
// homes.
func (t *table) remove(i uint32) {
	s, w := t.stride, t.w
	// The slots to move back: those after i up to the first empty one or one at its home.
	j := i
	for {
		k := j + 1
		if k == t.cap {
			k = 0
		}
		if p := k * s; w[p]|w[p+1] == 0 || t.dist(k) == 0 {
			break
		}
		j = k
	}
	// Move (i, j] back one slot, then empty slot j.
	c := t.cap
	switch {
	case j > i:
		copy(w[i*s:j*s], w[(i+1)*s:(j+1)*s])
	case j < i: // wraps: (i, cap) then [0, j]
		copy(w[i*s:(c-1)*s], w[(i+1)*s:c*s])
		copy(w[(c-1)*s:c*s], w[:s])
		copy(w[:j*s], w[s:(j+1)*s])
	}
	clear(w[j*s : j*s+s])
	t.n--
}

// grow rehashes into a quarter more slots.
func (t *table) grow() {
	old, oldCap := t.w, t.cap
	t.alloc(max(tableMinCap, uint32(uint64(oldCap)*growNum/growDen)+1))
	s := t.stride
	for p := uint32(0); p < oldCap*s; p += s {
		if old[p]|old[p+1] != 0 {
			t.place(old[p : p+s : p+s])
		}
	}
}

// alloc replaces the slots by at least c empty ones: as many as the memory the allocator hands
// out holds.
func (t *table) alloc(c uint32) {
	w := allocWords(nil, int(c*t.stride))
	t.cap, t.n = uint32(cap(w))/t.stride, 0
	t.w = w[:t.cap*t.stride]
}

// place inserts a slot's words whose key is known to be absent (rehashing, loading).
func (t *table) place(slot []uint32) {
	s := t.stride
	i, d := t.home(t.hash(uint64(slot[0])|uint64(slot[1])<<32)), uint32(0)
	for {
		p := i * s
		if t.w[p]|t.w[p+1] == 0 || t.dist(i) < d {
			if t.w[p]|t.w[p+1] != 0 {
				// The slot belongs here: the run from here on moves one along.
				t.shiftFrom(i)
			}
			dst := t.w[p : p+s]
			for j := range dst {
				dst[j] = slot[j]
			}
			t.n++
			return
		}
		if i++; i == t.cap {
			i = 0
		}
		d++
	}
}

// reserve makes room for n more keys without growing on the way (loading a snapshot).
func (t *table) reserve(n int) {
	want := uint64(t.n) + uint64(n)
	if want*loadDen <= uint64(t.cap)*loadNum {
		return
	}
	c := uint32(want*loadDen/loadNum + 1)
	old, oldCap := t.w, t.cap
	t.alloc(max(tableMinCap, c))
	s := t.stride
	for i := uint32(0); i < oldCap; i++ {
		if p := i * s; old[p]|old[p+1] != 0 {
			t.place(old[p : p+s])
		}
	}
}

// bytes is the memory the table holds.
func (t *table) bytes() int { return 4 * cap(t.w) }
