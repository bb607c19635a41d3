package features_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/features"
)

// base is an arbitrary entry second well after the epoch.
var base = features.Sec(time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC))

const (
	phoneA = uint64(0xA1A1A1A1_00000001)
	phoneB = uint64(0xB2B2B2B2_00000002)
	ipA    = uint64(1<<40 | 0x0A000001)
	netA   = uint64(2<<40 | 0x0A0000)
	devA   = uint64(0xD0D0D0D0_0000000A)
	devB   = uint64(0xD0D0D0D0_0000000B)
	prefA  = uint64(1<<50 | 1380013)
)

var nextID atomic.Uint64

// attempt returns the keys of one attempt by phone from ipA at base+dt seconds.
func attempt(phone uint64, dt int, fail bool) *features.Keys {
	return &features.Keys{
		EventID: nextID.Add(1),
		T:       uint32(int(base) + dt),
		Fail:    fail,
		Phone:   phone,
		IP:      ipA,
		Net:     netA,
		Prefix:  prefA,
	}
}

func mustApply(t *testing.T, st *features.State, k *features.Keys) {
	t.Helper()
	if !st.Apply(k) {
		t.Fatalf("Apply(event %d) = false, want true", k.EventID)
	}
}

func at(dt int) uint32 { return uint32(int(base) + dt) }

func TestSec(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want uint32
	}{
		{"epoch", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{"before the epoch clamps to 0", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), 0},
		{"one second after", time.Date(2000, 1, 1, 0, 0, 1, 0, time.UTC), 1},
		{"time zone does not matter", time.Date(2000, 1, 1, 8, 0, 1, 0, time.FixedZone("CST", 8*3600)), 1},
		{"sub-second truncates", time.Date(2000, 1, 1, 0, 0, 1, 999_999_999, time.UTC), 1},
		{"last representable second", time.Date(2068, 1, 19, 3, 14, 7, 0, time.UTC), features.MaxSec},
		{"2100 clamps to MaxSec", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), features.MaxSec},
	}
	for _, tc := range tests {
		if got := features.Sec(tc.in); got != tc.want {
			t.Errorf("%s: Sec(%s) = %d, want %d", tc.name, tc.in, got, tc.want)
		}
	}
}

// A timestamp past 2068 must not spill into the failure flag.
func TestFarFutureIsNotAFailure(t *testing.T) {
	st := features.New(features.Config{})
	sec := features.Sec(time.Date(2099, 6, 1, 0, 0, 0, 0, time.UTC))
	mustApply(t, st, &features.Keys{EventID: 1, T: sec, Phone: phoneA})
	if got := st.Count(features.KindPhone, phoneA, sec, 600, false, false, false); got != 1 {
		t.Errorf("count = %d, want 1", got)
	}
	if got := st.Count(features.KindPhone, phoneA, sec, 600, true, false, false); got != 0 {
		t.Errorf("failure count = %d, want 0 (a success)", got)
	}
}

func TestMember(t *testing.T) {
	if got := features.Member(0); got != 0 {
		t.Errorf("Member(0) = %d, want 0", got)
	}
	for _, k := range []uint64{1, 1 << 32, 1<<32 | 1, 0xFFFFFFFF_FFFFFFFF, 0x12345678_12345678} {
		if features.Member(k) == 0 {
			t.Errorf("Member(%#x) = 0: a present key must not fold to absent", k)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		in, want features.Config
	}{
		{features.Config{}, features.Config{Retention: 24 * time.Hour, MaxEntriesPerKey: 1024, DistinctCap: 512}},
		{features.Config{Retention: time.Hour, MaxEntriesPerKey: 100}, features.Config{Retention: time.Hour, MaxEntriesPerKey: 100, DistinctCap: 100}},
		{features.Config{MaxEntriesPerKey: 100_000, DistinctCap: 100_000}, features.Config{Retention: 24 * time.Hour, MaxEntriesPerKey: 100_000, DistinctCap: 2047}},
		{features.Config{DistinctCap: 7}, features.Config{Retention: 24 * time.Hour, MaxEntriesPerKey: 1024, DistinctCap: 7}},
	}
	for _, tc := range tests {
		if got := features.New(tc.in).Config(); got != tc.want {
			t.Errorf("New(%+v).Config() = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// Windows are event-time: a query at t counts entries with a second in (t-window, t].
func TestCountWindow(t *testing.T) {
	st := features.New(features.Config{})
	for _, dt := range []int{0, 1, 59, 60, 61, 300, 599, 600, 601, 3600} {
		mustApply(t, st, attempt(phoneA, dt, false))
	}
	tests := []struct {
		name   string
		t      uint32
		window uint32
		want   int
	}{
		{"1m as of 60: (0, 60]", at(60), 60, 3},                    // 1, 59, 60
		{"1m as of 61: (1, 61]", at(61), 60, 3},                    // 59, 60, 61
		{"1m as of 59: (-1, 59]", at(59), 60, 3},                   // 0, 1, 59
		{"10m as of 600: (0, 600]", at(600), 600, 7},               // 1, 59, 60, 61, 300, 599, 600
		{"10m as of 601", at(601), 600, 7},                         // 1 out, 601 in
		{"10m as of 3600", at(3600), 600, 1},                       // only 3600
		{"before every entry", at(-1), 600, 0},                     // nothing at or before
		{"entries after t are not counted", at(300), 24 * 3600, 6}, // 0 … 300
		{"24h as of the newest", at(3600), 24 * 3600, 10},
		{"window past the start of time", 100, 24 * 3600, 0},
	}
	for _, tc := range tests {
		if got := st.Count(features.KindPhone, phoneA, tc.t, tc.window, false, false, false); got != tc.want {
			t.Errorf("%s: Count = %d, want %d", tc.name, got, tc.want)
		}
	}
	// The same attempts were recorded on the IP, the network and the prefix.
	for _, k := range []struct {
		kind features.Kind
		key  uint64
	}{{features.KindIP, ipA}, {features.KindNet, netA}, {features.KindPrefix, prefA}} {
		if got := st.Count(k.kind, k.key, at(3600), 24*3600, false, false, false); got != 10 {
			t.Errorf("kind %d: Count = %d, want 10", k.kind, got)
		}
	}
	if got := st.Count(features.KindPhone, phoneB, at(3600), 24*3600, false, false, false); got != 0 {
		t.Errorf("unknown phone: Count = %d, want 0", got)
	}
	if got := st.Count(features.KindDevice, devA, at(3600), 24*3600, false, false, false); got != 0 {
		t.Errorf("no device was applied: Count = %d, want 0", got)
	}
}

// Inserting out of order gives the same answers as inserting in order.
func TestOutOfOrder(t *testing.T) {
	offsets := []int{500, 10, 300, 300, 0, 1200, 40, 599, 601, 5}
	inOrder := features.New(features.Config{})
	shuffled := features.New(features.Config{})
	sorted := append([]int(nil), offsets...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	for _, dt := range sorted {
		k := attempt(phoneA, dt, dt%3 == 0)
		k.Device = uint64(100 + dt)
		mustApply(t, inOrder, k)
	}
	for _, dt := range offsets {
		k := attempt(phoneA, dt, dt%3 == 0)
		k.Device = uint64(100 + dt)
		mustApply(t, shuffled, k)
	}
	for _, q := range []uint32{at(0), at(5), at(300), at(599), at(600), at(601), at(1200), at(2000)} {
		for _, w := range []uint32{60, 600, 3600} {
			for _, fails := range []bool{false, true} {
				a := inOrder.Count(features.KindPhone, phoneA, q, w, fails, false, false)
				b := shuffled.Count(features.KindPhone, phoneA, q, w, fails, false, false)
				if a != b {
					t.Errorf("Count(t=%d, w=%d, fails=%v): in order %d, shuffled %d", q-base, w, fails, a, b)
				}
			}
			a := inOrder.Distinct(features.KindPhone, phoneA, q, w, features.FieldA, 0)
			b := shuffled.Distinct(features.KindPhone, phoneA, q, w, features.FieldA, 0)
			if a != b {
				t.Errorf("Distinct(t=%d, w=%d): in order %d, shuffled %d", q-base, w, a, b)
			}
		}
	}
	// Spot checks: (0, 600] holds 5, 10, 40, 300, 300, 500, 599 → 7 entries, 6 distinct devices.
	if got := shuffled.Count(features.KindPhone, phoneA, at(600), 600, false, false, false); got != 7 {
		t.Errorf("Count as of 600 = %d, want 7", got)
	}
	if got := shuffled.Distinct(features.KindPhone, phoneA, at(600), 600, features.FieldA, 0); got != 6 {
		t.Errorf("Distinct devices as of 600 = %d, want 6", got)
	}
}

func TestCountFailsAndSelf(t *testing.T) {
	st := features.New(features.Config{})
	for i, fail := range []bool{true, false, true, true, false} {
		mustApply(t, st, attempt(phoneA, i*10, fail))
	}
	q := at(100)
	tests := []struct {
		name                      string
		key                       uint64
		failsOnly, self, selfFail bool
		want                      int
	}{
		{"all", phoneA, false, false, false, 5},
		{"all + self", phoneA, false, true, false, 6},
		{"all + failed self", phoneA, false, true, true, 6},
		{"failures", phoneA, true, false, false, 3},
		{"failures + successful self", phoneA, true, true, false, 3},
		{"failures + failed self", phoneA, true, true, true, 4},
		{"selfFail without self", phoneA, true, false, true, 3},
		{"zero key", 0, false, false, false, 0},
		// A zero key is absent (no device id): not even the attempt counts under it.
		{"zero key + self", 0, false, true, false, 0},
		{"zero key + failed self, failures", 0, true, true, true, 0},
		{"zero key + successful self, failures", 0, true, true, false, 0},
		{"unknown key + self", phoneB, false, true, false, 1},
	}
	for _, tc := range tests {
		if got := st.Count(features.KindPhone, tc.key, q, 600, tc.failsOnly, tc.self, tc.selfFail); got != tc.want {
			t.Errorf("%s: Count = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestDistinct(t *testing.T) {
	st := features.New(features.Config{})
	// Phones A, B, A on the IP, with devices A, A, B; then 30 more phones an hour later.
	for i, p := range []struct{ phone, dev uint64 }{{phoneA, devA}, {phoneB, devA}, {phoneA, devB}} {
		k := attempt(p.phone, i, false)
		k.Device = p.dev
		mustApply(t, st, k)
	}
	for i := 0; i < 30; i++ {
		mustApply(t, st, attempt(uint64(1000+i), 3600+i, false))
	}
	mA, mB := features.Member(phoneA), features.Member(phoneB)
	tests := []struct {
		name   string
		kind   features.Kind
		key    uint64
		t      uint32
		window uint32
		field  features.Field
		self   uint32
		want   int
	}{
		{"phones on the IP", features.KindIP, ipA, at(10), 600, features.FieldA, 0, 2},
		{"devices on the IP", features.KindIP, ipA, at(10), 600, features.FieldB, 0, 2},
		{"self already present", features.KindIP, ipA, at(10), 600, features.FieldA, mA, 2},
		{"self new", features.KindIP, ipA, at(10), 600, features.FieldA, 12345, 3},
		{"as of the first attempt", features.KindIP, ipA, at(0), 600, features.FieldA, 0, 1},
		{"devices of phone A", features.KindPhone, phoneA, at(10), 600, features.FieldA, 0, 2},
		{"networks of phone A", features.KindPhone, phoneA, at(10), 600, features.FieldB, 0, 1},
		{"phones on the prefix", features.KindPrefix, prefA, at(10), 600, features.FieldA, mB, 2},
		{"large list (table path)", features.KindIP, ipA, at(3629), 7200, features.FieldA, 0, 32},
		{"large list + new self", features.KindIP, ipA, at(3629), 7200, features.FieldA, 99, 33},
		{"large list + present self", features.KindIP, ipA, at(3629), 7200, features.FieldA, features.Member(1000), 32},
		{"second hour only", features.KindIP, ipA, at(3629), 600, features.FieldA, 0, 30},
		{"zero key", features.KindDevice, 0, at(10), 600, features.FieldA, 0, 0},
		{"zero key + self (absent key)", features.KindDevice, 0, at(10), 600, features.FieldA, mA, 0},
		{"unknown key + self", features.KindDevice, devB + 1, at(10), 600, features.FieldA, mA, 1},
	}
	for _, tc := range tests {
		if got := st.Distinct(tc.kind, tc.key, tc.t, tc.window, tc.field, tc.self); got != tc.want {
			t.Errorf("%s: Distinct = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// Absent keys (zero) are not recorded: no device id means no device key.
func TestZeroKeysNotRecorded(t *testing.T) {
	st := features.New(features.Config{})
	mustApply(t, st, &features.Keys{EventID: 1, T: base, Phone: phoneA})
	s := st.Stats()
	want := [5]int{1, 0, 0, 0, 0}
	for k := range want {
		if s.Keys[k] != want[k] {
			t.Errorf("Keys[%d] = %d, want %d (all: %v)", k, s.Keys[k], want[k], s.Keys)
		}
	}
	if s.Entries != 1 || s.Tokens != 0 || s.EventIDs != 1 || s.Applied != 1 {
		t.Errorf("stats = %+v, want 1 entry, 0 tokens, 1 event id, 1 applied", s)
	}
	// The entry's device and network members are zero: no distinct device or network.
	if got := st.Distinct(features.KindPhone, phoneA, base, 600, features.FieldA, 0); got != 0 {
		t.Errorf("distinct devices = %d, want 0", got)
	}
	if got := st.Distinct(features.KindPhone, phoneA, base, 600, features.FieldB, 0); got != 0 {
		t.Errorf("distinct networks = %d, want 0", got)
	}
	// Without an event id there is nothing to deduplicate by: both attempts count.
	mustApply(t, st, &features.Keys{T: base, Phone: phoneB})
	mustApply(t, st, &features.Keys{T: base, Phone: phoneB})
	if got := st.Count(features.KindPhone, phoneB, base, 600, false, false, false); got != 2 {
		t.Errorf("attempts without event id: Count = %d, want 2", got)
	}
}

func TestApplyIdempotent(t *testing.T) {
	st := features.New(features.Config{})
	k := attempt(phoneA, 0, true)
	k.Device, k.Token, k.HasLoc, k.Lat, k.Lon = devA, 777, true, 39.9, 116.4
	if st.Seen(k.EventID) {
		t.Fatal("Seen before Apply")
	}
	mustApply(t, st, k)
	if !st.Seen(k.EventID) {
		t.Fatal("not Seen after Apply")
	}
	// The second it was counted at tells a re-delivery (the same) from an id reused for another attempt.
	if sec, ok := st.SeenAt(k.EventID); !ok || sec != k.T || !features.SecTime(sec).Equal(features.SecTime(base)) {
		t.Errorf("SeenAt = %d, %v; want %d (%s), true", sec, ok, k.T, features.SecTime(base))
	}
	before := st.Stats()
	counts := func() [6]int {
		return [6]int{
			st.Count(features.KindPhone, phoneA, base, 600, false, false, false),
			st.Count(features.KindPhone, phoneA, base, 600, true, false, false),
			st.Count(features.KindIP, ipA, base, 600, false, false, false),
			st.Count(features.KindDevice, devA, base, 600, false, false, false),
			st.Count(features.KindPrefix, prefA, base, 600, false, false, false),
			st.TokenSeen(777, base),
		}
	}
	c1 := counts()
	if c1 != [6]int{1, 1, 1, 1, 1, 1} {
		t.Fatalf("after the first Apply: %v, want all 1", c1)
	}

	// Same event id, even with different contents: not applied again.
	again := *k
	again.T++
	again.Phone = phoneB
	if st.Apply(&again) {
		t.Fatal("second Apply of the same event id = true, want false")
	}
	if st.Apply(k) {
		t.Fatal("third Apply of the same event = true, want false")
	}
	after := st.Stats()
	if after != before {
		t.Errorf("stats changed by a duplicate: before %+v, after %+v", before, after)
	}
	if c2 := counts(); c2 != c1 {
		t.Errorf("counts changed by a duplicate: %v, then %v", c1, c2)
	}
	if got := st.Count(features.KindPhone, phoneB, base+1, 600, false, false, false); got != 0 {
		t.Errorf("duplicate recorded phone B: Count = %d", got)
	}
}

func TestRetentionPruning(t *testing.T) {
	st := features.New(features.Config{Retention: time.Hour})
	// One attempt every 10 minutes for 3 hours: 19 attempts at 0, 600, …, 10800.
	for dt := 0; dt <= 3*3600; dt += 600 {
		mustApply(t, st, attempt(phoneA, dt, false))
	}
	// Only what is within the hour before the newest attempt (10800) is kept: 7200 … 10800.
	if got := st.Count(features.KindPhone, phoneA, at(10800), 24*3600, false, false, false); got != 7 {
		t.Errorf("after pruning, Count over 24h = %d, want 7", got)
	}
	s := st.Stats()
	// Phone, IP, net and prefix each keep 7 entries.
	if s.Entries != 4*7 {
		t.Errorf("Entries = %d, want %d", s.Entries, 4*7)
	}
	// An out-of-order attempt older than the retention is dropped on insert.
	mustApply(t, st, attempt(phoneA, 600, false))
	if got := st.Count(features.KindPhone, phoneA, at(10800), 24*3600, false, false, false); got != 7 {
		t.Errorf("after a stale insert, Count = %d, want 7", got)
	}
	// An out-of-order attempt within the retention is kept.
	mustApply(t, st, attempt(phoneA, 7500, false))
	if got := st.Count(features.KindPhone, phoneA, at(10800), 24*3600, false, false, false); got != 8 {
		t.Errorf("after an in-retention insert, Count = %d, want 8", got)
	}
}

func TestMaxEntriesPerKey(t *testing.T) {
	const limit = 8
	st := features.New(features.Config{MaxEntriesPerKey: limit})
	for i := 0; i < 20; i++ {
		mustApply(t, st, attempt(phoneA, i, i < 10)) // the first 10 fail
	}
	// Only `limit` entries stay exact; the 12 older ones live on in the coarse tier, so counts
	// over the window are still right: all 20 attempts, 10 of them failures.
	if s := st.Stats(); s.Entries != 4*limit {
		t.Errorf("Entries = %d, want %d exact (phone, IP, net, prefix at the limit)", s.Entries, 4*limit)
	}
	if got := st.Count(features.KindPhone, phoneA, at(19), 3600, false, false, false); got != 20 {
		t.Errorf("Count = %d, want 20 (exact + coarse)", got)
	}
	if got := st.Count(features.KindPhone, phoneA, at(19), 3600, true, false, false); got != 10 {
		t.Errorf("failures = %d, want 10 (all folded into the coarse tier)", got)
	}
	// The exact tier answers short windows inside it exactly.
	if got := st.Count(features.KindPhone, phoneA, at(19), 5, false, false, false); got != 5 {
		t.Errorf("Count over the last 5 s = %d, want 5", got)
	}
	// A window entirely inside the coarse tier is pro-rated over the seconds the bucket saw
	// (0…11, 12 attempts): (3, 9] holds 6 of them.
	if got := st.Count(features.KindPhone, phoneA, at(9), 6, false, false, false); got != 6 {
		t.Errorf("Count over (3, 9] = %d, want 6", got)
	}
}

func TestDistinctAboveTheEntryCap(t *testing.T) {
	// A carrier NAT address: 5,000 distinct numbers in an hour, far over the exact tier.
	st := features.New(features.Config{MaxEntriesPerKey: 256})
	for i := 0; i < 5000; i++ {
		mustApply(t, st, attempt(uint64(100000+i), i*3600/5000, false))
	}
	got := st.Distinct(features.KindIP, ipA, at(3600), 3600, features.FieldA, 0)
	if got < 3500 || got > 6500 {
		t.Errorf("Distinct over the hour = %d, want about 5000 (HyperLogLog, 64 registers)", got)
	}
	if n := st.Count(features.KindIP, ipA, at(3600), 3600, false, false, false); n < 4995 || n > 5000 {
		t.Errorf("Count over the hour = %d, want 5000 (the first second may fall outside: ≥ 4995)", n)
	}
	// The last 10 minutes are served by the exact tier plus at most a bucket edge.
	n10 := st.Count(features.KindIP, ipA, at(3600), 600, false, false, false)
	if n10 < 780 || n10 > 890 {
		t.Errorf("Count over 10 min = %d, want about 833", n10)
	}
}

// A state that runs ahead of the time asked about (a scorer behind its feed: a backlog, a burst
// produced at once) has folded the newer entries of a busy key into the bucket that holds that
// time. Its members after the time must not count: a distinct count as of 30 s into a 5-minute
// burst of 2,000 numbers is about the 200 numbers of those 30 s, not the bucket's 2,000. (It was
// 2,000: the bucket was merged whole; "988 numbers of block … in 1 h" where about 100 existed.)
func TestDistinctOfAStateAheadLeavesTheFutureOut(t *testing.T) {
	st := features.New(features.Config{MaxEntriesPerKey: 64})
	const n = 2000
	for i := 0; i < n; i++ { // seconds 0…299: one bucket
		mustApply(t, st, attempt(uint64(200000+i), i*300/n, false))
	}
	truth := 0
	for i := 0; i < n; i++ {
		if i*300/n <= 30 {
			truth++
		}
	}
	got := st.Distinct(features.KindIP, ipA, at(30), 600, features.FieldA, 0)
	if lo, hi := truth*7/10, truth*13/10; got < lo || got > hi {
		t.Errorf("Distinct as of 30 s = %d, want about %d (within [%d, %d])", got, truth, lo, hi)
	}
	if c := st.Count(features.KindIP, ipA, at(30), 600, false, false, false); c < truth*9/10 || c > truth*11/10 {
		t.Errorf("Count as of 30 s = %d, want about %d", c, truth)
	}
	// As of the burst's end, the whole of it.
	if got := st.Distinct(features.KindIP, ipA, at(299), 600, features.FieldA, 0); got < n*7/10 || got > n*13/10 {
		t.Errorf("Distinct as of the end = %d, want about %d", got, n)
	}
}

func TestDistinctCap(t *testing.T) {
	for _, tc := range []struct {
		cap, phones, want int
	}{
		{cap: 5, phones: 3, want: 3},       // small list, under the cap
		{cap: 20, phones: 16, want: 16},    // small list boundary
		{cap: 512, phones: 300, want: 300}, // the default cap, under it
	} {
		st := features.New(features.Config{DistinctCap: tc.cap})
		for i := 0; i < tc.phones; i++ {
			mustApply(t, st, attempt(uint64(5000+i), i%60, false))
		}
		if got := st.Distinct(features.KindIP, ipA, at(60), 600, features.FieldA, 0); got != tc.want {
			t.Errorf("cap %d, %d phones: Distinct = %d, want %d", tc.cap, tc.phones, got, tc.want)
		}
		if got := st.Distinct(features.KindIP, ipA, at(60), 600, features.FieldA, 42); got != min(tc.phones+1, tc.cap) {
			t.Errorf("cap %d, %d phones + self: Distinct = %d, want %d", tc.cap, tc.phones, got, min(tc.phones+1, tc.cap))
		}
		// Counts are not capped.
		if got := st.Count(features.KindIP, ipA, at(60), 600, false, false, false); got != tc.phones {
			t.Errorf("cap %d: Count = %d, want %d", tc.cap, got, tc.phones)
		}
	}
	// Past the cap the answer is an estimate: not stuck at the cap, near the truth.
	st := features.New(features.Config{DistinctCap: 16})
	for i := 0; i < 200; i++ {
		mustApply(t, st, attempt(uint64(7000+i), i%60, false))
	}
	if got := st.Distinct(features.KindIP, ipA, at(60), 600, features.FieldA, 0); got <= 16 || got < 150 || got > 250 {
		t.Errorf("cap 16, 200 phones: Distinct = %d, want an estimate near 200 (HyperLogLog, ~13%% error)", got)
	}
}

func TestTokenSeen(t *testing.T) {
	tests := []struct {
		name      string
		sightings []int
		queries   map[int]int // dt → want
	}{
		{"never seen", nil, map[int]int{0: 0, 100: 0}},
		{"once", []int{10}, map[int]int{9: 0, 10: 1, 11: 1, 5000: 1}},
		{"twice", []int{10, 20}, map[int]int{9: 0, 10: 1, 15: 1, 20: 2, 99: 2}},
		{"twice, applied out of order", []int{20, 10}, map[int]int{9: 0, 10: 1, 15: 1, 20: 2}},
		{"twice in one second", []int{10, 10}, map[int]int{9: 0, 10: 2}},
		{"three times", []int{10, 20, 30}, map[int]int{9: 0, 10: 1, 20: 2, 25: 2, 30: 3}},
		{"three, two at the first second", []int{10, 10, 30}, map[int]int{9: 0, 10: 2, 20: 2, 30: 3}},
	}
	for _, tc := range tests {
		st := features.New(features.Config{})
		for _, dt := range tc.sightings {
			k := attempt(phoneA, dt, false)
			k.Token = 4242
			mustApply(t, st, k)
		}
		for dt, want := range tc.queries {
			if got := st.TokenSeen(4242, at(dt)); got != want {
				t.Errorf("%s: TokenSeen as of %d = %d, want %d", tc.name, dt, got, want)
			}
		}
		if got := st.TokenSeen(0, at(1000)); got != 0 {
			t.Errorf("%s: TokenSeen(0) = %d, want 0", tc.name, got)
		}
		if got := st.TokenSeen(4243, at(1000)); got != 0 {
			t.Errorf("%s: other token seen %d times", tc.name, got)
		}
	}
}

func TestLastLocation(t *testing.T) {
	type loc struct {
		dt       int
		lat, lon float32
	}
	tests := []struct {
		name    string
		applied []loc
		query   int
		wantOK  bool
		wantDT  int
		wantLat float32
	}{
		{"none", nil, 100, false, 0, 0},
		{"one before", []loc{{10, 1, 1}}, 100, true, 10, 1},
		{"only before t, not at t", []loc{{100, 1, 1}}, 100, false, 0, 0},
		{"not after t", []loc{{150, 1, 1}}, 100, false, 0, 0},
		{"newest before t", []loc{{10, 1, 1}, {50, 2, 2}}, 100, true, 50, 2},
		{"the one before the newest (re-scoring the newest)", []loc{{10, 1, 1}, {100, 2, 2}}, 100, true, 10, 1},
		{"out of order", []loc{{50, 2, 2}, {10, 1, 1}}, 100, true, 50, 2},
		{"out of order, between", []loc{{10, 1, 1}, {100, 3, 3}, {50, 2, 2}}, 100, true, 50, 2},
		{"older than both kept", []loc{{50, 2, 2}, {100, 3, 3}, {10, 1, 1}}, 60, true, 50, 2},
		{"same second replaces", []loc{{10, 1, 1}, {10, 4, 4}}, 100, true, 10, 4},
		{"later attempts recorded already (a scorer behind its feed)", []loc{{10, 1, 1}, {100, 2, 2}, {200, 3, 3}}, 100, true, 10, 1},
		{"five later recorded already", []loc{{10, 1, 1}, {20, 2, 2}, {30, 3, 3}, {40, 4, 4}, {50, 5, 5}, {60, 6, 6}}, 20, true, 10, 1},
	}
	for _, tc := range tests {
		st := features.New(features.Config{})
		for _, l := range tc.applied {
			k := attempt(phoneA, l.dt, false)
			k.HasLoc, k.Lat, k.Lon = true, l.lat, l.lon
			mustApply(t, st, k)
		}
		// An attempt without a location does not move it.
		mustApply(t, st, attempt(phoneA, 1, false))
		sec, lat, lon, ok := st.LastLocation(phoneA, at(tc.query))
		if ok != tc.wantOK {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.wantOK)
			continue
		}
		if ok && (sec != at(tc.wantDT) || !nearDeg(lat, tc.wantLat) || !nearDeg(lon, tc.wantLat)) {
			t.Errorf("%s: got (%d, %v, %v), want (%d, %v, %v)", tc.name, int(sec)-int(base), lat, lon, tc.wantDT, tc.wantLat, tc.wantLat)
		}
	}
	// It looks back through the phone's last 64 attempts before t, however many attempts without
	// a location came since the located one.
	for _, between := range []int{63, 64} {
		st := features.New(features.Config{})
		k := attempt(phoneA, 0, false)
		k.HasLoc, k.Lat, k.Lon = true, 7, 7
		mustApply(t, st, k)
		for i := range between {
			mustApply(t, st, attempt(phoneA, 1+i, false))
		}
		_, lat, _, ok := st.LastLocation(phoneA, at(1000))
		if want := between < 64; ok != want || (ok && !nearDeg(lat, 7)) {
			t.Errorf("a location %d unlocated attempts back: ok %v (lat %v), want %v", between, ok, lat, want)
		}
	}
	st := features.New(features.Config{})
	if _, _, _, ok := st.LastLocation(0, at(100)); ok {
		t.Error("LastLocation(0) ok")
	}
	// Locations are kept for phones only: the IP of a located attempt has none.
	k := attempt(phoneA, 0, false)
	k.HasLoc, k.Lat, k.Lon = true, 1, 1
	mustApply(t, st, k)
	if _, _, _, ok := st.LastLocation(ipA, at(100)); ok {
		t.Error("an IP key has a location")
	}
}

// The sweep removes keys, event ids and tokens idle for longer than the retention: it sweeps one
// shard each time event time moves on by 1/512 of the retention (7 s at one hour), so the 600
// seconds of recent traffic below sweep every shard, and everything old is gone.
func TestSweepIdleKeys(t *testing.T) {
	st := features.New(features.Config{Retention: time.Hour})
	const old = 5000
	for i := 0; i < old; i++ {
		mustApply(t, st, &features.Keys{EventID: uint64(1 + i), T: at(i % 60), Phone: uint64(1_000_000 + i),
			IP: uint64(1<<40 | i), Net: uint64(2<<40 | i>>8), Device: uint64(2_000_000 + i), Prefix: uint64(1<<50 | i/10),
			Token: uint64(3_000_000 + i), HasLoc: true, Lat: 1, Lon: 1})
	}
	s0 := st.Stats()
	if s0.Keys[features.KindPhone] != old || s0.Tokens != old || s0.EventIDs != old {
		t.Fatalf("stats after the old events: %+v", s0)
	}
	// New traffic two hours later on a handful of keys.
	const recent = 64*4096 + 1
	dropped := false
	for i := 0; i < recent; i++ {
		mustApply(t, st, &features.Keys{EventID: uint64(10_000_000 + i), T: at(7200 + i%600), Phone: uint64(1 + i%16), IP: 1<<40 | 7})
		if !dropped && i == 2*4096 {
			if s := st.Stats(); s.Keys[features.KindPhone] < s0.Keys[features.KindPhone]+16 {
				dropped = true
			}
		}
	}
	if !dropped {
		t.Error("no old phone key dropped after 8192 recent events")
	}
	s := st.Stats()
	want := [features.NumKinds]int{16, 1, 0, 0, 0, 0}
	if s.Keys != want {
		t.Errorf("Keys after the sweep cycle = %v, want %v", s.Keys, want)
	}
	if s.Tokens != 0 {
		t.Errorf("Tokens = %d, want 0", s.Tokens)
	}
	// Event ids within the retention stay (for deduplication); the old ones went.
	if s.EventIDs != recent {
		t.Errorf("EventIDs = %d, want %d (the recent ones)", s.EventIDs, recent)
	}
	if st.Seen(1) {
		t.Error("old event id still remembered")
	}
	if got := st.Count(features.KindPhone, 1_000_000, at(7200), 24*3600, false, false, false); got != 0 {
		t.Errorf("swept phone still counts %d", got)
	}
	if s.Applied != old+recent {
		t.Errorf("Applied = %d, want %d", s.Applied, old+recent)
	}
}

// The sweep is paced by event time, not by the number of events: a trickle of attempts over two
// hours (far fewer events than shards) still removes every key idle past the retention, and a
// burst of many events within one second sweeps nothing that is not idle.
func TestSweepPacedByEventTime(t *testing.T) {
	st := features.New(features.Config{Retention: time.Hour})
	const old = 3000
	for i := 0; i < old; i++ {
		mustApply(t, st, &features.Keys{EventID: uint64(1 + i), T: at(i % 60), Phone: uint64(1_000_000 + i), IP: uint64(1<<40 | i)})
	}
	// A burst: 5000 events in one second, 10 minutes later; nothing is idle yet.
	for i := 0; i < 5000; i++ {
		mustApply(t, st, &features.Keys{EventID: uint64(100_000 + i), T: at(600), Phone: uint64(1 + i%16)})
	}
	if got := st.Stats().Keys[features.KindPhone]; got != old+16 {
		t.Fatalf("after the burst: %d phone keys, want %d", got, old+16)
	}
	// A trickle: one event every 10 s for two hours: 720 events.
	for i := 0; i < 720; i++ {
		mustApply(t, st, &features.Keys{EventID: uint64(200_000 + i), T: at(600 + 10*(i+1)), Phone: 7})
	}
	s := st.Stats()
	if s.Keys[features.KindPhone] != 1 || s.Keys[features.KindIP] != 0 {
		t.Errorf("after two hours of trickle: %d phone keys, %d IP keys; want 1 and 0 (every idle key swept)", s.Keys[features.KindPhone], s.Keys[features.KindIP])
	}
	// Event ids within the retention stay (the trickle's last hour: 361), older ones go within a
	// sweep round (1/8 of the retention: 45 more at most); the burst's are gone.
	if s.EventIDs < 361 || s.EventIDs > 361+46 {
		t.Errorf("EventIDs = %d, want the last hour's 361 and at most a sweep round's more", s.EventIDs)
	}
}

// A key made by an event late by more than the retention (older than the sweep's cutoff when it
// comes) is already idle; the sweep, which reads only the keys whose newest second's generation
// the cutoff passed since its last round, still finds it when the cutoff comes round to that
// generation again: within 8/6 of a retention of event time.
func TestSweepFindsKeysOfVeryLateEvents(t *testing.T) {
	st := features.New(features.Config{Retention: time.Hour})
	id := uint64(0)
	trickle := func(from, to int) {
		for sec := from; sec < to; sec += 10 {
			id++
			mustApply(t, st, &features.Keys{EventID: id, T: at(sec), Phone: 7})
		}
	}
	trickle(0, 7200) // two hours: every shard swept many times
	for i := range 50 {
		id++
		mustApply(t, st, &features.Keys{EventID: id, T: at(100 + 60*i), Phone: uint64(1000 + i), IP: uint64(1<<40 | i)})
	}
	if got := st.Stats().Keys[features.KindPhone]; got != 51 {
		t.Fatalf("after the late events: %d phone keys, want 51", got)
	}
	trickle(7200, 7200+4800+600) // 8/6 of a retention and a sweep round (450 s) more
	if s := st.Stats(); s.Keys[features.KindPhone] != 1 || s.Keys[features.KindIP] != 0 {
		t.Errorf("8/6 of a retention after the late events: %d phone keys and %d IP keys, want 1 and 0", s.Keys[features.KindPhone], s.Keys[features.KindIP])
	}
}

// A steady stream keeps every live phone and no more than a sweep round's idle ones (1/8 of the
// retention: 12.5% at a constant arrival rate, 15% allowed, as in TestMemoryPerKey), checked
// every four hours over two retentions, before and after a snapshot is loaded.
func TestSweepKeepsLivePhonesOnly(t *testing.T) {
	phones := 20_000
	if raceEnabled {
		phones = 4_000
	}
	st := features.New(features.Config{})
	tr := newTraffic(phones, phones/10)
	check := func(st *features.State, when string) {
		t.Helper()
		live, got := tr.live(tr.last, st.Config().Retention), st.Stats().Keys[features.KindPhone]
		if got < live || float64(got) > 1.15*float64(live) {
			t.Errorf("%s: %d phone keys for %d live phones: want between %d and %d", when, got, live, live, int(1.15*float64(live)))
		}
	}
	for h := 26; h <= 38; h += 4 {
		tr.run(st, time.Duration(h)*time.Hour)
		check(st, fmt.Sprintf("after %d h", h))
	}
	var buf bytes.Buffer
	if _, err := st.WriteSnapshot(&buf, func() []byte { return []byte(`{}`) }); err != nil {
		t.Fatal(err)
	}
	loaded := features.New(features.Config{})
	if _, err := loaded.LoadSnapshot(&buf, nil); err != nil {
		t.Fatal(err)
	}
	for h := 42; h <= 86; h += 4 {
		tr.run(loaded, time.Duration(h)*time.Hour)
		check(loaded, fmt.Sprintf("loaded at 38 h, after %d h", h))
	}
}

// nearDeg reports whether two coordinates are the same to within the state's grid (a phone
// entry keeps its location to about 300 m in latitude, 600 m in longitude).
func nearDeg(a, b float32) bool { return a-b < 0.006 && b-a < 0.006 }

// Locations are kept on a grid: to within 0.006° (under 700 m) everywhere on Earth, the poles
// and the antimeridian included.
func TestLocationGrid(t *testing.T) {
	for _, c := range [][2]float32{{0, 0}, {39.9042, 116.4074}, {31.2304, 121.4737}, {-33.8688, 151.2093}, {90, 180}, {-90, -180}, {37.386, -122.0838}} {
		st := features.New(features.Config{})
		k := attempt(phoneA, 0, false)
		k.HasLoc, k.Lat, k.Lon = true, c[0], c[1]
		mustApply(t, st, k)
		_, lat, lon, ok := st.LastLocation(phoneA, at(1))
		if !ok || !nearDeg(lat, c[0]) || !nearDeg(lon, c[1]) {
			t.Errorf("(%v, %v) kept as (%v, %v) ok %v", c[0], c[1], lat, lon, ok)
		}
	}
}

// One writer and many readers at once (run with -race); the final answers are exact.
func TestConcurrentApplyAndQuery(t *testing.T) {
	st := features.New(features.Config{MaxEntriesPerKey: 4096})
	const writes = 3000
	stop := queryWhileWriting(t, st, writes, 4)
	for i := range writes {
		k := concurrentKeys(i)
		if !st.Apply(&k) {
			t.Errorf("Apply(%d) = false", i)
		}
		if i%500 == 0 {
			st.Stats()
		}
	}
	stop()
	checkConcurrentResult(t, st, writes)
}

// concurrentKeys is the i-th attempt of the concurrency tests: 50 phones, 7 devices and 100 tokens
// in turn, all on one address, network and prefix, a location each.
func concurrentKeys(i int) features.Keys {
	return features.Keys{EventID: uint64(1 + i), T: at(i), Phone: uint64(1 + i%50), IP: ipA, Net: netA,
		Device: uint64(100 + i%7), Prefix: prefA, Token: uint64(1 + i%100), HasLoc: true, Lat: float32(i%180 - 90), Lon: 1}
}

// queryWhileWriting starts n readers that query st until stop is called (which waits for them),
// checking what holds at any moment while the concurrency tests' writes go on: the address's
// count never goes down and its distinct phones never exceed the 50 there are (+ the asker).
func queryWhileWriting(t *testing.T, st *features.State, writes, n int) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				c := st.Count(features.KindIP, ipA, at(writes), 24*3600, false, false, false)
				if c < last {
					t.Errorf("count went down: %d after %d", c, last)
					return
				}
				last = c
				if d := st.Distinct(features.KindIP, ipA, at(writes), 24*3600, features.FieldA, uint32(rng.Uint64())); d > 51 {
					t.Errorf("distinct phones + self = %d, more than 51", d)
					return
				}
				st.Distinct(features.KindPhone, uint64(1+rng.IntN(50)), at(writes), 600, features.FieldA, 0)
				st.TokenSeen(uint64(1+rng.IntN(100)), at(writes))
				st.LastLocation(uint64(1+rng.IntN(50)), at(writes))
				st.Seen(uint64(1 + rng.IntN(writes)))
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// checkConcurrentResult checks st after the concurrency tests' writes attempts: exact answers.
func checkConcurrentResult(t *testing.T, st *features.State, writes int) {
	t.Helper()
	if got := st.Count(features.KindIP, ipA, at(writes), 24*3600, false, false, false); got != writes {
		t.Errorf("final Count = %d, want %d", got, writes)
	}
	if got := st.Distinct(features.KindIP, ipA, at(writes), 24*3600, features.FieldA, 0); got != 50 {
		t.Errorf("final Distinct phones = %d, want 50", got)
	}
	if got := st.Distinct(features.KindIP, ipA, at(writes), 24*3600, features.FieldB, 0); got != 7 {
		t.Errorf("final Distinct devices = %d, want 7", got)
	}
	if got := st.TokenSeen(1, at(writes)); got != writes/100 {
		t.Errorf("TokenSeen = %d, want %d", got, writes/100)
	}
	at1, lat, _, ok := st.LastLocation(50, at(writes))
	if !ok || at1 != at(writes-1) || !nearDeg(lat, float32((writes-1)%180-90)) {
		t.Errorf("LastLocation(50) = %d %v %v, want the last attempt's", at1, lat, ok)
	}
}

// Aggregates answers exactly what Count and Distinct answer one by one, small keys and keys past
// the exact-entry cap (coarse tier) alike.
func TestAggregatesMatchCountAndDistinct(t *testing.T) {
	s := features.New(features.Config{MaxEntriesPerKey: 64, DistinctCap: 16})
	r := rand.New(rand.NewPCG(9, 9))
	ips := []uint64{ipA, ipA + 1, ipA + 2}
	for i := range 5000 {
		k := &features.Keys{
			EventID: nextID.Add(1), T: base + uint32(r.IntN(7200)), Fail: r.IntN(4) == 0,
			Phone: uint64(1 + r.IntN(300)), IP: ips[r.IntN(len(ips))], Net: netA, Prefix: prefA,
			Device: uint64(1 + r.IntN(50)),
		}
		if i%7 == 0 {
			k.Device = 0
		}
		s.Apply(k)
	}
	windows := []uint32{60, 600, 3600, 86400}
	var aggs []features.Agg
	for _, w := range windows {
		aggs = append(aggs,
			features.Agg{Window: w}, features.Agg{Window: w, Fails: true},
			features.Agg{Window: w, Distinct: true, Field: features.FieldA, SelfMember: 77},
			features.Agg{Window: w, Distinct: true, Field: features.FieldB})
	}
	out := make([]int, len(aggs))
	for _, kind := range []features.Kind{features.KindIP, features.KindNet, features.KindPhone, features.KindDevice} {
		for _, key := range []uint64{ipA, ipA + 2, netA, 5, 17, 0, 999999} {
			for _, at := range []uint32{base + 10, base + 3000, base + 7300} {
				for _, self := range []bool{false, true} {
					s.Aggregates(kind, key, at, self, self, aggs, out)
					for i, a := range aggs {
						var want int
						if a.Distinct {
							want = s.Distinct(kind, key, at, a.Window, a.Field, a.SelfMember)
						} else {
							want = s.Count(kind, key, at, a.Window, a.Fails, self, self)
						}
						if out[i] != want {
							t.Fatalf("kind %d key %d at +%d self %v agg %+v: Aggregates %d, one by one %d",
								kind, key, at-base, self, a, out[i], want)
						}
					}
				}
			}
		}
	}
}

// TestPerAppKinds: the per-app kinds count only the attempts that carry their key; the shared
// kinds count all of them.
func TestPerAppKinds(t *testing.T) {
	st := features.New(features.Config{})
	const ip, prefix = 1<<40 | 9, 1<<50 | 1380013
	for i := 0; i < 6; i++ {
		k := &features.Keys{EventID: uint64(100 + i), T: at(i), Phone: uint64(1 + i), IP: ip, Prefix: prefix, App: 7, AppIP: 70, AppPrefix: 700}
		if i == 3 {
			k.Prefix, k.AppPrefix = prefix+1, 701 // app 7's second block
		}
		if i >= 4 { // another app: its own per-app keys
			k.App, k.AppIP, k.AppPrefix = 8, 80, 800
		}
		mustApply(t, st, k)
	}
	if n := st.Count(features.KindIP, ip, at(10), 600, false, false, false); n != 6 {
		t.Errorf("IP count %d, want 6", n)
	}
	if n := st.Count(features.KindAppIP, 70, at(10), 600, false, false, false); n != 4 {
		t.Errorf("app 7's IP count %d, want 4", n)
	}
	if n := st.Distinct(features.KindAppPrefix, 800, at(10), 600, features.FieldA, 0); n != 2 {
		t.Errorf("app 8's block phones %d, want 2", n)
	}
	if n := st.Distinct(features.KindPrefix, prefix, at(10), 600, features.FieldA, 0); n != 5 {
		t.Errorf("block phones %d, want 5", n)
	}
	// KindAppBlocks is keyed by the app and counts its blocks.
	if n := st.Distinct(features.KindAppBlocks, 7, at(10), 600, features.FieldA, 0); n != 2 {
		t.Errorf("app 7's blocks %d, want 2", n)
	}
	if n := st.Distinct(features.KindAppBlocks, 8, at(10), 600, features.FieldA, 0); n != 1 {
		t.Errorf("app 8's blocks %d, want 1", n)
	}
}
