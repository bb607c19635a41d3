package features_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/features"
)

// BenchmarkApply measures Apply on a state in its steady state, with -benchmem:
//
//	go test -run '^$' -bench Apply -benchmem ./scoring/features/
//
// The state is warmed with 26 hours of traffic (see traffic: phones arriving at 100k or 1M a day,
// two attempts each on average, ten phones per IP a day), so windows are full and entries and
// keys past the 24-hour retention are pruned and swept as they go. Every iteration applies the
// next attempt of the same traffic. cpu-ns/op is the process's CPU time per attempt (steadier than
// ns/op on a shared machine).
func BenchmarkApply(b *testing.B) {
	for _, phones := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("phones=%dk", phones/1000), func(b *testing.B) {
			w := applyWorldOf(phones)
			b.ReportAllocs()
			b.ResetTimer()
			cpu, gen := cpuTime(), int64(0)
			for range b.N {
				if w.tr.next >= len(w.tr.buf) {
					// Generating the next hour of traffic is the harness's work, not Apply's.
					b.StopTimer()
					c := cpuTime()
					w.tr.fill()
					gen += cpuTime() - c
					b.StartTimer()
				}
				w.tr.apply(w.st)
			}
			if cpu >= 0 {
				b.ReportMetric(float64(cpuTime()-cpu-gen)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkApplyBatch is BenchmarkApply with the attempts applied by ApplyBatch, batch at a
// time (the feed's batches); ns/op and cpu-ns/op are per attempt. The attempts continue the same
// warmed traffic as BenchmarkApply's (run alone, either starts from the same state).
func BenchmarkApplyBatch(b *testing.B) {
	for _, phones := range []int{100_000, 1_000_000} {
		for _, size := range []int{64, 256} {
			b.Run(fmt.Sprintf("phones=%dk/batch=%d", phones/1000, size), func(b *testing.B) {
				w := applyWorldOf(phones)
				ks := make([]features.Keys, 0, size)
				b.ReportAllocs()
				b.ResetTimer()
				cpu, gen := cpuTime(), int64(0)
				for i := range b.N {
					if w.tr.next >= len(w.tr.buf) {
						b.StopTimer()
						c := cpuTime()
						w.tr.fill()
						gen += cpuTime() - c
						b.StartTimer()
					}
					ks = ks[:len(ks)+1]
					w.tr.nextKeys(&ks[len(ks)-1])
					if len(ks) == size || i == b.N-1 {
						w.st.ApplyBatch(ks, nil)
						ks = ks[:0]
					}
				}
				if cpu >= 0 {
					b.ReportMetric(float64(cpuTime()-cpu-gen)/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// applyWorld is a warmed state and the traffic that continues it.
type applyWorld struct {
	st *features.State
	tr *traffic
}

var applyWorlds = map[int]*applyWorld{}

func applyWorldOf(phones int) *applyWorld {
	if w := applyWorlds[phones]; w != nil {
		return w
	}
	w := &applyWorld{st: features.New(features.Config{}), tr: newTraffic(phones, phones/10)}
	w.tr.run(w.st, 26*time.Hour)
	applyWorlds[phones] = w
	return w
}

// BenchmarkAggregatesOf measures the planned read of a scored attempt (what a Process or a Check
// reads of the state): the default pack's aggregates of its phone, IP, network, device, prefix
// and app keys, in one AggregatesOf, on the warmed state of BenchmarkApply, as of each attempt's
// own time, counting itself. Attempts cycle through a ring of the traffic that follows the warm
// state (read, never applied), so keys are as cold or warm as a stream's would be.
func BenchmarkAggregatesOf(b *testing.B) {
	w := applyWorldOf(100_000)
	ring := make([]features.Keys, 1<<12)
	tr := *w.tr // a copy: the traffic of BenchmarkApply is not consumed
	tr.buf = append([]tAttempt(nil), tr.buf...)
	for i := range ring {
		tr.nextKeys(&ring[i])
	}
	const m10, h1, h24 = 600, 3600, 86400
	plan := [...]struct {
		kind features.Kind
		aggs []features.Agg
	}{
		{features.KindPhone, []features.Agg{{Window: m10}, {Window: m10, Fails: true},
			{Window: h24, Distinct: true, Field: features.FieldA}, {Window: h24, Distinct: true, Field: features.FieldB}}},
		{features.KindIP, []features.Agg{{Window: m10}, {Window: m10, Distinct: true, Field: features.FieldA}}},
		{features.KindNet, []features.Agg{{Window: m10, Distinct: true, Field: features.FieldA}}},
		{features.KindDevice, []features.Agg{{Window: m10}, {Window: m10, Fails: true},
			{Window: m10, Distinct: true, Field: features.FieldA}, {Window: h24, Distinct: true, Field: features.FieldA}}},
		{features.KindApp, []features.Agg{{Window: m10}, {Window: h1}}},
	}
	out := make([][]int, len(plan))
	for j := range plan {
		out[j] = make([]int, len(plan[j].aggs))
	}
	batch := make([]features.KeyAggs, len(plan))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := range b.N {
		k := &ring[i&(len(ring)-1)]
		keys := [...]uint64{k.Phone, k.IP, k.Net, k.Device, k.App}
		for j, p := range plan {
			batch[j] = features.KeyAggs{Kind: p.kind, Key: keys[j], Aggs: p.aggs, Out: out[j]}
		}
		w.st.AggregatesOf(k.T, true, k.Fail, batch)
	}
	if cpu >= 0 {
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	}
}
