package features_test

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/features"
)

// AggregatesOf answers, key by key, what Aggregates answers: small keys, unknown and absent (zero)
// keys, several keys of one shard, and more keys than one read takes; busy keys (past the entry
// cap, with distinct counts asked) are left undone.
func TestAggregatesOfMatchesAggregates(t *testing.T) {
	s := features.New(features.Config{MaxEntriesPerKey: 64, DistinctCap: 16})
	r := rand.New(rand.NewPCG(5, 6))
	for range 8000 {
		s.Apply(&features.Keys{
			EventID: nextID.Add(1), T: base + uint32(r.IntN(7200)), Fail: r.IntN(4) == 0,
			Phone: uint64(1 + r.IntN(300)), IP: ipA + uint64(r.IntN(3)), Net: netA, Prefix: prefA,
			Device: uint64(1 + r.IntN(50)), App: 7,
		})
	}
	aggs := []features.Agg{
		{Window: 600}, {Window: 3600, Fails: true}, {Window: 86400},
		{Window: 600, Distinct: true, Field: features.FieldA, SelfMember: 77},
		{Window: 86400, Distinct: true, Field: features.FieldB},
	}
	type kk struct {
		kind features.Kind
		key  uint64
	}
	all := []kk{
		{features.KindPhone, 5}, {features.KindIP, ipA}, {features.KindNet, netA}, {features.KindDevice, 17},
		{features.KindPrefix, prefA}, {features.KindApp, 7}, {features.KindDevice, 0}, {features.KindPhone, 999999},
		{features.KindPhone, 6}, {features.KindPhone, 7}, {features.KindIP, ipA + 2}, {features.KindDevice, 3},
	}
	for n := 1; n <= len(all); n++ {
		for _, at := range []uint32{base + 10, base + 3000, base + 7300} {
			for _, self := range []bool{false, true} {
				batch := make([]features.KeyAggs, n)
				for j, k := range all[:n] {
					batch[j] = features.KeyAggs{Kind: k.kind, Key: k.key, Aggs: aggs, Out: make([]int, len(aggs))}
					for i := range batch[j].Out {
						batch[j].Out[i] = -1 // must be overwritten, zero keys too
					}
				}
				s.AggregatesOf(at, self, self, batch)
				want := make([]int, len(aggs))
				for j, k := range all[:n] {
					s.Aggregates(k.kind, k.key, at, self, self, aggs, want)
					// Phones hold about 27 entries each; the app's 8000 attempts went past the cap.
					if small, busy := k.kind == features.KindPhone || k.key == 0, k.kind == features.KindApp; small && !batch[j].Done || busy && batch[j].Done {
						t.Fatalf("%d keys, key %d (kind %d %d): Done %v", n, j, k.kind, k.key, batch[j].Done)
					}
					if !batch[j].Done {
						continue
					}
					for i := range aggs {
						if batch[j].Out[i] != want[i] {
							t.Fatalf("%d keys, key %d (kind %d %d) at +%d self %v agg %+v: AggregatesOf %d, Aggregates %d",
								n, j, k.kind, k.key, at-base, self, aggs[i], batch[j].Out[i], want[i])
						}
					}
				}
			}
		}
	}
}

// Several writers (Apply locks all the shards of an attempt at once), readers reading keys
// together (AggregatesOf) and one by one, and snapshots, all at once (run with -race): nothing
// deadlocks, and the final counts are exact.
func TestConcurrentWritersAndBatchedReaders(t *testing.T) {
	st := features.New(features.Config{Retention: time.Hour, MaxEntriesPerKey: 256})
	const writers, perWriter = 3, 4000
	var wg, readers sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for i := range perWriter {
				k := &features.Keys{EventID: uint64(w*perWriter + i + 1), T: at(i % 3000), Phone: uint64(1 + r.IntN(64)),
					IP: ipA, Net: netA, Device: uint64(100 + r.IntN(16)), Prefix: prefA, App: 9,
					Token: uint64(1 + r.IntN(200)), HasLoc: i%4 == 0, Lat: 1, Lon: 2}
				if !st.Apply(k) {
					t.Errorf("Apply(%d) = false", k.EventID)
				}
			}
		}()
	}
	for g := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(g), 4))
			aggs := []features.Agg{{Window: 600}, {Window: 3600, Distinct: true, Field: features.FieldA}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				batch := []features.KeyAggs{
					{Kind: features.KindPhone, Key: uint64(1 + r.IntN(64)), Aggs: aggs, Out: make([]int, 2)},
					{Kind: features.KindIP, Key: ipA, Aggs: aggs, Out: make([]int, 2)},
					{Kind: features.KindDevice, Key: uint64(100 + r.IntN(16)), Aggs: aggs, Out: make([]int, 2)},
					{Kind: features.KindPrefix, Key: prefA, Aggs: aggs, Out: make([]int, 2)},
					{Kind: features.KindApp, Key: 9, Aggs: aggs, Out: make([]int, 2)},
				}
				st.AggregatesOf(at(3000), true, false, batch)
				st.TokenSeen(uint64(1+r.IntN(200)), at(3000))
				st.LastLocation(uint64(1+r.IntN(64)), at(3000))
				st.Seen(uint64(1 + r.IntN(writers*perWriter)))
				if r.IntN(50) == 0 {
					st.Stats()
				}
				if r.IntN(200) == 0 {
					var buf bytes.Buffer
					if _, err := st.WriteSnapshot(&buf, func() []byte { return nil }); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	// Each writer spread its attempts over (0, 3000): all of them are within the hour.
	if got := st.Count(features.KindIP, ipA, at(3000), 3600, false, false, false); got != writers*perWriter {
		t.Errorf("Count = %d, want %d", got, writers*perWriter)
	}
	// Past the entry cap: a HyperLogLog estimate of the 16 devices.
	if got := st.Distinct(features.KindIP, ipA, at(3000), 3600, features.FieldB, 0); got < 12 || got > 20 {
		t.Errorf("distinct devices = %d, want about 16", got)
	}
	if s := st.Stats(); s.Applied != writers*perWriter || s.EventIDs != writers*perWriter {
		t.Errorf("stats %+v", s)
	}
}
