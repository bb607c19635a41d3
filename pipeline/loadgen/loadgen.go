package loadgen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/segment"
)

// LabelBenign is the label of events from the ordinary population; attack events are labelled
// with their scenario's name.
const LabelBenign = "benign"

// DefaultAttackShare is the share of attack events when Config.AttackShare is 0.
const DefaultAttackShare = 0.1

// MaxRate bounds Config.Rate: above it the hour of attack episodes New plays before Start (see
// warmUp) alone takes longer than a run is worth waiting for, and one process generates fewer
// events a second than that anyway.
const MaxRate = 100_000

// DefaultStart is the start of event time when Config.Start is zero: a Monday, 00:00 China time.
// A fixed default keeps a zero Config deterministic.
var DefaultStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.FixedZone("CST", 8*3600)).UTC()

// DefaultApps are the app ids used when Config.Apps is empty. Earlier apps get more users.
var DefaultApps = []string{"news-cn", "shop-cn", "video-cn", "bank-cn", "game-cn"}

// Config describes the traffic to generate.
type Config struct {
	// Seed selects the traffic: the same Config gives the same events.
	Seed uint64
	// Rate is the mean number of events per second of event time, averaged over a day: the
	// instantaneous rate follows the daily rhythm (low between 00:00 and 06:00 China time, highest
	// around 21:00), so an hour at night yields well below Rate × 3600 events. Must be positive,
	// at most MaxRate.
	Rate float64
	// Duration is the span of event time to cover, from Start. Must be positive.
	Duration time.Duration
	// Start is the time of the first possible event (default DefaultStart).
	Start time.Time
	// AttackShare is the fraction of events coming from attack scenarios: 0 means
	// DefaultAttackShare, a negative value means no attack traffic. Must be below 1.
	AttackShare float64
	// Scenarios are the attack scenarios to run (see Scenarios); empty means all of them.
	Scenarios []string
	// Apps are the app_id values to spread users and attacks over (default DefaultApps).
	Apps []string
	// LargeApp, when set, is a large regional app taking LargeAppShare of the ordinary users (and
	// their logins): its users' numbers come from 1,000 7-digit blocks and their addresses from a
	// twentieth of each carrier's NAT pool (at least 200 addresses), so its ordinary traffic
	// crowds blocks and NAT addresses as a very large app's does. Attack scenarios stay in Apps.
	LargeApp      string
	LargeAppShare float64
}

// Labeled is one generated event with its ground truth.
type Labeled struct {
	Event schemas.VerifyEvent
	// Label is LabelBenign or the name of the scenario that produced the event.
	Label string
	// Attack reports whether the event comes from an attack scenario (Label != LabelBenign).
	Attack bool
}

// Generator produces a labelled event stream in event-time order. It is not safe for concurrent
// use.
type Generator struct {
	cfg   Config
	key   uint64 // seed-derived key for per-item streams (users, NAT addresses, tokens)
	r     rng    // the sequential stream: arrivals, choices, attacks
	plan  *numberPlan
	appW  []float64
	users int
	nat   [numCarriers]int // NAT addresses per carrier

	start    time.Time
	end      time.Duration // last possible offset from start
	maxRate  float64       // benign sessions per second at the rhythm's peak
	frontier time.Duration // offset of the next benign session; beyond end when done

	sources  []*source
	perEvent float64 // attack events owed to each scenario per benign event

	queue       queue
	seq         uint64
	emitted     uint64
	tokens      uint64
	idPrefix    string
	victims     [victimRing]victim
	nVictims    int
	trips       uint64                // travellers so far (flight)
	largeBlocks [numCarriers][]string // the large app's 7-digit blocks, by carrier
}

// Benign behaviour.
const (
	sessionsPerUserDay = 3.0 // mean logins per user and day, sizes the population
	minUsers           = 5000
	natAddrsPerRate    = 200  // NAT addresses per (event/s): ~5 attempts per address per 10 min at peak
	minNATAddrs        = 100  // per carrier
	ipv6Share          = 0.2  // users with an IPv6 /64 of their own instead of a shared NAT address
	altAddrShare       = 0.2  // attempts from the neighbour address instead of the home one
	secondDeviceShare  = 0.3  // users with two devices
	otherDeviceUse     = 0.3  // attempts of a two-device user made on the second device
	gatewayFailRate    = 0.03 // failed gateway attempts
	smsFailRate        = 0.05 // failed SMS fallbacks
	fallbackAfterFail  = 0.6  // failed gateway attempts followed by an SMS fallback
)

// dayRhythm is the relative login rate at each hour of the day in China time (interpolated
// linearly in between); New normalizes it to a mean of 1.
var dayRhythm = [24]float64{
	0.55, 0.35, 0.22, 0.16, 0.15, 0.22, 0.45, 0.80, 1.05, 1.15, 1.20, 1.20,
	1.25, 1.10, 1.10, 1.10, 1.10, 1.15, 1.25, 1.40, 1.55, 1.60, 1.40, 1.00,
}

var rhythm, rhythmPeak = func() ([24]float64, float64) {
	var sum, peak float64
	for _, w := range dayRhythm {
		sum += w
	}
	var out [24]float64
	for i, w := range dayRhythm {
		out[i] = w * 24 / sum
		peak = max(peak, out[i])
	}
	return out, peak
}()

// New checks cfg and returns a generator for it.
func New(cfg Config) (*Generator, error) {
	if !(cfg.Rate > 0) || cfg.Rate > MaxRate {
		return nil, fmt.Errorf("loadgen: rate must be a positive number of events per second, at most %d, got %v", MaxRate, cfg.Rate)
	}
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("loadgen: duration must be positive, got %v", cfg.Duration)
	}
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	cfg.Start = cfg.Start.UTC()
	if lo, hi := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC); cfg.Start.Before(lo) || cfg.Start.Add(cfg.Duration).After(hi) {
		return nil, fmt.Errorf("loadgen: events from %s for %v would fall outside the years 2000–2100 that VerifyEvent accepts",
			cfg.Start.Format(time.RFC3339), cfg.Duration)
	}
	switch {
	case cfg.AttackShare == 0:
		cfg.AttackShare = DefaultAttackShare
	case cfg.AttackShare < 0:
		cfg.AttackShare = 0
	case cfg.AttackShare >= 1 || math.IsNaN(cfg.AttackShare):
		return nil, fmt.Errorf("loadgen: attack share must be below 1, got %v", cfg.AttackShare)
	}
	if len(cfg.Apps) == 0 {
		cfg.Apps = DefaultApps
	}
	cfg.Apps = slices.Clone(cfg.Apps)
	for _, app := range cfg.Apps {
		if why := badAppID(app); why != "" {
			return nil, fmt.Errorf("loadgen: app id %s is not a valid app_id: %s", schemas.Excerpt(app, schemas.MaxAppIDLen), why)
		}
	}
	switch {
	case cfg.LargeApp == "" && cfg.LargeAppShare != 0:
		return nil, fmt.Errorf("loadgen: large app share %v without a large app id", cfg.LargeAppShare)
	case cfg.LargeApp != "" && !(cfg.LargeAppShare > 0 && cfg.LargeAppShare < 1):
		return nil, fmt.Errorf("loadgen: large app share must be between 0 and 1 (exclusive), got %v", cfg.LargeAppShare)
	case cfg.LargeApp != "" && badAppID(cfg.LargeApp) != "":
		return nil, fmt.Errorf("loadgen: large app id %s is not a valid app_id: %s", schemas.Excerpt(cfg.LargeApp, schemas.MaxAppIDLen), badAppID(cfg.LargeApp))
	}
	scens, err := selectScenarios(cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	cfg.Scenarios = make([]string, len(scens))
	for i, s := range scens {
		cfg.Scenarios[i] = s.name
	}
	plan, err := newNumberPlan(segment.Default())
	if err != nil {
		return nil, err
	}

	g := &Generator{cfg: cfg, plan: plan}
	if cfg.LargeApp != "" {
		br := derive(mix(cfg.Seed^0x5bd1e9955bd1e995), 6, 0)
		for range largeAppBlocks {
			c := br.weighted(carrierShares)
			g.largeBlocks[c] = append(g.largeBlocks[c], g.plan.basicNumber(&br, c)[:7])
		}
		for c := range g.largeBlocks {
			if len(g.largeBlocks[c]) == 0 { // a thousand draws at 20 %: never, but stay total
				g.largeBlocks[c] = append(g.largeBlocks[c], g.plan.basicNumber(&br, c)[:7])
			}
		}
	}
	// Offsets are whole milliseconds from a whole-millisecond start inside [Start, Start+Duration].
	g.start = cfg.Start.Truncate(time.Millisecond)
	if g.start.Before(cfg.Start) {
		g.start = g.start.Add(time.Millisecond)
	}
	g.end = cfg.Duration - g.start.Sub(cfg.Start)
	h := configHash(&cfg)
	g.key = mix(cfg.Seed ^ 0x5bd1e9955bd1e995)
	g.r = derive(g.key, 0, 0)
	g.idPrefix = "lg-" + strconv.FormatUint(h>>16, 36) + "-"
	for i := range cfg.Apps {
		g.appW = append(g.appW, 1/float64(i+1))
	}
	benignRate := cfg.Rate * (1 - cfg.AttackShare)
	g.users = max(minUsers, int(benignRate*86400/sessionsPerUserDay))
	for c := range g.nat {
		g.nat[c] = max(minNATAddrs, int(carrierShares[c]*cfg.Rate*natAddrsPerRate))
	}
	// A session is one attempt, plus an SMS fallback after some failures, sometimes a second login
	// of the user, and now and then a traveller's two logins.
	g.maxRate = benignRate / ((1 + gatewayFailRate*fallbackAfterFail) * (1 + reloginShare + 2*flightShare)) * rhythmPeak
	if len(scens) > 0 && cfg.AttackShare > 0 {
		g.perEvent = cfg.AttackShare / (1 - cfg.AttackShare) / float64(len(scens))
		for _, s := range scens {
			src := &source{scenario: s, next: s.size(&g.r)}
			// A random phase, so that the scenarios do not start in step.
			src.credit = g.r.float() * float64(src.next)
			g.sources = append(g.sources, src)
		}
		g.warmUp()
	}
	g.advance() // the first session, from offset 0
	return g, nil
}

// warmUp runs the episodes that would have started in the hour before Start, had the stream been
// going on, keeping only their events from Start on. Without it the first hour would lack the
// tails of earlier episodes while the last one still loses the tails cut at the end, and long
// scenarios would fall short of their share.
func (g *Generator) warmUp() {
	const window = time.Hour // longer than any episode
	benign := g.cfg.Rate * (1 - g.cfg.AttackShare)
	for _, s := range g.sources {
		t := -window.Seconds()
		for {
			perSec := g.perEvent * benign * g.rhythmAt(t) // credit gained per second
			dt := (float64(s.next) - s.credit) / perSec
			if t+dt >= 0 {
				s.credit += -t * perSec
				break
			}
			t += dt
			// An episode that cannot run before Start (token_replay has no tokens to replay yet)
			// is skipped, as if it had ended before Start.
			s.run(g, time.Duration(t*1e9), s.next)
			s.credit = 0
			s.next = s.size(&g.r)
		}
	}
}

// badAppID says why riskflow would refuse every event with app_id app, or "": the generator's
// events must be ones riskflow takes (an app id holding a phone number made a stream that
// riskflow produce refused line by line).
func badAppID(app string) string {
	switch {
	case app == "" || len(app) > schemas.MaxAppIDLen || !utf8.ValidString(app):
		return fmt.Sprintf("want 1 to %d bytes of text", schemas.MaxAppIDLen)
	case strings.ContainsFunc(app, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "it contains a control character"
	case strings.TrimSpace(app) == "":
		return "it is blank"
	case schemas.ContainsPhone(app):
		return "it looks like it contains a mobile phone number (riskflow refuses such ids)"
	}
	return ""
}

// configHash identifies the whole Config, for event ids.
func configHash(cfg *Config) uint64 {
	f := fnv.New64a()
	fmt.Fprintf(f, "%d|%v|%d|%d|%v|%q|%q", cfg.Seed, cfg.Rate, cfg.Duration, cfg.Start.UnixNano(),
		cfg.AttackShare, cfg.Scenarios, cfg.Apps)
	if cfg.LargeApp != "" {
		fmt.Fprintf(f, "|%q|%v", cfg.LargeApp, cfg.LargeAppShare)
	}
	return mix(f.Sum64())
}

// Config returns the configuration in effect, with defaults filled in.
func (g *Generator) Config() Config {
	c := g.cfg
	c.Scenarios = slices.Clone(c.Scenarios)
	c.Apps = slices.Clone(c.Apps)
	return c
}

// Next returns the next event in event-time order (equal timestamps keep generation order), and
// false once every event up to Start+Duration has been returned. Timestamps have millisecond
// precision and lie in [Start, Start+Duration].
func (g *Generator) Next() (Labeled, bool) {
	// Everything generated later starts at or after the frontier, so the queue head may go out
	// once it is not after the frontier.
	for g.frontier <= g.end && (len(g.queue) == 0 || g.queue[0].at > g.frontier) {
		g.session(g.frontier)
		g.advance()
	}
	if len(g.queue) == 0 {
		return Labeled{}, false
	}
	l := g.queue.pop().ev
	b := make([]byte, 0, 40)
	b = append(b, g.idPrefix...)
	b = strconv.AppendUint(b, g.emitted, 10)
	l.Event.EventID = string(b)
	g.emitted++
	return l, true
}

// advance moves the frontier to the next benign session: a Poisson process whose rate follows the
// daily rhythm, drawn by thinning a process at the peak rate.
func (g *Generator) advance() {
	t := float64(g.frontier) / 1e9
	endSec := float64(g.end) / 1e9
	for {
		t += g.r.exp() / g.maxRate
		if t > endSec {
			g.frontier = g.end + 1
			return
		}
		if g.r.float()*rhythmPeak < g.rhythmAt(t) {
			g.frontier = time.Duration(t * 1e9)
			return
		}
	}
}

// rhythmAt is the relative rate sec seconds after Start.
func (g *Generator) rhythmAt(sec float64) float64 {
	const day = 86400
	cn := math.Mod(float64(g.start.Unix()+8*3600)+float64(g.start.Nanosecond())/1e9+sec, day)
	h := cn / 3600
	i := int(h)
	frac := h - float64(i)
	return rhythm[i%24]*(1-frac) + rhythm[(i+1)%24]*frac
}

// session emits one benign login (and maybe its SMS fallback) at t, sometimes a second login of
// the same user a little later and a traveller's trip, then lets the attack scenarios catch up on
// their share.
func (g *Generator) session(t time.Duration) {
	r := &g.r
	ui := r.intn(g.users)
	u := g.user(ui)
	n := g.login(t, &u, true)
	if n > 0 && r.chance(reloginShare) {
		n += g.relogin(t, ui)
	}
	if r.chance(flightShare) {
		n += g.flight(t)
	}
	g.attacks(t, n)
}

// login queues one login of u at t (and maybe its SMS fallback) and reports how many events it
// queued. remember offers a successful gateway login to token_replay, which replays tokens after
// the original: only a login at the current session time may be offered.
func (g *Generator) login(t time.Duration, u *user, remember bool) int {
	r := &g.r
	d := u.devices[0]
	if u.ndev == 2 && r.chance(otherDeviceUse) {
		d = u.devices[1]
	}
	ip := g.addrFor(r, u)
	flow := schemas.FlowH5QuickLogin
	if d.platform != "h5" {
		flow = []string{schemas.FlowOneClickLogin, schemas.FlowNumberVerify, schemas.FlowSMSFallback}[r.weighted([]float64{0.80, 0.15, 0.05})]
	}
	ev := schemas.VerifyEvent{
		AppID: u.app, Flow: flow, Phone: u.phone, IP: ip,
		Carrier: carrierCodes[u.carrier], Platform: d.platform, DeviceID: d.id,
		Outcome: schemas.OutcomeSuccess,
	}
	n := 0
	if flow == schemas.FlowSMSFallback {
		ev.Carrier = ""
		if r.chance(smsFailRate) {
			fail(&ev, pick(r, smsFails))
		}
		return g.push(t, ev, LabelBenign)
	}
	failed := r.chance(gatewayFailRate)
	if failed {
		fail(&ev, pick(r, benignGatewayFails[u.carrier]))
	}
	if !failed || serverSide[ev.ErrorCode] {
		ev.TokenDigest = g.token()
	}
	n += g.push(t, ev, LabelBenign)
	if remember && !failed && n > 0 {
		g.remember(t, &ev)
	}
	if failed && r.chance(fallbackAfterFail) {
		sms := ev
		sms.Flow, sms.Carrier, sms.TokenDigest = schemas.FlowSMSFallback, "", ""
		sms.Outcome, sms.ErrorCode = schemas.OutcomeSuccess, ""
		if r.chance(smsFailRate) {
			fail(&sms, pick(r, smsFails))
		}
		n += g.push(t+r.dur(15*time.Second, 90*time.Second), sms, LabelBenign)
	}
	return n
}

// attacks credits each scenario with its share of n benign events and starts the episodes that
// are due at t.
func (g *Generator) attacks(t time.Duration, n int) {
	if n == 0 {
		return
	}
	for _, s := range g.sources {
		s.credit += g.perEvent * float64(n)
		for i := 0; i < 8 && s.credit >= float64(s.next); i++ {
			if !s.run(g, t, s.next) {
				break // not possible yet (token_replay before any token was seen): try later
			}
			s.credit -= float64(s.next)
			s.next = s.size(&g.r)
		}
	}
}

func fail(ev *schemas.VerifyEvent, code string) {
	ev.Outcome, ev.ErrorCode = schemas.OutcomeFail, code
}

// user derives user i of the population (indexes from g.users on are travellers).
func (g *Generator) user(i int) user {
	r := derive(g.key, 1, uint64(i))
	var u user
	u.carrier = r.weighted(carrierShares)
	u.phone = g.plan.basicNumber(&r, u.carrier)
	u.app = g.cfg.Apps[r.weighted(g.appW)]
	u.natPool = g.nat[u.carrier]
	// The large app's users: numbers of its region's blocks, behind its region's NAT addresses.
	// (Drawn from their own stream, so the rest of the population is the same with or without it.)
	if lr := derive(g.key, 7, uint64(i)); g.cfg.LargeApp != "" && lr.chance(g.cfg.LargeAppShare) {
		u.app = g.cfg.LargeApp
		u.phone = withDigits(pick(&lr, g.largeBlocks[u.carrier]), 4, lr.next())
		u.natPool = min(g.nat[u.carrier], max(largeAppMinNAT, g.nat[u.carrier]/largeAppNATDivisor))
	}
	u.ndev = 1
	if r.chance(secondDeviceShare) {
		u.ndev = 2
	}
	for j := range u.ndev {
		p := platforms[r.weighted(platformShares)]
		u.devices[j] = device{deviceID(p, r.next(), r.next()), p}
	}
	if r.chance(ipv6Share) {
		u.home = addrIn(pick(&r, natV6[u.carrier]), r.next(), r.next())
	} else {
		u.home = g.natAddr(u.carrier, r.intn(u.natPool))
	}
	u.alt = sameNet(u.home, r.next())
	// Mobility, from a stream of its own (the fields above stay as they were before it existed).
	mr := derive(g.key, 8, uint64(i))
	switch x := mr.float(); {
	case u.home.Is6():
		u.v6Changes = mr.chance(v6ChangeShare)
	case x < cellularShare:
		u.move = moveCellular
	case x < cellularShare+wifiShare:
		u.move = moveWifi
		u.broadband = broadband(&mr, mr.intn(3))
	}
	return u
}

// natAddr is address k of carrier c's NAT pool, shared by many users.
func (g *Generator) natAddr(c, k int) netip.Addr {
	r := derive(g.key, 2+uint64(c), uint64(k))
	return addrIn(pick(&r, natV4[c]), r.next(), r.next())
}

// randomNAT is an address from carrier c's NAT pool, as used by ordinary users.
func (g *Generator) randomNAT(c int) netip.Addr { return g.natAddr(c, g.r.intn(g.nat[c])) }

// app picks an app, bigger apps more often.
func (g *Generator) app() string { return g.cfg.Apps[g.r.weighted(g.appW)] }

// token returns the digest of a fresh loginToken.
func (g *Generator) token() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.key)
	binary.BigEndian.PutUint64(b[8:], g.tokens)
	g.tokens++
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:])
}

// push queues ev at offset at (truncated to the millisecond) and reports 1, or 0 when at is
// past the end.
func (g *Generator) push(at time.Duration, ev schemas.VerifyEvent, label string) int {
	if at < 0 {
		return 0
	}
	at = at.Truncate(time.Millisecond)
	if at > g.end {
		return 0
	}
	ev.TS = g.start.Add(at)
	g.queue.push(item{at: at, seq: g.seq, ev: Labeled{Event: ev, Label: label, Attack: label != LabelBenign}})
	g.seq++
	return 1
}

// Successful benign gateway logins whose tokens token_replay may re-use.
const victimRing = 256

type victim struct {
	at                                time.Duration
	digest, phone, carrier, app, flow string
	platform                          string
}

func (g *Generator) remember(t time.Duration, ev *schemas.VerifyEvent) {
	g.victims[g.nVictims%victimRing] = victim{t, ev.TokenDigest, ev.Phone, ev.Carrier, ev.AppID, ev.Flow, ev.Platform}
	g.nVictims++
}

// queue is a min-heap of pending events by (at, seq).
type queue []item

type item struct {
	at  time.Duration
	seq uint64
	ev  Labeled
}

func (a *item) before(b *item) bool { return a.at < b.at || a.at == b.at && a.seq < b.seq }

func (q *queue) push(it item) {
	*q = append(*q, it)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *queue) pop() item {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = item{}
	h = h[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(h) && h[l].before(&h[m]) {
			m = l
		}
		if r := l + 1; r < len(h) && h[r].before(&h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}
