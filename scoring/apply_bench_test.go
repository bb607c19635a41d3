package scoring_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/riskflow/riskflow/schemas"
)

// BenchmarkFeedApply measures what every node does with every event of verify.events: record it
// in the feature state without scoring it (the feed), against the Process benchmark's warmed
// world and with its events. one-by-one calls Scorer.Apply per event; batch=N calls
// Scorer.ApplyBatch with N events at a time. ns/op and cpu-ns/op are per event.
func BenchmarkFeedApply(b *testing.B) {
	b.Run("one-by-one", func(b *testing.B) {
		w, evs := feedWorld(b)
		b.ResetTimer()
		cpu := cpuTime()
		for i := range evs {
			w.s.Apply(&evs[i])
		}
		reportCPU(b, cpu)
	})
	for _, size := range []int{64, 256} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			w, evs := feedWorld(b)
			b.ResetTimer()
			cpu := cpuTime()
			for len(evs) > 0 {
				m := min(size, len(evs))
				if n := w.s.ApplyBatch(evs[:m], nil); n != m {
					b.Fatalf("ApplyBatch = %d, want %d", n, m)
				}
				evs = evs[m:]
			}
			reportCPU(b, cpu)
		})
	}
}

func feedWorld(b *testing.B) (*benchWorld, []schemas.VerifyEvent) {
	w := newWorld(b)
	benchSeed++
	evs := benchEvents(w, b.N, benchSeed, w.gap)
	runtime.GC()
	b.ReportAllocs()
	return w, evs
}
