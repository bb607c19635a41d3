package features_test

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/features"
)

// heapAlloc returns HeapAlloc after two collections (the second one finishes sweeping the first).
func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// memWorkload applies traffic shaped like production to st: each phone verifies 1–3 times within
// the retention, from one of ips addresses (so each IP carries many phones), two thirds of the
// attempts with a device id, one in ten failing, and about one in three phones located. It
// returns the number of events applied.
// With phoneOnly, only the phone keys are applied (no IP, network, device, prefix, token or event
// id), which isolates the cost of a phone key.
func memWorkload(st *features.State, phones, ips int, phoneOnly bool) int {
	r := rand.New(rand.NewPCG(11, 12))
	start := features.Sec(time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC))
	addrs := make([]uint32, ips) // random IPv4 addresses: distinct /24s, mostly
	for i := range addrs {
		addrs[i] = r.Uint32()
	}
	n := 0
	for p := 0; p < phones; p++ {
		phone := r.Uint64() | 1
		device := uint64(0)
		if r.IntN(3) > 0 {
			device = r.Uint64() | 1
		}
		// 7-digit segments: about 20 numbers per segment.
		prefix := 1<<50 | uint64(1380000+r.IntN(max(phones/20, 1)))
		k := 1 + r.IntN(3)
		for j := 0; j < k; j++ {
			a := addrs[r.IntN(ips)]
			n++
			keys := features.Keys{
				EventID: r.Uint64() | 1,
				T:       start + uint32(r.IntN(20*3600)),
				Fail:    r.IntN(10) == 0,
				Phone:   phone,
				IP:      1<<40 | uint64(a),
				Net:     2<<40 | uint64(a>>8),
				Device:  device,
				Prefix:  prefix,
			}
			if r.IntN(2) == 0 {
				keys.Token = r.Uint64() | 1
			}
			if p%3 == 0 {
				keys.HasLoc, keys.Lat, keys.Lon = true, 39.9, 116.4
			}
			if phoneOnly {
				keys = features.Keys{T: keys.T, Fail: keys.Fail, Phone: phone, HasLoc: keys.HasLoc, Lat: keys.Lat, Lon: keys.Lon}
			}
			st.Apply(&keys)
		}
	}
	return n
}

// memResult is what one measurement found.
type memResult struct {
	events int
	stats  features.Stats
	bytes  float64 // HeapAlloc delta
}

func (m memResult) keys() int {
	n := 0
	for _, k := range m.stats.Keys {
		n += k
	}
	return n
}

func (m memResult) perPhone() float64 { return m.bytes / float64(m.stats.Keys[features.KindPhone]) }

func measure(phones, ips int, phoneOnly bool) memResult {
	before := heapAlloc()
	st := features.New(features.Config{})
	events := memWorkload(st, phones, ips, phoneOnly)
	after := heapAlloc()
	m := memResult{events: events, stats: st.Stats(), bytes: float64(after) - float64(before)}
	runtime.KeepAlive(st)
	return m
}

// TestMemoryPerKey measures the heap the state takes under memWorkload (200k phones, 20k IPs) and
// logs it: go test -run MemoryPerKey -v ./scoring/features/. The only assertion is a generous
// sanity bound; the figures are for the README and capacity planning.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 200k-phone state")
	}
	const phones, ips = 200_000, 20_000

	only := measure(phones, ips, true)
	t.Logf("phone keys only: %d phones, %d entries: %.1f MiB, %.0f B per phone key",
		only.stats.Keys[features.KindPhone], only.stats.Entries, only.bytes/(1<<20), only.perPhone())

	full := measure(phones, ips, false)
	st := full.stats
	t.Logf("full state: %d events, %d phones, %d IPs, %d nets, %d devices, %d prefixes, %d entries, %d tokens, %d event ids",
		full.events, st.Keys[features.KindPhone], st.Keys[features.KindIP], st.Keys[features.KindNet],
		st.Keys[features.KindDevice], st.Keys[features.KindPrefix], st.Entries, st.Tokens, st.EventIDs)
	t.Logf("full state: %.1f MiB: %.0f B per phone (everything included), %.0f B per key, %.0f B per event",
		full.bytes/(1<<20), full.perPhone(), full.bytes/float64(full.keys()), full.bytes/float64(full.events))

	if st.Keys[features.KindPhone] != phones || only.stats.Keys[features.KindPhone] != phones {
		t.Errorf("phone keys = %d / %d, want %d", only.stats.Keys[features.KindPhone], st.Keys[features.KindPhone], phones)
	}
	for name, v := range map[string]float64{"phone key": only.perPhone(), "phone, everything included": full.perPhone()} {
		if v <= 0 || v > 2048 {
			t.Errorf("%s: %.0f bytes: outside the (0, 2 KiB] sanity bound", name, v)
		}
	}
}

// BenchmarkMemory reports the same figures as metrics for a state of 200k phones and 20k IPs;
// ns/op is the time to build the full state.
func BenchmarkMemory(b *testing.B) {
	const phones, ips = 200_000, 20_000
	var full, only memResult
	for b.Loop() {
		full = measure(phones, ips, false)
	}
	only = measure(phones, ips, true)
	b.ReportMetric(only.perPhone(), "B/phone-key")
	b.ReportMetric(full.perPhone(), "B/phone-all")
	b.ReportMetric(full.bytes/float64(full.keys()), "B/key")
	b.ReportMetric(full.bytes/float64(full.events), "B/event")
}
