package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/features"
)

// MemoryResult is the feature state's memory per phone in its steady state.
type MemoryResult struct {
	PerDay     int // phones arriving a day
	IPs        int
	Events     int
	Took       time.Duration
	LivePhones int // phones with an attempt within the retention at the end
	Stats      features.Stats
	HeapBytes  uint64
}

// PerPhone is the heap per live phone, everything included (IPs, networks, devices, prefixes,
// apps, event ids, token digests).
func (r MemoryResult) PerPhone() float64 { return float64(r.HeapBytes) / float64(max(r.LivePhones, 1)) }

// Report renders the result.
func (r MemoryResult) Report(w io.Writer) {
	fmt.Fprintf(w, "State memory, steady state: %d events over 48 h (%d phones a day, 1–3 attempts each within 4 h, %d IPs) in %s\n",
		r.Events, r.PerDay, r.IPs, r.Took.Round(time.Millisecond))
	fmt.Fprintf(w, "    %d live phones (%d phone keys), %d keys in all, %d entries, %d event ids, %d tokens: heap %.0f MiB, %.0f bytes per live phone all-in (target ≤ 250)\n",
		r.LivePhones, r.Stats.Keys[features.KindPhone], keysOf(r.Stats), r.Stats.Entries, r.Stats.EventIDs, r.Stats.Tokens, mib(r.HeapBytes), r.PerPhone())
}

func keysOf(st features.Stats) int {
	n := 0
	for _, k := range st.Keys {
		n += k
	}
	return n
}

// RunMemory runs two days of traffic through a fresh scorer's state (Scorer.Apply: the feed's
// path) and measures its heap at the end, when windows have slid for a day, entries have fallen
// out of the retention and the sweep has removed idle keys as it goes: the memory a node running
// for days needs. Phones arrive at perDay a day and each verifies 1–3 times within 4 hours, from
// one of ips addresses; two thirds have a device, half the attempts a token. It stops with ctx's
// error when ctx ends (two days of a million phones a day take a minute).
func RunMemory(ctx context.Context, s *scoring.Scorer, perDay, ips int) (MemoryResult, error) {
	res := MemoryResult{PerDay: perDay, IPs: ips}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	const spread = 4 * 3600
	arrival := func(p int) int64 { return int64(p) * 86400 / int64(perDay) }
	attempts := func(p int) int { return 1 + int(mix(uint64(p)<<4|1)%3) }
	at := func(p, j int) int64 {
		if j == 0 {
			return arrival(p)
		}
		return arrival(p) + int64(mix(uint64(p)<<4|uint64(2+j))%spread)
	}
	type attempt struct {
		t    int64
		p, j int
	}
	var buf []attempt
	ev := schemas.VerifyEvent{AppID: "bench", Flow: schemas.FlowOneClickLogin, Carrier: "CM", Platform: "android"}
	var id, tok []byte
	last := int64(0)
	for hour := int64(0); hour < 48; hour++ {
		if ctx.Err() != nil {
			return res, fmt.Errorf("memory: stopped at hour %d of 48: %w", hour, ctx.Err())
		}
		from, to := hour*3600, (hour+1)*3600
		buf = buf[:0]
		p0 := int((max(from-spread, 0)*int64(perDay) + 86399) / 86400)
		p1 := int((to*int64(perDay) + 86399) / 86400)
		for p := p0; p < p1; p++ {
			for j := range attempts(p) {
				if t := at(p, j); t >= from && t < to {
					buf = append(buf, attempt{t, p, j})
				}
			}
		}
		sort.Slice(buf, func(a, b int) bool { return buf[a].t < buf[b].t || buf[a].t == buf[b].t && buf[a].p < buf[b].p })
		for i, a := range buf {
			if i%4096 == 4095 && ctx.Err() != nil {
				return res, fmt.Errorf("memory: stopped at hour %d of 48: %w", hour, ctx.Err())
			}
			h := mix(uint64(a.p)<<4 | 9 + uint64(a.j))
			id = strconv.AppendInt(append(id[:0], "m-"...), int64(a.p)<<2|int64(a.j), 36)
			ev.EventID = string(id)
			ev.TS = t0.Add(time.Duration(a.t) * time.Second)
			ev.Phone = phoneOf(a.p)
			ev.IP = ipOf(int(h >> 8 % uint64(ips)))
			ev.Outcome = schemas.OutcomeSuccess
			if h%10 == 0 {
				ev.Outcome = schemas.OutcomeFail
			}
			ev.DeviceID = ""
			if a.p%3 > 0 {
				ev.DeviceID = "dev-" + strconv.Itoa(a.p)
			}
			ev.TokenDigest = ""
			if h>>32&1 == 0 {
				tok = strconv.AppendUint(append(tok[:0], "tok-"...), h, 16)
				ev.TokenDigest = string(tok)
			}
			s.Apply(&ev)
			res.Events++
			last = a.t
		}
	}
	res.Took = time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	res.HeapBytes = after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	res.Stats = s.State().Stats()
	// Live phones: an attempt in (last-retention, last].
	ret := int64(s.State().Config().Retention / time.Second)
	for p := int((max(last-ret-spread, 0)*int64(perDay) + 86399) / 86400); arrival(p) <= last; p++ {
		for j := range attempts(p) {
			if t := at(p, j); t >= last-ret && t <= last {
				res.LivePhones++
				break
			}
		}
	}
	runtime.KeepAlive(s)
	return res, nil
}

// mix is splitmix64: a cheap stateless hash of a counter.
func mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}
