package features_test

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
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

// measureSteady runs two days of traffic (perDay phones a day over ips addresses) through a
// state and measures it at the end, in its steady state: a full day of windows, entries past the
// retention pruned and idle keys swept as they go. live is the number of phones the state must
// hold (those with an attempt within the retention).
func measureSteady(perDay, ips int) (m memResult, live int) {
	before := heapAlloc()
	st := features.New(features.Config{})
	tr := newTraffic(perDay, ips)
	m.events = tr.run(st, 48*time.Hour)
	after := heapAlloc()
	m.stats, m.bytes = st.Stats(), float64(after)-float64(before)
	runtime.KeepAlive(st)
	return m, tr.live(tr.last, st.Config().Retention)
}

// memPhones is the number of phones TestMemoryPerKey measures: 200k (20k IPs; 20k and 2k under
// the race detector) unless RISKFLOW_MEM_PHONES says otherwise (e.g. 1000000 for the production
// scale of 1M phones and 100k IPs).
func memPhones() (phones, ips int) {
	phones = 200_000
	if raceEnabled {
		phones = 20_000 // the same assertions on a smaller state: the race detector is slow
	}
	if v, err := strconv.Atoi(os.Getenv("RISKFLOW_MEM_PHONES")); err == nil && v > 0 {
		phones = v
	}
	return phones, max(phones/10, 1)
}

// TestMemoryPerKey measures the heap the state takes under memWorkload (200k phones, 20k IPs;
// RISKFLOW_MEM_PHONES=1000000 for 1M phones and 100k IPs) and logs it:
// go test -run MemoryPerKey -v ./scoring/features/. The only assertion is a generous sanity bound;
// the figures are for the README and capacity planning.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 200k-phone state")
	}
	phones, ips := memPhones()

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

	// Steady state: after two days of traffic, the state holds the phones of the last day and
	// the keys idle for less than a sweep round longer (1/8 of the retention); memory per live
	// phone is what a node running for days needs.
	steady, live := measureSteady(phones, ips)
	ss := steady.stats
	t.Logf("steady state after 48 h: %d events, %d live phones, %d phone keys, %d IPs, %d nets, %d devices, %d prefixes, %d entries, %d tokens, %d event ids",
		steady.events, live, ss.Keys[features.KindPhone], ss.Keys[features.KindIP], ss.Keys[features.KindNet],
		ss.Keys[features.KindDevice], ss.Keys[features.KindPrefix], ss.Entries, ss.Tokens, ss.EventIDs)
	t.Logf("steady state: %.1f MiB: %.0f B per live phone (everything included)", steady.bytes/(1<<20), steady.bytes/float64(live))
	// Every live phone is kept, and idle ones go within a sweep round (1/8 of the retention:
	// at most 12.5% more phones at a constant arrival rate, about 6% on average; 15% allowed).
	if got := ss.Keys[features.KindPhone]; got < live || float64(got) > 1.15*float64(live) {
		t.Errorf("steady state: %d phone keys for %d live phones: want between %d and %d", got, live, live, int(1.15*float64(live)))
	}
	for name, v := range map[string]float64{"phone key": only.perPhone(), "phone, everything included": full.perPhone(),
		"live phone, steady state": steady.bytes / float64(live)} {
		if v <= 0 || v > 2048 {
			t.Errorf("%s: %.0f bytes: outside the (0, 2 KiB] sanity bound", name, v)
		}
	}
}

// BenchmarkMemory reports the same figures as metrics for a state of 200k phones and 20k IPs
// (RISKFLOW_MEM_PHONES=1000000: 1M and 100k); ns/op is the time to build the full state.
// B/phone-steady is the steady state's heap per live phone after two days of traffic.
func BenchmarkMemory(b *testing.B) {
	phones, ips := memPhones()
	var full, only memResult
	for b.Loop() {
		full = measure(phones, ips, false)
	}
	only = measure(phones, ips, true)
	steady, live := measureSteady(phones, ips)
	b.ReportMetric(steady.bytes/float64(live), "B/phone-steady")
	b.ReportMetric(only.perPhone(), "B/phone-key")
	b.ReportMetric(full.perPhone(), "B/phone-all")
	b.ReportMetric(full.bytes/float64(full.keys()), "B/key")
	b.ReportMetric(full.bytes/float64(full.events), "B/event")
}
