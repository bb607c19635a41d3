package features

import (
	"math/rand/v2"
	"testing"
)

// span finds the entries of a window as a scan of the whole list does: lists of every length up
// to 40 entries with repeated seconds and failures, entries of two and three words, windows
// reaching before, into and past the list, and times before, inside and after it.
func TestSpanMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 41 {
		for _, ew := range []int{2, 3} {
			for range 20 {
				es := make([]uint32, n*ew)
				sec := uint32(1000 + r.IntN(50))
				for i := range n {
					sec += uint32(r.IntN(3)) // repeats, then small steps
					es[i*ew] = sec
					if r.IntN(4) == 0 {
						es[i*ew] |= failBit
					}
					es[i*ew+1] = r.Uint32()
				}
				v := recView{es: es, ew: ew, cnt: n}
				for range 30 {
					at := uint32(990 + r.IntN(n*2+80))
					window := uint32(r.IntN(n*2 + 40))
					i, j := v.span(at, window)
					wi, wj := 0, 0 // the scan: entries at or before the window's start, and at or before at
					for k := range n {
						if s := es[k*ew] &^ failBit; s <= lo(at, window) {
							wi++
						}
						if s := es[k*ew] &^ failBit; s <= at {
							wj++
						}
					}
					wj = max(wi, wj)
					if i != wi || j != wj {
						t.Fatalf("n %d ew %d at %d window %d: span [%d, %d), scan [%d, %d) in %v", n, ew, at, window, i, j, wi, wj, es)
					}
				}
			}
		}
	}
}
