// Package scoring turns a verification attempt into a riskCheck verdict: it derives the attempt's
// keys, reads sliding-window features, number-segment and geo facts, evaluates the current rule
// pack, and records the attempt in the feature state.
//
// The same Scorer serves the Kafka scorer role (Process: score, then apply), the API (Check: score
// as of now, counting the attempt without recording it), the API's feature replica and restart
// replay (Apply), and backtests — one feature code path everywhere.
package scoring

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"github.com/cespare/xxhash/v2"
	"github.com/dchest/siphash"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/features"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/segment"
)

// Config shapes the feature state and the declared windows.
//
// Its YAML keys (windows, max_entries_per_key) are keys of riskflow's scoring section;
// DefaultConfig has the defaults, Validate names every key that is wrong.
type Config struct {
	Windows []time.Duration `yaml:"windows"` // default DefaultWindows; the longest and LateAllowance set the state's retention
	State   features.Config `yaml:",inline"`
}

// DefaultConfig is the windows DefaultWindows and the state's default bound per key.
func DefaultConfig() Config {
	return Config{Windows: slices.Clone(DefaultWindows), State: features.Config{MaxEntriesPerKey: 1024}}
}

// Validate reports every key that is wrong, each error starting with the key's name.
func (c Config) Validate() error {
	var errs []error
	if len(c.Windows) == 0 {
		errs = append(errs, errors.New("windows: at least one window is required"))
	}
	for _, w := range c.Windows {
		if w < time.Minute || w > 24*time.Hour || w%time.Minute != 0 {
			errs = append(errs, fmt.Errorf("windows: %s must be whole minutes between 1m and 24h", w))
		}
	}
	if err := c.State.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Option configures a Scorer.
type Option func(*Scorer)

// WithSegments sets the number segment table (default: segment.Default()).
func WithSegments(t *segment.Table) Option { return func(s *Scorer) { s.seg = t } }

// WithGeo sets the geo locator (default: none — geo signals off).
func WithGeo(l *geo.Locator) Option { return func(s *Scorer) { s.geo = l } }

// WithLists sets the risk team's allow/block lists.
func WithLists(l *Lists) Option { return func(s *Scorer) { s.SetLists(l) } }

// WithClock sets the clock used by Check (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Scorer) { s.now = now } }

// WithPhoneHasher sets the keyed hasher for stored phone hashes (required for Process).
func WithPhoneHasher(h *schemas.PhoneHasher) Option { return func(s *Scorer) { s.hasher = h } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Scorer) { s.log = l } }

// Scorer scores attempts. Safe for concurrent use: one goroutine may Process/Apply while many Check.
type Scorer struct {
	cat       *catalog
	state     *features.State
	pack      *rules.Holder
	seg       *segment.Table
	geo       *geo.Locator
	lists     listsHolder
	provinces *Provinces
	portedSrc *Ported     // as given (WithPorted)
	ported    keyedPorted // portedSrc keyed by phoneKeyOf
	hasher    *schemas.PhoneHasher
	now       func() time.Time
	log       *slog.Logger
	pool      sync.Pool
	plan      atomic.Pointer[readPlan]
	ruleErrs  ruleErrors    // rules that failed at run time (RuleErrors)
	late      atomic.Uint64 // events scored beyond LateAllowance (ScoredLate)
	phoneKey  [2]uint64     // SipHash key of the state's phone keys (see phoneKeyOf)
	evKey     [2]uint64     // SipHash key of the state's event keys (see eventKey)
	appKey    [2]uint64     // SipHash key of the state's app keys (see appKeyOf)
}

// readPlan lists, per key kind, the window-feature slots the running pack's conditions use. The
// first read of a planned feature computes them all, of every kind, in one state read
// (features.State.AggregatesOf) instead of finding a key once per feature.
type readPlan struct {
	pack   *rules.Pack
	byKind [features.NumKinds][]int
	inPlan []bool // by slot
	// aggs is what the planned slots ask of their keys, kind after kind in byKind's order, without
	// the attempt's own members; selfAt lists the distinct counts among them, which take the
	// member selfOf gives (see input.agg).
	aggs   []features.Agg
	selfAt []int
	selfOf []func(*input) uint32
	// byIndex: the pack was compiled against an environment with this scorer's variables in this
	// scorer's order (its own, or an equal one), so variable indexes are catalog slots and the
	// input may serve rules.Vars. Otherwise variables are served by name only, and nothing is
	// planned.
	byIndex bool
}

// planFor returns the read plan of pack, building it when the pack changed.
func (s *Scorer) planFor(pack *rules.Pack) *readPlan {
	if p := s.plan.Load(); p != nil && p.pack == pack {
		return p
	}
	p := &readPlan{pack: pack, inPlan: make([]bool, len(s.cat.slots))}
	p.byIndex = pack.Env() == s.cat.env || slices.Equal(pack.Env().Vars(), s.cat.env.Vars())
	for _, i := range pack.Uses() {
		if !p.byIndex {
			break
		}
		if wf := s.cat.slots[i].wf; wf != nil {
			p.byKind[wf.kind] = append(p.byKind[wf.kind], i)
			p.inPlan[i] = true
		}
	}
	for _, slots := range p.byKind {
		for _, i := range slots {
			slot := &s.cat.slots[i]
			if slot.wf.distinct {
				p.selfAt, p.selfOf = append(p.selfAt, len(p.aggs)), append(p.selfOf, slot.wf.selfOf)
			}
			p.aggs = append(p.aggs, slot.agg())
		}
	}
	s.plan.Store(p)
	return p
}

// LateAllowance is how much longer than the longest window the feature state keeps a key's
// entries. The state drops what is older than a key's newest entry by its retention, so an event
// scored after later attempts of its keys were applied — re-delivered after a restart or a
// rebalance, scored while the node's feed runs ahead of its scoring through a backlog, uploaded
// late by its app — counts its whole windows, as when scored in order (and as a backtest, which
// replays in time order, counts them), only up to this long after them; beyond it its longest
// windows lose their oldest part. With a retention of the longest window alone, an attempt
// re-delivered 30 minutes after the device's next one lost the two other numbers of 23 h 50 min
// before it (device_phones_24h 3 → 1), and its stored verdict went from 600 to 0.
const LateAllowance = time.Hour

const lateAllowanceSec = uint32(LateAllowance / time.Second)

// ScoredLate counts the events Process scored more than LateAllowance behind the newest event
// the state had applied (its watermark): a backlog scored after an outage longer than that, a
// recording replayed behind a live feed, an app uploading its attempts hours late. Their longest
// windows may miss their oldest part (the keys' newer entries moved them on), so their verdicts
// may be lower than in order — what a backtest of the same events, replayed in time order, would
// show.
func (s *Scorer) ScoredLate() uint64 { return s.late.Load() }

// New builds a scorer with an empty feature state and no rule pack (load one with SetPack).
func New(cfg Config, opts ...Option) (*Scorer, error) {
	windows := cfg.Windows
	if len(windows) == 0 {
		windows = DefaultWindows
	}
	cat, err := newCatalog(windows)
	if err != nil {
		return nil, err
	}
	longest := time.Duration(0)
	for _, w := range windows {
		longest = max(longest, w)
	}
	// The retention also bounds event-id dedupe and token replay detection, so it never drops
	// below a day, whatever the windows.
	cfg.State.Retention = max(cfg.State.Retention, longest+LateAllowance, 24*time.Hour)
	s := &Scorer{
		cat:   cat,
		state: features.New(cfg.State),
		pack:  rules.NewHolder(nil),
		now:   time.Now,
		log:   slog.Default(),
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.seg == nil {
		s.seg = segment.Default()
	}
	s.phoneKey = statePhoneKey(s.hasher)
	s.evKey = stateKey(s.hasher, "riskflow feature state: event keys")
	s.appKey = stateKey(s.hasher, "riskflow feature state: app keys")
	s.ported = s.portedSrc.keyed(s.phoneKeyOf)
	if l := s.lists.Load(); l != nil { // given before the hasher, perhaps: key its phones now
		s.SetLists(l.Lists)
	}
	s.pool.New = func() any {
		return &input{s: s, memo: make([]ref.Val, len(cat.slots)),
			lastStr: make([]string, len(cat.slots)), lastVal: make([]ref.Val, len(cat.slots))}
	}
	return s, nil
}

// Env is the declared rule environment packs must compile against.
func (s *Scorer) Env() *rules.Env { return s.cat.env }

// State is the feature state (for replicas, stats and tests).
func (s *Scorer) State() *features.State { return s.state }

// Rules is the holder of the running pack (swap it to hot-reload).
func (s *Scorer) Rules() *rules.Holder { return s.pack }

// SetPack makes p the running pack. The run-time failures counted for rules p does not have are
// dropped (RuleErrors).
func (s *Scorer) SetPack(p *rules.Pack) {
	s.pack.Swap(p)
	s.ruleErrs.keepOnly(p)
}

// SetLists replaces the allow/block lists atomically.
func (s *Scorer) SetLists(l *Lists) { s.lists.Store(l.keyed(s.phoneKeyOf)) }

// ErrNoPack is returned when scoring before any rule pack was loaded (schemas.ErrUnavailable:
// retry once one is).
var ErrNoPack = schemas.Unavailable("no rule pack loaded")

// ErrNoHasher is returned by Process on a scorer built without WithPhoneHasher
// (schemas.ErrMisconfigured).
var ErrNoHasher = schemas.Misconfigured("score event: no phone hasher configured")

// Process scores a decoded event as of its own time, counting it, then records it in the state.
// A re-delivered event (same event_id) is scored against the state without being counted again.
// A rule that fails at run time is skipped: the record of the other rules comes with an error in
// class schemas.ErrPartial, which the scorer has already counted (RuleErrors) and logged at most
// once per RuleErrorLogEvery per rule — callers need not log it again (Check alike).
func (s *Scorer) Process(ev *schemas.VerifyEvent) (schemas.ScoreRecord, error) {
	if s.hasher == nil {
		return schemas.ScoreRecord{}, ErrNoHasher
	}
	pack := s.pack.Load()
	if pack == nil {
		return schemas.ScoreRecord{}, ErrNoPack
	}
	in := s.get(ev)
	defer s.put(in)
	in.self = !s.state.Seen(in.keys.EventID)
	if w := s.state.Watermark(); in.keys.T < w && w-in.keys.T > lateAllowanceSec {
		s.late.Add(1)
	}
	err := in.eval(pack)
	hash, masked, ip := recordStrings(s.hasher, ev)
	rec := schemas.ScoreRecord{
		EventID:      ev.EventID,
		TS:           ev.TS,
		AppID:        ev.AppID,
		Flow:         ev.Flow,
		PhoneHash:    hash,
		PhoneMasked:  masked,
		PhoneSegment: in.segment7,
		IP:           ip,
		Carrier:      ev.Carrier,
		Platform:     ev.Platform,
		DeviceID:     ev.DeviceID,
		Outcome:      ev.Outcome,
		ErrorCode:    ev.ErrorCode,
		TokenDigest:  ev.TokenDigest,
		ExID:         ev.ExID,
		DecisionID:   ev.DecisionID,
		Geo:          in.geo,
		Score:        in.res.Score,
		Tags:         slices.Clone(in.res.Tags),
		Detail:       copyDetail(in.res.Detail),
		Hits:         slices.Clone(in.res.Hits),
		RulesVersion: pack.Version,
		ScoredAt:     s.now().UTC(),
	}
	if in.self {
		// Apply checks the event id again, atomically: a replay or replica feed may have applied
		// the same event since the Seen above, and it must not be counted twice.
		s.state.Apply(&in.keys)
	}
	if err != nil {
		s.noteRuleErrors(err, pack.Version, "event "+ev.EventID)
		return rec, fmt.Errorf("score event %s: %w", ev.EventID, err)
	}
	return rec, nil
}

// Apply records an event in the feature state without scoring it (replica feed, restart replay).
// It reports false for an event id already applied.
func (s *Scorer) Apply(ev *schemas.VerifyEvent) bool {
	k := s.stateKeys(ev)
	return s.state.Apply(&k)
}

// ApplyBatch records events in the feature state as Apply does one by one, with fewer locks (see
// features.State.ApplyBatch), and reports how many were recorded; applied, when not nil, is set
// to whether each was (false: an event id already applied).
func (s *Scorer) ApplyBatch(evs []schemas.VerifyEvent, applied []bool) int {
	kp := keysPool.Get().(*[]features.Keys)
	ks := (*kp)[:0]
	for i := range evs {
		ks = append(ks, s.stateKeys(&evs[i]))
	}
	n := s.state.ApplyBatch(ks, applied)
	*kp = ks[:0]
	keysPool.Put(kp)
	return n
}

var keysPool = sync.Pool{New: func() any { return new([]features.Keys) }}

// stateKeys is what the feature state records of ev: its keys, with the geo lookup they need
// (the location), and none of what scoring derives besides (number segment, lists, variables).
func (s *Scorer) stateKeys(ev *schemas.VerifyEvent) features.Keys {
	g := s.geo.Lookup(ev.IP)
	return s.keysOf(ev, &g)
}

// Check scores a request as of now, counting the attempt itself, without recording it: the
// attempt is recorded when its event arrives through Kafka. Detail is nil when there are no tags
// (the JSON form of RiskCheck shows it as {}).
func (s *Scorer) Check(req *schemas.CheckRequest) (schemas.RiskCheck, error) {
	rc, _, err := s.check(req, false)
	return rc, err
}

// CheckHits is Check that also returns every rule that matched — shadow, tag and allow rules
// included, with their reasons — for the decision log. The hits are nil when none matched.
func (s *Scorer) CheckHits(req *schemas.CheckRequest) (schemas.RiskCheck, []schemas.RuleHit, error) {
	return s.check(req, true)
}

func (s *Scorer) check(req *schemas.CheckRequest, withHits bool) (schemas.RiskCheck, []schemas.RuleHit, error) {
	pack := s.pack.Load()
	if pack == nil {
		return schemas.RiskCheck{}, nil, ErrNoPack
	}
	in := s.pool.Get().(*input)
	defer s.put(in)
	in.evBuf = schemas.VerifyEvent{
		TS: s.now().UTC(), AppID: req.AppID, Flow: req.Flow, Phone: req.Phone, IP: req.IP,
		Carrier: req.Carrier, Platform: req.Platform, DeviceID: req.DeviceID,
		TokenDigest: req.TokenDigest, ExID: req.ExID,
	}
	in.prepare(&in.evBuf)
	in.self = true
	err := in.eval(pack)
	rc := schemas.RiskCheck{
		Code: 0, Content: "success", Score: in.res.Score, Tags: append([]string{}, in.res.Tags...),
		ExID: req.ExID, RulesVersion: pack.Version,
	}
	if len(in.res.Tags) > 0 { // a clean verdict allocates nothing: RiskCheck's JSON shows a nil Detail as {}
		rc.Detail = copyDetail(in.res.Detail)
	}
	var hits []schemas.RuleHit
	if withHits && len(in.res.Hits) > 0 {
		hits = slices.Clone(in.res.Hits)
	}
	if err != nil {
		s.noteRuleErrors(err, pack.Version, "check")
		return rc, hits, fmt.Errorf("score check: %w", err)
	}
	return rc, hits, nil
}

// byName hides an input's rules.Vars: the rules engine then asks for variables by name.
type byName struct{ rules.Input }

// eval evaluates pack for the attempt into in.res, through the fast path and the read plan when
// the pack's variable indexes are this scorer's slots.
func (in *input) eval(pack *rules.Pack) error {
	in.plan = in.s.planFor(pack)
	if !in.plan.byIndex {
		return pack.Eval(byName{in}, &in.res)
	}
	return pack.Eval(in, &in.res)
}

// recordStrings returns the strings a ScoreRecord needs that the event does not hold: the phone's
// keyed hash in hex (PhoneHasher.Hex), its masked form (schemas.MaskPhone) and the IP in text
// (netip.Addr.String). They share one allocation.
func recordStrings(h *schemas.PhoneHasher, ev *schemas.VerifyEvent) (hash, masked, ip string) {
	sum := h.Sum(ev.Phone)
	var stack [160]byte
	b := hex.AppendEncode(stack[:0], sum[:])
	nHash := len(b)
	b = schemas.AppendMaskedPhone(b, ev.Phone)
	nMasked := len(b)
	if ev.IP.IsValid() {
		b = ev.IP.AppendTo(b)
	} else {
		b = append(b, ev.IP.String()...)
	}
	all := string(b) // the one allocation
	return all[:nHash], all[nHash:nMasked], all[nMasked:]
}

// copyDetail copies d; nil when d is empty (a record's JSON shows a nil Detail as {}).
func copyDetail(d map[string]schemas.TagDetail) map[string]schemas.TagDetail {
	if len(d) == 0 {
		return nil
	}
	return maps.Clone(d)
}

// input is one attempt being scored: the rule activation. Values are computed lazily, once.
type input struct {
	s               *Scorer
	ev              *schemas.VerifyEvent
	evBuf           schemas.VerifyEvent // Check's attempt (an input is pooled, so this does not allocate)
	keys            features.Keys
	members         [3]uint32 // phone, device, net
	self            bool
	seg             segment.Info
	segment7        string
	carrierMismatch bool
	ported          bool
	portedTo        string // the carrier the scoring.ported list says the number moved to
	geo             schemas.Geo
	lists           listHits
	memo            []ref.Val // by slot; nil: not computed yet for this attempt
	lastStr         []string  // by slot: the last string boxed into lastVal (see str)
	lastVal         []ref.Val
	names           [nameCacheSize]nameEntry
	plan            *readPlan // nil: read every feature on its own
	aggs            []features.Agg
	aggOut          []int
	batch           []features.KeyAggs
	batchSlots      []int // readBusy: the slots of aggs
	planRead        bool  // readPlanned ran for this attempt
	travelDone      bool
	travelKm        float64
	travelKmh       float64
	travelMin       float64
	travelDur       time.Duration
	res             rules.Result
}

func (s *Scorer) get(ev *schemas.VerifyEvent) *input {
	in := s.pool.Get().(*input)
	in.prepare(ev)
	return in
}

// put returns in to the pool without keeping the attempt alive.
func (s *Scorer) put(in *input) {
	in.ev = nil
	in.plan = nil
	in.evBuf = schemas.VerifyEvent{}
	s.pool.Put(in)
}

// prepare resets in for the attempt ev and derives what every attempt needs: keys, number
// segment, geo and lists. Variables are computed later, when rules ask for them.
func (in *input) prepare(ev *schemas.VerifyEvent) {
	s := in.s
	in.ev = ev
	clear(in.memo)
	in.planRead = false
	in.travelDone = false
	in.travelKm, in.travelKmh, in.travelMin, in.travelDur = 0, 0, 0, 0
	in.res.Reset()
	in.geo = s.geo.Lookup(ev.IP)
	in.seg = s.seg.Lookup(ev.Phone)
	in.segment7 = schemas.PhoneSegment(ev.Phone)
	in.keys = s.keysOf(ev, &in.geo)
	in.carrierMismatch = segment.CarrierMismatch(in.seg, ev.Carrier)
	if to, ok := s.ported.lookup(in.keys.Phone); ok {
		// A ported number rides the carrier it moved to: compare with that one when the
		// portability lookup said which, else nothing is known to mismatch.
		in.ported, in.portedTo = true, to
		in.carrierMismatch = to != "" && ev.Carrier != "" && ev.Carrier != to
	} else {
		in.ported, in.portedTo = false, ""
	}
	in.members = [3]uint32{features.Member(in.keys.Phone), features.Member(in.keys.Device), features.Member(in.keys.Net)}
	in.lists = s.lists.Load().lookup(ev, &in.keys, s.hasher)
}

// str boxes a string variable's value for slot i without allocating when it can: enum values are
// boxed once for all (internedStrings) and other values are reused while they repeat from one
// attempt to the next (the same app, province, city …).
func (in *input) str(i int, v string) ref.Val {
	if in.lastVal[i] != nil && in.lastStr[i] == v {
		return in.lastVal[i]
	}
	b, ok := internedStrings[v]
	if !ok {
		b = types.String(v)
	}
	in.lastStr[i], in.lastVal[i] = v, b
	return b
}

// statePhoneKey derives the key of the state's phone hashes from the phone-hash key: the first 16
// bytes of its HMAC of a label no phone number spells. Without a hasher (tests, tools that score
// nothing they keep) the key is zero.
func statePhoneKey(h *schemas.PhoneHasher) [2]uint64 {
	return stateKey(h, "riskflow feature state: phone keys")
}

// stateKey derives a SipHash key of the state from the phone-hash key: the first 16 bytes of its
// HMAC of label. Without a hasher the key is zero.
func stateKey(h *schemas.PhoneHasher, label string) [2]uint64 {
	if h == nil {
		return [2]uint64{}
	}
	sum := h.Sum(label)
	return [2]uint64{binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])}
}

// KeyFingerprint identifies the phone-hash key that the state's phone keys derive from, without
// revealing it: 16 hex digits of its HMAC of a label ("none" without a hasher). Snapshots of the
// state store it, and one written under another key is refused (pipeline.Snapshots): its phone
// keys would match no number here.
func (s *Scorer) KeyFingerprint() string {
	if s.hasher == nil {
		return "none"
	}
	return s.hasher.Hex("riskflow feature snapshot")[:16]
}

// ClassFingerprint identifies how the state's address and device keys derive from an address or a
// device id: the data that classifies addresses (geo.Locator.ClassFingerprint), addressKeying and
// deviceKeying. Snapshots store it, and one written under other data or other keying is refused:
// its address or device keys would match none here.
func (s *Scorer) ClassFingerprint() string {
	return fmt.Sprintf("keying %d, devices %d, %s", addressKeying, deviceKeying, s.geo.ClassFingerprint())
}

// addressKeying is the version of ipKeys; change it with ipKeys, so that snapshots keyed the old
// way are refused and replay takes over (TestAddressKeyingIsPinned). 2: an IPv6 address counts as
// its /64 (1: as itself — loaded into a build of 2, its IPv6 per-IP windows would have read empty
// for up to a day). 3: an address of the NAT64 well-known prefix, or IPv4-compatible or
// -translated, is the IPv4 address it embeds (2: the /64 64:ff9b::/64 or ::/64, every IPv4 client
// of a translator in one key). 4: a 6to4 or Teredo address is the IPv4 address it embeds (3: its
// /64, a new one at each subnet id or port of one host). 5: an IPv6 address outside mobile and
// datacenter networks counts as its /56, and its network is that /56 (4: its /64 both). 6: so does
// one on a mobile network, its network still the /32 (5: its /64; China Mobile's home broadband is
// on the mobile list, and a farm on one of its lines rotating /64s showed one number per "IP").
const addressKeying = 6

// phoneKeyOf is the feature state's key of a phone number: SipHash-2-4 under a key derived from the
// phone-hash key (statePhoneKey). The state, its snapshots and the members of other keys' entries
// (the phones seen on an IP, a device, a prefix) hold only these, so a snapshot file cannot be
// turned back into numbers by hashing the ~10^9 mainland mobile numbers without the key (as an
// unkeyed hash could), and a one-known-number attack does not recover the key (as it would from a
// seeded non-cryptographic hash). SipHash costs about 40 ns for an 11-digit number here, 25 ns
// more than the unkeyed xxhash it replaced (BenchmarkPhoneKey).
func (s *Scorer) phoneKeyOf(phone string) uint64 {
	return nz(siphash.Hash(s.phoneKey[0], s.phoneKey[1], unsafe.Slice(unsafe.StringData(phone), len(phone))))
}

// keysOf derives the hashed identities of an attempt.
func (s *Scorer) keysOf(ev *schemas.VerifyEvent, g *schemas.Geo) features.Keys {
	k := features.Keys{
		T:      features.Sec(ev.TS),
		Fail:   ev.Outcome == schemas.OutcomeFail,
		Phone:  s.phoneKeyOf(ev.Phone),
		Prefix: prefixKey7(ev.Phone),
		App:    s.appKeyOf(ev.AppID),
	}
	if ev.EventID != "" {
		k.EventID = eventKey(s.evKey, ev.AppID, ev.EventID)
	}
	if ev.DeviceID != "" {
		k.Device = deviceKeyOf(ev.DeviceID)
	}
	if ev.TokenDigest != "" {
		k.Token = nz(xxhash.Sum64String(ev.TokenDigest))
	}
	k.IP, k.Net = ipKeys(ev.IP, g.IPType)
	// Per-app keys: (app, key) folded into one key of the per-app kinds.
	k.AppIP = perApp(k.App, k.IP)
	k.AppPrefix = perApp(k.App, k.Prefix)
	// Only a confident location locates the attempt: a country-only record carries the country's
	// centroid, and a hop to a centroid is not travel; a mobile carrier's pools geolocate poorly
	// (geo.Confident). Only confident locations are stored, so a hop needs both ends confident.
	if geo.Confident(g) {
		k.HasLoc, k.Lat, k.Lon = true, float32(g.Lat), float32(g.Lon)
	}
	return k
}

// appKeyOf is the feature state's key of an app: SipHash-2-4 under a key derived from the
// phone-hash key. The per-app keys (perApp) fold it with an address or block key by an invertible
// function, so with an unkeyed app hash (xxhash, as before) a tenant could compute from the two
// app ids an IPv6 /64 (its key an unkeyed hash of 8 bytes, a bijection) whose key in its own app
// equals another app's key of any address, and count its attempts in that app's app_ip_* windows.
func (s *Scorer) appKeyOf(appID string) uint64 {
	return nz(siphash.Hash(s.appKey[0], s.appKey[1], unsafe.Slice(unsafe.StringData(appID), len(appID))))
}

// eventKey is the dedupe key of an event: event ids are unique per app (tenant), not across apps,
// so the key is (app_id, event_id), as in the ClickHouse tables. The app id's length comes first,
// so no two (app_id, event_id) pairs feed the hash the same bytes. The hash is SipHash-2-4 under
// key (derived from the phone-hash key): with an unkeyed hash a tenant who knows or guesses
// another's event ids could compute ids of its own whose keys collide with them, and have that
// app's events dropped as re-deliveries. It does not allocate for ids of valid lengths.
func eventKey(key [2]uint64, appID, eventID string) uint64 {
	var buf [8 + schemas.MaxAppIDLen + schemas.MaxEventIDLen]byte
	b := buf[:0]
	if n := 8 + len(appID) + len(eventID); n > len(buf) {
		b = make([]byte, 0, n)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(appID)))
	b = append(append(b, appID...), eventID...)
	return nz(siphash.Hash(key[0], key[1], b))
}

// perApp derives the per-app key of key (0 stays 0: an absent key is not counted per app).
func perApp(app, key uint64) uint64 {
	if key == 0 || app == 0 {
		return 0
	}
	// A 64-bit finalizer (murmur3's fmix64) over the two keys: keys are hashes already, apart
	// from IPv4 and prefix keys, which the multiplication spreads.
	h := app*0x9e3779b97f4a7c15 ^ key
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return nz(h)
}

func nz(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// ipKeys returns the IP's key and its network's key.
//
// The IP is an IPv4 address or the IPv6 prefix a subscriber or a line holds (ipUnit): its /64 on a
// datacenter network, its /56 elsewhere. An IPv6 host picks its own interface id inside the /64
// its network routes to it and changes it at will (privacy addresses, RFC 8981: a new one a day or
// per connection), so counting /128s would let one host (a farm behind one hotspot) show a new "IP"
// for every attempt and never crowd an address. A fixed broadband line is delegated a /56 or a /60
// (DHCPv6-PD) and numbers its LANs from it: there the /64 is one of up to 256 networks of one
// household, and a SIM farm on one line that gave each attempt a new /64 of its /56 showed one
// number per "IP" (80 numbers, none crowded, 0 scored). A carrier gives each cellular device a /64
// of its own (3GPP), but the mobile list (ipType "mobile") cannot tell China Mobile's home
// broadband from its cellular pools: both are in the same ASes and the same 2409:8000::/20, and
// neither the ASN data nor GeoLite2 says which is which. Keyed by /64 there, the same farm on a
// China Mobile line scored 0 again; so a mobile network's IPv6 address counts as its /56 too. On a
// cellular network that /56 holds the /64s of up to 256 devices, which seldom log in to one app
// within minutes of each other (TestMobileNetworkStreams: a dense cellular pool stays at 0% ≥600).
//
// The network is the range an address is handed out from, which address rotation stays inside:
// an IPv4 /24 or the IPv6 unit, except
//   - on a datacenter network (ipType "idc") an IPv6 /48: a hosting customer is routed a /48 or a
//     /56 and can use a new /64 for every attempt;
//   - on a mobile carrier's network (ipType "mobile") an IPv4 /16 or an IPv6 /32: the carrier's
//     pool hands a device a new NAT address, or a new /64, at each data session, so the /24 or /56
//     of an ordinary cellular user changes many times a day.
//
// An IPv6 address embedding an IPv4 address (geo.ClientAddr: IPv4-mapped, the NAT64 well-known
// prefix 64:ff9b::/96, 6to4, Teredo, …) is the IPv4 address.
func ipKeys(a netip.Addr, ipType string) (ip, net uint64) {
	if !a.IsValid() {
		return 0, 0
	}
	a = geo.ClientAddr(a)
	if a.Is4() {
		b := a.As4()
		v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		if ipType == geo.IPTypeMobile {
			return 1<<40 | v, 3<<40 | v>>16
		}
		return 1<<40 | v, 2<<40 | v>>8
	}
	b := a.As16()
	switch ipType {
	case geo.IPTypeIDC:
		return nz(xxhash.Sum64(b[:8]) ^ 0x3c6ef372fe94f82b), nz(xxhash.Sum64(b[:6]) ^ 0x6a09e667f3bcc908)
	case geo.IPTypeMobile:
		// The /56 keyed as on broadband: a line the mobile list holds by mistake is one address.
		return nz(xxhash.Sum64(b[:7]) ^ 0xa54ff53a5f1d36f1), nz(xxhash.Sum64(b[:4]) ^ 0xbb67ae8584caa73b)
	}
	h := xxhash.Sum64(b[:7]) // the /56 is both the address and its network: hashed once
	return nz(h ^ 0xa54ff53a5f1d36f1), nz(h ^ 0x510e527fade682d1)
}

// ipUnit is the prefix an IPv6 address counts as in the ip_* and app_ip_* windows given its
// network type (Geo.IPType): its /64 on a datacenter network, its /56 (a broadband line's
// delegation) elsewhere, a mobile carrier's network included — see ipKeys. An IPv4 address, or an IPv6 address
// embedding one (geo.ClientAddr), is itself (a /32).
func ipUnit(a netip.Addr, ipType string) netip.Prefix {
	a = geo.ClientAddr(a)
	switch {
	case !a.IsValid():
		return netip.Prefix{}
	case a.Is4():
		return netip.PrefixFrom(a, 32)
	case ipType == geo.IPTypeIDC:
		return netip.PrefixFrom(a, 64).Masked()
	}
	return netip.PrefixFrom(a, 56).Masked()
}

// prefixKey7 is the numeric value of the first 7 digits, offset so it is never zero.
func prefixKey7(phone string) uint64 {
	if len(phone) < 7 {
		return 0
	}
	var v uint64
	for i := 0; i < 7; i++ {
		v = v*10 + uint64(phone[i]-'0')
	}
	return 1<<50 | v
}

// nameCacheSize is the number of entries of an input's name cache: well above the number of
// distinct variable references of a pack (the default pack has about 25).
const (
	nameCacheBits = 8
	nameCacheSize = 1 << nameCacheBits
)

// nameEntry caches the slot of one variable name as a rule program or reason template spells it.
type nameEntry struct {
	name string
	slot int32 // -1: not a declared variable
	ok   bool
}

// slotOf returns the catalog slot of a variable, -1 when it is not declared. Compiled rules pass
// the same string (same bytes at the same address) at every evaluation, so the cache is indexed by
// the string's address and needs no hashing of the name; an entry is used only when it holds an
// equal string, which keeps the cache correct whatever the address of a name.
func (in *input) slotOf(name string) int {
	p := uint64(uintptr(unsafe.Pointer(unsafe.StringData(name))))
	h := ((p>>3 ^ uint64(len(name))) * 0x9E3779B97F4A7C15) >> (64 - nameCacheBits)
	e := &in.names[h&(nameCacheSize-1)]
	if e.ok && e.name == name {
		return int(e.slot)
	}
	slot, ok := in.s.cat.index[name]
	if !ok {
		slot = -1
	}
	*e = nameEntry{name: name, slot: int32(slot), ok: true}
	return slot
}

// ResolveName implements the rule activation: the value of a declared variable, as a cel-go value.
func (in *input) ResolveName(name string) (any, bool) {
	i := in.slotOf(name)
	if i < 0 {
		return nil, false
	}
	return in.val(i), true
}

// val returns the value of the variable in slot i, computing it on first use.
func (in *input) val(i int) ref.Val {
	if v := in.memo[i]; v != nil {
		return v
	}
	slot := &in.s.cat.slots[i]
	var v ref.Val
	switch {
	case slot.scalar != nil:
		v = slot.scalar.eval(in, i)
	case in.plan != nil && in.plan.inPlan[i]:
		if !in.planRead {
			in.readPlanned()
			if v := in.memo[i]; v != nil {
				return v
			}
		}
		// A busy key the planned read left: its counts, and of its distinct counts only this one
		// (each is a pass over the key's entries; a rule may never ask for the others).
		in.readBusy(slot.wf.kind, i)
		return in.memo[i]
	default:
		v = types.Int(in.window(i))
	}
	in.memo[i] = v
	return v
}

// readPlanned computes every planned window feature, of every key kind, in one state read and
// memoizes them: the attempt's keys are looked up together (features.State.AggregatesOf), so
// that the cache misses of the six lookups overlap instead of adding up. The features of a busy
// key whose distinct counts AggregatesOf leaves are read later, one by one, if a rule needs them.
func (in *input) readPlanned() {
	in.planRead = true
	p := in.plan
	n := len(p.aggs)
	in.aggs = append(in.aggs[:0], p.aggs...)
	if in.self {
		for j, at := range p.selfAt {
			in.aggs[at].SelfMember = p.selfOf[j](in)
		}
	}
	in.aggOut = slices.Grow(in.aggOut[:0], n)[:n]
	in.batch = in.batch[:0]
	from := 0
	for kind, slots := range p.byKind {
		if len(slots) == 0 {
			continue
		}
		to := from + len(slots)
		// No device id: device features are 0 (an absent key), not "one device".
		in.batch = append(in.batch, features.KeyAggs{Kind: features.Kind(kind), Key: in.s.cat.slots[slots[0]].wf.keyOf(in),
			Aggs: in.aggs[from:to], Out: in.aggOut[from:to]})
		from = to
	}
	in.s.state.AggregatesOf(in.keys.T, in.self, in.keys.Fail, in.batch)
	for _, k := range in.batch {
		if !k.Done {
			continue
		}
		for j, i := range p.byKind[k.Kind] {
			in.memo[i] = types.Int(k.Out[j])
		}
	}
}

// readBusy computes, for a busy key the planned read left, the planned window features of its
// kind that are not computed yet and cheap — its counts — and the one in slot want, in one state
// read, and memoizes them. Its other distinct counts are computed if and when a rule asks: on a
// busy key each is a pass over its entries (a block of a large app: thousands), and a rule that
// asks for the 1 h count may stop there (prefix_burst reads the 24 h count last).
func (in *input) readBusy(kind features.Kind, want int) {
	in.aggs = in.aggs[:0]
	in.batchSlots = in.batchSlots[:0]
	for _, i := range in.plan.byKind[kind] {
		if in.memo[i] == nil && (i == want || !in.s.cat.slots[i].wf.distinct) {
			in.aggs = append(in.aggs, in.agg(i))
			in.batchSlots = append(in.batchSlots, i)
		}
	}
	key := in.s.cat.slots[want].wf.keyOf(in)
	in.aggOut = slices.Grow(in.aggOut[:0], len(in.aggs))[:len(in.aggs)]
	// No device id: device features are 0 (an absent key), not "one device".
	in.s.state.Aggregates(kind, key, in.keys.T, in.self, in.keys.Fail, in.aggs, in.aggOut)
	for j, i := range in.batchSlots {
		in.memo[i] = types.Int(in.aggOut[j])
	}
}

// Int, Double, Bool and String implement rules.Vars, the rules engine's fast path: a variable by
// its index in the Env, which is its catalog slot. The rules engine calls the method of the
// variable's declared type.
func (in *input) Int(i int) int64      { return int64(in.val(i).(types.Int)) }
func (in *input) Double(i int) float64 { return float64(in.val(i).(types.Double)) }
func (in *input) Bool(i int) bool      { return bool(in.val(i).(types.Bool)) }
func (in *input) String(i int) string  { return string(in.val(i).(types.String)) }

var _ rules.Vars = (*input)(nil)

// Parent implements interpreter.Activation.
func (in *input) Parent() interpreter.Activation { return nil }

func (in *input) window(i int) int {
	var out [1]int
	in.s.state.Aggregates(in.s.cat.slots[i].wf.kind, in.s.cat.slots[i].wf.keyOf(in), in.keys.T, in.self, in.keys.Fail,
		[]features.Agg{in.agg(i)}, out[:])
	return out[0]
}

// agg is the aggregate window-feature slot i asks of its key.
func (in *input) agg(i int) features.Agg {
	slot := &in.s.cat.slots[i]
	a := slot.agg()
	if slot.wf.distinct && in.self {
		a.SelfMember = slot.wf.selfOf(in)
	}
	return a
}

// asText renders the IP's autonomous system for reasons, never as "AS0".
func (in *input) asText() string {
	switch {
	case in.geo.ASN != 0:
		n := strconv.FormatUint(uint64(in.geo.ASN), 10)
		if org := in.s.geo.ASOrg(in.geo.ASN); org != "" {
			return "AS" + n + " " + org
		}
		return "AS" + n
	case in.s.geo.HasASN():
		return "unknown AS"
	}
	return "no ASN data"
}

func (in *input) tokenSeen() int {
	if in.self {
		// A new attempt: every sighting recorded so far, whatever its time, makes it a replay.
		return in.s.state.TokenSeen(in.keys.Token, features.MaxSec)
	}
	// A re-delivered event is scored as of its own time, so that sightings recorded after it do
	// not turn the original into a replay; it is itself one of the sightings up to then.
	return max(in.s.state.TokenSeen(in.keys.Token, in.keys.T)-1, 0)
}

// travel computes the hop from the number's previous located attempt. Hops under 50 km are
// ignored (IP geolocation is city-level at best).
func (in *input) travel() {
	if in.travelDone {
		return
	}
	in.travelDone = true
	if !in.keys.HasLoc {
		return
	}
	at, lat, lon, ok := in.s.state.LastLocation(in.keys.Phone, in.keys.T)
	if !ok {
		return
	}
	km := geo.DistanceKm(float64(lat), float64(lon), float64(in.keys.Lat), float64(in.keys.Lon))
	if km < geo.MinHopKm {
		return
	}
	dt := time.Duration(in.keys.T-at) * time.Second
	in.travelKm = km
	// Timed to the second as stored (the previous attempt is from an earlier second): the speed is
	// the distance over the time the reasons show (travel_time). A hop under a minute was timed as
	// a minute, so a reason read "1067.18 km in 0.75 min (64030.64 km/h)", as for a 1 s hop.
	dt = max(dt, time.Second)
	in.travelMin, in.travelDur = dt.Minutes(), dt
	in.travelKmh = geo.SpeedKmh(km, dt)
}
