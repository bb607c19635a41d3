package scoring

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/features"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/segment"
)

// windowFeature is a count or distinct count over a window, declared once per configured window as
// `<name>_<window>` (phone_verifies_10m, ip_phones_1h, …).
type windowFeature struct {
	name     string
	doc      string
	kind     features.Kind
	distinct bool
	field    features.Field // distinct: which member
	fails    bool           // count: failures only
	keyOf    func(*input) uint64
	selfOf   func(*input) uint32 // distinct: the current attempt's member
}

var windowFeatures = []windowFeature{
	{name: "phone_verifies", doc: "verifications of this phone number", kind: features.KindPhone, keyOf: phoneKey},
	{name: "phone_fails", doc: "failed verifications of this phone number", kind: features.KindPhone, fails: true, keyOf: phoneKey},
	{name: "phone_devices", doc: "distinct devices that verified this number", kind: features.KindPhone, distinct: true, field: features.FieldA, keyOf: phoneKey, selfOf: deviceMember},
	{name: "phone_nets", doc: "distinct networks this number verified from (IPv4 /24, IPv6 /56, a broadband line; on a mobile carrier network IPv4 /16, IPv6 /32, its pool; on a datacenter network IPv6 /48)", kind: features.KindPhone, distinct: true, field: features.FieldB, keyOf: phoneKey, selfOf: netMember},
	{name: "ip_verifies", doc: "verifications from this IP (an IPv6 address counts as its /64 on a datacenter network, its /56 — a broadband line — elsewhere, a mobile carrier's network included, as every ip_* and app_ip_* window does)", kind: features.KindIP, keyOf: ipKey},
	{name: "ip_fails", doc: "failed verifications from this IP", kind: features.KindIP, fails: true, keyOf: ipKey},
	{name: "ip_phones", doc: "distinct phone numbers verified from this IP", kind: features.KindIP, distinct: true, field: features.FieldA, keyOf: ipKey, selfOf: phoneMember},
	{name: "ip_devices", doc: "distinct devices seen on this IP", kind: features.KindIP, distinct: true, field: features.FieldB, keyOf: ipKey, selfOf: deviceMember},
	{name: "net_verifies", doc: "verifications from this network (IPv4 /24, IPv6 /56; on a mobile carrier network IPv4 /16, IPv6 /32; on a datacenter network IPv6 /48)", kind: features.KindNet, keyOf: netKey},
	{name: "net_phones", doc: "distinct phone numbers verified from this network", kind: features.KindNet, distinct: true, field: features.FieldA, keyOf: netKey, selfOf: phoneMember},
	{name: "device_verifies", doc: "verifications from this device (0 without device_id)", kind: features.KindDevice, keyOf: deviceKey},
	{name: "device_fails", doc: "failed verifications from this device", kind: features.KindDevice, fails: true, keyOf: deviceKey},
	{name: "device_phones", doc: "distinct phone numbers verified on this device", kind: features.KindDevice, distinct: true, field: features.FieldA, keyOf: deviceKey, selfOf: phoneMember},
	{name: "prefix_phones", doc: "distinct numbers sharing all but the last 4 digits (连号)", kind: features.KindPrefix, distinct: true, field: features.FieldA, keyOf: prefixKey, selfOf: phoneMember},
	{name: "prefix_verifies", doc: "verifications of numbers sharing all but the last 4 digits", kind: features.KindPrefix, keyOf: prefixKey},
	{name: "app_verifies", doc: "verifications in this app (tenant); an estimate beyond the newest 1024", kind: features.KindApp, keyOf: appKey},
	{name: "app_fails", doc: "failed verifications in this app", kind: features.KindApp, fails: true, keyOf: appKey},
	{name: "app_phones", doc: "distinct phone numbers verified in this app (a HyperLogLog estimate above 512)", kind: features.KindApp, distinct: true, field: features.FieldA, keyOf: appKey, selfOf: phoneMember},
	// Per-app variants of the address and number-block features: the same counts, only this app's
	// attempts. A pack compares them with the app's own volume (app_phones_*) so that a large
	// app's ordinary crowd behind a carrier NAT, or its many numbers of one block, is not a burst.
	{name: "app_ip_verifies", doc: "verifications from this IP in this app", kind: features.KindAppIP, keyOf: appIPKey},
	{name: "app_ip_fails", doc: "failed verifications from this IP in this app", kind: features.KindAppIP, fails: true, keyOf: appIPKey},
	{name: "app_ip_phones", doc: "distinct phone numbers verified from this IP in this app", kind: features.KindAppIP, distinct: true, field: features.FieldA, keyOf: appIPKey, selfOf: phoneMember},
	{name: "app_ip_devices", doc: "distinct devices seen on this IP in this app", kind: features.KindAppIP, distinct: true, field: features.FieldB, keyOf: appIPKey, selfOf: deviceMember},
	{name: "app_prefix_phones", doc: "distinct numbers of this 7-digit block (连号) verified in this app", kind: features.KindAppPrefix, distinct: true, field: features.FieldA, keyOf: appPrefixKey, selfOf: phoneMember},
	{name: "app_prefix_verifies", doc: "verifications of numbers of this 7-digit block in this app", kind: features.KindAppPrefix, keyOf: appPrefixKey},
	{name: "app_blocks", doc: "distinct 7-digit blocks of the numbers verified in this app (a HyperLogLog estimate above 512): app_phones / app_blocks is the app's usual count per block", kind: features.KindAppBlocks, distinct: true, field: features.FieldA, keyOf: appKey, selfOf: prefixMember},
}

func phoneKey(in *input) uint64     { return in.keys.Phone }
func ipKey(in *input) uint64        { return in.keys.IP }
func netKey(in *input) uint64       { return in.keys.Net }
func deviceKey(in *input) uint64    { return in.keys.Device }
func prefixKey(in *input) uint64    { return in.keys.Prefix }
func appKey(in *input) uint64       { return in.keys.App }
func appIPKey(in *input) uint64     { return in.keys.AppIP }
func appPrefixKey(in *input) uint64 { return in.keys.AppPrefix }
func phoneMember(in *input) uint32  { return in.members[0] }
func deviceMember(in *input) uint32 { return in.members[1] }
func netMember(in *input) uint32    { return in.members[2] }
func prefixMember(in *input) uint32 { return features.Member(in.keys.Prefix) }

// scalarVar is a per-event value that is not a window feature. eval returns cel-go values
// (types.Int, types.String, …), which the rules engine uses as they are, without converting.
type scalarVar struct {
	name string
	typ  rules.Type
	doc  string
	eval func(*input, int) ref.Val // the input and the variable's slot (for str)
}

var scalarVars = []scalarVar{
	{"app_id", rules.String, "tenant (event app_id)", func(in *input, i int) ref.Val { return in.str(i, in.ev.AppID) }},
	{"flow", rules.String, "one_click_login | number_verify | h5_quick_login | sms_fallback", func(in *input, i int) ref.Val { return in.str(i, in.ev.Flow) }},
	{"carrier", rules.String, "carrier the gateway reported: CM | CU | CT | \"\"", func(in *input, i int) ref.Val { return in.str(i, in.ev.Carrier) }},
	{"platform", rules.String, "android | ios | harmony | h5 | web | \"\"", func(in *input, i int) ref.Val { return in.str(i, in.ev.Platform) }},
	{"outcome", rules.String, "success | fail | \"\" (a pre-verify check)", func(in *input, i int) ref.Val { return in.str(i, in.ev.Outcome) }},
	{"error_code", rules.String, "SDK or carrier code on failure", func(in *input, i int) ref.Val { return in.str(i, in.ev.ErrorCode) }},
	{"has_device", rules.Bool, "the attempt carries a device_id", func(in *input, _ int) ref.Val { return types.Bool(in.ev.DeviceID != "") }},
	{"has_token", rules.Bool, "the attempt carries a token_digest", func(in *input, _ int) ref.Val { return types.Bool(in.ev.TokenDigest != "") }},
	{"token_seen", rules.Int, "earlier attempts with the same loginToken digest (replays)", func(in *input, _ int) ref.Val { return types.Int(in.tokenSeen()) }},
	{"hour_cn", rules.Int, "hour of the attempt in China time (UTC+8), 0–23", func(in *input, _ int) ref.Val { return types.Int((in.ev.TS.Unix() + 8*3600) % 86400 / 3600) }},
	{"phone_prefix", rules.String, "first 7 digits of the number (its segment)", func(in *input, i int) ref.Val { return in.str(i, in.segment7) }},
	{"phone_province", rules.String, "province the number is registered in (号码归属地; \"\" without a scoring.provinces table)", func(in *input, i int) ref.Val {
		return in.str(i, in.s.provinces.of(in.keys.Prefix))
	}},
	{"province_mismatch", rules.Bool, "both provinces known and the IP's differs from the number's (roaming is common: a weak signal)", func(in *input, i int) ref.Val {
		p := in.s.provinces.of(in.keys.Prefix)
		return types.Bool(p != "" && in.geo.Province != "" && p != in.geo.Province)
	}},
	{"segment_class", rules.String, "basic | mvno | data_only | iot | satellite | special | unallocated", func(in *input, i int) ref.Val {
		if v := classVals[in.seg.Class]; v != nil {
			return v
		}
		return in.str(i, in.seg.Class.String())
	}},
	{"segment_carrier", rules.String, "carrier the number segment is allocated to (CM | CU | CT | CBN | \"\")", func(in *input, i int) ref.Val { return in.str(i, in.seg.Carrier) }},
	{"segment_host_carrier", rules.String, "carrier whose network the number rides (the host carrier for MVNO numbers)", func(in *input, i int) ref.Val { return in.str(i, in.seg.HostCarrier) }},
	{"carrier_mismatch", rules.Bool, "reported carrier ≠ host carrier of the segment (soft: number portability); for a number on the scoring.ported list, ≠ the carrier it was ported to, or false when the list does not say", func(in *input, _ int) ref.Val { return types.Bool(in.carrierMismatch) }},
	{"ported_carrier", rules.String, "carrier the number was ported to per the scoring.ported list: CM | CU | CT | \"\" (not listed, or the list does not say)", func(in *input, i int) ref.Val { return in.str(i, in.portedTo) }},
	{"phone_ported", rules.Bool, "the number is on the scoring.ported list (moved to another carrier; false without the list)", func(in *input, _ int) ref.Val { return types.Bool(in.ported) }},
	{"geo_known", rules.Bool, "the IP was found in the geo database", func(in *input, _ int) ref.Val { return types.Bool(in.geo.Country != "") }},
	{"ip_country", rules.String, "ISO country code of the IP (\"\" when unknown or geo is off)", func(in *input, i int) ref.Val { return in.str(i, in.geo.Country) }},
	{"ip_province", rules.String, "province (first subdivision, English) of the IP", func(in *input, i int) ref.Val { return in.str(i, in.geo.Province) }},
	{"ip_city", rules.String, "city (English) of the IP", func(in *input, i int) ref.Val { return in.str(i, in.geo.City) }},
	{"ip_asn", rules.Int, "autonomous system number of the IP (0 when unknown or without ASN data)", func(in *input, _ int) ref.Val { return types.Int(in.geo.ASN) }},
	{"ip_as", rules.String, "the IP's autonomous system for reasons: \"AS4134 Chinanet\", \"unknown AS\" (not in the ASN data) or \"no ASN data\"", func(in *input, i int) ref.Val { return in.str(i, in.asText()) }},
	{"ip_org", rules.String, "organisation of the IP's autonomous system (\"\" when unknown)", func(in *input, i int) ref.Val { return in.str(i, in.s.geo.ASOrg(in.geo.ASN)) }},
	{"ip_type", rules.String, "idc (datacenter/proxy list or cloud AS) | mobile (mobile carrier network: low-confidence location) | \"\" (other or unknown)", func(in *input, i int) ref.Val { return in.str(i, in.geo.IPType) }},
	{"geo_confident", rules.Bool, "the IP has a city-level location on a network that is not a mobile carrier's: only such locations drive travel_*", func(in *input, _ int) ref.Val { return types.Bool(geo.Confident(&in.geo)) }},
	{"ip_v6", rules.Bool, "the IP is IPv6 (not one embedding an IPv4 address: IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32)", func(in *input, _ int) ref.Val { return types.Bool(geo.ClientAddr(in.ev.IP).Is6()) }},
	{"ip_private", rules.Bool, "the IP (or the IPv4 address it embeds) is of a private network — RFC 1918, carrier-grade NAT 100.64.0.0/10, unique local fc00::/7 — which a verify service sees for clients behind its own proxy or on its own network: every such client shares it", func(in *input, _ int) ref.Val { return types.Bool(geo.IsPrivate(in.ev.IP)) }},
	{"travel_km", rules.Double, "distance from this number's previous confident location (0 when unknown, < 50 km, or either end not geo_confident)", func(in *input, _ int) ref.Val { in.travel(); return types.Double(in.travelKm) }},
	{"travel_kmh", rules.Double, "speed implied by the hop from the previous location (0 when unknown or < 50 km)", func(in *input, _ int) ref.Val { in.travel(); return types.Double(in.travelKmh) }},
	{"travel_minutes", rules.Double, "minutes since the previous located attempt of this number", func(in *input, _ int) ref.Val { in.travel(); return types.Double(in.travelMin) }},
	{"travel_time", rules.String, "the time of the hop for reasons, as travel_kmh reckons it: \"1 s\", \"45 s\", \"1 min 30 s\", \"30 min\", \"3 h 5 min\", \"2 d 4 h\" (\"\" when there is no hop)", func(in *input, i int) ref.Val { in.travel(); return in.str(i, hopTime(in.travelDur)) }},
	{"phone_listed", rules.String, "block | allow | \"\": the number on the risk team's lists", func(in *input, i int) ref.Val { return in.str(i, in.lists.phone) }},
	{"ip_listed", rules.String, "block | allow | \"\": the IP (or a CIDR holding it) on the lists", func(in *input, i int) ref.Val { return in.str(i, in.lists.ip) }},
	{"device_listed", rules.String, "block | allow | \"\": the device on the lists", func(in *input, i int) ref.Val { return in.str(i, in.lists.device) }},
	{"prefix_listed", rules.String, "block | allow | \"\": the number's 7-digit prefix on the lists", func(in *input, i int) ref.Val { return in.str(i, in.lists.prefix) }},
	{"block_listed", rules.String, "what of the attempt is on the block list, for reasons: \"number\", \"IP 203.0.113.99\", \"network 198.51.100.0/24\", \"device\", \"number block 1700123\", joined with \", \" (\"\" when none)", func(in *input, i int) ref.Val { return in.str(i, in.lists.on("block")) }},
	{"allow_listed", rules.String, "what of the attempt is on the allow list, for reasons, as block_listed names it: \"number\", \"network 192.0.2.0/24, device\" (\"\" when none)", func(in *input, i int) ref.Val { return in.str(i, in.lists.on("allow")) }},
}

// Boxing a string into a ref.Val allocates. The values rules compare most (enums) are boxed once
// here; others are reused while they repeat (see input.str).
var (
	internedStrings = func() map[string]ref.Val {
		m := map[string]ref.Val{}
		for _, s := range []string{"",
			schemas.FlowOneClickLogin, schemas.FlowNumberVerify, schemas.FlowH5QuickLogin, schemas.FlowSMSFallback,
			schemas.OutcomeSuccess, schemas.OutcomeFail,
			schemas.CarrierMobile, schemas.CarrierUnicom, schemas.CarrierTelecom, "CBN",
			"android", "ios", "harmony", "h5", "web",
			geo.IPTypeIDC, geo.IPTypeMobile, "unknown AS", "no ASN data", "block", "allow", "CN", "HK", "MO", "TW", "US",
		} {
			m[s] = types.String(s)
		}
		return m
	}()
	classVals = func() (v [256]ref.Val) {
		for c := range v {
			if name := segment.Class(c).String(); !strings.HasPrefix(name, "Class(") {
				v[c] = types.String(name)
			}
		}
		return v
	}()
)

// DefaultWindows are the windows declared for every window feature.
var DefaultWindows = []time.Duration{time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour}

// WindowLabel renders a window as used in variable names: 1m, 10m, 1h, 24h.
func WindowLabel(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// varSlot is one declared variable: a scalar or a (window feature, window) pair.
type varSlot struct {
	scalar *scalarVar
	wf     *windowFeature
	window uint32 // seconds
}

// agg is what a window-feature slot asks of its key, without the attempt's own member (see
// input.agg).
func (v *varSlot) agg() features.Agg {
	return features.Agg{Window: v.window, Distinct: v.wf.distinct, Fails: v.wf.fails, Field: v.wf.field}
}

// catalog is the declared environment: rule variables and how to compute each. A variable's slot
// is its index in the Env's declarations (rules.Vars relies on it).
type catalog struct {
	env   *rules.Env
	slots []varSlot
	index map[string]int
}

func newCatalog(windows []time.Duration) (*catalog, error) {
	c := &catalog{index: map[string]int{}}
	var decl []rules.Var
	for i := range scalarVars {
		sv := &scalarVars[i]
		c.index[sv.name] = len(c.slots)
		c.slots = append(c.slots, varSlot{scalar: sv})
		decl = append(decl, rules.Var{Name: sv.name, Type: sv.typ, Doc: sv.doc})
	}
	for i := range windowFeatures {
		wf := &windowFeatures[i]
		for _, w := range windows {
			if w < time.Minute || w > 24*time.Hour || w%time.Minute != 0 {
				return nil, fmt.Errorf("window %s: must be whole minutes between 1m and 24h", w)
			}
			name := wf.name + "_" + WindowLabel(w)
			c.index[name] = len(c.slots)
			c.slots = append(c.slots, varSlot{wf: wf, window: uint32(w / time.Second)})
			decl = append(decl, rules.Var{Name: name, Type: rules.Int, Doc: wf.doc + " in the last " + WindowLabel(w)})
		}
	}
	env, err := rules.NewEnv(decl)
	if err != nil {
		return nil, fmt.Errorf("declare rule variables: %w", err)
	}
	c.env = env
	return c, nil
}

// hopTime writes the time of a hop as people write it, to the second under an hour, to the minute
// under a day, to the hour beyond: "1 s", "45 s", "1 min 30 s", "30 min", "3 h 5 min", "2 d 4 h";
// "" for none. Under a minute the speed (travel_kmh) is over these very seconds.
func hopTime(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	two := func(n1 int64, u1 string, n2 int64, u2 string) string {
		s := strconv.FormatInt(n1, 10) + " " + u1
		if n2 > 0 {
			s += " " + strconv.FormatInt(n2, 10) + " " + u2
		}
		return s
	}
	switch s := int64(d / time.Second); {
	case s < 60:
		return strconv.FormatInt(max(s, 1), 10) + " s"
	case s < 3600:
		return two(s/60, "min", s%60, "s")
	case s < 86400:
		return two(s/3600, "h", s%3600/60, "min")
	default:
		return two(s/86400, "d", s%86400/3600, "h")
	}
}
