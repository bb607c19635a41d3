package features_test

import (
	"cmp"
	"slices"
	"time"

	"github.com/riskflow/riskflow/scoring/features"
)

// traffic is a steady stream of attempts shaped like production, in event-time order: phones
// arrive at a constant rate (perDay a day), each verifies 1–3 times (two on average) within four
// hours of its first attempt and is not seen again, so that after a day the state holds about
// perDay phones and keeps that size while windows slide, entries fall out and idle keys are
// swept. Each attempt comes from one of ips addresses, two thirds of the phones have a device,
// half the attempts a token, one in ten fails, a third of the phones are located, phones fall in
// 7-digit segments of about 20 live numbers, and the traffic is spread over five apps. Everything
// derives from counters through splitmix, so a run is reproducible and costs no memory of its own.
type traffic struct {
	perDay uint64
	ips    uint64
	start  uint32 // entry second of the first arrival
	hour   uint64 // the next hour of event time to generate
	buf    []tAttempt
	next   int // index of the next attempt in buf
	k      features.Keys
	last   uint32 // second of the last attempt applied
}

const (
	trafficSpread = 4 * 3600 // seconds from a phone's first attempt to its last
	trafficChunk  = 3600     // attempts are generated an hour at a time, then sorted by time
)

func newTraffic(perDay, ips int) *traffic {
	return &traffic{perDay: uint64(perDay), ips: uint64(max(ips, 1)), start: features.Sec(time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC))}
}

// tAttempt is attempt j of phone p at offset t (seconds after the start).
type tAttempt struct {
	t uint32
	j uint32
	p uint64
}

// splitmix is a cheap stateless hash of a counter (splitmix64).
func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// arrival is the offset in seconds of phone p's first attempt.
func (tr *traffic) arrival(p uint64) uint64 { return p * 86400 / tr.perDay }

// attempts is the number of attempts of phone p and the offset of attempt j after its first.
func attempts(p uint64) uint64 { return 1 + splitmix(p<<4|1)%3 }
func attemptAt(p, j uint64) uint64 {
	if j == 0 {
		return 0
	}
	return splitmix(p<<4|2+j) % trafficSpread
}

// phonesIn returns the phone indexes whose first attempt is in [from, to) seconds.
func (tr *traffic) phonesIn(from, to uint64) (uint64, uint64) {
	first := (from*tr.perDay + 86399) / 86400
	last := (to*tr.perDay + 86399) / 86400
	return first, last
}

// fill generates the attempts of the next hour of event time, in time order.
func (tr *traffic) fill() {
	from, to := tr.hour*trafficChunk, (tr.hour+1)*trafficChunk
	tr.hour++
	tr.buf, tr.next = tr.buf[:0], 0
	p0, p1 := tr.phonesIn(max(from, trafficSpread)-trafficSpread, to)
	for p := p0; p < p1; p++ {
		a := tr.arrival(p)
		for j := range attempts(p) {
			if t := a + attemptAt(p, j); t >= from && t < to {
				tr.buf = append(tr.buf, tAttempt{t: uint32(t), j: uint32(j), p: p})
			}
		}
	}
	slices.SortFunc(tr.buf, func(x, y tAttempt) int { return cmp.Or(cmp.Compare(x.t, y.t), cmp.Compare(x.p, y.p)) })
}

// keys are the identities of attempt j of phone p at offset t.
func (tr *traffic) keys(p, j, t uint64) features.Keys {
	hp, ha := splitmix(p<<4|8), splitmix(p<<4|9+j)
	k := features.Keys{
		EventID: splitmix(p<<4|12+j) | 1,
		T:       tr.start + uint32(t),
		Fail:    ha%10 == 0,
		Phone:   hp | 1,
		Prefix:  1<<50 | 1_300_000 + hp>>20%max(tr.perDay/20, 1),
		App:     100 + hp>>40%5,
	}
	addr := uint32(splitmix(ha>>8%tr.ips<<4 | 3))
	k.IP, k.Net = 1<<40|uint64(addr), 2<<40|uint64(addr>>8)
	if hp>>8%3 > 0 {
		k.Device = splitmix(p<<4|5) | 1
	}
	if ha>>32&1 == 0 {
		k.Token = splitmix(k.EventID) | 1
	}
	if p%3 == 0 {
		k.HasLoc, k.Lat, k.Lon = true, 39.9, 116.4
	}
	return k
}

// apply applies the next attempt to st and returns its second.
func (tr *traffic) apply(st *features.State) uint32 {
	tr.nextKeys(&tr.k)
	st.Apply(&tr.k)
	return tr.k.T
}

// nextKeys sets k to the next attempt's keys.
func (tr *traffic) nextKeys(k *features.Keys) {
	for tr.next >= len(tr.buf) {
		tr.fill()
	}
	a := tr.buf[tr.next]
	tr.next++
	*k = tr.keys(a.p, uint64(a.j), uint64(a.t))
	tr.last = k.T
}

// run applies the traffic to st until its event time reaches d after the start.
func (tr *traffic) run(st *features.State, d time.Duration) int {
	end := tr.start + uint32(d/time.Second)
	n := 0
	for tr.apply(st) < end {
		n++
	}
	return n + 1
}

// live is the number of phones with an attempt in the retention ending at second now: the phones
// the state must hold.
func (tr *traffic) live(now uint32, retention time.Duration) int {
	if now <= tr.start {
		return 0
	}
	nowOff := uint64(now - tr.start)
	from := max(nowOff, uint64(retention/time.Second)) - uint64(retention/time.Second)
	p0, p1 := tr.phonesIn(max(from, trafficSpread)-trafficSpread, nowOff+1)
	n := 0
	for p := p0; p < p1; p++ {
		a := tr.arrival(p)
		for j := range attempts(p) {
			// Entries in (now-retention, now], as the sweep keeps them (a key idle for exactly the
			// retention is still there).
			if t := a + attemptAt(p, j); t >= from && t <= nowOff {
				n++
				break
			}
		}
	}
	return n
}
