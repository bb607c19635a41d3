package loadgen

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/segment"
)

// group collects events by a key.
func group(evs []schemas.VerifyEvent, key func(*schemas.VerifyEvent) string) map[string][]schemas.VerifyEvent {
	m := map[string][]schemas.VerifyEvent{}
	for i := range evs {
		k := key(&evs[i])
		m[k] = append(m[k], evs[i])
	}
	return m
}

func distinct(evs []schemas.VerifyEvent, field func(*schemas.VerifyEvent) string) int {
	seen := map[string]bool{}
	for i := range evs {
		seen[field(&evs[i])] = true
	}
	return len(seen)
}

func phoneOf(ev *schemas.VerifyEvent) string  { return ev.Phone }
func deviceOf(ev *schemas.VerifyEvent) string { return ev.DeviceID }
func ipOf(ev *schemas.VerifyEvent) string     { return ev.IP.String() }

func spanOf(evs []schemas.VerifyEvent) time.Duration { return evs[len(evs)-1].TS.Sub(evs[0].TS) }

// mostly checks that at least frac of the groups satisfy ok: episodes cut by the start or the end
// of the stream may fall short of their size.
func mostly(t *testing.T, what string, groups map[string][]schemas.VerifyEvent, frac float64, ok func([]schemas.VerifyEvent) bool) {
	t.Helper()
	if len(groups) < 5 {
		t.Fatalf("%s: only %d groups", what, len(groups))
	}
	good := 0
	for _, g := range groups {
		if ok(g) {
			good++
		}
	}
	if float64(good) < frac*float64(len(groups)) {
		t.Errorf("%s: %d of %d groups, want at least %.0f%%", what, good, len(groups), 100*frac)
	}
}

func TestEveryScenarioAppears(t *testing.T) {
	t.Parallel()
	evs := byLabel(sharedStream(t))
	for _, s := range Scenarios() {
		if len(evs[s]) < 100 {
			t.Errorf("%s: %d events", s, len(evs[s]))
		}
	}
}

func TestSMSPumping(t *testing.T) {
	t.Parallel()
	evs := byLabel(sharedStream(t))[ScenarioSMSPumping]
	blocks := group(evs, func(ev *schemas.VerifyEvent) string { return ev.Phone[:7] })
	for block, bevs := range blocks {
		var last4 []int
		for _, ev := range bevs {
			if info := segment.Default().Lookup(ev.Phone); info.Class != segment.Basic {
				t.Fatalf("pumped number %s is %v", ev.Phone, info.Class)
			}
			n, _ := strconv.Atoi(ev.Phone[7:])
			last4 = append(last4, n)
		}
		// 连号: consecutive numbers, with at most a gap of one.
		for i := 1; i < len(last4); i++ {
			if d := last4[i] - last4[i-1]; d < 1 || d > 2 {
				t.Fatalf("block %s: numbers %v are not consecutive", block, last4)
			}
		}
		if spanOf(bevs) > 10*time.Minute {
			t.Errorf("block %s pumped over %v", block, spanOf(bevs))
		}
	}
	mostly(t, "blocks with ≥ 10 numbers", blocks, 0.8, func(g []schemas.VerifyEvent) bool { return distinct(g, phoneOf) >= 10 })
	sms := 0
	for _, ev := range evs {
		if ev.Flow == schemas.FlowSMSFallback {
			sms++
		}
	}
	if sms*2 < len(evs) {
		t.Errorf("%d of %d pumping attempts are SMS fallbacks, want most", sms, len(evs))
	}
}

func TestDatacenterFarm(t *testing.T) {
	t.Parallel()
	evs := byLabel(sharedStream(t))[ScenarioDatacenterFarm]
	idc := geo.DefaultIDCList()
	for _, ev := range evs {
		if !idc.Contains(ev.IP) {
			t.Fatalf("datacenter_farm address %s is not in the datacenter list", ev.IP)
		}
	}
	byIP := group(evs, ipOf)
	mostly(t, "datacenter addresses with ≥ 10 numbers in 10 min", byIP, 0.8, func(g []schemas.VerifyEvent) bool {
		return distinct(g, phoneOf) >= 10 && spanOf(g) <= 10*time.Minute
	})
}

func TestDeviceFarm(t *testing.T) {
	t.Parallel()
	all := sharedStream(t)
	evs := byLabel(all)[ScenarioDeviceFarm]
	devices := group(evs, deviceOf)
	mostly(t, "farm devices with ≥ 3 numbers", devices, 0.9, func(g []schemas.VerifyEvent) bool { return distinct(g, phoneOf) >= 3 })
	for dev, g := range devices {
		if distinct(g, func(ev *schemas.VerifyEvent) string { return ev.Carrier }) != 1 {
			t.Errorf("farm device %s mixes carriers", dev)
		}
	}
	// Ordinary devices belong to one person.
	benign := group(byLabel(all)[LabelBenign], deviceOf)
	for dev, g := range benign {
		if n := distinct(g, phoneOf); n > 1 {
			t.Fatalf("benign device %s used by %d numbers", dev, n)
		}
	}
}

func TestTokenReplay(t *testing.T) {
	t.Parallel()
	first := map[string]Labeled{} // digest → first use
	replays := 0
	for _, l := range sharedStream(t) {
		d := l.Event.TokenDigest
		if l.Label != ScenarioTokenReplay {
			if d != "" {
				if _, dup := first[d]; dup {
					t.Fatalf("%s event re-uses token digest %s", l.Label, d)
				}
				first[d] = l
			}
			continue
		}
		replays++
		orig, ok := first[d]
		if !ok {
			t.Fatalf("replayed digest %q was never used before", d)
		}
		if orig.Label != LabelBenign || orig.Event.Outcome != schemas.OutcomeSuccess {
			t.Fatalf("replayed token comes from a %s %s event", orig.Label, orig.Event.Outcome)
		}
		if l.Event.Phone != orig.Event.Phone || l.Event.AppID != orig.Event.AppID || l.Event.DeviceID == orig.Event.DeviceID {
			t.Fatalf("replay %+v of %+v: want the victim's number and app on another device", l.Event, orig.Event)
		}
		if !l.Event.TS.After(orig.Event.TS) {
			t.Fatalf("replay at %v, not after the original at %v", l.Event.TS, orig.Event.TS)
		}
	}
	if replays == 0 {
		t.Fatal("no replays")
	}
}

func TestFailureHammering(t *testing.T) {
	t.Parallel()
	evs := byLabel(sharedStream(t))[ScenarioFailureHammering]
	codes := map[string]bool{}
	for _, cs := range hammerFails {
		for _, c := range cs {
			codes[c] = true
		}
	}
	seen103911 := false
	for _, ev := range evs {
		if ev.Outcome != schemas.OutcomeFail || !codes[ev.ErrorCode] {
			t.Fatalf("hammering attempt %s/%s", ev.Outcome, ev.ErrorCode)
		}
		seen103911 = seen103911 || ev.ErrorCode == "103911"
	}
	if !seen103911 {
		t.Error("no 103911 among the hammering failures")
	}
	phones := group(evs, phoneOf)
	for p, g := range phones {
		if distinct(g, deviceOf) != 1 {
			t.Errorf("hammered number %s on several devices", p)
		}
	}
	mostly(t, "numbers with ≥ 5 failures in 10 min", phones, 0.8, func(g []schemas.VerifyEvent) bool {
		return len(g) >= 5 && spanOf(g) <= 10*time.Minute
	})
}

func TestOverseasProxy(t *testing.T) {
	t.Parallel()
	evs := byLabel(sharedStream(t))[ScenarioOverseasProxy]
	idc := geo.DefaultIDCList()
	var domestic []netip.Prefix
	for c := range natV4 {
		domestic = append(append(domestic, natV4[c]...), natV6[c]...)
	}
	for _, ev := range evs {
		if idc.Contains(ev.IP) || slices.ContainsFunc(domestic, func(p netip.Prefix) bool { return p.Contains(ev.IP) }) {
			t.Fatalf("overseas address %s is a datacenter or Chinese carrier address", ev.IP)
		}
		if ev.Flow == schemas.FlowSMSFallback {
			t.Fatalf("overseas attempt on %s, want a gateway flow", ev.Flow)
		}
	}
}

func TestVirtualNumbers(t *testing.T) {
	t.Parallel()
	evs := byLabel(sharedStream(t))[ScenarioVirtualNumbers]
	classes := map[segment.Class]int{}
	for _, ev := range evs {
		info := segment.Default().Lookup(ev.Phone)
		switch info.Class {
		case segment.MVNO, segment.DataOnly, segment.IoT:
		default:
			t.Fatalf("virtual number %s is %v", ev.Phone, info.Class)
		}
		if (len(ev.Phone) == 13) != (info.Class == segment.IoT) {
			t.Fatalf("%v number %s has %d digits", info.Class, ev.Phone, len(ev.Phone))
		}
		if ev.Carrier != info.HostCarrier {
			t.Fatalf("virtual number %s reported on %s, rides %s", ev.Phone, ev.Carrier, info.HostCarrier)
		}
		classes[info.Class]++
	}
	if len(classes) != 3 {
		t.Errorf("classes %v, want MVNO, data-only and IoT numbers", classes)
	}
}

func TestNumberVelocity(t *testing.T) {
	t.Parallel()
	evs := byLabel(sharedStream(t))[ScenarioNumberVelocity]
	phones := group(evs, phoneOf)
	mostly(t, "numbers verified ≥ 10 times in 10 min", phones, 0.8, func(g []schemas.VerifyEvent) bool {
		return len(g) >= 10 && spanOf(g) <= 10*time.Minute && distinct(g, ipOf) == 1
	})
}
