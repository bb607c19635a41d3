package scoring_test

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// The performance target (scoring ≤ 5 µs per event per core and ≤ 3× the decode cost, no
// allocations on the steady-state path) is measured by running, in one invocation:
//
//	go test -run '^$' -bench 'DecodeEvent$|Process$|Check$' -benchmem ./scoring/
//
// BenchmarkDecodeEvent decodes a typical full event; BenchmarkProcess scores and records that
// event with the default pack against a state warmed with 100k phones and 10k IPs (geo on, from
// the geotest fixture); BenchmarkCheck scores a request against the same state. Every Process
// iteration carries a fresh event id and token digest (a repeated id would be a duplicate and a
// repeated token a replay) and a phone, IP and device of the warmed population, so keys stay at a
// realistic size instead of one key growing to MaxEntriesPerKey.

// fullEventJSON is a typical event as verify services publish it.
const fullEventJSON = `{
  "schema": "1.0",
  "event_id": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
  "ts": 1773482400000,
  "app_id": "app-7c41d9",
  "flow": "one_click_login",
  "phone": "+8613812348000",
  "ip": "39.156.66.10",
  "carrier": "CM",
  "platform": "android",
  "device_id": "a3f9e2c1d4b5a6f7e8d9c0b1a2f3e4d5",
  "outcome": "success",
  "error_code": "",
  "token_digest": "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
  "ex_id": "order-20250314-000123"
}`

const (
	benchPhones = 100_000
	benchIPs    = 10_000
)

// benchWorld is the warmed scorer shared by the benchmarks (built once: warming takes a second).
type benchWorld struct {
	s    *scoring.Scorer
	pop  *population
	end  time.Time // newest warm event
	base schemas.VerifyEvent
	gap  time.Duration // between warm events on average: the warm traffic's rate
}

var (
	worldOnce sync.Once
	world     *benchWorld
)

// getWorld returns the shared warmed world, for benchmarks that only read it (Check).
func getWorld(b *testing.B) *benchWorld {
	worldOnce.Do(func() { world = newWorld(b) })
	if world == nil {
		b.Fatal("bench world not built")
	}
	return world
}

// newWorld builds a warmed world. Benchmarks that record their events (Process) take a fresh one
// per call: a shared world would keep growing, and every later run (and benchmark) would measure
// a bigger state than the one before.
func newWorld(b *testing.B) *benchWorld { return newWorldOf(b, benchPhones, benchIPs) }

// newWorldOf is newWorld with another population: phones numbers over ips addresses.
func newWorldOf(b *testing.B, phones, ips int) *benchWorld {
	base, err := schemas.DecodeEvent([]byte(fullEventJSON))
	if err != nil {
		b.Fatalf("decode: %v", err)
	}
	w := &benchWorld{pop: newPopulation(phones, ips), base: base, end: base.TS}
	w.s = newScorer(b, scoring.Config{}, nil, scoring.WithGeo(fixtureGeo(b, nil)),
		scoring.WithClock(func() time.Time { return w.end }))
	n := w.pop.warm(b, w.s, w.end)
	w.gap = time.Hour / time.Duration(n)
	return w
}

func BenchmarkDecodeEvent(b *testing.B) {
	data := []byte(fullEventJSON)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := schemas.DecodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

// benchEvents precomputes n events: the decoded full event with a fresh id and token, and a
// phone, IP and device of the population, gap apart after the warm data.
func benchEvents(w *benchWorld, n int, seed uint64, gap time.Duration) []schemas.VerifyEvent {
	r := rand.New(rand.NewPCG(seed, 99))
	evs := make([]schemas.VerifyEvent, n)
	var tok [32]byte
	for i := range evs {
		ev := w.base
		j := r.IntN(len(w.pop.phones))
		ev.EventID = fmt.Sprintf("bench-%d-%d", seed, i)
		// Copies, laid out in iteration order like the rest of the event: a decoded event's
		// strings are fresh in cache, the population's are not.
		ev.Phone = strings.Clone(w.pop.phones[j])
		ev.Carrier = w.pop.carriers[j]
		ev.DeviceID = strings.Clone(w.pop.devices[j])
		ev.IP = w.pop.ip(r, j)
		ev.TS = w.end.Add(time.Duration(i) * gap)
		for k := range tok {
			tok[k] = byte(r.Uint32())
		}
		ev.TokenDigest = hex.EncodeToString(tok[:])
		evs[i] = ev
	}
	return evs
}

var benchSeed uint64

// BenchmarkProcess continues the warm traffic at its own rate (about 55 events/s over 100k
// phones: each number verifies about twice an hour), so that the state and the verdicts stay
// alike however many iterations run.
//
// BenchmarkProcessLargeState is the same over 1M phones and 100k addresses (each number still
// verifies about twice an hour, so its lists are as long): ten times the keys, a state of a few
// hundred MB against BenchmarkProcess's few tens (at ~230 B a phone), which a server's last-level
// cache (32 MB on the project's machine) largely holds. The difference between the two is what
// cache misses cost Process; warming it takes about ten seconds per run.
func BenchmarkProcess(b *testing.B) {
	w := newWorld(b)
	benchProcess(b, w, w.gap)
}

func BenchmarkProcessLargeState(b *testing.B) {
	w := newWorldOf(b, 1_000_000, 100_000)
	benchProcess(b, w, w.gap)
}

// BenchmarkProcessBurst scores events 1 ms apart: 18 times the warm rate, every number verifying
// every 100 s, so velocity rules match most events (hits, reasons and detail to build) and keys
// grow with the iterations.
func BenchmarkProcessBurst(b *testing.B) {
	w := newWorld(b)
	benchProcess(b, w, time.Millisecond)
}

// BenchmarkProcessFed is BenchmarkProcess as a scorer runs it: its full-state feed has applied
// each batch of 256 events (ApplyBatch, not timed: BenchmarkFeedApply measures it) before they
// are scored, so Process finds every event recorded already and only scores it and builds its
// record. A scorer's CPU per event is about this, plus the feed's apply, plus decoding twice.
func BenchmarkProcessFed(b *testing.B) {
	w := newWorld(b)
	benchSeed++
	evs := benchEvents(w, b.N, benchSeed, w.gap)
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	cpu, feed := cpuTime(), int64(0)
	for from := 0; from < len(evs); from += 256 {
		batch := evs[from:min(from+256, len(evs))]
		b.StopTimer()
		c := cpuTime()
		if n := w.s.ApplyBatch(batch, nil); n != len(batch) {
			b.Fatalf("the feed applied %d of %d events", n, len(batch))
		}
		feed += cpuTime() - c
		b.StartTimer()
		for i := range batch {
			if _, err := w.s.Process(&batch[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if cpu >= 0 {
		b.ReportMetric(float64(cpuTime()-cpu-feed)/float64(b.N), "cpu-ns/op")
	}
}

func benchProcess(b *testing.B, w *benchWorld, gap time.Duration) {
	benchSeed++
	evs := benchEvents(w, b.N, benchSeed, gap)
	runtime.GC() // the previous run's world is garbage: not this run's to collect
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := range evs {
		if _, err := w.s.Process(&evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// reportCPU reports the process's CPU time per iteration since cpu (cpuTime) as cpu-ns/op: on a
// machine shared with other work it is steadier than ns/op, which counts waiting for a core.
func reportCPU(b *testing.B, cpu int64) {
	if cpu >= 0 {
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	}
}

func BenchmarkCheck(b *testing.B) {
	w := getWorld(b)
	const ring = 1 << 14
	evs := benchEvents(w, ring, 7, w.gap)
	reqs := make([]schemas.CheckRequest, ring)
	for i, ev := range evs {
		reqs[i] = schemas.CheckRequest{Phone: ev.Phone, IP: ev.IP, Carrier: ev.Carrier, AppID: ev.AppID,
			Flow: ev.Flow, Platform: ev.Platform, DeviceID: ev.DeviceID, TokenDigest: ev.TokenDigest, ExID: ev.ExID}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := w.s.Check(&reqs[i&(ring-1)]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkCheckWhileApplying is Check from parallel readers (the API's handlers) while one
// writer applies events as fast as it can (the replica feed catching up): how much the writer's
// locks cost the readers. The writer's events are the Process benchmark's, so the state grows
// realistically; it is a fresh world, not the shared one.
func BenchmarkCheckWhileApplying(b *testing.B) { benchCheckWhileApplying(b, 1, false) }

// BenchmarkCheckWhileFeeding is BenchmarkCheckWhileApplying with the writer held to one applied
// event per four checks (a rate both writers keep up with), so that readers are compared at the
// same feed rate: one-by-one applies each
// event with Scorer.Apply, batch=256 applies them 256 at a time with Scorer.ApplyBatch (a
// catching-up feed's batches: a shard lock held for up to 16 inserts instead of one).
func BenchmarkCheckWhileFeeding(b *testing.B) {
	b.Run("one-by-one", func(b *testing.B) { benchCheckWhileApplying(b, 1, true) })
	b.Run("batch=256", func(b *testing.B) { benchCheckWhileApplying(b, 256, true) })
}

// checksPerApply paces BenchmarkCheckWhileFeeding's writer.
const checksPerApply = 4

func benchCheckWhileApplying(b *testing.B, batch int, paced bool) {
	w := newWorld(b)
	const ring = 1 << 14
	evs := benchEvents(w, ring, 11, w.gap)
	reqs := make([]schemas.CheckRequest, ring)
	for i, ev := range evs {
		reqs[i] = schemas.CheckRequest{Phone: ev.Phone, IP: ev.IP, Carrier: ev.Carrier, AppID: ev.AppID,
			Flow: ev.Flow, Platform: ev.Platform, DeviceID: ev.DeviceID, TokenDigest: ev.TokenDigest, ExID: ev.ExID}
	}
	feed := benchEvents(w, 200_000-200_000%batch, 12, w.gap)
	stop := make(chan struct{})
	var applied atomic.Int64
	var seq atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += batch {
			for paced && applied.Load()*checksPerApply > int64(seq.Load()) {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
			select {
			case <-stop:
				return
			default:
			}
			j := i % len(feed)
			if batch == 1 {
				w.s.Apply(&feed[j])
			} else {
				w.s.ApplyBatch(feed[j:j+batch], nil)
			}
			applied.Add(int64(batch))
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.s.Check(&reqs[seq.Add(1)&(ring-1)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(applied.Load())/float64(b.N), "applies/check")
}

// BenchmarkProcessHotKey scores events of one phone, device and IP (fresh ids): the worst case,
// where every key of the attempt sits at MaxEntriesPerKey.
func BenchmarkProcessHotKey(b *testing.B) {
	w := newWorld(b) // it records its events: not the shared world
	evs := make([]schemas.VerifyEvent, b.N)
	for i := range evs {
		evs[i] = w.base
		evs[i].EventID = fmt.Sprintf("hot-%d-%d", benchSeed, i)
		evs[i].TokenDigest = ""
		evs[i].TS = w.end.Add(time.Duration(i) * time.Millisecond)
	}
	benchSeed++
	b.ReportAllocs()
	b.ResetTimer()
	for i := range evs {
		if _, err := w.s.Process(&evs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
