package features

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

// tokenTable holds the sightings of token digests: a slot is the digest, the last sighting's
// second and a word packing how many seconds before it the first sighting was (20 bits), the
// sightings (6 bits) and those at the first second (6 bits): 16 bytes, for a digest that is
// nearly always seen once. A digest whose sightings do not fit (more than 62 of them, or 12 days
// between the first and the last) keeps them in the overflow map instead, its word set to
// tokenOverflow.
type tokenTable struct {
	table
	over map[uint64]tokenSeen
}

const (
	tokenDeltaBits = 20
	tokenCountBits = 6
	tokenOverflow  = ^uint32(0)
)

func newTokenTable(seed uint64) tokenTable {
	return tokenTable{table: newTable(tokenStride, seed)}
}

// get returns the sightings of key, in slot i.
func (tt *tokenTable) get(i uint32, key uint64) tokenSeen {
	v := tt.val(i)
	last, w := v[0], v[1]
	if w == tokenOverflow {
		return tt.over[key]
	}
	const mask = 1<<tokenCountBits - 1
	return tokenSeen{
		first:  last - w&(1<<tokenDeltaBits-1),
		last:   last,
		count:  w >> tokenDeltaBits & mask,
		nFirst: w >> (tokenDeltaBits + tokenCountBits) & mask,
	}
}

// set records the sightings of key, in slot i.
func (tt *tokenTable) set(i uint32, key uint64, ts tokenSeen) {
	v := tt.val(i)
	const limit = 1<<tokenCountBits - 1 // all ones is left to tokenOverflow
	if v[1] != tokenOverflow && ts.last-ts.first < 1<<tokenDeltaBits && ts.count < limit && ts.nFirst < limit {
		v[0], v[1] = ts.last, ts.last-ts.first|ts.count<<tokenDeltaBits|ts.nFirst<<(tokenDeltaBits+tokenCountBits)
		return
	}
	if tt.over == nil {
		tt.over = make(map[uint64]tokenSeen)
	}
	tt.over[key] = ts
	v[0], v[1] = ts.last, tokenOverflow
}

// lookup returns the sightings of key (none when unknown).
func (tt *tokenTable) lookup(key uint64) tokenSeen {
	if i := tt.find(key); i != noSlot {
		return tt.get(i, key)
	}
	return tokenSeen{}
}

// removeAt drops the digest in slot i.
func (tt *tokenTable) removeAt(i uint32) {
	if tt.val(i)[1] == tokenOverflow {
		delete(tt.over, tt.key(i))
	}
	tt.remove(i)
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
