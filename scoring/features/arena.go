package features

import "slices"

// The entries of a kind's keys in one shard live in one arena: a pointer-free []uint32 from which
// blocks of a few size classes are carved, freed blocks kept per class for reuse. A key's slot in
// its table holds the block's offset and class; a block holds the key's entries one after the
// other, oldest first (see recTable).

// classWords[c] is the size in words of a block of class c; class 0 is "no block". Classes grow by
// one word up to 16 words, then by an eighth, so a block wastes about 6% on average.
var classWords = func() []uint32 {
	cw := []uint32{0}
	for w := uint32(2); ; {
		cw = append(cw, w)
		if w >= maxBlockWords {
			return cw
		}
		if w < 16 {
			w++
		} else {
			w += (w + 7) / 8
		}
	}
}()

const (
	// maxEntriesLimit bounds Config.MaxEntriesPerKey: a slot counts entries in 20 bits.
	maxEntriesLimit = 1<<20 - 2
	maxEntryWords   = 4 // a phone's entries
	maxBlockWords   = (maxEntriesLimit + 1) * maxEntryWords
)

// classFor returns the smallest class of at least words words.
func classFor(words uint32) uint32 {
	if words <= 2 {
		return 1
	}
	if words <= 16 {
		return words - 1
	}
	c, _ := slices.BinarySearch(classWords, words)
	return uint32(c)
}

// arena is the block allocator of one kind in one shard.
type arena struct {
	w []uint32
	// free holds, by class, the offsets of free blocks. They are kept outside the blocks so that
	// neither freeing nor reusing a block reads it (a cache miss on a cold block).
	free [][]uint32
	// freeWords is the size of the free blocks: when the arena is full, it is compacted instead of
	// grown if an eighth of it is free.
	freeWords int
}

// Arena growth: when a block does not fit, the arena is compacted if an eighth of it is free
// blocks, else copied into one an eighth larger than what it holds.
const (
	arenaGrowDen    = 8
	arenaCompactDen = 8
	arenaMinWords   = 256
)

// alloc returns the offset of a block of class c (its contents are whatever they were), or
// noSlot when the arena is full: the caller compacts or grows it (recTable.alloc).
func (a *arena) alloc(c uint32) uint32 {
	if int(c) < len(a.free) {
		if f := a.free[c]; len(f) > 0 {
			off := f[len(f)-1]
			a.free[c] = f[:len(f)-1]
			a.freeWords -= int(classWords[c])
			return off
		}
	}
	off, n := len(a.w), int(classWords[c])
	if off+n > cap(a.w) {
		return noSlot
	}
	a.w = a.w[:off+n]
	return uint32(off)
}

// release returns a block to its class's free list.
func (a *arena) release(off, c uint32) {
	if int(c) >= len(a.free) {
		a.free = append(a.free, make([][]uint32, int(c)+1-len(a.free))...)
	}
	a.free[c] = append(a.free[c], off)
	a.freeWords += int(classWords[c])
}

// forget drops every free block (the arena was compacted).
func (a *arena) forget() {
	for c := range a.free {
		a.free[c] = a.free[c][:0]
	}
	a.freeWords = 0
}

// grow makes room for n more words, copying the arena into a larger one.
func (a *arena) grow(n int) {
	size := len(a.w) + n
	a.w = allocWords(a.w, max(size+size/arenaGrowDen, arenaMinWords))
}

// allocWords returns a slice with the contents of w and a capacity of n words (at least len(w)).
// It allocates exactly that: append's growth would add a quarter more on top of the caller's own
// headroom.
func allocWords(w []uint32, n int) []uint32 {
	if n <= cap(w) {
		return w
	}
	nw := make([]uint32, len(w), n)
	copy(nw, w)
	return nw
}
