package features_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/features"
)

// ApplyBatch leaves the state applying the same attempts one by one leaves: the same keys,
// entries, ids and tokens, and the same answer to every query, through windows sliding, sweeps,
// keys over the entry cap and duplicate event ids (re-delivered within a batch and across them).
func TestApplyBatchMatchesApply(t *testing.T) {
	cfg := features.Config{MaxEntriesPerKey: 64}
	one, many := features.New(cfg), features.New(cfg)
	tr1, tr2 := newTraffic(2000, 50), newTraffic(2000, 50)
	r := rand.New(rand.NewPCG(5, 5))
	var ks []features.Keys
	var flags []bool
	end := tr1.start + uint32((30 * time.Hour).Seconds())
	for tr2.last < end {
		// A batch of 1 to 300 attempts, a few of them re-delivered.
		ks = ks[:0]
		for range 1 + r.IntN(300) {
			var k features.Keys
			tr2.nextKeys(&k)
			if k.App%2 == 0 { // a large app: its addresses and number blocks counted apart
				k.AppIP, k.AppPrefix = k.IP*31+k.App, k.Prefix*31+k.App
			}
			ks = append(ks, k)
			if r.IntN(20) == 0 {
				ks = append(ks, ks[r.IntN(len(ks))])
			}
		}
		flags = append(flags[:0], make([]bool, len(ks))...)
		got := many.ApplyBatch(ks, flags)
		want := 0
		for i := range ks {
			k := ks[i]
			ok := one.Apply(&k)
			if ok {
				want++
			}
			if flags[i] != ok {
				t.Fatalf("attempt %d (event %d) of a batch: applied %v, Apply says %v", i, k.EventID, flags[i], ok)
			}
		}
		if got != want {
			t.Fatalf("ApplyBatch = %d, want %d", got, want)
		}
		if got > 0 && tr2.last%7 == 0 {
			compareStates(t, one, many, ks, tr2.last)
		}
	}
	if s1, s2 := one.Stats(), many.Stats(); s1 != s2 {
		t.Fatalf("stats differ: one by one %+v, batched %+v", s1, s2)
	}
	if s := many.Stats(); s.Keys[features.KindPhone] == 0 || s.Applied == 0 {
		t.Fatalf("nothing recorded: %+v", s)
	}
	compareStates(t, one, many, ks, tr2.last)
}

// compareStates compares the answers of two states about the keys of ks as of second now.
func compareStates(t *testing.T, a, b *features.State, ks []features.Keys, now uint32) {
	t.Helper()
	if sa, sb := a.Stats(), b.Stats(); sa != sb {
		t.Fatalf("as of %d: stats differ: one by one %+v, batched %+v", now, sa, sb)
	}
	for i := range ks {
		k := &ks[i]
		keys := [...]uint64{
			features.KindPhone: k.Phone, features.KindIP: k.IP, features.KindNet: k.Net,
			features.KindDevice: k.Device, features.KindPrefix: k.Prefix, features.KindApp: k.App,
			features.KindAppIP: k.AppIP, features.KindAppPrefix: k.AppPrefix, features.KindAppBlocks: k.App,
		}
		if len(keys) != int(features.NumKinds) {
			t.Fatalf("compareStates knows %d kinds of %d", len(keys), features.NumKinds)
		}
		for kind, key := range keys {
			for _, window := range []uint32{600, 3600, 24 * 3600} {
				ca := a.Count(features.Kind(kind), key, now, window, false, false, false)
				cb := b.Count(features.Kind(kind), key, now, window, false, false, false)
				fa := a.Count(features.Kind(kind), key, now, window, true, false, false)
				fb := b.Count(features.Kind(kind), key, now, window, true, false, false)
				da := a.Distinct(features.Kind(kind), key, now, window, features.FieldA, 0)
				db := b.Distinct(features.Kind(kind), key, now, window, features.FieldA, 0)
				if ca != cb || fa != fb || da != db {
					t.Fatalf("kind %d key %x window %d: one by one count %d fails %d distinct %d; batched %d %d %d",
						kind, key, window, ca, fa, da, cb, fb, db)
				}
			}
		}
		if x, y := a.TokenSeen(k.Token, k.T), b.TokenSeen(k.Token, k.T); x != y {
			t.Fatalf("token %x: TokenSeen one by one %d, batched %d", k.Token, x, y)
		}
		at1, lat1, lon1, ok1 := a.LastLocation(k.Phone, now+1)
		at2, lat2, lon2, ok2 := b.LastLocation(k.Phone, now+1)
		if at1 != at2 || lat1 != lat2 || lon1 != lon2 || ok1 != ok2 {
			t.Fatalf("phone %x: LastLocation one by one %d %v %v %v, batched %d %v %v %v", k.Phone, at1, lat1, lon1, ok1, at2, lat2, lon2, ok2)
		}
	}
}

// A batch's duplicate ids lose to their first occurrence, and ids seen before are refused.
func TestApplyBatchDuplicates(t *testing.T) {
	st := features.New(features.Config{})
	first := attempt(phoneA, 0, false)
	mustApply(t, st, first)
	a, b := attempt(phoneA, 1, true), attempt(phoneB, 2, false)
	again := *a
	again.Phone = phoneB
	ks := []features.Keys{*a, *first, again, *b, {T: at(3), Phone: phoneA}} // the last has no id: always applied
	applied := make([]bool, len(ks))
	if n := st.ApplyBatch(ks, applied); n != 3 {
		t.Errorf("ApplyBatch = %d, want 3", n)
	}
	if want := []bool{true, false, false, true, true}; !equalBools(applied, want) {
		t.Errorf("applied = %v, want %v", applied, want)
	}
	if got := st.Count(features.KindPhone, phoneA, at(3), 600, false, false, false); got != 3 {
		t.Errorf("phone A count = %d, want 3 (its first attempt, a and the id-less one)", got)
	}
	if got := st.Count(features.KindPhone, phoneA, at(3), 600, true, false, false); got != 1 {
		t.Errorf("phone A failures = %d, want 1", got)
	}
	if got := st.Count(features.KindPhone, phoneB, at(3), 600, false, false, false); got != 1 {
		t.Errorf("phone B count = %d, want 1 (the duplicate of a is not recorded)", got)
	}
	if n := st.ApplyBatch(nil, nil); n != 0 {
		t.Errorf("ApplyBatch(nil) = %d", n)
	}
	if n := st.ApplyBatch(ks[:1], nil); n != 0 {
		t.Errorf("ApplyBatch of an applied id = %d, want 0", n)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Batches from one writer while readers query (run with -race): the final answers are exact.
func TestConcurrentApplyBatchAndQuery(t *testing.T) {
	st := features.New(features.Config{MaxEntriesPerKey: 4096})
	const writes, size = 3000, 100
	stop := queryWhileWriting(t, st, writes, 3)
	ks := make([]features.Keys, 0, size)
	for i := range writes {
		ks = append(ks, concurrentKeys(i))
		if len(ks) == size {
			if n := st.ApplyBatch(ks, nil); n != size {
				t.Errorf("ApplyBatch = %d, want %d", n, size)
			}
			ks = ks[:0]
		}
	}
	stop()
	checkConcurrentResult(t, st, writes)
}
