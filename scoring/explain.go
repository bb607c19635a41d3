package scoring

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/features"
)

// Subject is what Explain looks at: one phone number, IP address or device. Exactly one of Phone
// (normalized digits), IP and DeviceID is set; AppID optionally scopes the app-level variables.
type Subject struct {
	Phone    string
	IP       netip.Addr
	DeviceID string
	AppID    string
}

// Explanation is the live feature state of one subject as the running pack sees it: every window
// variable of the subject's keys (marking those the pack's conditions read), the rules that match
// now, and the rules within reach — those that would match if the subject's windows grew by
// NearFactors. Only rules whose conditions read something of the subject are judged: a rule on the
// number's segment says nothing of an IP address (explained without a number, its segment is
// empty and "unallocated"). Phone numbers appear only masked.
type Explanation struct {
	Subject      string        `json:"subject"` // "phone 1381234****", "ip 47.92.10.20", "ip 2001:db8::1, counted as its /56 2001:db8::/56" (/64 on a mobile or datacenter network), "device farm-1"
	At           time.Time     `json:"at"`
	RulesVersion string        `json:"rules_version"`
	Windows      []WindowValue `json:"windows"`
	Matching     []RuleState   `json:"matching"`
	Near         []RuleState   `json:"near"`
	// Failing are the rules that failed at run time on the state, or on it grown (a division by
	// an empty window): neither matching nor judged, as checks skip them.
	Failing []string `json:"failing,omitempty"`
	// InAppOnly are the rules that read the subject's windows in one app (app_ip_* of an address,
	// app_prefix_* of a number's block), explained without an app_id: not judged, since those
	// windows are an app's — a verdict resting on one of them is explained with the app's id.
	InAppOnly []string `json:"in_app_only,omitempty"`
}

// WindowValue is one window variable of the subject and its value now.
type WindowValue struct {
	Name       string `json:"name"`
	Value      int64  `json:"value"`
	ReadByPack bool   `json:"read_by_pack"`
}

// RuleState is a rule that matches (Factor 1) or would match once the subject's windows grow by
// Factor. Reason is rendered with the values at that factor.
type RuleState struct {
	Rule   string  `json:"rule"`
	Tag    string  `json:"tag"`
	Mode   string  `json:"mode"`
	Level  int     `json:"level"`
	Factor float64 `json:"factor"`
	When   string  `json:"when"`
	Reason string  `json:"reason"`
}

// subjectScalars says which subject each variable that is not a window derives from: "phone",
// "ip", "device" or "app". A variable missing here (hour_cn, flow, token_seen, ...) belongs to no
// subject: a rule reading only such variables and other subjects' says nothing of this one.
var subjectScalars = map[string]string{
	"app_id":        "app",
	"has_device":    "device",
	"device_listed": "device",
	"phone_prefix":  "phone", "phone_province": "phone", "segment_class": "phone", "segment_carrier": "phone",
	"segment_host_carrier": "phone", "carrier_mismatch": "phone", "phone_ported": "phone", "ported_carrier": "phone", "phone_listed": "phone",
	"prefix_listed": "phone", "travel_km": "phone", "travel_kmh": "phone", "travel_minutes": "phone", "travel_time": "phone",
	"province_mismatch": "phone",
	"geo_known":         "ip", "ip_country": "ip", "ip_province": "ip", "ip_city": "ip", "ip_asn": "ip", "ip_as": "ip",
	"ip_org": "ip", "ip_type": "ip", "geo_confident": "ip", "ip_v6": "ip", "ip_private": "ip", "ip_listed": "ip",
}

// NearFactors are the growths of the subject's windows Explain tries, in order: a rule first
// matching at ×1.5 is "within reach" of a burst half as large again as what was seen.
var NearFactors = []float64{1.25, 1.5, 2}

// ErrNoSubject is returned when a Subject names nothing, or more than one thing.
var ErrNoSubject = errors.New("explain: give exactly one of phone, ip, device_id")

// Explain reports the live state of one phone, IP or device as of now, without counting anything.
func (s *Scorer) Explain(sub Subject) (Explanation, error) {
	n := 0
	for _, set := range []bool{sub.Phone != "", sub.IP.IsValid(), sub.DeviceID != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return Explanation{}, ErrNoSubject
	}
	pack := s.pack.Load()
	if pack == nil {
		return Explanation{}, ErrNoPack
	}
	now := s.now().UTC()
	x := Explanation{At: now, RulesVersion: pack.Version, Windows: []WindowValue{}, Matching: []RuleState{}, Near: []RuleState{}}
	var kinds []features.Kind
	var what string // "phone", "ip" or "device", as in subjectScalars
	switch {
	case sub.Phone != "":
		what, x.Subject = "phone", "phone "+schemas.MaskPhone(sub.Phone)
		kinds = []features.Kind{features.KindPhone, features.KindPrefix}
	case sub.IP.IsValid():
		what, x.Subject = "ip", "ip "+sub.IP.String()
		kinds = []features.Kind{features.KindIP, features.KindNet}
	default:
		// Masked as the node's log masks it: a device id the event check takes (a hex id such as
		// A10000000000) may still hold digits that MaskPhones reads as a number (FuzzAPI).
		what, x.Subject = "device", "device "+schemas.MaskPhones(sub.DeviceID)
		kinds = []features.Kind{features.KindDevice}
	}
	if sub.AppID != "" {
		// In an app the subject has keys of that app's too: its number's block or its address
		// counted apart in the app (app_prefix_*, app_ip_*), and the app's blocks (app_blocks_*)
		// that prefix_burst weighs a block against.
		switch what {
		case "phone":
			kinds = append(kinds, features.KindAppPrefix)
		case "ip":
			kinds = append(kinds, features.KindAppIP)
		}
		kinds = append(kinds, features.KindApp, features.KindAppBlocks)
	}

	in := s.pool.Get().(*input)
	defer s.put(in)
	in.evBuf = schemas.VerifyEvent{TS: now, AppID: sub.AppID, Phone: sub.Phone, IP: sub.IP, DeviceID: sub.DeviceID}
	in.prepare(&in.evBuf)
	in.self = false // look, do not count a new attempt
	switch u := ipUnit(sub.IP, in.geo.IPType); {
	case what != "ip":
	case u.Addr().Is6():
		// Its ip_* windows are of its /64 or /56 (ipKeys): say so, or the windows of the
		// prefix's many addresses read as this one address's.
		x.Subject += fmt.Sprintf(", counted as its /%d %s", u.Bits(), u)
	case sub.IP.Is6():
		// 64:ff9b::a.b.c.d, 6to4, Teredo…: the windows are the IPv4 address's (geo.ClientAddr).
		x.Subject += ", counted as " + u.Addr().String()
	}

	uses := pack.Uses()
	vars := s.cat.env.Vars()
	// own[i]: variable i is derived from the subject (a window of its keys, or one of its fields).
	own := make([]bool, len(vars))
	for i := range vars {
		if c, ok := subjectScalars[vars[i].Name]; ok {
			own[i] = c == what || c == "app" && sub.AppID != ""
		}
	}
	var slots []int
	var values []int64
	for i := range s.cat.slots {
		wf := s.cat.slots[i].wf
		if wf == nil || !slices.Contains(kinds, wf.kind) {
			continue
		}
		own[i] = true
		v := int64(in.window(i))
		slots, values = append(slots, i), append(values, v)
		_, read := slices.BinarySearch(uses, i)
		x.Windows = append(x.Windows, WindowValue{Name: vars[i].Name, Value: v, ReadByPack: read})
	}

	seen := map[string]bool{}
	for _, f := range append([]float64{1}, NearFactors...) {
		clear(in.memo)
		for j, i := range slots {
			in.memo[i] = types.Int(int64(math.Ceil(float64(values[j]) * f)))
		}
		in.travelDone = false
		if err := in.eval(pack); err != nil {
			// A rule failing at run time is skipped, as a check skips it: the others stand.
			var failed []*rules.RuleError
			collectRuleErrors(err, &failed)
			if len(failed) == 0 {
				return x, err
			}
			for _, re := range failed {
				if !slices.Contains(x.Failing, re.Rule) {
					x.Failing = append(x.Failing, re.Rule)
				}
			}
		}
		for _, h := range in.res.Hits {
			if seen[h.Rule] {
				continue
			}
			seen[h.Rule] = true
			st := RuleState{Rule: h.Rule, Tag: h.Tag, Mode: h.Mode, Level: h.Score, Factor: f, Reason: h.Reason}
			about := false
			for _, r := range pack.Rules {
				if r.ID == h.Rule {
					st.When = r.When
					about = slices.ContainsFunc(r.Uses(), func(i int) bool { return own[i] })
				}
			}
			if !about {
				continue // the rule reads only fields the subject does not have
			}
			if f == 1 {
				x.Matching = append(x.Matching, st)
			} else {
				x.Near = append(x.Near, st)
			}
		}
	}
	if sub.AppID == "" && what != "device" {
		inApp := features.KindAppIP
		if what == "phone" {
			inApp = features.KindAppPrefix
		}
		for _, r := range pack.Rules {
			if slices.ContainsFunc(r.Uses(), func(i int) bool {
				return i < len(s.cat.slots) && s.cat.slots[i].wf != nil && s.cat.slots[i].wf.kind == inApp
			}) && !slices.ContainsFunc(x.Matching, func(st RuleState) bool { return st.Rule == r.ID }) {
				x.InAppOnly = append(x.InAppOnly, r.ID)
			}
		}
	}
	return x, nil
}
