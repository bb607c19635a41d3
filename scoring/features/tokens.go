package features

import "slices"

// tokenTable holds the sightings of token digests. A digest seen at one second only (nearly
// every digest: a loginToken is used once) lives in its slot: the second and how many times it
// was seen then, 16 bytes. A digest seen at two seconds or more keeps the seconds of its
// sightings, in order, in the overflow map: "how many sightings at or before second t" is then
// exact for any t — a scorer behind its feed, which has recorded a replayed token's later
// sightings already, counts the same sightings before an attempt as one that kept up. Past
// maxTokenSightings sightings a digest keeps counting (more) and its last second, without their
// seconds: a token replayed that often is a replay whatever the exact count.
type tokenTable struct {
	table
	over map[uint64]*tokenSightings
}

// tokenSightings are the sightings of a digest seen at more than one second.
type tokenSightings struct {
	secs []uint32 // in order, one per sighting (at most maxTokenSightings)
	more uint32   // sightings past maxTokenSightings, the last of them at last
	last uint32
}

// Slot value words: the last sighting's second (what the sweep compares), and the sightings at
// that second or tokenOverflow (the sightings are in the overflow map).
const (
	tokenOverflow     = ^uint32(0)
	maxTokenSightings = 256
)

func newTokenTable(seed uint64) tokenTable {
	return tokenTable{table: newTable(tokenStride, seed)}
}

// add records a sighting at second t of key, in slot i (upsert).
func (tt *tokenTable) add(i uint32, key uint64, t uint32) {
	v := tt.val(i)
	switch {
	case v[1] == 0: // new
		v[0], v[1] = t, 1
		return
	case v[1] != tokenOverflow && v[0] == t && v[1] < tokenOverflow-1:
		v[1]++
		return
	case v[1] != tokenOverflow:
		// A second second: the sightings move to the overflow map.
		ts := &tokenSightings{secs: make([]uint32, 0, min(int(v[1])+1, maxTokenSightings))}
		for range min(v[1], maxTokenSightings) {
			ts.secs = append(ts.secs, v[0])
		}
		if v[1] > maxTokenSightings {
			ts.more, ts.last = v[1]-maxTokenSightings, v[0]
		}
		if tt.over == nil {
			tt.over = make(map[uint64]*tokenSightings)
		}
		tt.over[key] = ts
		v[1] = tokenOverflow
	}
	ts := tt.over[key]
	if len(ts.secs) < maxTokenSightings {
		j, _ := slices.BinarySearch(ts.secs, t+1) // after the sightings at t: in order of arrival
		ts.secs = slices.Insert(ts.secs, j, t)
	} else {
		ts.more++
		ts.last = max(ts.last, t)
	}
	v[0] = max(v[0], t)
}

// upTo returns the number of sightings of key at or before second t.
func (tt *tokenTable) upTo(key uint64, t uint32) int {
	i := tt.find(key)
	if i == noSlot {
		return 0
	}
	v := tt.val(i)
	if v[1] != tokenOverflow {
		if t >= v[0] {
			return int(v[1])
		}
		return 0
	}
	ts := tt.over[key]
	n, _ := slices.BinarySearch(ts.secs, t+1)
	if ts.more > 0 && t >= ts.last {
		n += int(ts.more)
	}
	return n
}

// sightings returns the seconds of key's sightings (slot i) as a snapshot keeps them: the listed
// seconds, then how many more there were and the last of them.
func (tt *tokenTable) sightings(i uint32, key uint64) (secs []uint32, more, last uint32) {
	v := tt.val(i)
	if v[1] != tokenOverflow {
		return nil, v[1], v[0]
	}
	ts := tt.over[key]
	return ts.secs, ts.more, ts.last
}

// restore sets key's sightings (slot i, new) from a snapshot's secs, more and last.
func (tt *tokenTable) restore(i uint32, key uint64, secs []uint32, more, last uint32) {
	v := tt.val(i)
	if len(secs) == 0 {
		v[0], v[1] = last, more
		return
	}
	if tt.over == nil {
		tt.over = make(map[uint64]*tokenSightings)
	}
	tt.over[key] = &tokenSightings{secs: secs, more: more, last: last}
	v[0], v[1] = max(secs[len(secs)-1], last), tokenOverflow
}

// removeAt drops the digest in slot i.
func (tt *tokenTable) removeAt(i uint32) {
	if tt.val(i)[1] == tokenOverflow {
		delete(tt.over, tt.key(i))
	}
	tt.remove(i)
}
