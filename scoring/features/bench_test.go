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
