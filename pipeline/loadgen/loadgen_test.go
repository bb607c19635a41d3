package loadgen

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/segment"
)

// testConfig is two hours of evening traffic (China time) with every scenario.
var testConfig = Config{Seed: 42, Rate: 10, Duration: 2 * time.Hour, Start: DefaultStart.Add(11 * time.Hour)}

func generate(t testing.TB, cfg Config) []Labeled {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []Labeled
	for {
		l, ok := g.Next()
		if !ok {
			return out
		}
		out = append(out, l)
	}
}

// shared is the stream most tests inspect, generated once.
var shared = sync.OnceValues(func() ([]Labeled, error) {
	g, err := New(testConfig)
	if err != nil {
		return nil, err
	}
	var out []Labeled
	for {
		l, ok := g.Next()
		if !ok {
			return out, nil
		}
		out = append(out, l)
	}
})

func sharedStream(t *testing.T) []Labeled {
	t.Helper()
	evs, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func byLabel(evs []Labeled) map[string][]schemas.VerifyEvent {
	m := map[string][]schemas.VerifyEvent{}
	for _, l := range evs {
		m[l.Label] = append(m[l.Label], l.Event)
	}
	return m
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	cfg := testConfig
	cfg.Duration = 20 * time.Minute
	a, b := generate(t, cfg), generate(t, cfg)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	for i := range a {
		ja, _ := json.Marshal(a[i])
		jb, _ := json.Marshal(b[i])
		if string(ja) != string(jb) {
			t.Fatalf("event %d differs:\n%s\n%s", i, ja, jb)
		}
	}

	cfg.Seed++
	c := generate(t, cfg)
	same := 0
	for i := range min(len(a), len(c)) {
		if a[i].Event.Phone == c[i].Event.Phone {
			same++
		}
	}
	if same > len(a)/100 {
		t.Errorf("another seed repeats %d of %d phones at the same positions", same, len(a))
	}
	if a[0].Event.EventID == c[0].Event.EventID {
		t.Errorf("another seed reuses event id %s", a[0].Event.EventID)
	}
}

func TestEventsAreValid(t *testing.T) {
	t.Parallel()
	evs := sharedStream(t)
	ids := make(map[string]bool, len(evs))
	for i, l := range evs {
		data, err := json.Marshal(&l.Event)
		if err != nil {
			t.Fatal(err)
		}
		got, err := schemas.DecodeEvent(data)
		if err != nil {
			t.Fatalf("event %d (%s) does not decode: %v\n%s", i, l.Label, err, data)
		}
		want := l.Event
		if !got.TS.Equal(want.TS) {
			t.Fatalf("event %d: ts %v after decoding, want %v", i, got.TS, want.TS)
		}
		got.TS = want.TS
		if got != want {
			t.Fatalf("event %d changes when decoded:\n got %+v\nwant %+v", i, got, want)
		}
		if ids[want.EventID] {
			t.Fatalf("event id %s repeats", want.EventID)
		}
		ids[want.EventID] = true
		if l.Attack != (l.Label != LabelBenign) {
			t.Fatalf("event %d: label %q with attack=%v", i, l.Label, l.Attack)
		}
		if want.Platform == "" || want.DeviceID == "" {
			t.Fatalf("event %d has no platform or device: %+v", i, want)
		}
	}
}

func TestTimestamps(t *testing.T) {
	t.Parallel()
	evs := sharedStream(t)
	start, end := testConfig.Start, testConfig.Start.Add(testConfig.Duration)
	var prev time.Time
	for i, l := range evs {
		ts := l.Event.TS
		if ts.Before(start) || ts.After(end) {
			t.Fatalf("event %d at %v, outside [%v, %v]", i, ts, start, end)
		}
		if ts.Before(prev) {
			t.Fatalf("event %d at %v comes after one at %v", i, ts, prev)
		}
		if ts.Nanosecond()%int(time.Millisecond) != 0 {
			t.Fatalf("event %d at %v: not whole milliseconds", i, ts)
		}
		if ts.Location() != time.UTC {
			t.Fatalf("event %d: ts in %v, want UTC", i, ts.Location())
		}
		prev = ts
	}
	// The stream covers the whole span.
	if first, last := evs[0].Event.TS, evs[len(evs)-1].Event.TS; first.Sub(start) > time.Minute || end.Sub(last) > time.Minute {
		t.Errorf("stream runs from %v to %v, want about %v to %v", first, last, start, end)
	}
}

func TestAttackShare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		share, want float64
		scenarios   []string
	}{
		{0, DefaultAttackShare, nil},
		{0.25, 0.25, nil},
		{0.05, 0.05, []string{ScenarioTokenReplay, ScenarioDeviceFarm}},
		{-1, 0, nil},
	} {
		t.Run(fmt.Sprint(tc.share, tc.scenarios), func(t *testing.T) {
			cfg := testConfig
			cfg.AttackShare, cfg.Scenarios = tc.share, tc.scenarios
			cfg.Duration = time.Hour
			evs := generate(t, cfg)
			per := map[string]int{}
			attacks := 0
			for _, l := range evs {
				if l.Attack {
					attacks++
					per[l.Label]++
				}
			}
			got := float64(attacks) / float64(len(evs))
			if math.Abs(got-tc.want) > 0.1*tc.want+0.002 {
				t.Errorf("attack share %.4f of %d events, want %.2f", got, len(evs), tc.want)
			}
			wantScen := tc.scenarios
			if len(wantScen) == 0 && tc.want > 0 {
				wantScen = Scenarios()
			}
			if len(per) != len(wantScen) {
				t.Errorf("scenarios seen %v, want %v", per, wantScen)
			}
			// Each enabled scenario gets an equal part of the attack events.
			for _, s := range wantScen {
				part := float64(per[s]) / float64(attacks)
				if even := 1 / float64(len(wantScen)); math.Abs(part-even) > 0.35*even {
					t.Errorf("%s: %.3f of attack events, want about %.3f", s, part, even)
				}
			}
		})
	}
}

func TestRateAndDailyRhythm(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 3, Rate: 1, Duration: 24 * time.Hour, Start: DefaultStart}
	evs := generate(t, cfg)
	if got, want := float64(len(evs)), cfg.Rate*86400; math.Abs(got-want) > 0.05*want {
		t.Errorf("%v events in a day at %v/s, want about %v", got, cfg.Rate, want)
	}
	var hours [24]int
	for _, l := range evs {
		hours[l.Event.TS.In(time.FixedZone("CST", 8*3600)).Hour()]++
	}
	night := hours[0] + hours[1] + hours[2] + hours[3] + hours[4] + hours[5]
	evening := hours[18] + hours[19] + hours[20] + hours[21] + hours[22] + hours[23]
	if night*3 > evening {
		t.Errorf("00–06 China time has %d events, 18–24 has %d: want far fewer at night (by hour %v)", night, evening, hours)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ok := Config{Rate: 1, Duration: time.Minute}
	for name, mod := range map[string]func(*Config){
		"zero rate":     func(c *Config) { c.Rate = 0 },
		"NaN rate":      func(c *Config) { c.Rate = math.NaN() },
		"infinite rate": func(c *Config) { c.Rate = math.Inf(1) },
		// Its warm-up alone would run for hours (an hour of attack episodes at this rate).
		"rate above MaxRate": func(c *Config) { c.Rate = 1e12 },
		"no duration":        func(c *Config) { c.Duration = 0 },
		"share of one":       func(c *Config) { c.AttackShare = 1 },
		"unknown scenario":   func(c *Config) { c.Scenarios = []string{"sms_pumping", "ddos"} },
		"empty app":          func(c *Config) { c.Apps = []string{""} },
		"long app":           func(c *Config) { c.Apps = []string{strings.Repeat("a", 65)} },
		// riskflow refuses every event of such an app: the stream would be all dead letters.
		"phone app":       func(c *Config) { c.Apps = []string{"app-13812345678"} },
		"blank app":       func(c *Config) { c.Apps = []string{"  "} },
		"phone large app": func(c *Config) { c.LargeApp, c.LargeAppShare = "138 1234 5678", 0.5 },
		"year 1990":       func(c *Config) { c.Start = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		c := ok
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		} else if !strings.HasPrefix(err.Error(), "loadgen: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		} else if schemas.ContainsPhone(err.Error()) {
			t.Errorf("%s: error %q shows the phone number", name, err)
		}
	}
	g, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	c := g.Config()
	if !c.Start.Equal(DefaultStart) || c.AttackShare != DefaultAttackShare || !slices.Equal(c.Scenarios, Scenarios()) || !slices.Equal(c.Apps, DefaultApps) {
		t.Errorf("defaults not filled in: %+v", c)
	}
}

func TestScenarioSelection(t *testing.T) {
	t.Parallel()
	cfg := testConfig
	cfg.Duration = 30 * time.Minute
	cfg.Scenarios = []string{ScenarioVirtualNumbers, ScenarioSMSPumping, ScenarioSMSPumping}
	cfg.Apps = []string{"only-app"}
	for label := range byLabel(generate(t, cfg)) {
		switch label {
		case LabelBenign, ScenarioVirtualNumbers, ScenarioSMSPumping:
		default:
			t.Errorf("scenario %s ran, but only %v were enabled", label, cfg.Scenarios)
		}
	}
	evs := byLabel(generate(t, cfg))
	for _, s := range []string{LabelBenign, ScenarioVirtualNumbers, ScenarioSMSPumping} {
		if len(evs[s]) == 0 {
			t.Errorf("no %s events", s)
		}
		for _, ev := range evs[s] {
			if ev.AppID != "only-app" {
				t.Fatalf("%s event for app %q", s, ev.AppID)
			}
		}
	}
}

func TestBenignPopulation(t *testing.T) {
	t.Parallel()
	evs := byLabel(sharedStream(t))[LabelBenign]
	seg, idc := segment.Default(), geo.DefaultIDCList()
	carriers := map[string]string{} // phone → carrier
	flows, platforms := map[string]int{}, map[string]int{}
	fails, smsWithToken := 0, 0
	tokens := map[string]bool{}
	phonesPerIP := map[netip.Addr]map[string]bool{}
	for _, ev := range evs {
		info := seg.Lookup(ev.Phone)
		if info.Class != segment.Basic || len(ev.Phone) != 11 {
			t.Fatalf("benign number %s is %v, want an 11-digit basic number", ev.Phone, info.Class)
		}
		if ev.Carrier != "" && ev.Carrier != info.HostCarrier {
			t.Fatalf("benign number %s of %s reported as %s", ev.Phone, info.HostCarrier, ev.Carrier)
		}
		if idc.Contains(ev.IP) {
			t.Fatalf("benign address %s is in the datacenter list", ev.IP)
		}
		carriers[ev.Phone] = info.Carrier
		flows[ev.Flow]++
		platforms[ev.Platform]++
		if ev.Outcome == schemas.OutcomeFail {
			fails++
			if ev.ErrorCode == "" {
				t.Fatalf("failure without an error code: %+v", ev)
			}
		} else if ev.ErrorCode != "" {
			t.Fatalf("success with error code: %+v", ev)
		}
		switch {
		case ev.Flow == schemas.FlowSMSFallback:
			if ev.TokenDigest != "" || ev.Carrier != "" {
				smsWithToken++
			}
		case ev.TokenDigest != "":
			if tokens[ev.TokenDigest] {
				t.Fatalf("benign token digest %s used twice", ev.TokenDigest)
			}
			tokens[ev.TokenDigest] = true
		case ev.Outcome == schemas.OutcomeSuccess:
			t.Fatalf("successful gateway login without a token digest: %+v", ev)
		}
		// H5 pages use H5 quick login, and fall back to SMS on the same page.
		if (ev.Flow == schemas.FlowH5QuickLogin) != (ev.Platform == "h5") && ev.Flow != schemas.FlowSMSFallback {
			t.Fatalf("flow %s on platform %s", ev.Flow, ev.Platform)
		}
		if phonesPerIP[ev.IP] == nil {
			phonesPerIP[ev.IP] = map[string]bool{}
		}
		phonesPerIP[ev.IP][ev.Phone] = true
	}
	if smsWithToken > 0 {
		t.Errorf("%d SMS fallbacks carry a token digest or a carrier", smsWithToken)
	}
	if rate := float64(fails) / float64(len(evs)); rate < 0.02 || rate > 0.045 {
		t.Errorf("benign failure rate %.4f, want about 0.03", rate)
	}
	share := map[string]float64{}
	for _, c := range carriers {
		share[c] += 1 / float64(len(carriers))
	}
	for c, want := range map[string]float64{"CM": 0.6, "CU": 0.2, "CT": 0.2} {
		if math.Abs(share[c]-want) > 0.03 {
			t.Errorf("carrier %s has %.3f of the numbers, want %.2f", c, share[c], want)
		}
	}
	for _, f := range []string{schemas.FlowOneClickLogin, schemas.FlowNumberVerify, schemas.FlowH5QuickLogin, schemas.FlowSMSFallback} {
		if flows[f] == 0 {
			t.Errorf("no benign %s attempts", f)
		}
	}
	if flows[schemas.FlowOneClickLogin]*2 < len(evs) {
		t.Errorf("one-click login is %d of %d attempts, want most", flows[schemas.FlowOneClickLogin], len(evs))
	}
	for _, p := range []string{"android", "ios", "harmony", "h5"} {
		if platforms[p] == 0 {
			t.Errorf("no benign %s attempts", p)
		}
	}
	// Carrier NAT: many users behind some addresses.
	crowded := 0
	for _, phones := range phonesPerIP {
		if len(phones) >= 10 {
			crowded++
		}
	}
	if crowded < 50 {
		t.Errorf("only %d addresses carry 10 or more numbers: carrier NAT sharing is missing", crowded)
	}
}

func TestNATRanges(t *testing.T) {
	t.Parallel()
	idc := geo.DefaultIDCList()
	r := rng{s: 1}
	for c := range natV4 {
		for _, nets := range [][]netip.Prefix{natV4[c], natV6[c]} {
			for _, p := range nets {
				for range 2000 {
					a := addrIn(p, r.next(), r.next())
					if !p.Contains(a) || idc.Contains(a) {
						t.Fatalf("%s: drew %s (inside %v, in the datacenter list %v)", p, a, p.Contains(a), idc.Contains(a))
					}
					if b := sameNet(a, r.next()); b == a || !a.Is4() && b.As16()[7] != a.As16()[7] || a.Is4() && b.As4()[2] != a.As4()[2] {
						t.Fatalf("sameNet(%s) = %s", a, b)
					}
				}
			}
		}
	}
	for _, o := range overseas {
		for _, p := range o.nets {
			for range 2000 {
				if a := addrIn(p, r.next(), r.next()); !p.Contains(a) || idc.Contains(a) {
					t.Fatalf("%s overseas address %s: inside %v, in the datacenter list %v", o.country, a, p.Contains(a), idc.Contains(a))
				}
			}
		}
	}
}

func TestNumberPlan(t *testing.T) {
	t.Parallel()
	plan, err := newNumberPlan(segment.Default())
	if err != nil {
		t.Fatal(err)
	}
	seg := segment.Default()
	r := rng{s: 9}
	for c := range numCarriers {
		for range 5000 {
			n := plan.basicNumber(&r, c)
			if info := seg.Lookup(n); info.Class != segment.Basic || info.Carrier != carrierCodes[c] || len(n) != 11 {
				t.Fatalf("basic number %s of %s looks up as %+v", n, carrierCodes[c], info)
			}
		}
	}
	classes := map[segment.Class]int{}
	for range 5000 {
		n, host := plan.virtualNumber(&r)
		info := seg.Lookup(n)
		classes[info.Class]++
		if host != info.HostCarrier {
			t.Fatalf("virtual number %s reported on %s, host %s", n, host, info.HostCarrier)
		}
	}
	if classes[segment.MVNO] == 0 || classes[segment.DataOnly] == 0 || classes[segment.IoT] == 0 || len(classes) != 3 {
		t.Errorf("virtual number classes %v", classes)
	}
	// 134-9 is satellite, 174-00.. are satellite and emergency ranges: never basic.
	for _, p := range plan.basic[ct] {
		if strings.HasPrefix(p, "1349") || strings.HasPrefix(p, "174") {
			t.Errorf("basic plan holds %s", p)
		}
	}
}

func TestDeviceIDs(t *testing.T) {
	t.Parallel()
	r := rng{s: 5}
	for _, p := range platforms {
		id := deviceID(p, r.next(), r.next())
		want := map[string]int{"android": 16, "ios": 36, "harmony": 36, "h5": 32}[p]
		if len(id) != want {
			t.Errorf("%s device id %q: %d characters, want %d", p, id, len(id), want)
		}
		if p == "ios" && strings.ToUpper(id) != id || p == "harmony" && strings.ToLower(id) != id {
			t.Errorf("%s device id %q has the wrong case", p, id)
		}
	}
}

// A device id holding a run of digits that reads as a mobile number is refused by riskflow (the
// event with it is rejected by produce, POST /v1/events and the scorers), so the generator never
// makes one: a stream of 134,628 events from loadgen --duration 10m had an IDFV ending in
// -016964451361 (the trunk prefix 0 and an 11-digit number), and riskflow produce refused its
// line and exited 1.
func TestDeviceIDsHoldNoPhoneNumber(t *testing.T) {
	t.Parallel()
	// The UUID layout of these draws ends in -016964451361, which riskflow refused as the trunk 0
	// and a mobile number before it read a UUID's last group as part of the id (schemas'
	// uuidTailAt); deviceID draws again any id it would refuse.
	const a, b = 1, 0x016964451361
	for _, p := range []string{"ios", "harmony"} {
		id := deviceID(p, a, b)
		if schemas.ContainsPhone(id) {
			t.Errorf("%s device id %q holds a phone-like number", p, id)
		}
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[14] != '4' || id[18] != '-' || id[23] != '-' {
			t.Errorf("%s device id %q is not a version 4 UUID", p, id)
		}
		if again := deviceID(p, a, b); again != id {
			t.Errorf("%s device id %q, then %q from the same draws", p, id, again)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	cfg := Config{Seed: 1, Rate: 1000, Duration: 24 * time.Hour}
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := g.Next(); !ok {
			cfg.Seed++
			g, _ = New(cfg)
		}
	}
}

func TestOddStartAndDuration(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", 8*3600)
	start := time.Date(2026, 5, 1, 9, 30, 0, 123456789, cst)
	for _, d := range []time.Duration{time.Nanosecond, 700 * time.Microsecond, 3 * time.Millisecond, 90 * time.Second} {
		evs := generate(t, Config{Seed: 1, Rate: 2000, Duration: d, Start: start})
		for _, l := range evs {
			ts := l.Event.TS
			if ts.Before(start) || ts.After(start.Add(d)) || ts.Nanosecond()%int(time.Millisecond) != 0 || ts.Location() != time.UTC {
				t.Fatalf("duration %v: event at %v, want whole milliseconds (UTC) in [%v, %v]", d, ts, start, start.Add(d))
			}
		}
		if d >= time.Second && len(evs) == 0 {
			t.Errorf("duration %v: no events", d)
		}
	}
}
