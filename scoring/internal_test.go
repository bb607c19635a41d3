package scoring

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/cespare/xxhash/v2"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

// recordStrings must give exactly what the schemas helpers give.
func TestRecordStrings(t *testing.T) {
	h := schemas.NewPhoneHasher([]byte("k"))
	for _, tc := range []struct{ phone, ip string }{
		{"13800138000", "203.0.113.10"},
		{"1440123456789", "2409:8c00::1"},
		{"13800138000", "::ffff:203.0.113.10"},
		{"13800138000", "2001:db8:0:0:1:0:0:1"},
		{"1380013", ""},
		{"", "0.0.0.0"},
	} {
		ev := &schemas.VerifyEvent{Phone: tc.phone}
		if tc.ip != "" {
			ev.IP = netip.MustParseAddr(tc.ip)
		}
		hash, masked, ip := recordStrings(h, ev)
		if want := h.Hex(tc.phone); hash != want {
			t.Errorf("%s: hash %s, want %s", tc.phone, hash, want)
		}
		if want := schemas.MaskPhone(tc.phone); masked != want {
			t.Errorf("%s: masked %q, want %q", tc.phone, masked, want)
		}
		if want := ev.IP.String(); ip != want {
			t.Errorf("%s: ip %q, want %q", tc.ip, ip, want)
		}
	}
}

// The name cache answers by content: a name at another address, or another name at a reused
// address, gets the right slot.
func TestSlotOf(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	in := s.pool.Get().(*input)
	for name, want := range s.cat.index {
		for i := 0; i < 3; i++ {
			if got := in.slotOf(name); got != want {
				t.Fatalf("slotOf(%s) = %d, want %d", name, got, want)
			}
			// The same name in a fresh allocation.
			if got := in.slotOf(strings.Clone(name)); got != want {
				t.Fatalf("slotOf(clone of %s) = %d, want %d", name, got, want)
			}
		}
	}
	if got := in.slotOf("no_such_variable"); got != -1 {
		t.Errorf("slotOf(unknown) = %d", got)
	}
	// Every entry of a full cache, overwritten with other names in place, still answers by content.
	buf := []byte("phone_verifies_10m")
	name := string(buf)
	if got := in.slotOf(name); got != s.cat.index["phone_verifies_10m"] {
		t.Fatalf("slotOf = %d", got)
	}
	other := "phone_verifies_1h_"[:len(name)] // same length, different content
	if got, want := in.slotOf(other), -1; got != want {
		t.Errorf("slotOf(%q) = %d, want %d", other, got, want)
	}
	if got := in.slotOf("ip_phones_10m"); got != s.cat.index["ip_phones_10m"] {
		t.Errorf("slotOf(ip_phones_10m) = %d", got)
	}
}

func TestStrInterning(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	in := s.pool.Get().(*input)
	i := s.cat.index["app_id"]
	a := in.str(i, "app-1")
	if a.Value() != "app-1" || in.str(i, "app-1") != a {
		t.Errorf("repeated value not reused: %v", a)
	}
	if b := in.str(i, "app-2"); b.Value() != "app-2" {
		t.Errorf("str = %v", b)
	}
	if v := in.str(i, schemas.FlowOneClickLogin); v != internedStrings[schemas.FlowOneClickLogin] {
		t.Errorf("enum value not interned")
	}
	if v := in.str(i, ""); v.Value() != "" {
		t.Errorf("empty = %v", v)
	}
}

// Check does not allocate beyond its answer, and its attempt is not kept by the pooled input.
func TestCheckAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a normal build")
	}
	// Noon in China: at night the default pack's odd_hour tags every attempt, and a tagged verdict
	// builds its detail (the test failed whenever it ran between 16:00 and 22:00 UTC).
	noon := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	s, err := New(Config{}, WithPhoneHasher(schemas.NewPhoneHasher([]byte("k"))), WithClock(func() time.Time { return noon }))
	if err != nil {
		t.Fatal(err)
	}
	s.SetPack(mustCompile(t, s))
	req := schemas.CheckRequest{Phone: "13800138000", IP: netip.MustParseAddr("203.0.113.10"), Carrier: "CM", AppID: "app"}
	if _, err := s.Check(&req); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := s.Check(&req); err != nil {
			t.Fatal(err)
		}
	})
	// A clean verdict allocates nothing: every default rule runs on the fast path.
	if allocs > 0 {
		t.Errorf("Check of a clean attempt: %.1f allocations, want none", allocs)
	}
	in := s.pool.Get().(*input)
	if in.ev != nil || in.evBuf.Phone != "" {
		t.Errorf("a pooled input keeps the last attempt: %+v", in.evBuf)
	}
}

func mustCompile(t *testing.T, s *Scorer) *rules.Pack {
	t.Helper()
	p, err := rules.Compile(packs.Default(), s.Env())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The default pack runs on the rules engine's fast path with its features read per key, and gives
// exactly the verdicts cel-go gives reading features one by one, on traffic dense enough to fire
// most of its rules.
func TestDefaultPackFastPathAgreesWithCEL(t *testing.T) {
	s, err := New(Config{}, WithPhoneHasher(schemas.NewPhoneHasher([]byte("k"))))
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, s)
	s.SetPack(p)
	for _, r := range p.Rules {
		if !r.FastPath() {
			t.Errorf("default rule %s is not on the fast path: %s", r.ID, r.When)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	start := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	carriers := []string{"CM", "CU", "CT", ""}
	prefixes := []string{"1380013", "1700000", "1440123", "1740000", "1990000", "1000000"}
	fired := map[string]bool{}
	var fast, slow rules.Result
	for i := range 5000 {
		ev := schemas.VerifyEvent{
			EventID: fmt.Sprintf("e-%d", i), TS: start.Add(time.Duration(i) * 700 * time.Millisecond),
			AppID: "app", Flow: schemas.FlowOneClickLogin, Carrier: carriers[rng.IntN(len(carriers))],
			Phone:    prefixes[rng.IntN(len(prefixes))] + fmt.Sprintf("%04d", rng.IntN(40)),
			IP:       netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(6))}),
			DeviceID: fmt.Sprintf("dev-%d", rng.IntN(30)), Outcome: schemas.OutcomeSuccess,
		}
		if rng.IntN(5) == 0 {
			ev.DeviceID = "" // device features absent
		}
		if rng.IntN(3) == 0 {
			ev.Outcome = schemas.OutcomeFail
		}
		if rng.IntN(4) == 0 {
			ev.TokenDigest = fmt.Sprintf("tok-%d", rng.IntN(500))
		}
		in := s.get(&ev)
		in.self = true
		in.plan = s.planFor(p) // features read together, per key
		errF := p.Eval(in, &fast)
		clear(in.memo) // cel-go computes every variable afresh, one by one
		in.plan = nil
		errS := p.Eval(struct{ rules.Input }{in}, &slow)
		s.put(in)
		if (errF == nil) != (errS == nil) || fast.Score != slow.Score || !slices.Equal(fast.Tags, slow.Tags) ||
			!maps.Equal(fast.Detail, slow.Detail) || !slices.Equal(fast.Hits, slow.Hits) {
			t.Fatalf("event %d: fast path %d %v %v (err %v), cel-go %d %v %v (err %v)", i,
				fast.Score, fast.Tags, fast.Hits, errF, slow.Score, slow.Tags, slow.Hits, errS)
		}
		for _, h := range fast.Hits {
			fired[h.Rule] = true
		}
		s.Apply(&ev)
	}
	t.Logf("%d rules fired", len(fired))
	if len(fired) < 10 {
		t.Errorf("only %d rules fired (%v): the comparison proves little", len(fired), fired)
	}
}

// The planned read (every feature of the pack, all keys at once) gives each feature the value it
// has read on its own, for a new attempt (counting itself: its own members in distinct counts) and
// a re-delivered one, with and without a device id.
func TestPlannedReadMatchesOneByOne(t *testing.T) {
	s, err := New(Config{}, WithPhoneHasher(schemas.NewPhoneHasher([]byte("k"))))
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, s)
	rng := rand.New(rand.NewPCG(7, 8))
	start := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	compared := 0
	for e := range 3000 {
		ev := schemas.VerifyEvent{
			EventID: fmt.Sprintf("e-%d", e), TS: start.Add(time.Duration(e) * 900 * time.Millisecond),
			AppID: "app", Flow: schemas.FlowOneClickLogin, Phone: "1380013" + fmt.Sprintf("%04d", rng.IntN(60)),
			IP:       netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(4))}),
			DeviceID: fmt.Sprintf("dev-%d", rng.IntN(40)), Outcome: schemas.OutcomeSuccess,
		}
		if rng.IntN(5) == 0 {
			ev.DeviceID = ""
		}
		if rng.IntN(3) == 0 {
			ev.Outcome = schemas.OutcomeFail
		}
		for _, self := range []bool{true, false} {
			in := s.get(&ev)
			in.self = self
			in.plan = s.planFor(p)
			in.readPlanned()
			for i, v := range in.memo {
				if v == nil || !in.plan.inPlan[i] {
					continue
				}
				if got, want := int(v.(types.Int)), in.window(i); got != want {
					t.Fatalf("event %d, self %v: %s read with the plan %d, on its own %d", e, self, s.cat.env.Vars()[i].Name, got, want)
				}
				compared++
			}
			s.put(in)
		}
		s.Apply(&ev)
	}
	if compared < 3000*10 {
		t.Fatalf("only %d values compared", compared)
	}
}

// A pack compiled against another scorer's environment is evaluated by variable name when that
// environment orders its variables differently (other windows), and by index when it is equal.
func TestPackFromAnotherEnvironment(t *testing.T) {
	hasher := WithPhoneHasher(schemas.NewPhoneHasher([]byte("k")))
	other, err := New(Config{Windows: []time.Duration{24 * time.Hour, time.Hour, 10 * time.Minute, time.Minute, 5 * time.Minute}}, hasher)
	if err != nil {
		t.Fatal(err)
	}
	twin, err := New(Config{}, hasher)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := rules.Compile(packs.Default(), other.Env())
	if err != nil {
		t.Fatal(err)
	}
	fromTwin, err := rules.Compile(packs.Default(), twin.Env())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(p *rules.Pack) *Scorer {
		s, err := New(Config{}, hasher)
		if err != nil {
			t.Fatal(err)
		}
		s.SetPack(p)
		return s
	}
	own := mk(mustCompile(t, twin))
	viaForeign, viaTwin := mk(foreign), mk(fromTwin)
	if viaForeign.planFor(foreign).byIndex || !viaTwin.planFor(fromTwin).byIndex {
		t.Fatalf("byIndex: foreign pack %v (want false), twin's pack %v (want true)",
			viaForeign.planFor(foreign).byIndex, viaTwin.planFor(fromTwin).byIndex)
	}
	start := time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC)
	var last schemas.VerifyEvent
	for i := range 12 { // one number from many devices and networks: velocity and device rules
		ev := schemas.VerifyEvent{
			EventID: fmt.Sprintf("e-%d", i), TS: start.Add(time.Duration(i) * time.Second), AppID: "app",
			Flow: schemas.FlowOneClickLogin, Phone: "13800138000", Carrier: "CM", Outcome: schemas.OutcomeFail,
			IP: netip.AddrFrom4([4]byte{203, 0, byte(i), 10}), DeviceID: fmt.Sprintf("d-%d", i%4),
		}
		for _, s := range []*Scorer{own, viaForeign, viaTwin} {
			s.Apply(&ev)
		}
		last = ev
	}
	req := schemas.CheckRequest{Phone: last.Phone, IP: last.IP, Carrier: "CM", AppID: "app", Flow: last.Flow, DeviceID: "d-9"}
	var verdicts []string
	for _, s := range []*Scorer{own, viaForeign, viaTwin} {
		s.now = func() time.Time { return last.TS.Add(time.Second) }
		rc, err := s.Check(&req)
		if err != nil {
			t.Fatal(err)
		}
		verdicts = append(verdicts, fmt.Sprint(rc.Score, rc.Tags, rc.Detail))
	}
	if verdicts[0] != verdicts[1] || verdicts[0] != verdicts[2] || !strings.Contains(verdicts[0], "600 [phone_velocity") {
		t.Errorf("verdicts differ or miss the step-up:\n own     %s\n foreign %s\n twin    %s", verdicts[0], verdicts[1], verdicts[2])
	}
}

// Apply records the keys scoring derives (prepare), though it derives nothing else: the located
// attempts too.
func TestStateKeysAreScoringKeys(t *testing.T) {
	city, asn := geotest.Fixture(t)
	loc, err := geo.Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	s := must(New(Config{}, WithGeo(loc), WithPhoneHasher(schemas.NewPhoneHasher([]byte("key")))))
	located := 0
	for i, ip := range []string{"39.156.66.10", "120.196.1.2", "101.226.3.4", "8.8.8.8", "2001:db8::1", "10.0.0.1"} {
		ev := schemas.VerifyEvent{EventID: fmt.Sprintf("e%d", i), TS: time.Date(2026, 3, 14, 8, 0, i, 0, time.UTC),
			AppID: "app", Flow: schemas.FlowOneClickLogin, Phone: "13800138000", IP: netip.MustParseAddr(ip),
			DeviceID: "dev", TokenDigest: "tok", Outcome: schemas.OutcomeFail}
		in := s.get(&ev)
		if got := s.stateKeys(&ev); got != in.keys {
			t.Errorf("%s: Apply's keys %+v, scoring's %+v", ip, got, in.keys)
		}
		if in.keys.HasLoc {
			located++
		}
		s.put(in)
	}
	if located == 0 {
		t.Error("no attempt located: the location is not compared")
	}
}

// ipKeys is pinned to addressKeying: a change of how addresses are keyed must come with a new
// addressKeying (and a new pin here), or snapshots keyed the old way would load into the new
// build and its per-address windows would read empty until they filled again.
func TestAddressKeyingIsPinned(t *testing.T) {
	pins := map[int]uint64{5: 0xf2be716c81f2b629, 6: 0xf18e37fef7159661}
	h := xxhash.New()
	for _, s := range []string{"223.104.5.20", "1.2.3.4", "::ffff:1.2.3.4", "2409:8a00::1", "2409:8a00::2:1", "2001:db8:1:2::9", "240e:3b0::1", "64:ff9b::1.2.3.4", "::1.2.3.4", "2002:102:304:5::1", "2001:0:4136:e378:8000:63bf:fefd:fcfb"} {
		for _, typ := range []string{"", geo.IPTypeIDC, geo.IPTypeMobile} {
			ip, nw := ipKeys(netip.MustParseAddr(s), typ)
			fmt.Fprintf(h, "%s %s %x %x\n", s, typ, ip, nw)
		}
	}
	sum := h.Sum64()
	if want, ok := pins[addressKeying]; !ok || want != sum {
		t.Fatalf("ipKeys under addressKeying %d sum to %#x, pinned %#x: if ipKeys changed, raise addressKeying and pin the new sum under it", addressKeying, sum, want)
	}
	if fp := (&Scorer{}).ClassFingerprint(); !strings.HasPrefix(fp, fmt.Sprintf("keying %d, ", addressKeying)) {
		t.Errorf("the snapshot fingerprint %q does not carry addressKeying", fp)
	}
}

// deviceKeyOf is pinned to deviceKeying, as ipKeys is to addressKeying: device keys are in
// snapshots too.
func TestDeviceKeyingIsPinned(t *testing.T) {
	pins := map[int]uint64{1: 0xfdb812194c760bfe}
	h := xxhash.New()
	for _, s := range []string{"", "a1b2c3d4e5f60718", "A1B2C3D4-E5F6-0718-90AB-CDEF01234567", " rig-01 ", "ｒｉｇ-01", "rig-01\u200b", "设备-01"} {
		fmt.Fprintf(h, "%q %x\n", s, deviceKeyOf(s))
	}
	sum := h.Sum64()
	if want, ok := pins[deviceKeying]; !ok || want != sum {
		t.Fatalf("deviceKeyOf under deviceKeying %d sums to %#x, pinned %#x: if deviceKeyOf changed, raise deviceKeying and pin the new sum under it", deviceKeying, sum, want)
	}
	if fp := (&Scorer{}).ClassFingerprint(); !strings.Contains(fp, fmt.Sprintf(", devices %d, ", deviceKeying)) {
		t.Errorf("the snapshot fingerprint %q does not carry deviceKeying", fp)
	}
}

// TestDeviceKeyOfSpellings: the spellings of one device id share its key, other ids do not, and a
// canonical id keeps the key it had as sent.
func TestDeviceKeyOfSpellings(t *testing.T) {
	one := []string{"rig-a1", "RIG-A1", "Rig-A1", " rig-a1", "rig-a1 ", "rig- a1", "ｒｉｇ-ａ１", "ＲＩＧ－Ａ１", "rig-a1\u200b", "\ufeffrig-a1", "rig-a1\u2060", "rig-\u00ada1", "rig-a1\u3000"}
	want := deviceKeyOf("rig-a1")
	if want != nz(xxhash.Sum64String("rig-a1")) {
		t.Errorf("a canonical id's key changed: %#x, was %#x", want, nz(xxhash.Sum64String("rig-a1")))
	}
	for _, s := range one {
		if got := deviceKeyOf(s); got != want {
			t.Errorf("deviceKeyOf(%q) = %#x, want %#x (the key of rig-a1)", s, got, want)
		}
	}
	for _, s := range []string{"rig-a2", "rig_a1", "riga1", "rig-a1-", "рig-a1" /* Cyrillic р */} {
		if deviceKeyOf(s) == want {
			t.Errorf("deviceKeyOf(%q) is the key of rig-a1", s)
		}
	}
	if deviceKeyOf("") != 0 {
		t.Error("no device id has a key")
	}
	if n := testing.AllocsPerRun(100, func() { deviceKeyOf("A1B2C3D4-E5F6-0718-90AB-CDEF01234567") }); n != 0 {
		t.Errorf("an ASCII device id's key allocates %v times", n)
	}
}
