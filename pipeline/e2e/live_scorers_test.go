//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
)

// liveEv is one event of a live stream: its time is the run's start plus off; a late one is
// uploaded with its app's batch (see playLive).
type liveEv struct {
	id, app, phone, ip, device string
	off                        time.Duration
	late                       bool
}

// liveStream is traffic as it happens: filler in four apps (rate per second for secs seconds), an
// IP farm (40 numbers from one datacenter address, one every 1.2 s), a device farm (15 numbers on
// one device), a number-block burst (20 numbers of one block within a second, spread over the
// partitions), and, when late, a fifth app whose attempts reach the topic only in uploads every
// 10 s carrying the attempts of 10–20 s before (with its own IP farm of 25 numbers).
func liveStream(secs, rate int, late bool) []liveEv {
	rng := rand.New(rand.NewPCG(7, 10))
	var evs []liveEv
	apps := []string{"lv-a", "lv-b", "lv-c", "lv-d"}
	for i := 0; i < secs*rate; i++ {
		evs = append(evs, liveEv{id: fmt.Sprintf("lfill-%05d", i), app: apps[i%4],
			phone: fmt.Sprintf("1%d%04d%04d", 35+i%4, rng.IntN(10000), rng.IntN(10000)),
			ip:    fmt.Sprintf("183.%d.%d.%d", 1+rng.IntN(60), rng.IntN(256), 1+rng.IntN(254)), device: fmt.Sprintf("ld-%d", i),
			off: time.Duration(rng.IntN(secs*1000)) * time.Millisecond})
	}
	for i := 0; i < 40; i++ {
		evs = append(evs, liveEv{id: fmt.Sprintf("ipfarm-%02d", i), app: "lv-a", phone: fmt.Sprintf("1370000%04d", i), ip: "47.92.10.20",
			off: 2*time.Second + time.Duration(i)*1200*time.Millisecond})
	}
	for i := 0; i < 15; i++ {
		evs = append(evs, liveEv{id: fmt.Sprintf("devfarm-%02d", i), app: "lv-b", phone: fmt.Sprintf("1380000%04d", i), ip: fmt.Sprintf("183.14.%d.9", i),
			device: "farm-rig-1", off: 3*time.Second + time.Duration(i)*3*time.Second})
	}
	for i := 0; i < 20; i++ {
		evs = append(evs, liveEv{id: fmt.Sprintf("pfx-%02d", i), app: "lv-c", phone: fmt.Sprintf("1351234%04d", i*37),
			ip: fmt.Sprintf("183.16.%d.%d", i, 1+rng.IntN(254)), device: fmt.Sprintf("pd-%d", i), off: 20*time.Second + time.Duration(i)*50*time.Millisecond})
	}
	if late {
		for i := 0; i < secs*rate/8; i++ {
			evs = append(evs, liveEv{id: fmt.Sprintf("late-%05d", i), app: "lv-late",
				phone: fmt.Sprintf("1%d%04d%04d", 50+i%4, rng.IntN(10000), rng.IntN(10000)),
				ip:    fmt.Sprintf("112.%d.%d.%d", 1+rng.IntN(60), rng.IntN(256), 1+rng.IntN(254)), device: fmt.Sprintf("lt-%d", i),
				off: time.Duration(rng.IntN((secs-20)*1000)) * time.Millisecond, late: true})
		}
		for i := 0; i < 25; i++ {
			evs = append(evs, liveEv{id: fmt.Sprintf("lateipfarm-%02d", i), app: "lv-late", phone: fmt.Sprintf("1390000%04d", i), ip: "47.92.12.30",
				off: 5*time.Second + time.Duration(i)*1500*time.Millisecond, late: true})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].off < evs[j].off })
	return evs
}

func (ev liveEv) message(t0 time.Time) kafka.Message {
	m := map[string]any{"event_id": ev.id, "ts": t0.Add(ev.off).UnixMilli(), "app_id": ev.app, "flow": "one_click_login",
		"phone": ev.phone, "ip": ev.ip, "carrier": "CM", "platform": "android", "outcome": "success"}
	if ev.device != "" {
		m["device_id"] = ev.device
	}
	b, _ := json.Marshal(m)
	return kafka.Message{Key: []byte(ev.phone), Value: b, Time: time.Now()}
}

// playLive produces the stream in real time: each live event at its time, the late ones in uploads
// every 10 s of the attempts from 20 to 10 s before. It returns the run's start.
func playLive(t *testing.T, e *env, evs []liveEv) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	live, late := e.writer(), e.writer()
	t0 := time.Now().Add(time.Second)
	var lives, lates []liveEv
	for _, ev := range evs {
		if ev.late {
			lates = append(lates, ev)
		} else {
			lives = append(lives, ev)
		}
	}
	done := make(chan error, 1)
	go func() {
		for k := 2; len(lates) > 0; k++ {
			up := t0.Add(time.Duration(k) * 10 * time.Second)
			time.Sleep(time.Until(up))
			var ms []kafka.Message
			for len(lates) > 0 && lates[0].off < time.Duration(k-1)*10*time.Second {
				ms = append(ms, lates[0].message(t0))
				lates = lates[1:]
			}
			if len(ms) > 0 {
				if err := late.WriteMessages(ctx, ms...); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	for len(lives) > 0 {
		time.Sleep(time.Until(t0.Add(lives[0].off)))
		var ms []kafka.Message
		for len(lives) > 0 && !t0.Add(lives[0].off).After(time.Now()) {
			ms = append(ms, lives[0].message(t0))
			lives = lives[1:]
		}
		if err := live.WriteMessages(ctx, ms...); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return t0
}

// startScorers starts n scorers of e's group, each with its own ops port, and waits until all
// have joined; it returns them and their ops addresses.
func startScorers(t *testing.T, e *env, n int) ([]*proc, []string) {
	t.Helper()
	var procs []*proc
	var addrs []string
	for i := 0; i < n; i++ {
		a := testaddr.Free(t)
		addrs = append(addrs, a)
		procs = append(procs, e.start("scorer", "--set", "ops.listen="+a))
	}
	waitAllReady(t, e, procs)
	return procs, addrs
}

type liveResult struct {
	verdicts map[string]verdict
	delay    map[string]time.Duration // scored_at − the event's Kafka stamp
	records  map[string]int
	waits    map[string]float64 // feed wait count and sum by result, over the scorers
}

// collectLive reads what a run left: the feed waits from the scorers' ops ports (addrs), the
// stamps of the first nev events and every verdict among the first nsc score records.
func collectLive(t *testing.T, e *env, addrs []string, nev, nsc int) liveResult {
	t.Helper()
	res := liveResult{verdicts: map[string]verdict{}, delay: map[string]time.Duration{}, records: map[string]int{}, waits: map[string]float64{}}
	for _, a := range addrs {
		for _, by := range []string{"stamp", "event_time"} {
			for _, r := range []string{"met", "timeout"} {
				c, _ := metricValue(t, a, `riskflow_scorer_feed_wait_seconds_count{by="`+by+`",result="`+r+`"}`)
				s, _ := metricValue(t, a, `riskflow_scorer_feed_wait_seconds_sum{by="`+by+`",result="`+r+`"}`)
				res.waits[by+"_"+r+"_count"] += c
				res.waits[by+"_"+r+"_sum"] += s
			}
		}
	}
	stamps := map[string]time.Time{}
	for _, m := range readAllPartitions(t, e.events, nev) {
		stamps[jsonField(m.Value, "event_id")] = m.Time
	}
	for _, m := range readAllPartitions(t, e.scores, nsc) {
		r, err := schemas.DecodeScoreRecord(m.Value)
		if err != nil {
			t.Fatalf("score record: %v", err)
		}
		res.records[r.EventID]++
		v := verdict{score: r.Score, counts: map[string]int{}}
		for tag, d := range r.Detail {
			v.counts[tag] = firstInt(d.Reason)
		}
		res.verdicts[r.EventID] = v
		res.delay[r.EventID] = r.ScoredAt.Sub(stamps[r.EventID])
	}
	return res
}

// runLive plays the stream through n scorers of one fresh group in real time.
func runLive(t *testing.T, n int, evs []liveEv) liveResult {
	e := newEnv(t)
	procs, addrs := startScorers(t, e, n)
	playLive(t, e, evs)
	waitEnd(t, e.scores, int64(len(evs)))
	res := collectLive(t, e, addrs, len(evs), len(evs))
	for _, p := range procs {
		p.stop(syscall.SIGTERM)
	}
	return res
}

func compareVerdicts(t *testing.T, name string, want, got map[string]verdict) int {
	diff := 0
	for id, w := range want {
		g := got[id]
		bad := g.score != w.score || len(g.counts) != len(w.counts)
		for tag, c := range w.counts {
			if gc, ok := g.counts[tag]; !ok || gc != c {
				bad = true
			}
		}
		if bad {
			diff++
			if diff <= 10 {
				t.Logf("%s: %s scored %d %v, baseline %d %v", name, id, g.score, g.counts, w.score, w.counts)
			}
		}
	}
	return diff
}

func delayStats(res liveResult, prefix string, late bool) (p50, p99, maxd time.Duration) {
	var ds []time.Duration
	for id, d := range res.delay {
		if strings.HasPrefix(id, "late") != late || !strings.HasPrefix(id, prefix) {
			continue
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
}

// checkLive asserts what must hold for any live run: every event scored once; every verdict of
// the farms spaced a second or more apart equal to the baseline's; and, in the number-block burst
// (20 numbers within one second), no count below the numbers that came before — entries keep
// the second, so how many of the same second's later numbers a count includes depends on when it
// was scored (held-out runs: up to 8 more, in 1 scorer as in 3).
func checkLive(t *testing.T, name string, evs []liveEv, r liveResult, base map[string]verdict) {
	t.Helper()
	if len(r.verdicts) != len(evs) {
		t.Errorf("%s: %d of %d events scored", name, len(r.verdicts), len(evs))
	}
	for id, c := range r.records {
		if c != 1 {
			t.Errorf("%s: %s has %d score records", name, id, c)
		}
	}
	burst, other := map[string]verdict{}, map[string]verdict{}
	for id, v := range base {
		if strings.HasPrefix(id, "pfx-") {
			burst[id] = v
		} else {
			other[id] = v
		}
	}
	if base != nil {
		if diff := compareVerdicts(t, name, other, r.verdicts); diff > 0 {
			t.Errorf("%s: %d events outside the one-second burst got another verdict or count than the baseline", name, diff)
		}
	}
	for id, v := range r.verdicts {
		if !strings.HasPrefix(id, "pfx-") {
			continue
		}
		var i int
		fmt.Sscanf(id, "pfx-%d", &i)
		if c, ok := v.counts["prefix_burst"]; ok && c < i+1 {
			t.Errorf("%s: %s counted %d numbers of the block, %d came before it or are it", name, id, c, i+1)
		}
	}
}

// Live traffic, as it happens: a stream with an IP farm, a device farm and a one-second
// number-block burst produced in real time (ts = now) through 1 and 3 scorers, then with an app
// whose attempts arrive in uploads 10–20 s late through 1 and 3. Every event is scored once, and
// every verdict outside the burst equals the first run's (entries are kept to the second, so
// within the burst a count may include later numbers of the same second). Delays and feed waits
// are logged; E2E_LIVE_RUNS picks the runs (default 1,3,L1,L3).
func TestLiveScorersAgree(t *testing.T) {
	secs := 60
	plain := liveStream(secs, 30, false)
	withLate := liveStream(secs, 30, true)
	report := func(name string, r liveResult) {
		p50, p99, mx := delayStats(r, "", false)
		lp50, lp99, lmx := delayStats(r, "late", true)
		t.Logf("%s: %d events scored; live delay p50 %v p99 %v max %v; late delay p50 %v p99 %v max %v; feed waits %v",
			name, len(r.verdicts), p50, p99, mx, lp50, lp99, lmx, r.waits)
		peaks := map[string]int{}
		for id, v := range r.verdicts {
			for _, pf := range []string{"ipfarm-", "devfarm-", "pfx-", "lateipfarm-"} {
				if strings.HasPrefix(id, pf) {
					for tag, c := range v.counts {
						peaks[pf+tag] = max(peaks[pf+tag], c)
					}
				}
			}
		}
		t.Logf("%s: peaks %v", name, peaks)
	}
	which := os.Getenv("E2E_LIVE_RUNS")
	if which == "" {
		which = "1,3,L1,L3"
	}
	var base, lateBase map[string]verdict
	for _, run := range strings.Split(which, ",") {
		switch run {
		case "1", "2", "3", "L1", "L2", "L3":
			stream, baseline, name := plain, &base, run+" scorers"
			if run[0] == 'L' {
				stream, baseline, name = withLate, &lateBase, run[1:]+" scorers with the late app"
			}
			r := runLive(t, int(run[len(run)-1]-'0'), stream)
			report(name, r)
			checkLive(t, name, stream, r, *baseline)
			if *baseline == nil {
				*baseline = r.verdicts
			}
		default:
			t.Fatalf("E2E_LIVE_RUNS: %q is not 1, 2, 3, L1, L2 or L3", run)
		}
	}
}
