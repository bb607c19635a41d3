package scoring_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

const (
	phone1 = "13800138000"
	ip1    = "203.0.113.10"
	token1 = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
)

func process(t *testing.T, s *scoring.Scorer, ev schemas.VerifyEvent) schemas.ScoreRecord {
	t.Helper()
	rec, err := s.Process(&ev)
	if err != nil {
		t.Fatalf("Process(%s): %v", ev.EventID, err)
	}
	return rec
}

// Process counts the event itself: phone_velocity fires at exactly 3 (300) and 10 (600)
// verifications in 10 minutes.
func TestProcessPhoneVelocityThresholds(t *testing.T) {
	s := newScorer(t, scoring.Config{}, withProbes(nil, "phone_verifies_10m"))
	for i := 1; i <= 12; i++ {
		rec := process(t, s, event(fmt.Sprintf("pv-%d", i), t0.Add(time.Duration(i)*30*time.Second), phone1, ip1))
		if got := probes(rec.Hits)["phone_verifies_10m"]; got != fmt.Sprint(i) {
			t.Errorf("event %d: phone_verifies_10m = %s, want %d (the event counts itself)", i, got, i)
		}
		want, wantTags := 0, []string{}
		switch {
		case i >= 10:
			want, wantTags = 600, []string{"phone_velocity"}
		case i >= 3:
			want, wantTags = 300, []string{"phone_velocity"}
		}
		if rec.Score != want || strings.Join(rec.Tags, ",") != strings.Join(wantTags, ",") {
			t.Errorf("event %d: score %d tags %v, want %d %v", i, rec.Score, rec.Tags, want, wantTags)
		}
		if i == 3 {
			if d := rec.Detail["phone_velocity"]; d.Score != 300 || d.Reason != "3 verifications of this number in 10 min" {
				t.Errorf("event 3: detail %+v", d)
			}
		}
		if i == 10 {
			if d := rec.Detail["phone_velocity"]; d.Score != 600 || d.Reason != "10 verifications of this number in 10 min" {
				t.Errorf("event 10: detail %+v", d)
			}
		}
	}
}

// Windows are event time: (t-10m, t], whatever the order of arrival.
func TestProcessWindowsAreEventTime(t *testing.T) {
	count := func(s *scoring.Scorer, id string, ts time.Time) string {
		t.Helper()
		return probes(process(t, s, event(id, ts, phone1, ip1)).Hits)["phone_verifies_10m"]
	}
	t.Run("just inside", func(t *testing.T) {
		s := newScorer(t, scoring.Config{}, probePack("phone_verifies_10m"))
		count(s, "a", t0)
		count(s, "b", t0.Add(5*time.Minute))
		if got := count(s, "c", t0.Add(10*time.Minute-time.Second)); got != "3" {
			t.Errorf("three attempts within 9m59s: count %s, want 3", got)
		}
	})
	t.Run("just outside", func(t *testing.T) {
		s := newScorer(t, scoring.Config{}, probePack("phone_verifies_10m"))
		count(s, "a", t0)
		count(s, "b", t0.Add(5*time.Minute))
		if got := count(s, "c", t0.Add(10*time.Minute)); got != "2" {
			t.Errorf("first attempt exactly 10m before: count %s, want 2", got)
		}
	})
	t.Run("late arrival", func(t *testing.T) {
		s := newScorer(t, scoring.Config{}, probePack("phone_verifies_10m"))
		count(s, "a", t0)
		count(s, "b", t0.Add(30*time.Minute))
		// Arrives last but happened a minute after a: b is in its future and not counted.
		if got := count(s, "late", t0.Add(time.Minute)); got != "2" {
			t.Errorf("late event: count %s, want 2", got)
		}
		if got := count(s, "d", t0.Add(31*time.Minute)); got != "2" {
			t.Errorf("after the late event: count %s, want 2 (b and d)", got)
		}
	})
}

func TestProcessRedeliveryNotCountedTwice(t *testing.T) {
	s := newScorer(t, scoring.Config{}, withProbes(nil, "phone_verifies_10m", "ip_verifies_10m", "ip_phones_10m"))
	e1 := event("e1", t0, phone1, ip1)
	e2 := event("e2", t0.Add(10*time.Second), phone1, ip1)
	process(t, s, e1)
	first := process(t, s, e2)
	applied := s.State().Stats()

	again := process(t, s, e2)
	if st := s.State().Stats(); st != applied {
		t.Errorf("re-delivery changed the state: %+v → %+v", applied, st)
	}
	if got := probes(again.Hits); got["phone_verifies_10m"] != "2" || got["ip_verifies_10m"] != "2" || got["ip_phones_10m"] != "1" {
		t.Errorf("re-delivered e2: %v, want phone 2, ip 2, ip phones 1", got)
	}
	if again.Score != first.Score || strings.Join(again.Tags, ",") != strings.Join(first.Tags, ",") {
		t.Errorf("re-delivery scored %d %v, first delivery %d %v", again.Score, again.Tags, first.Score, first.Tags)
	}

	// The third distinct event is the third attempt.
	rec := process(t, s, event("e3", t0.Add(20*time.Second), phone1, ip1))
	if got := probes(rec.Hits)["phone_verifies_10m"]; got != "3" || rec.Score != 300 {
		t.Errorf("e3: count %s score %d, want 3 and 300", got, rec.Score)
	}
	// Re-delivering e1 after e3 scores it as of its own time: one attempt, nothing fires.
	rec = process(t, s, e1)
	if got := probes(rec.Hits)["phone_verifies_10m"]; got != "1" || rec.Score != 0 {
		t.Errorf("e1 re-delivered after e3: count %s score %d, want 1 and 0", got, rec.Score)
	}
	if got := s.State().Stats().Applied; got != 3 {
		t.Errorf("Applied = %d, want 3", got)
	}
}

func TestTokenReplay(t *testing.T) {
	s := newScorer(t, scoring.Config{}, withProbes(nil, "token_seen"))
	first := event("tok-1", t0, phone1, ip1)
	first.TokenDigest = token1
	replay := event("tok-2", t0.Add(time.Minute), "13900139000", "198.51.100.7")
	replay.TokenDigest = token1

	check := func(name string, rec schemas.ScoreRecord, wantSeen string, wantReplay bool) {
		t.Helper()
		if got := probes(rec.Hits)["token_seen"]; got != wantSeen {
			t.Errorf("%s: token_seen = %s, want %s", name, got, wantSeen)
		}
		if got := hits(rec)["token_replay"]; got != wantReplay {
			t.Errorf("%s: token_replay fired = %v, want %v (score %d, tags %v)", name, got, wantReplay, rec.Score, rec.Tags)
		}
		if wantReplay && (rec.Score != 900 || rec.Detail["token_replay"].Reason != "loginToken digest seen once before") {
			t.Errorf("%s: score %d detail %+v", name, rec.Score, rec.Detail["token_replay"])
		}
	}
	check("first sighting", process(t, s, first), "0", false)
	check("first sighting re-delivered", process(t, s, first), "0", false)
	check("second sighting", process(t, s, replay), "1", true)
	check("first sighting re-delivered after the second", process(t, s, first), "0", false)
	check("second sighting re-delivered", process(t, s, replay), "1", true)
	if got := s.State().Stats().Applied; got != 2 {
		t.Errorf("Applied = %d, want 2", got)
	}

	// Sightings processed out of time order: the one processed second is the replay, even though
	// its time is earlier; re-delivered, each is scored as of its own time.
	s = newScorer(t, scoring.Config{}, withProbes(nil, "token_seen"))
	late := event("ooo-1", t0.Add(time.Minute), phone1, ip1)
	late.TokenDigest = token1
	early := event("ooo-2", t0, "13900139000", ip1)
	early.TokenDigest = token1
	check("later sighting processed first", process(t, s, late), "0", false)
	check("earlier sighting processed second", process(t, s, early), "1", true)
	check("later sighting re-delivered", process(t, s, late), "1", true)
	check("earlier sighting re-delivered", process(t, s, early), "0", false)
}

func TestCheckCountsWithoutRecording(t *testing.T) {
	now := t0.Add(time.Minute)
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	e1 := event("c1", t0, phone1, ip1)
	e1.TokenDigest = token1
	process(t, s, e1)
	process(t, s, event("c2", t0.Add(10*time.Second), phone1, ip1))
	before := s.State().Stats()

	req := schemas.CheckRequest{Phone: phone1, IP: netip.MustParseAddr(ip1), Carrier: "CM", AppID: "app-test",
		Flow: schemas.FlowOneClickLogin, Platform: "android", ExID: "order-1"}
	for i := 0; i < 3; i++ { // a check is not recorded: asking again gives the same answer
		rc, err := s.Check(&req)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if rc.Score != 300 || strings.Join(rc.Tags, ",") != "phone_velocity" {
			t.Errorf("check %d: score %d tags %v, want 300 [phone_velocity] (2 recorded + the attempt)", i, rc.Score, rc.Tags)
		}
		if d := rc.Detail["phone_velocity"]; d.Reason != "3 verifications of this number in 10 min" {
			t.Errorf("check %d: reason %q", i, d.Reason)
		}
		if rc.Code != 0 || rc.Content != "success" || rc.ExID != "order-1" || rc.RulesVersion != s.Rules().Load().Version {
			t.Errorf("check %d: envelope %+v", i, rc)
		}
	}
	if after := s.State().Stats(); after != before {
		t.Errorf("Check changed the state: %+v → %+v", before, after)
	}

	// A check with a token seen once before is a replay.
	req.TokenDigest = token1
	rc, err := s.Check(&req)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Score != 900 || rc.Tags[0] != "token_replay" {
		t.Errorf("token check: score %d tags %v, want 900 with token_replay first", rc.Score, rc.Tags)
	}
	// A fresh number has nothing: empty tags, not null.
	rc, err = s.Check(&schemas.CheckRequest{Phone: "13700137000", IP: netip.MustParseAddr("198.51.100.1"), Carrier: "CM", AppID: "app-test"})
	if err != nil {
		t.Fatal(err)
	}
	if rc.Score != 0 || len(rc.Tags) != 0 || len(rc.Detail) != 0 {
		t.Errorf("clean check: %+v", rc)
	}
	if b, _ := json.Marshal(rc); !strings.Contains(string(b), `"tags":[],"detail":{}`) {
		t.Errorf("clean check JSON %s: want \"tags\":[],\"detail\":{}", b)
	}
}

func TestApply(t *testing.T) {
	s := newScorer(t, scoring.Config{}, probePack("phone_verifies_10m"))
	ev := event("ap-1", t0, phone1, ip1)
	if !s.Apply(&ev) {
		t.Fatal("first Apply = false")
	}
	if s.Apply(&ev) {
		t.Fatal("second Apply of the same event = true")
	}
	if got := s.State().Stats().Applied; got != 1 {
		t.Errorf("Applied = %d, want 1", got)
	}
	// Scoring an applied event (the restart path: replayed, then re-delivered) does not count it again.
	if got := probes(process(t, s, ev).Hits)["phone_verifies_10m"]; got != "1" {
		t.Errorf("Process after Apply: count %s, want 1", got)
	}
	if got := probes(process(t, s, event("ap-2", t0.Add(time.Second), phone1, ip1)).Hits)["phone_verifies_10m"]; got != "2" {
		t.Errorf("next event: count %s, want 2", got)
	}
	if got := s.State().Stats().Applied; got != 2 {
		t.Errorf("Applied = %d, want 2", got)
	}
}

func TestNoPackNoHasher(t *testing.T) {
	s, err := scoring.New(scoring.Config{}, scoring.WithPhoneHasher(schemas.NewPhoneHasher(testKey)))
	if err != nil {
		t.Fatal(err)
	}
	ev := event("np-1", t0, phone1, ip1)
	if _, err := s.Process(&ev); !errors.Is(err, scoring.ErrNoPack) {
		t.Errorf("Process without a pack: %v, want ErrNoPack", err)
	}
	if _, err := s.Check(&schemas.CheckRequest{Phone: phone1, IP: ev.IP, AppID: "a"}); !errors.Is(err, scoring.ErrNoPack) {
		t.Errorf("Check without a pack: %v, want ErrNoPack", err)
	}
	if st := s.State().Stats(); st.Applied != 0 {
		t.Errorf("an unscored event was recorded: %+v", st)
	}

	noHash, err := scoring.New(scoring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := rules.Compile(probePack("app_id"), noHash.Env())
	if err != nil {
		t.Fatal(err)
	}
	noHash.SetPack(p)
	if rec, err := noHash.Process(&ev); err == nil || errors.Is(err, scoring.ErrNoPack) || rec.EventID != "" {
		t.Errorf("Process without a phone hasher: %+v, %v; want an error and no record", rec, err)
	}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestScoreRecord(t *testing.T) {
	scoredAt := time.Date(2026, 3, 14, 10, 5, 0, 0, time.FixedZone("CST", 8*3600))
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return scoredAt }))
	ev := schemas.VerifyEvent{
		EventID: "rec-1", TS: t0, AppID: "app-7c41d9", Flow: schemas.FlowNumberVerify, Phone: phone1,
		IP: netip.MustParseAddr("2409:8c00::1"), Carrier: "CU", Platform: "ios", DeviceID: "dev-1",
		Outcome: schemas.OutcomeFail, ErrorCode: "103911", TokenDigest: token1, ExID: "order-9",
	}
	rec := process(t, s, ev)

	wantHash := schemas.NewPhoneHasher(testKey).Hex(phone1)
	checks := []struct {
		field, got, want string
	}{
		{"EventID", rec.EventID, "rec-1"},
		{"AppID", rec.AppID, "app-7c41d9"},
		{"Flow", rec.Flow, schemas.FlowNumberVerify},
		{"PhoneHash", rec.PhoneHash, wantHash},
		{"PhoneMasked", rec.PhoneMasked, "1380013****"},
		{"PhoneSegment", rec.PhoneSegment, "1380013"},
		{"IP", rec.IP, "2409:8c00::1"},
		{"Carrier", rec.Carrier, "CU"},
		{"Platform", rec.Platform, "ios"},
		{"DeviceID", rec.DeviceID, "dev-1"},
		{"Outcome", rec.Outcome, schemas.OutcomeFail},
		{"ErrorCode", rec.ErrorCode, "103911"},
		{"TokenDigest", rec.TokenDigest, token1},
		{"ExID", rec.ExID, "order-9"},
		{"RulesVersion", rec.RulesVersion, s.Rules().Load().Version},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if !hex64.MatchString(rec.PhoneHash) {
		t.Errorf("PhoneHash %q is not 64 lower-case hex digits", rec.PhoneHash)
	}
	if len(rec.PhoneSegment) != 7 {
		t.Errorf("PhoneSegment %q is not 7 digits", rec.PhoneSegment)
	}
	if !rec.TS.Equal(t0) {
		t.Errorf("TS = %s, want %s", rec.TS, t0)
	}
	if !rec.ScoredAt.Equal(scoredAt) || rec.ScoredAt.Location() != time.UTC {
		t.Errorf("ScoredAt = %s, want %s in UTC", rec.ScoredAt, scoredAt)
	}
	// CU reported for a CM number: carrier_mismatch (300).
	if rec.Score != 300 || strings.Join(rec.Tags, ",") != "carrier_mismatch" || rec.Detail["carrier_mismatch"].Score != 300 {
		t.Errorf("verdict %d %v %v, want 300 [carrier_mismatch]", rec.Score, rec.Tags, rec.Detail)
	}
	if len(rec.Hits) != 1 || rec.Hits[0].Rule != "carrier_mismatch" || rec.Hits[0].Mode != "enforce" ||
		rec.Hits[0].Reason != "gateway reported CU but the number's segment is on CM's network" {
		t.Errorf("hits %+v", rec.Hits)
	}

	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), phone1) {
		t.Errorf("record JSON holds the plaintext phone %s: %s", phone1, b)
	}
	back, err := schemas.DecodeScoreRecord(b)
	if err != nil {
		t.Fatalf("the record does not decode as a risk.scores message: %v", err)
	}
	if back.PhoneHash != rec.PhoneHash || back.Score != rec.Score {
		t.Errorf("round trip: %+v", back)
	}

	// The record owns its slices and map: scoring the next event does not change them.
	tags, detail, hitsCopy := strings.Join(rec.Tags, ","), fmt.Sprint(rec.Detail), fmt.Sprint(rec.Hits)
	ev2 := ev
	ev2.EventID, ev2.Carrier, ev2.TokenDigest = "rec-2", "CM", token1 // a replay, 900
	rec2 := process(t, s, ev2)
	if rec2.Score != 900 {
		t.Errorf("replay scored %d", rec2.Score)
	}
	if strings.Join(rec.Tags, ",") != tags || fmt.Sprint(rec.Detail) != detail || fmt.Sprint(rec.Hits) != hitsCopy {
		t.Errorf("first record changed by the second Process: %v %v %v", rec.Tags, rec.Detail, rec.Hits)
	}
}

// Device features are absent (0), not "one device", when the attempt has no device id.
func TestDeviceFeaturesWithoutDeviceID(t *testing.T) {
	vars := []string{"has_device", "device_verifies_10m", "device_fails_10m", "device_phones_24h", "phone_devices_24h", "ip_devices_10m"}
	s := newScorer(t, scoring.Config{}, probePack(vars...))
	var rec schemas.ScoreRecord
	for i := 0; i < 3; i++ {
		ev := event(fmt.Sprintf("nd-%d", i), t0.Add(time.Duration(i)*time.Second), phone1, ip1)
		ev.Outcome = schemas.OutcomeFail
		rec = process(t, s, ev)
	}
	want := map[string]string{"has_device": "false", "device_verifies_10m": "0", "device_fails_10m": "0",
		"device_phones_24h": "0", "phone_devices_24h": "0", "ip_devices_10m": "0"}
	if got := probes(rec.Hits); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("without device id: %v, want %v", got, want)
	}
	if s.State().Stats().Keys[3] != 0 {
		t.Errorf("a device key was recorded: %v", s.State().Stats().Keys)
	}

	ev := event("d-1", t0.Add(10*time.Second), phone1, ip1)
	ev.DeviceID = "dev-A"
	rec = process(t, s, ev)
	want = map[string]string{"has_device": "true", "device_verifies_10m": "1", "device_fails_10m": "0",
		"device_phones_24h": "1", "phone_devices_24h": "1", "ip_devices_10m": "1"}
	if got := probes(rec.Hits); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first attempt with a device: %v, want %v", got, want)
	}
	ev = event("d-2", t0.Add(20*time.Second), "13900139000", ip1)
	ev.DeviceID = "dev-A"
	ev.Outcome = schemas.OutcomeFail
	rec = process(t, s, ev)
	want = map[string]string{"has_device": "true", "device_verifies_10m": "2", "device_fails_10m": "1",
		"device_phones_24h": "2", "phone_devices_24h": "1", "ip_devices_10m": "1"}
	if got := probes(rec.Hits); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("second phone on the device: %v, want %v", got, want)
	}
}

// The network of an IPv4 address is its /24, of an IPv6 address outside mobile and datacenter
// networks its /56 (a broadband line's delegation); such an IPv6 address counts as its /56 too (a
// host's interface ids inside its /64, and the /64s of a line, are one address).
func TestNetworkKeys(t *testing.T) {
	vars := []string{"ip_phones_10m", "net_phones_10m", "net_verifies_10m", "phone_nets_24h", "ip_v6"}
	s := newScorer(t, scoring.Config{}, probePack(vars...))
	steps := []struct {
		phone, ip string
		want      map[string]string
	}{
		{"13800000001", "10.1.2.3", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "1", "net_verifies_10m": "1", "phone_nets_24h": "1", "ip_v6": "false"}},
		{"13800000002", "10.1.2.254", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "2", "net_verifies_10m": "2", "phone_nets_24h": "1", "ip_v6": "false"}},
		{"13800000003", "10.1.3.3", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "1", "net_verifies_10m": "1", "phone_nets_24h": "1", "ip_v6": "false"}},
		{"13800000001", "10.1.3.7", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "2", "net_verifies_10m": "2", "phone_nets_24h": "2", "ip_v6": "false"}},
		{"13800000001", "10.1.2.3", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "2", "net_verifies_10m": "3", "phone_nets_24h": "2", "ip_v6": "false"}},
		{"13800000004", "2001:db8:1:2::1", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "1", "net_verifies_10m": "1", "phone_nets_24h": "1", "ip_v6": "true"}},
		{"13800000005", "2001:db8:1:2:ffff:ffff:ffff:ffff", map[string]string{"ip_phones_10m": "2", "net_phones_10m": "2", "net_verifies_10m": "2", "phone_nets_24h": "1", "ip_v6": "true"}},
		{"13800000008", "2001:db8:1:ff::1", map[string]string{"ip_phones_10m": "3", "net_phones_10m": "3", "net_verifies_10m": "3", "phone_nets_24h": "1", "ip_v6": "true"}},
		{"13800000006", "2001:db8:1:100::1", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "1", "net_verifies_10m": "1", "phone_nets_24h": "1", "ip_v6": "true"}},
		{"13800000006", "2001:db8:1:100::1", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "1", "net_verifies_10m": "2", "phone_nets_24h": "1", "ip_v6": "true"}},
		{"13800000004", "10.1.2.3", map[string]string{"ip_phones_10m": "2", "net_phones_10m": "3", "net_verifies_10m": "4", "phone_nets_24h": "2", "ip_v6": "false"}},
		// An IPv4 /24 and the IPv6 /56 spelled with the same leading bytes are different networks.
		{"13800000007", "10.1.2.0", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "4", "net_verifies_10m": "5", "phone_nets_24h": "1", "ip_v6": "false"}},
		{"13800000007", "a01:200::1", map[string]string{"ip_phones_10m": "1", "net_phones_10m": "1", "net_verifies_10m": "1", "phone_nets_24h": "2", "ip_v6": "true"}},
	}
	for i, st := range steps {
		rec := process(t, s, event(fmt.Sprintf("net-%d", i), t0.Add(time.Duration(i)*time.Second), st.phone, st.ip))
		if got := probes(rec.Hits); fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Errorf("step %d (%s from %s): %v, want %v", i, st.phone, st.ip, got, st.want)
		}
	}
}

// prefix_phones counts distinct numbers sharing the first 7 digits; prefix_burst fires at 10.
func TestPrefixPhones(t *testing.T) {
	s := newScorer(t, scoring.Config{}, withProbes(nil, "prefix_phones_1h", "prefix_verifies_1h", "phone_prefix"))
	for i := 0; i < 10; i++ {
		phone := fmt.Sprintf("1380013%04d", i*37)
		rec := process(t, s, event(fmt.Sprintf("pf-%d", i), t0.Add(time.Duration(i)*time.Minute), phone, fmt.Sprintf("198.51.100.%d", i)))
		p := probes(rec.Hits)
		if p["prefix_phones_1h"] != fmt.Sprint(i+1) || p["prefix_verifies_1h"] != fmt.Sprint(i+1) || p["phone_prefix"] != "1380013" {
			t.Errorf("number %d: %v", i+1, p)
		}
		if fired := hits(rec)["prefix_burst"]; fired != (i+1 >= 10) {
			t.Errorf("number %d: prefix_burst fired = %v", i+1, fired)
		}
		if i == 9 && rec.Detail["prefix_burst"].Reason != "10 numbers starting with 1380013 in this app in 1 h, 10 in 24 h (the app: 10 numbers over 1 block in 1 h)" {
			t.Errorf("reason %q", rec.Detail["prefix_burst"].Reason)
		}
	}
	// The same number again is a verification, not another number.
	p := probes(process(t, s, event("pf-again", t0.Add(11*time.Minute), "13800130000", ip1)).Hits)
	if p["prefix_phones_1h"] != "10" || p["prefix_verifies_1h"] != "11" {
		t.Errorf("repeat number: %v, want 10 numbers, 11 verifications", p)
	}
	// A neighbouring block is another prefix.
	p = probes(process(t, s, event("pf-other", t0.Add(12*time.Minute), "13800140000", ip1)).Hits)
	if p["prefix_phones_1h"] != "1" || p["phone_prefix"] != "1380014" {
		t.Errorf("other block: %v", p)
	}
}

// One goroutine processes while others check (run with -race).
func TestConcurrentProcessAndCheck(t *testing.T) {
	now := t0.Add(time.Hour)
	s := newScorer(t, scoring.Config{}, nil, scoring.WithClock(func() time.Time { return now }))
	const n = 400
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				req := schemas.CheckRequest{Phone: fmt.Sprintf("1390000%04d", i%20), IP: netip.MustParseAddr("198.51.100.9"),
					Carrier: "CM", AppID: "app", DeviceID: fmt.Sprintf("d%d", i%5)}
				rc, err := s.Check(&req)
				if err != nil {
					t.Error(err)
					return
				}
				if !schemas.ValidScore(rc.Score) {
					t.Errorf("score %d", rc.Score)
				}
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			ev := event(fmt.Sprintf("cc-%d", i), t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("1390000%04d", i%20), "198.51.100.9")
			ev.DeviceID = fmt.Sprintf("d%d", i%5)
			if _, err := s.Process(&ev); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	if got := s.State().Stats().Applied; got != n {
		t.Errorf("Applied = %d, want %d", got, n)
	}
}

// An IPv4-mapped IPv6 address (from a Go caller; the decoder unmaps) is the IPv4 address.
func TestMappedIPv4IsIPv4(t *testing.T) {
	s := newScorer(t, scoring.Config{}, probePack("ip_verifies_10m", "net_verifies_10m", "ip_v6"))
	process(t, s, event("m-1", t0, phone1, "203.0.113.10"))
	rec := process(t, s, event("m-2", t0.Add(time.Second), phone1, "::ffff:203.0.113.10"))
	if got := probes(rec.Hits); got["ip_verifies_10m"] != "2" || got["net_verifies_10m"] != "2" || got["ip_v6"] != "false" {
		t.Errorf("mapped address: %v, want the IPv4 address's counts and ip_v6 false", got)
	}
	if rec.IP != "::ffff:203.0.113.10" {
		t.Errorf("record IP %q: want the address as given", rec.IP)
	}
}
