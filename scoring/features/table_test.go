package features

import (
	"math/rand/v2"
	"testing"
)

// The open-addressing table agrees with a map under random inserts, updates and removals, small
// tables (runs wrapping past the last slot) and large ones, with clustered keys too.
func TestTableAgainstMap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  int // key space
		ops   int
		seed  uint64
		dense bool // keys 1…keys (IPv4-like numeric keys) instead of random ones
	}{
		{"tiny", 12, 5000, 1, true},
		{"small", 100, 20000, 2, false},
		{"dense numeric", 3000, 100000, 3, true},
		{"large", 50000, 200000, 4, false},
	} {
		r := rand.New(rand.NewPCG(tc.seed, 7))
		tab := newTable(recStride, r.Uint64())
		ref := map[uint64]uint32{}
		space := make([]uint64, tc.keys)
		for i := range space {
			if tc.dense {
				space[i] = 1<<40 | uint64(i+1)
			} else {
				space[i] = r.Uint64() | 1
			}
		}
		for op := 0; op < tc.ops; op++ {
			key := space[r.IntN(len(space))]
			switch r.IntN(3) {
			case 0, 1: // upsert and set a value
				i, added := tab.upsert(key)
				if _, ok := ref[key]; ok == added {
					t.Fatalf("%s: op %d: upsert(%x) added=%v, map has it: %v", tc.name, op, key, added, ok)
				}
				if !added && tab.val(i)[1] != ref[key] {
					t.Fatalf("%s: op %d: value %d, want %d", tc.name, op, tab.val(i)[1], ref[key])
				}
				v := uint32(op)
				tab.val(i)[1] = v
				ref[key] = v
			case 2: // remove
				i := tab.find(key)
				if _, ok := ref[key]; ok != (i != noSlot) {
					t.Fatalf("%s: op %d: find(%x) = %d, map has it: %v", tc.name, op, key, i, ok)
				}
				if i != noSlot {
					tab.remove(i)
					delete(ref, key)
				}
			}
			if op%(97+len(ref)) == 0 || op == tc.ops-1 { // a full check costs O(keys)
				checkTable(t, &tab, ref)
			}
		}
	}
}

func checkTable(t *testing.T, tab *table, ref map[uint64]uint32) {
	t.Helper()
	if int(tab.n) != len(ref) {
		t.Fatalf("n = %d, map %d", tab.n, len(ref))
	}
	used := 0
	for i := uint32(0); i < tab.cap; i++ {
		key := tab.key(i)
		if key == 0 {
			continue
		}
		used++
		want, ok := ref[key]
		if !ok || tab.val(i)[1] != want {
			t.Fatalf("slot %d: key %x value %d, map %d (%v)", i, key, tab.val(i)[1], want, ok)
		}
		// Robin Hood order: a slot is at most one farther from its home than the slot before.
		prev := i
		if prev == 0 {
			prev = tab.cap
		}
		prev--
		if d := tab.dist(i); d > 0 && (tab.key(prev) == 0 || d > tab.dist(prev)+1) {
			t.Fatalf("slot %d: distance %d after slot %d (key %x, distance %d)", i, d, prev, tab.key(prev), tab.dist(prev))
		}
	}
	if used != len(ref) {
		t.Fatalf("%d slots used, map %d", used, len(ref))
	}
	for key, want := range ref {
		i := tab.find(key)
		if i == noSlot || tab.val(i)[1] != want {
			t.Fatalf("find(%x) = %d, want value %d", key, i, want)
		}
	}
}

// Loading a table to a given size reserves it at once; keys placed keep their values.
func TestTableReserve(t *testing.T) {
	tab := newTable(seenStride, 99)
	ref := map[uint64]uint32{}
	for i := range 1000 {
		k := uint64(i+1) * 0x9E3779B97F4A7C15
		slot, _ := tab.upsert(k)
		tab.val(slot)[0] = uint32(i)
		ref[k] = uint32(i)
	}
	tab.reserve(5000)
	if tab.cap*loadNum < 6000*loadDen {
		t.Fatalf("cap %d after reserving for 6000 keys", tab.cap)
	}
	for k, v := range ref {
		if i := tab.find(k); i == noSlot || tab.val(i)[0] != v {
			t.Fatalf("find(%x) after reserve", k)
		}
	}
}

// Token sightings, in their slot or in the overflow map, answer "how many at or before second t"
// exactly for any t (a scorer behind its feed asks before sightings recorded already), up to
// maxTokenSightings; a removed digest leaves nothing behind.
func TestTokenTableCountsAsOfAnySecond(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	tt := newTokenTable(r.Uint64())
	ref := map[uint64][]uint32{}
	base := uint32(800_000_000)
	for op := range 20000 {
		key := uint64(1 + r.IntN(300))
		var sec uint32
		switch r.IntN(4) {
		case 0: // far apart
			sec = base + uint32(r.IntN(40*86400))
		case 1: // the same second again and again
			sec = base
		default:
			sec = base + uint32(r.IntN(3600))
		}
		i, _ := tt.upsert(key)
		tt.add(i, key, sec)
		ref[key] = append(ref[key], sec)
		if op%7 == 0 { // drop one
			k := uint64(1 + r.IntN(300))
			if i := tt.find(k); i != noSlot {
				tt.removeAt(i)
				delete(ref, k)
			}
		}
	}
	over := 0
	for key, secs := range ref {
		if len(secs) > maxTokenSightings {
			continue
		}
		for _, q := range []uint32{base - 1, base, base + 1, base + 1800, base + 3599, base + 20*86400, base + 50*86400, secs[0], secs[len(secs)-1]} {
			want := 0
			for _, s := range secs {
				if s <= q {
					want++
				}
			}
			if got := tt.upTo(key, q); got != want {
				t.Fatalf("key %d (%d sightings): upTo(%d) = %d, want %d", key, len(secs), q-base, got, want)
			}
		}
		if i := tt.find(key); tt.val(i)[1] == tokenOverflow {
			over++
		}
	}
	if over == 0 || over == len(ref) || len(tt.over) < over {
		t.Errorf("%d of %d digests overflowed, %d in the overflow map: want some, not all", over, len(ref), len(tt.over))
	}
	if got := tt.upTo(100_000, base); got != 0 {
		t.Errorf("an unknown digest: %d sightings", got)
	}
	// Past maxTokenSightings, the count goes on at and after the last sighting.
	i, _ := tt.upsert(7_000_000)
	for j := range maxTokenSightings + 10 {
		tt.add(i, 7_000_000, base+uint32(j))
	}
	if got, want := tt.upTo(7_000_000, base+maxTokenSightings+20), maxTokenSightings+10; got != want {
		t.Errorf("a digest seen %d times: upTo(after the last) = %d", want, got)
	}
	if got := tt.upTo(7_000_000, base+9); got != 10 {
		t.Errorf("a digest seen %d times: upTo(its 10th second) = %d, want 10", maxTokenSightings+10, got)
	}
}

// meanDist is the average distance of t's keys from their home slots: what a lookup of a present
// key probes beyond the first slot.
func meanDist(t *table) float64 {
	var sum uint64
	for i := range t.cap {
		if t.key(i) != 0 {
			sum += uint64(t.dist(i))
		}
	}
	return float64(sum) / float64(max(t.n, 1))
}

// Numeric keys of dense ranges (number blocks, a carrier pool's addresses) spread over a shard's
// table as random keys do, whatever the state's seed: among the seeds below, 0x43b13d94a024ba93
// made a multiply-shift hash put 10,000 blocks 5.4 slots from home on average (0.03 for others).
func TestTableSpreadsNumericKeysWhateverTheSeed(t *testing.T) {
	seeds := []uint64{0x43b13d94a024ba93, 0x895f1d29d5e51378, 0xdcc62225b577bcc1}
	r := rand.New(rand.NewPCG(7, 7))
	for range 17 {
		seeds = append(seeds, r.Uint64())
	}
	for _, seed := range seeds {
		var blocks, pool [numShards]table
		for i := range numShards {
			blocks[i], pool[i] = newTable(recStride, seed), newTable(recStride, seed)
		}
		for v := uint64(1_300_000); v < 1_310_000; v++ { // number blocks 130-0000 … 130-9999
			k := 1<<50 | v
			blocks[shardOf(k)].upsert(k)
		}
		for j := range uint64(20_000) { // every third address of 223.104.0.0/16 and on
			k := 1<<40 | 223<<24 | 104<<16 + 3*j
			pool[shardOf(k)].upsert(k)
		}
		for name, tabs := range map[string]*[numShards]table{"number blocks": &blocks, "pool addresses": &pool} {
			mean := 0.0
			for i := range tabs {
				mean += meanDist(&tabs[i]) / numShards
			}
			// Random keys in tables 72–90% full: about 2.3 (a small shard's alone varies more).
			if mean > 3.5 {
				t.Errorf("seed %#x, %s: %.2f slots from home on average, want ≤ 3.5", seed, name, mean)
			}
		}
	}
}
