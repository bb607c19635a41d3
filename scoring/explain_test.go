package scoring_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

func ruleIDs(states []scoring.RuleState) map[string]float64 {
	m := map[string]float64{}
	for _, s := range states {
		m[s.Rule] = s.Factor
	}
	return m
}

func TestExplainPhone(t *testing.T) {
	now := t0.Add(time.Minute)
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	// Two verifications of one number in the last 10 minutes: phone_velocity (>= 3) is one attempt
	// away: ceil(2 × 1.25) = 3, within reach at the first factor; it does not match now.
	for i := range 2 {
		ev := event(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second), "13812348000", "10.1.2.3")
		s.Apply(&ev)
	}
	x, err := s.Explain(scoring.Subject{Phone: "13812348000"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(x.Subject, "2348000") || !strings.HasPrefix(x.Subject, "phone 1381234") {
		t.Errorf("subject %q: want the masked number", x.Subject)
	}
	var got int64 = -1
	for _, w := range x.Windows {
		if w.Name == "phone_verifies_10m" {
			got = w.Value
			if !w.ReadByPack {
				t.Error("phone_verifies_10m: read_by_pack false; the default pack reads it")
			}
		}
		if strings.HasPrefix(w.Name, "ip_") || strings.HasPrefix(w.Name, "device_") {
			t.Errorf("a phone's explanation lists %s", w.Name)
		}
	}
	if got != 2 {
		t.Errorf("phone_verifies_10m = %d, want 2 (windows %+v)", got, x.Windows)
	}
	if _, ok := ruleIDs(x.Matching)["phone_velocity_observe"]; ok {
		t.Errorf("phone_velocity_observe matches at 2 verifications: %+v", x.Matching)
	}
	if f, ok := ruleIDs(x.Near)["phone_velocity_observe"]; !ok || f != 1.25 {
		t.Errorf("near = %+v; want phone_velocity_observe within reach at ×1.25", x.Near)
	}
	// A third attempt makes it match now.
	ev := event("e3", t0.Add(3*time.Second), "13812348000", "10.1.2.3")
	s.Apply(&ev)
	x, _ = s.Explain(scoring.Subject{Phone: "13812348000"})
	if f, ok := ruleIDs(x.Matching)["phone_velocity_observe"]; !ok || f != 1 {
		t.Errorf("matching = %+v; want phone_velocity_observe", x.Matching)
	}
	// Explaining counts nothing.
	x2, _ := s.Explain(scoring.Subject{Phone: "13812348000"})
	for i := range x.Windows {
		if x.Windows[i] != x2.Windows[i] {
			t.Errorf("explaining twice changed %s: %d → %d", x.Windows[i].Name, x.Windows[i].Value, x2.Windows[i].Value)
		}
	}
}

func TestExplainIPAndDevice(t *testing.T) {
	now := t0.Add(time.Minute)
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	for i := range 5 {
		ev := event(fmt.Sprintf("e%d", i), t0, fmt.Sprintf("1381234%04d", i), "10.9.9.9")
		ev.DeviceID = "farm-1"
		s.Apply(&ev)
	}
	x, err := s.Explain(scoring.Subject{IP: netip.MustParseAddr("10.9.9.9")})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range x.Windows {
		if w.Name == "ip_phones_10m" {
			found = w.Value == 5
		}
	}
	if !found {
		t.Errorf("ip_phones_10m is not 5: %+v", x.Windows)
	}
	x, err = s.Explain(scoring.Subject{DeviceID: "farm-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range x.Windows {
		if w.Name == "device_phones_10m" && w.Value != 5 {
			t.Errorf("device_phones_10m = %d, want 5", w.Value)
		}
	}
	if _, err := s.Explain(scoring.Subject{}); !errors.Is(err, scoring.ErrNoSubject) {
		t.Errorf("empty subject: %v", err)
	}
	if _, err := s.Explain(scoring.Subject{DeviceID: "d", Phone: "13812348000"}); !errors.Is(err, scoring.ErrNoSubject) {
		t.Errorf("two subjects: %v", err)
	}
}

func TestCheckHitsIncludesShadowAndTagRules(t *testing.T) {
	s := newScorer(t, scoring.Config{}, []byte(`pack: t
rules:
  - id: enforced
    tag: velocity
    level: 600
    mode: enforce
    when: phone_verifies_10m >= 0
    reason: "enforced {phone_verifies_10m}"
  - id: shadowed
    tag: shadow_tag
    level: 900
    mode: shadow
    when: phone_verifies_10m >= 0
    reason: "shadow"
  - id: tagged
    tag: just_a_tag
    mode: tag
    when: phone_verifies_10m >= 0
    reason: "tag"
`))
	req := checkReq("13812348000", "10.1.2.3")
	rc, hits, err := s.CheckHits(&req)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Score != 600 || len(hits) != 3 {
		t.Fatalf("score %d, hits %+v; want 600 and three hits", rc.Score, hits)
	}
	modes := map[string]string{}
	for _, h := range hits {
		modes[h.Rule] = h.Mode
	}
	if modes["shadowed"] != "shadow" || modes["tagged"] != "tag" || modes["enforced"] != "enforce" {
		t.Errorf("modes %v", modes)
	}
	plain, err := s.Check(&req)
	if err != nil || plain.Score != rc.Score {
		t.Errorf("Check = %+v, %v; CheckHits gave score %d", plain, err, rc.Score)
	}
}

func checkReq(phone, ip string) schemas.CheckRequest {
	return schemas.CheckRequest{Phone: phone, IP: netip.MustParseAddr(ip), Carrier: "CM", AppID: "app-test"}
}

// TestExplainJudgesOnlyRulesAboutTheSubject: explained without a number, an IP's or a device's
// segment is empty, which the default pack calls unallocated (900); a rule that reads nothing of
// the subject is not reported as matching or within reach, while the subject's own rules are.
func TestExplainJudgesOnlyRulesAboutTheSubject(t *testing.T) {
	now := t0.Add(time.Minute)
	s := newScorer(t, scoring.Config{}, []byte(`pack: t
rules:
  - id: segment_rule
    tag: seg
    level: 900
    when: segment_class == "unallocated" || segment_class == ""
    reason: "segment"
  - id: no_geo
    tag: no_geo
    level: 600
    when: "!geo_known"
    reason: "no geo"
  - id: no_device
    tag: no_device
    level: 300
    when: "!has_device"
    reason: "no device"
  - id: ip_many
    tag: ip_many
    level: 600
    when: ip_phones_10m >= 3 && !has_device
    reason: "{ip_phones_10m} phones"
  - id: phone_many
    tag: phone_many
    level: 300
    when: phone_verifies_10m >= 1
    reason: "{phone_verifies_10m}"
  - id: device_many
    tag: device_many
    level: 300
    when: device_phones_10m >= 3
    reason: "{device_phones_10m}"
`), scoring.WithClock(func() time.Time { return now }))
	for i := range 3 {
		ev := event(fmt.Sprintf("e%d", i), t0, fmt.Sprintf("1381234%04d", i), "10.9.9.9")
		ev.DeviceID = "farm-1"
		s.Apply(&ev)
	}
	for _, tc := range []struct {
		sub  scoring.Subject
		want []string
	}{
		{scoring.Subject{IP: netip.MustParseAddr("10.9.9.9")}, []string{"no_geo", "ip_many"}},
		{scoring.Subject{DeviceID: "farm-1"}, []string{"device_many"}},
		{scoring.Subject{Phone: "13812340001"}, []string{"phone_many"}},
	} {
		x, err := s.Explain(tc.sub)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range append(x.Matching, x.Near...) {
			got = append(got, r.Rule)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: rules matching or within reach %v, want %v", x.Subject, got, tc.want)
		}
	}
	// The default pack: an IP or a device explained is not an unallocated segment.
	d := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	for _, sub := range []scoring.Subject{{IP: netip.MustParseAddr("10.9.9.9")}, {DeviceID: "farm-1"}} {
		x, err := d.Explain(sub)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ruleIDs(x.Matching)["unallocated_segment"]; ok {
			t.Errorf("%s: unallocated_segment matches: %+v", x.Subject, x.Matching)
		}
	}
}

// With app_id, the subject's windows in that app (app_prefix_* of a number's block, app_ip_* of
// an address, and the app's app_blocks) are the subject's too: listed, and grown with the others
// when judging what is within reach. Eight numbers of one block in an app within the hour:
// prefix_burst (app_prefix_phones_1h >= 10) is within reach at ×1.25 — ceil(8 × 1.25) = 10.
func TestExplainWithAppListsAndGrowsTheAppWindows(t *testing.T) {
	now := t0.Add(time.Minute)
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	for i := range 8 {
		ev := event(fmt.Sprintf("e%d", i), t0.Add(-time.Duration(i)*time.Minute), fmt.Sprintf("1370000%04d", i), fmt.Sprintf("10.7.%d.1", i))
		s.Apply(&ev)
	}
	x, err := s.Explain(scoring.Subject{Phone: "13700000001", AppID: "app-test"})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]int64{}
	for _, w := range x.Windows {
		values[w.Name] = w.Value
	}
	for name, want := range map[string]int64{"app_prefix_phones_1h": 8, "app_prefix_verifies_1h": 8, "app_phones_1h": 8, "app_blocks_1h": 1} {
		if got, ok := values[name]; !ok || got != want {
			t.Errorf("%s = %d (listed: %v), want %d", name, got, ok, want)
		}
	}
	if _, ok := ruleIDs(x.Matching)["prefix_burst"]; ok {
		t.Errorf("prefix_burst matches at 8 numbers of the block: %+v", x.Matching)
	}
	if f, ok := ruleIDs(x.Near)["prefix_burst"]; !ok || f != 1.25 {
		t.Errorf("near = %+v; want prefix_burst within reach at ×1.25", x.Near)
	}

	// An address with app_id lists its windows in the app.
	x, err = s.Explain(scoring.Subject{IP: netip.MustParseAddr("10.7.3.1"), AppID: "app-test"})
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, w := range x.Windows {
		if w.Name == "app_ip_phones_10m" {
			listed = w.Value == 1
		}
	}
	if !listed {
		t.Errorf("app_ip_phones_10m is not listed as 1: %+v", x.Windows)
	}
}

// A rule failing at run time on the subject's state (here a division by zero while its windows
// are empty) is skipped as a check skips it: the other rules are still explained, and the failing
// one is named. Explain used to give up on the whole subject (the API answered 503 "not ready",
// with a Retry-After, for as long as the rule kept failing).
func TestExplainSkipsARuleFailingAtRunTime(t *testing.T) {
	const pack = `
pack: failing
rules:
  - id: divides_by_zero
    tag: broken
    level: 900
    when: 100 / device_verifies_10m > 1
  - id: busy
    tag: busy
    level: 300
    when: phone_verifies_10m >= 2
`
	now := t0.Add(time.Minute)
	s := newScorer(t, scoring.Config{}, []byte(pack), scoring.WithClock(func() time.Time { return now }))
	for i := range 2 {
		ev := event(fmt.Sprintf("e%d", i), t0, "13812348000", "10.1.2.3")
		s.Apply(&ev)
	}
	x, err := s.Explain(scoring.Subject{Phone: "13812348000"})
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	if _, ok := ruleIDs(x.Matching)["busy"]; !ok {
		t.Errorf("matching = %+v; want busy", x.Matching)
	}
	if len(x.Failing) != 1 || x.Failing[0] != "divides_by_zero" {
		t.Errorf("failing = %v; want [divides_by_zero]", x.Failing)
	}
}

// An IPv6 address is explained as the prefix its ip_* windows count — its /56 (the line's
// delegation; on a mobile network too, which holds China Mobile's home broadband), its /64 on a
// datacenter network — and the subject says so: it read "ip 2001:db8:7:1::99" above the windows
// of every address of the prefix.
func TestExplainIPv6NamesItsSlash64(t *testing.T) {
	now := t0.Add(time.Minute)
	for _, c := range []struct{ seen, ask, want string }{
		{"2409:8934:7:%x::1", "2409:8934:7:1::99", "ip 2409:8934:7:1::99, counted as its /56 2409:8934:7::/56"},
		{"2001:db8:7:%x::1", "2001:db8:7:1::99", "ip 2001:db8:7:1::99, counted as its /56 2001:db8:7::/56"},
		{"2002:2f5c:6401:%x::1", "2002:2f5c:6401:99::1", "ip 2002:2f5c:6401:99::1, counted as 47.92.100.1"},
	} {
		s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }), scoring.WithGeo(listsOnly(t)))
		for i := range 4 {
			ev := event(fmt.Sprintf("v6-%d", i), t0, fmt.Sprintf("1381235%04d", i), fmt.Sprintf(c.seen, 10+i))
			s.Apply(&ev)
		}
		x, err := s.Explain(scoring.Subject{IP: netip.MustParseAddr(c.ask)})
		if err != nil {
			t.Fatal(err)
		}
		if x.Subject != c.want {
			t.Errorf("subject %q, want %q", x.Subject, c.want)
		}
		for _, w := range x.Windows {
			if w.Name == "ip_phones_10m" && w.Value != 4 {
				t.Errorf("%s: ip_phones_10m = %d, want 4 (the prefix's)", c.ask, w.Value)
			}
		}
	}
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	if x, _ := s.Explain(scoring.Subject{IP: netip.MustParseAddr("10.9.9.9")}); x.Subject != "ip 10.9.9.9" {
		t.Errorf("IPv4 subject %q", x.Subject)
	}
}

// A verdict resting on the subject's windows in one app (phones_per_ip_crowd: app_ip_phones_10m)
// explained without app_id showed no rule matching and nothing within reach — as if the address
// were clean. Such rules are named as judged in an app only, and with app_id they match.
func TestExplainNamesTheRulesJudgedInAnAppOnly(t *testing.T) {
	now := t0.Add(time.Minute)
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	for i := range 25 {
		ev := event(fmt.Sprintf("crowd-%d", i), t0, fmt.Sprintf("1381236%04d", i), "2001:db8:8:1::1")
		s.Apply(&ev)
	}
	ip := netip.MustParseAddr("2001:db8:8:1::2")
	x, err := s.Explain(scoring.Subject{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(x.InAppOnly, "phones_per_ip_crowd") || slices.ContainsFunc(x.Matching, func(r scoring.RuleState) bool { return r.Rule == "phones_per_ip_crowd" }) {
		t.Errorf("without app_id: in_app_only %v, matching %+v", x.InAppOnly, x.Matching)
	}
	x, err = s.Explain(scoring.Subject{IP: ip, AppID: "app-test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.InAppOnly) != 0 || !slices.ContainsFunc(x.Matching, func(r scoring.RuleState) bool { return r.Rule == "phones_per_ip_crowd" }) {
		t.Errorf("with app_id: in_app_only %v, matching %+v", x.InAppOnly, x.Matching)
	}
	// A device has no windows in an app.
	if x, _ := s.Explain(scoring.Subject{DeviceID: "d"}); len(x.InAppOnly) != 0 {
		t.Errorf("device: in_app_only %v", x.InAppOnly)
	}
}
