package loadgen

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// Attack scenarios. Each name is also the Label of the scenario's events. An episode is one burst
// of one attacker; the sizes and spans below are chosen to cross the default rule pack's thresholds
// (rules/packs/default/rules.yaml) well inside its windows.
const (
	// ScenarioSMSPumping: 15–40 consecutive numbers of one 7-digit block (连号, with an occasional
	// gap of one) within 2–10 minutes, mostly SMS fallback requests that are never completed, each
	// from a fresh device behind a rotating mobile address. prefix_burst (≥ 10 numbers of a block
	// in 1 h).
	ScenarioSMSPumping = "sms_pumping"
	// ScenarioDatacenterFarm: 30–60 different numbers from 1–3 addresses of one /24 of a cloud
	// network (from idc_cidrs.txt; four in five episodes use a Chinese cloud) within 4–9 minutes,
	// at least 10 numbers per address, mostly failing at the gateway. idc_proxy_ip on every event,
	// phones_per_ip (≥ 10 numbers on a datacenter address, or ≥ 20 on its /24, in 10 min).
	ScenarioDatacenterFarm = "datacenter_farm"
	// ScenarioDeviceFarm: one device cycling 12–30 SIM cards of one carrier (猫池) within 15–60
	// minutes, over one or two carrier addresses; the logins succeed. phones_per_device (≥ 3
	// numbers on a device in 24 h), often device_velocity.
	ScenarioDeviceFarm = "device_farm"
	// ScenarioTokenReplay: the token digest of a real, successful login from the benign stream,
	// replayed 2–6 times from another device and address, 0.5–30 s apart, mostly rejected. Only
	// replays are labelled token_replay; the original login stays benign. token_replay.
	ScenarioTokenReplay = "token_replay"
	// ScenarioFailureHammering: one number on one device failing 8–25 times within 2–8 minutes
	// with rate-limit codes (103911 above all, 9005, 9006, 105021, -65, -10008, 104).
	// repeated_failures (≥ 5 failures in 10 min) and phone_velocity.
	ScenarioFailureHammering = "failure_hammering"
	// ScenarioOverseasProxy: 4–12 gateway attempts (one-click, number verification or H5) for
	// 1–3 numbers within 5–30 minutes, through residential addresses of one country outside
	// mainland China (US, GB, DE, RU, JP, TW, HK — none of them datacenter ranges). overseas_ip on
	// every event (needs a geo database).
	ScenarioOverseasProxy = "overseas_proxy"
	// ScenarioVirtualNumbers: 5–15 different numbers from virtual-operator (60 %), data-only
	// (25 %) and 13-digit IoT (15 %) blocks of the segment table within 10–40 minutes, as bought
	// from an SMS-receiving platform (接码平台). mvno_segment or iot_or_data_card on every event.
	ScenarioVirtualNumbers = "virtual_numbers"
	// ScenarioNumberVelocity: one number verified 12–30 times within 4–9 minutes from one address
	// on one or two devices. phone_velocity (≥ 3 in 10 min observed, ≥ 10 stepped up).
	ScenarioNumberVelocity = "number_velocity"
)

type scenario struct {
	name   string
	lo, hi int // events per episode
	run    func(g *Generator, t time.Duration, k int) bool
}

func (s *scenario) size(r *rng) int { return r.between(s.lo, s.hi) }

// source is a running scenario: its credit of attack events owed and the size of its next episode.
type source struct {
	*scenario
	credit float64
	next   int
}

var catalog = []*scenario{
	{ScenarioSMSPumping, 15, 40, smsPumping},
	{ScenarioDatacenterFarm, 30, 60, datacenterFarm},
	{ScenarioDeviceFarm, 12, 30, deviceFarm},
	{ScenarioTokenReplay, 2, 6, tokenReplay},
	{ScenarioFailureHammering, 8, 25, failureHammering},
	{ScenarioOverseasProxy, 4, 12, overseasProxy},
	{ScenarioVirtualNumbers, 5, 15, virtualNumbers},
	{ScenarioNumberVelocity, 12, 30, numberVelocity},
}

// Scenarios returns the names of every attack scenario, in a fixed order.
func Scenarios() []string {
	out := make([]string, len(catalog))
	for i, s := range catalog {
		out[i] = s.name
	}
	return out
}

// selectScenarios returns the named scenarios (all for none) in catalog order.
func selectScenarios(names []string) ([]*scenario, error) {
	if len(names) == 0 {
		return catalog, nil
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		found := false
		for _, s := range catalog {
			found = found || s.name == n
		}
		if !found {
			return nil, fmt.Errorf("loadgen: unknown scenario %q (known: %s)", n, strings.Join(Scenarios(), ", "))
		}
		want[n] = true
	}
	var out []*scenario
	for _, s := range catalog {
		if want[s.name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// spread places event i of k inside span: one event per k-th of the span, at a random point of
// it, so the events are ordered and roughly even.
func spread(r *rng, span time.Duration, i, k int) time.Duration {
	return time.Duration((float64(i) + r.float()) / float64(k) * float64(span))
}

// appPlatform draws a platform of a native app (not H5).
func appPlatform(r *rng) string { return platforms[r.weighted(platformShares[:3])] }

func (g *Generator) newDevice(platform string) string {
	return deviceID(platform, g.r.next(), g.r.next())
}

// gateway fills the outcome and token of a gateway attempt that fails with probability pFail,
// with a code from codes.
func (g *Generator) gateway(ev *schemas.VerifyEvent, pFail float64, codes []string) {
	ev.Outcome, ev.ErrorCode = schemas.OutcomeSuccess, ""
	if g.r.chance(pFail) {
		fail(ev, pick(&g.r, codes))
	}
	ev.TokenDigest = ""
	if ev.Outcome == schemas.OutcomeSuccess || serverSide[ev.ErrorCode] {
		ev.TokenDigest = g.token()
	}
}

func smsPumping(g *Generator, t time.Duration, k int) bool {
	r := &g.r
	c := r.weighted(carrierShares)
	block := g.plan.basicNumber(r, c)[:7]
	next := r.intn(10000 - 2*k) // room for k numbers with gaps of one
	span := r.dur(2*time.Minute, 10*time.Minute)
	app := g.app()
	for i := range k {
		ev := schemas.VerifyEvent{
			AppID: app, Phone: block + strconv.Itoa(10000 + next)[1:],
			IP: g.randomNAT(r.weighted(carrierShares)), Platform: "android",
		}
		ev.DeviceID = g.newDevice(ev.Platform)
		next++
		if r.chance(0.1) {
			next++
		}
		if r.chance(0.8) {
			ev.Flow = schemas.FlowSMSFallback
			ev.Outcome = schemas.OutcomeSuccess
			if r.chance(0.85) {
				fail(&ev, pick(r, smsFails))
			}
		} else {
			ev.Flow, ev.Carrier = schemas.FlowNumberVerify, carrierCodes[c]
			g.gateway(&ev, 0.7, benignGatewayFails[c])
		}
		g.push(t+spread(r, span, i, k), ev, ScenarioSMSPumping)
	}
	return true
}

func datacenterFarm(g *Generator, t time.Duration, k int) bool {
	r := &g.r
	nets := idcDomestic
	if r.chance(0.2) {
		nets = idcForeign
	}
	// One rented server with a few addresses of one /24, rotated round robin.
	ips := make([]netip.Addr, r.between(1, 3))
	ips[0] = addrIn(pick(r, nets), r.next(), r.next())
	for j := 1; j < len(ips); j++ {
		ips[j] = sameNet(ips[j-1], r.next())
	}
	span := r.dur(4*time.Minute, 9*time.Minute)
	app := g.app()
	for i := range k {
		c := r.weighted(carrierShares)
		ev := schemas.VerifyEvent{
			AppID: app, Phone: g.plan.basicNumber(r, c), Carrier: carrierCodes[c],
			Platform: "android",
		}
		ev.IP = ips[i%len(ips)] // round robin: at least k/3 ≥ 10 numbers per address
		ev.DeviceID = g.newDevice(ev.Platform)
		ev.Flow = schemas.FlowOneClickLogin
		if r.chance(0.4) {
			ev.Flow = schemas.FlowNumberVerify
		}
		g.gateway(&ev, 0.6, datacenterFails)
		g.push(t+spread(r, span, i, k), ev, ScenarioDatacenterFarm)
	}
	return true
}

func deviceFarm(g *Generator, t time.Duration, k int) bool {
	r := &g.r
	c := r.weighted(carrierShares)
	platform := "android"
	if r.chance(0.2) {
		platform = "harmony"
	}
	dev := g.newDevice(platform)
	ips := [2]netip.Addr{g.randomNAT(c), g.randomNAT(c)}
	span := r.dur(15*time.Minute, 60*time.Minute)
	app := g.app()
	for i := range k {
		ev := schemas.VerifyEvent{
			AppID: app, Phone: g.plan.basicNumber(r, c), Carrier: carrierCodes[c],
			Platform: platform, DeviceID: dev, IP: ips[0], Flow: schemas.FlowOneClickLogin,
		}
		if r.chance(0.3) {
			ev.IP = ips[1]
		}
		if r.chance(0.2) {
			ev.Flow = schemas.FlowNumberVerify
		}
		g.gateway(&ev, 0.1, benignGatewayFails[c])
		g.push(t+spread(r, span, i, k), ev, ScenarioDeviceFarm)
	}
	return true
}

func tokenReplay(g *Generator, t time.Duration, k int) bool {
	if g.nVictims == 0 {
		return false
	}
	r := &g.r
	// One of the most recent successful logins: tokens are short-lived.
	v := g.victims[(g.nVictims-1-r.intn(min(g.nVictims, 32)))%victimRing]
	platform := "android"
	if v.flow == schemas.FlowH5QuickLogin {
		platform = "h5"
	}
	dev := g.newDevice(platform)
	ip := g.randomNAT(r.weighted(carrierShares))
	at := t
	for range k {
		at += r.dur(500*time.Millisecond, 30*time.Second)
		ev := schemas.VerifyEvent{
			AppID: v.app, Flow: v.flow, Phone: v.phone, IP: ip, Carrier: v.carrier,
			Platform: platform, DeviceID: dev, Outcome: schemas.OutcomeSuccess, TokenDigest: v.digest,
		}
		if r.chance(0.85) {
			fail(&ev, pick(r, replayFails))
		}
		g.push(at, ev, ScenarioTokenReplay)
	}
	return true
}

func failureHammering(g *Generator, t time.Duration, k int) bool {
	r := &g.r
	c := r.weighted(carrierShares)
	platform := appPlatform(r)
	base := schemas.VerifyEvent{
		AppID: g.app(), Phone: g.plan.basicNumber(r, c), IP: g.randomNAT(c), Carrier: carrierCodes[c],
		Platform: platform, DeviceID: g.newDevice(platform),
	}
	span := r.dur(2*time.Minute, 8*time.Minute)
	for i := range k {
		ev := base
		ev.Flow = schemas.FlowOneClickLogin
		if r.chance(0.1) {
			ev.Flow = schemas.FlowNumberVerify
		}
		g.gateway(&ev, 1, hammerFails[c])
		g.push(t+spread(r, span, i, k), ev, ScenarioFailureHammering)
	}
	return true
}

func overseasProxy(g *Generator, t time.Duration, k int) bool {
	r := &g.r
	country := pick(r, overseas)
	flow := []string{schemas.FlowOneClickLogin, schemas.FlowNumberVerify, schemas.FlowH5QuickLogin}[r.weighted([]float64{0.6, 0.25, 0.15})]
	platform := "h5"
	if flow != schemas.FlowH5QuickLogin {
		platform = appPlatform(r)
	}
	dev := g.newDevice(platform)
	phones := make([]string, r.between(1, 3))
	carriers := make([]int, len(phones))
	for j := range phones {
		carriers[j] = r.weighted(carrierShares)
		phones[j] = g.plan.basicNumber(r, carriers[j])
	}
	span := r.dur(5*time.Minute, 30*time.Minute)
	app := g.app()
	for i := range k {
		j := r.intn(len(phones))
		ev := schemas.VerifyEvent{
			AppID: app, Flow: flow, Phone: phones[j], Carrier: carrierCodes[carriers[j]],
			IP: addrIn(pick(r, country.nets), r.next(), r.next()), Platform: platform, DeviceID: dev,
		}
		g.gateway(&ev, 0.5, overseasFails)
		g.push(t+spread(r, span, i, k), ev, ScenarioOverseasProxy)
	}
	return true
}

func virtualNumbers(g *Generator, t time.Duration, k int) bool {
	r := &g.r
	span := r.dur(10*time.Minute, 40*time.Minute)
	app := g.app()
	for i := range k {
		phone, carrier := g.plan.virtualNumber(r)
		c := carrierIndex(carrier)
		ev := schemas.VerifyEvent{
			AppID: app, Phone: phone, Carrier: carrier, IP: g.randomNAT(c), Platform: "android",
			Flow: schemas.FlowOneClickLogin,
		}
		ev.DeviceID = g.newDevice(ev.Platform)
		if r.chance(0.3) {
			ev.Flow = schemas.FlowNumberVerify
		}
		g.gateway(&ev, 0.15, benignGatewayFails[c])
		g.push(t+spread(r, span, i, k), ev, ScenarioVirtualNumbers)
	}
	return true
}

func numberVelocity(g *Generator, t time.Duration, k int) bool {
	r := &g.r
	c := r.weighted(carrierShares)
	platform := appPlatform(r)
	devs := []string{g.newDevice(platform)}
	if r.chance(0.4) {
		devs = append(devs, g.newDevice(platform))
	}
	base := schemas.VerifyEvent{
		AppID: g.app(), Phone: g.plan.basicNumber(r, c), IP: g.randomNAT(c), Carrier: carrierCodes[c],
		Platform: platform,
	}
	span := r.dur(4*time.Minute, 9*time.Minute)
	codes := append([]string{"9005", "9005", "9005"}, benignGatewayFails[c]...)
	for i := range k {
		ev := base
		ev.DeviceID = pick(r, devs)
		ev.Flow = schemas.FlowNumberVerify
		if r.chance(0.4) {
			ev.Flow = schemas.FlowOneClickLogin
		}
		g.gateway(&ev, 0.15, codes)
		g.push(t+spread(r, span, i, k), ev, ScenarioNumberVelocity)
	}
	return true
}

func carrierIndex(code string) int {
	for i, c := range carrierCodes {
		if c == code {
			return i
		}
	}
	return cm
}
