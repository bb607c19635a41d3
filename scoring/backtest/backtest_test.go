package backtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/scoring"
)

// t0 is 10:00 China time: no odd-hour shadow hits.
var t0 = time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// ev is a clean event: a China Mobile number of segment 1380013, from its own IP and device.
func ev(id string, ts time.Time, number string) Event {
	return Event{
		EventID: id, TS: ts, AppID: "app-1", Flow: "one_click_login",
		PhoneHash: hashOf(number), PhoneSegment: "1380013",
		IP: fmt.Sprintf("203.0.%d.%d", hashOf(number)[0], 1+int(hashOf(number)[1])%250), Carrier: "CM", Platform: "android",
		DeviceID: "dev-" + number, Outcome: "success",
	}
}

func newScorer() (*scoring.Scorer, error) { return NewScorer(scoring.Config{})() }

func compile(t *testing.T, yaml []byte) *rules.Pack {
	t.Helper()
	s, err := newScorer()
	if err != nil {
		t.Fatal(err)
	}
	p, err := rules.Compile(yaml, s.Env())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// edit returns the default pack with old replaced by new (exactly once).
func edit(t *testing.T, old, new string) []byte {
	t.Helper()
	src := string(packs.Default())
	if strings.Count(src, old) != 1 {
		t.Fatalf("%q occurs %d times in the default pack", old, strings.Count(src, old))
	}
	return []byte(strings.Replace(src, old, new, 1))
}

func run(t *testing.T, events []Event, current, candidate *rules.Pack, opts Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), NewSliceSource(events), current, candidate, newScorer, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The brief's example: lowering the phone_velocity threshold from 3 to 2 verifications in
// 10 minutes turns the second verification of a number from 0 into 300, and only that.
func TestLowerPhoneVelocityThreshold(t *testing.T) {
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "when: phone_verifies_10m >= 3\n", "when: phone_verifies_10m >= 2\n"))

	events := []Event{
		ev("a1", t0, "A"),
		ev("b1", t0.Add(30*time.Second), "B"),
		ev("a2", t0.Add(time.Minute), "A"),     // 2nd of A in 10 min: 0 → 300
		ev("a3", t0.Add(2*time.Minute), "A"),   // 3rd: 300 under both
		ev("c1", t0.Add(3*time.Minute), "C"),   //
		ev("c2", t0.Add(20*time.Minute), "C"),  // 17 min later: no velocity
		ev("d1", t0.Add(21*time.Minute), "D"),  //
		ev("d2", t0.Add(22*time.Minute), "D"),  // 0 → 300
		ev("e1", t0.Add(23*time.Minute), "E"),  //
		ev("e1", t0.Add(23*time.Minute), "E2"), // same event id again (another app): not counted twice
	}
	events[9].AppID = "app-2"
	rep := run(t, events, current, candidate, Options{Examples: 10})

	if rep.Events != 10 || rep.Read != 10 || rep.Skipped != 0 || rep.WarmUpEvents != 0 {
		t.Fatalf("events %d read %d skipped %d warm-up %d", rep.Events, rep.Read, rep.Skipped, rep.WarmUpEvents)
	}
	want := []Transition{
		{From: 0, To: 0, Count: 7},
		{From: 0, To: 300, Count: 2, Examples: []string{"a2", "d2"}},
		{From: 300, To: 300, Count: 1},
	}
	if !equalTransitions(rep.Transitions, want) {
		t.Errorf("transitions %+v, want %+v", rep.Transitions, want)
	}
	if rep.Changed != 2 || rep.Count(0, 300) != 2 || rep.Count(300, 0) != 0 {
		t.Errorf("changed %d", rep.Changed)
	}
	changed := rep.ChangedRules()
	if len(changed) != 1 {
		t.Fatalf("changed rules %+v, want only phone_velocity_observe", changed)
	}
	d := changed[0]
	if d.Rule != "phone_velocity_observe" || d.Gained != 2 || d.Lost != 0 || d.CurrentHits != 1 || d.CandidateHits != 3 ||
		!slices.Equal(d.GainedExamples, []string{"a2", "d2"}) || d.CurrentMode != "enforce" || d.CandidateLevel != 300 {
		t.Errorf("rule diff %+v", d)
	}
	if len(rep.Rules) != len(current.Rules) {
		t.Errorf("%d rule entries for %d rules", len(rep.Rules), len(current.Rules))
	}
	if rep.DistinctPhones != 6 {
		t.Errorf("distinct phones %d, want 6", rep.DistinctPhones)
	}
	if rep.Quality != nil || rep.EvalErrors != nil {
		t.Errorf("quality %v eval errors %v without labels or failures", rep.Quality, rep.EvalErrors)
	}
}

func equalTransitions(a, b []Transition) bool {
	return slices.EqualFunc(a, b, func(x, y Transition) bool {
		return x.From == y.From && x.To == y.To && x.Count == y.Count && slices.Equal(x.Examples, y.Examples)
	})
}

// Numbers of one segment keep their segment: a 连号 burst of 10 numbers in one block fires
// prefix_burst at the 10th; a candidate at 5 fires from the 5th.
func TestPrefixBurstKeepsSegments(t *testing.T) {
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "when: app_prefix_phones_1h >= 10 && (app_phones_1h - app_prefix_phones_1h) * 6 <= app_prefix_phones_1h * (app_blocks_1h - 1) && app_prefix_phones_1h * 3 >= app_prefix_phones_24h\n", "when: app_prefix_phones_1h >= 5\n"))
	var events []Event
	for i := 1; i <= 10; i++ {
		e := ev(fmt.Sprintf("p%02d", i), t0.Add(time.Duration(i)*time.Minute), fmt.Sprint("burst", i))
		e.IP = fmt.Sprintf("198.51.%d.7", i) // no IP signal
		events = append(events, e)
	}
	// Another segment: does not add to the burst.
	other := ev("q01", t0.Add(30*time.Second), "other")
	other.PhoneSegment = "1390013"
	events = append([]Event{other}, events...)

	rep := run(t, events, current, candidate, Options{})
	if got := rep.Count(0, 600); got != 5 {
		t.Errorf("0→600: %d, want 5 (the 5th to 9th number)\n%s", got, rep)
	}
	if got := rep.Count(600, 600); got != 1 {
		t.Errorf("600→600: %d, want 1 (the 10th)", got)
	}
	if d := rep.Rule("prefix_burst"); d == nil || d.Gained != 5 || d.CurrentHits != 1 || d.CandidateHits != 6 {
		t.Errorf("prefix_burst %+v", d)
	}
}

// Two hashes that pick the same suffix in one segment stay two numbers.
func TestStandInCollisions(t *testing.T) {
	ins := newStandIns()
	h1 := strings.Repeat("ab", 8) + strings.Repeat("01", 24)
	h2 := strings.Repeat("ab", 8) + strings.Repeat("02", 24) // same first 8 bytes: same suffix
	p1, err := ins.phone(h1, "1380013", false)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := ins.phone(h2, "1380013", false)
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 || p1[:7] != "1380013" || p2[:7] != "1380013" || len(p1) != 11 || len(p2) != 11 {
		t.Errorf("stand-ins %s %s", p1, p2)
	}
	if again, _ := ins.phone(strings.ToUpper(h1[:32])+h1[32:], "1390000", false); again != p1 {
		t.Errorf("the same hash got %s, then %s", p1, again)
	}
	// Same suffix in another segment is fine.
	if p3, _ := ins.phone(h2, "1390013", false); p3 != p2 {
		t.Errorf("a known hash moved: %s", p3)
	}
	for _, bad := range []struct{ hash, seg string }{
		{"abc", "1380013"}, {strings.Repeat("zz", 32), "1380013"},
		{hashOf("x"), "138001"}, {hashOf("x"), "2380013"}, {hashOf("x"), "13800a3"},
	} {
		if _, err := ins.phone(bad.hash, bad.seg, false); err == nil {
			t.Errorf("phone(%q, %q): no error", bad.hash, bad.seg)
		}
	}

	// A full segment: 10,000 numbers fit, the 10,001st does not.
	full := newStandIns()
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		p, err := full.phone(hashOf(fmt.Sprint(i)), "1700000", false)
		if err != nil {
			t.Fatalf("number %d: %v", i, err)
		}
		seen[p] = true
	}
	if len(seen) != 10000 {
		t.Errorf("%d distinct stand-ins for 10000 hashes", len(seen))
	}
	if _, err := full.phone(hashOf("one more"), "1700000", false); !errors.Is(err, errSegmentFull) {
		t.Errorf("10001st number: %v", err)
	}

	// In a replay: the two colliding hashes verify twice each within 10 minutes. Merged into
	// one number they would reach 3 and 4 verifications and be observed.
	a, b := ev("x1", t0, "x"), ev("y1", t0.Add(time.Second), "y")
	a.PhoneHash, b.PhoneHash = h1, h2
	a2, b2 := a, b
	a2.EventID, a2.TS = "x2", t0.Add(time.Minute)
	b2.EventID, b2.TS = "y2", t0.Add(time.Minute+time.Second)
	pack := compile(t, packs.Default())
	rep := run(t, []Event{a, b, a2, b2}, pack, pack, Options{})
	if rep.Count(0, 0) != 4 {
		t.Errorf("colliding hashes were merged: %+v", rep.Transitions)
	}
}

// Events before From fill the windows without being compared.
func TestWarmUp(t *testing.T) {
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "when: phone_verifies_10m >= 3\n", "when: phone_verifies_10m >= 4\n"))
	events := []Event{ev("w1", t0, "A"), ev("w2", t0.Add(time.Minute), "A"), ev("r1", t0.Add(2*time.Minute), "A"), ev("late", t0.Add(time.Hour), "A")}
	rep := run(t, events, current, candidate, Options{From: t0.Add(2 * time.Minute), To: t0.Add(time.Hour)})
	if rep.WarmUpEvents != 2 || rep.Events != 1 || rep.Read != 3 {
		t.Fatalf("warm-up %d events %d read %d", rep.WarmUpEvents, rep.Events, rep.Read)
	}
	if rep.Count(300, 0) != 1 {
		t.Errorf("the 3rd verification after 2 of warm-up: %+v, want 300→0", rep.Transitions)
	}
	if d := rep.Rule("phone_velocity_observe"); d.Lost != 1 || !slices.Equal(d.LostExamples, []string{"r1"}) {
		t.Errorf("rule diff %+v", d)
	}
	if !rep.From.Equal(t0.Add(2*time.Minute)) || !rep.LastEvent.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("from %v last %v", rep.From, rep.LastEvent)
	}
}

// The distinct numbers a report gives are those of the compared events: the warm-up's own (and
// those of events skipped) are left out. A backtest of a 30-minute period after a day of warm-up
// printed "105 compared, 14 changed score (13.33%), 29,887 distinct numbers" (h12's held-out run).
func TestDistinctNumbersAreTheComparedEvents(t *testing.T) {
	pack := compile(t, packs.Default())
	noIP := ev("r4", t0.Add(3*time.Minute), "E")
	noIP.IP = "not an address"
	events := []Event{ev("w1", t0, "B"), ev("w2", t0.Add(time.Second), "C"), ev("w3", t0.Add(time.Minute), "A"),
		ev("r1", t0.Add(2*time.Minute), "A"), ev("r2", t0.Add(2*time.Minute+time.Second), "A"), ev("r3", t0.Add(2*time.Minute+2*time.Second), "B"), noIP}
	rep := run(t, events, pack, pack, Options{From: t0.Add(2 * time.Minute), To: t0.Add(time.Hour)})
	if rep.WarmUpEvents != 3 || rep.Events != 3 || rep.Skipped != 1 {
		t.Fatalf("warm-up %d events %d skipped %d", rep.WarmUpEvents, rep.Events, rep.Skipped)
	}
	if rep.DistinctPhones != 2 {
		t.Errorf("distinct numbers %d, want 2 (A and B, of the compared events)", rep.DistinctPhones)
	}
}

func TestLabelsPrecisionRecall(t *testing.T) {
	current := compile(t, packs.Default())
	// Candidate: the observe rule becomes a step-up at 2 verifications.
	candidate := compile(t, edit(t, "    level: 300\n    when: phone_verifies_10m >= 3\n", "    level: 600\n    when: phone_verifies_10m >= 2\n"))
	events := []Event{
		ev("a1", t0, "A"), ev("a2", t0.Add(time.Minute), "A"), ev("a3", t0.Add(2*time.Minute), "A"),
		ev("b1", t0.Add(3*time.Minute), "B"), ev("b2", t0.Add(4*time.Minute), "B"),
		ev("c1", t0.Add(5*time.Minute), "C"),
	}
	labels := Labels{{"", "a2"}: true, {"", "a3"}: true, {"", "b2"}: false, {"", "c1"}: true, {"", "unseen"}: true}
	rep := run(t, events, current, candidate, Options{Labels: labels})
	q := rep.Quality
	if q == nil || q.Labeled != 4 || q.FlagAt != 600 {
		t.Fatalf("quality %+v", q)
	}
	// Current flags nothing at ≥ 600: precision undefined, recall 0 of 3.
	if q.Current.Precision != nil || q.Current.Recall == nil || *q.Current.Recall != 0 || q.Current.FN != 3 || q.Current.TN != 1 {
		t.Errorf("current %+v", q.Current)
	}
	// Candidate flags a2, a3 (attacks) and b2 (not): precision 2/3, recall 2/3.
	if c := q.Candidate; c.TP != 2 || c.FP != 1 || c.FN != 1 || c.TN != 0 || *c.Precision != 2.0/3 || *c.Recall != 2.0/3 {
		t.Errorf("candidate %+v", c)
	}
	if d := rep.Rule("phone_velocity_observe"); d.CurrentLevel != 300 || d.CandidateLevel != 600 || !d.Changed() {
		t.Errorf("rule diff %+v", d)
	}
	txt := rep.String()
	for _, want := range []string{"precision", "0.667", "phone_velocity_observe", "enforce 300", "enforce 600"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text report lacks %q:\n%s", want, txt)
		}
	}
}

// A pack change that moves the totals a little may move one app's verdicts a lot: the report
// breaks the comparison down by app (events, changes, flagged under each pack, precision and
// recall over the app's labels).
func TestReportByApp(t *testing.T) {
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "    level: 300\n    when: phone_verifies_10m >= 3\n", "    level: 600\n    when: phone_verifies_10m >= 2\n"))
	events := []Event{
		ev("a1", t0, "A"), ev("a2", t0.Add(time.Minute), "A"), ev("a3", t0.Add(2*time.Minute), "A"),
		ev("b1", t0.Add(3*time.Minute), "B"), ev("b2", t0.Add(4*time.Minute), "B"),
		ev("c1", t0.Add(5*time.Minute), "C"), ev("d1", t0.Add(6*time.Minute), "D"),
	}
	for i := 3; i < len(events); i++ {
		events[i].AppID = "shop/cn" // B, C, D; A stays app-1
	}
	labels := Labels{{"app-1", "a2"}: true, {"app-1", "a3"}: true, {"shop/cn", "b2"}: false, {"shop/cn", "c1"}: true}
	rep := run(t, events, current, candidate, Options{Labels: labels})
	if len(rep.Apps) != 2 || rep.Apps[0].AppID != "shop/cn" || rep.Apps[1].AppID != "app-1" {
		t.Fatalf("apps %+v, want shop/cn (4 events) then app-1 (3)", rep.Apps)
	}
	// app-1: a2 0 → 600 and a3 300 → 600, both flagged by the candidate only.
	if a := rep.App("app-1"); a.Events != 3 || a.Changed != 2 || a.CurrentFlagged != 0 || a.CandidateFlagged != 2 ||
		a.Quality == nil || a.Quality.Labeled != 2 || *a.Quality.Candidate.Precision != 1 || *a.Quality.Candidate.Recall != 1 || *a.Quality.Current.Recall != 0 {
		t.Errorf("app-1 %+v quality %+v", a, a.Quality)
	}
	// shop/cn: b2 0 → 600, a false alarm; c1, an attack, missed by both.
	if a := rep.App("shop/cn"); a.Events != 4 || a.Changed != 1 || a.CandidateFlagged != 1 ||
		a.Quality.Labeled != 2 || *a.Quality.Candidate.Precision != 0 || *a.Quality.Candidate.Recall != 0 || a.Quality.Candidate.FP != 1 {
		t.Errorf("shop/cn %+v quality %+v", a, a.Quality)
	}
	txt := rep.String()
	for _, want := range []string{"by app (flagged = score ≥ 600", "shop/cn", "1 (25.00%)", "app-1", "2 (66.67%)", "0.000 → 1.000"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text report lacks %q:\n%s", want, txt)
		}
	}
	js, err := rep.JSON()
	if err != nil || !strings.Contains(string(js), `"app_id": "shop/cn"`) || !strings.Contains(string(js), `"candidate_flagged": 2`) {
		t.Errorf("JSON: %v\n%s", err, js)
	}
}

// Past maxApps apps the rest are summed in one entry, whatever their number.
func TestReportByAppIsBounded(t *testing.T) {
	pack := compile(t, packs.Default())
	var events []Event
	for i := range maxApps + 3 {
		e := ev(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Millisecond).Truncate(time.Second), fmt.Sprintf("N%d", i))
		e.AppID, e.PhoneSegment = fmt.Sprintf("app-%05d", i), fmt.Sprintf("13800%02d", i%100)
		events = append(events, e)
	}
	rep := run(t, events, pack, pack, Options{})
	last := rep.Apps[len(rep.Apps)-1]
	if len(rep.Apps) != maxApps+1 || last.AppID != "" || last.OtherApps != 3 || last.Events != 3 {
		t.Errorf("%d entries, the last %+v; want %d apps and one entry of the other 3", len(rep.Apps), last, maxApps)
	}
	if strings.Count(rep.String(), "\n  app-") != maxAppsShown {
		t.Errorf("the text lists %d apps, want %d", strings.Count(rep.String(), "\n  app-"), maxAppsShown)
	}
}

func TestSkipsAndOrder(t *testing.T) {
	pack := compile(t, packs.Default())
	good := ev("g1", t0, "A")
	badIP, badHash, badSeg, noID := good, good, good, good
	badIP.EventID, badIP.IP = "x1", "not-an-ip"
	badHash.EventID, badHash.PhoneHash = "x2", "13800138000"
	badSeg.EventID, badSeg.PhoneHash, badSeg.PhoneSegment = "x3", hashOf("new number"), ""
	noID.EventID = ""
	rep := run(t, []Event{good, badIP, badHash, badSeg, noID}, pack, pack, Options{})
	if rep.Events != 1 || rep.Skipped != 4 || rep.Read != 5 ||
		rep.SkipReasons[skipBadIP] != 1 || rep.SkipReasons[skipBadHash] != 1 || rep.SkipReasons[skipBadSegment] != 1 || rep.SkipReasons[skipNoEventID] != 1 {
		t.Errorf("events %d skipped %d %v", rep.Events, rep.Skipped, rep.SkipReasons)
	}

	_, err := Run(context.Background(), NewSliceSource([]Event{ev("b", t0.Add(time.Second), "A"), ev("a", t0, "A")}), pack, pack, newScorer, Options{})
	if err == nil || !strings.Contains(err.Error(), "time order") {
		t.Errorf("out of order: %v", err)
	}
}

type failingSource struct{ n int }

func (f *failingSource) Next(context.Context) (Event, bool, error) {
	f.n++
	if f.n > 3000 {
		return Event{}, false, errors.New("connection reset")
	}
	return ev(fmt.Sprint("f", f.n), t0.Add(time.Duration(f.n)*time.Second), fmt.Sprint(f.n%50)), true, nil
}

func TestErrors(t *testing.T) {
	pack := compile(t, packs.Default())
	if _, err := Run(context.Background(), &failingSource{}, pack, pack, newScorer, Options{}); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("source error: %v", err)
	}
	// A scorer without a phone hasher cannot Process: the run ends with that error.
	bare := func() (*scoring.Scorer, error) { return scoring.New(scoring.Config{}) }
	if _, err := Run(context.Background(), NewSliceSource([]Event{ev("a", t0, "A")}), pack, pack, bare, Options{}); err == nil {
		t.Error("a scorer without hasher: no error")
	}
	// A pack compiled against variables the scorer does not have.
	env, err := rules.NewEnv([]rules.Var{{Name: "moon_phase", Type: rules.Int}})
	if err != nil {
		t.Fatal(err)
	}
	alien, err := rules.Compile([]byte("pack: alien\nrules:\n  - {id: full_moon, tag: moon, level: 300, when: moon_phase == 4}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), NewSliceSource(nil), pack, alien, newScorer, Options{}); err == nil || !strings.Contains(err.Error(), "moon_phase") {
		t.Errorf("incompatible pack: %v", err)
	}
	if _, err := Run(context.Background(), NewSliceSource(nil), nil, pack, newScorer, Options{}); err == nil {
		t.Error("nil pack: no error")
	}
	if _, err := Run(context.Background(), NewSliceSource(nil), pack, pack, newScorer, Options{From: t0, To: t0}); err == nil {
		t.Error("empty period: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, &failingSource{}, pack, pack, newScorer, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestProgressAndJSON(t *testing.T) {
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "when: phone_verifies_10m >= 3\n", "when: phone_verifies_10m >= 2\n"))
	var events []Event
	for i := 0; i < 5000; i++ {
		e := ev(fmt.Sprint("e", i), t0.Add(time.Duration(i)*time.Second), fmt.Sprint(i%300))
		e.PhoneSegment = fmt.Sprintf("138%04d", i%300) // no 连号 burst
		events = append(events, e)
	}
	var calls []Progress
	rep := run(t, events, current, candidate, Options{Progress: func(p Progress) { calls = append(calls, p) }, ProgressEvery: 1000, RunID: "bt-test"})
	if len(calls) < 5 || !calls[len(calls)-1].Done || calls[len(calls)-1].Read != 5000 || calls[0].Done {
		t.Errorf("progress calls: %+v", calls)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Read < calls[i-1].Read {
			t.Errorf("progress went back: %+v", calls)
		}
	}
	if rep.RunID != "bt-test" || rep.Events != 5000 || rep.EventsPerSec <= 0 {
		t.Errorf("run %s events %d rate %f", rep.RunID, rep.Events, rep.EventsPerSec)
	}
	var sum int64
	for _, tr := range rep.Transitions {
		sum += tr.Count
		if tr.From == tr.To && len(tr.Examples) != 0 || len(tr.Examples) > defaultExamples {
			t.Errorf("examples of %d→%d: %q", tr.From, tr.To, tr.Examples)
		}
	}
	if sum != rep.Events || rep.Count(0, 300) == 0 {
		t.Errorf("matrix sums to %d of %d events: %+v", sum, rep.Events, rep.Transitions)
	}

	b, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Count(0, 300) != rep.Count(0, 300) || back.Rule("phone_velocity_observe").Gained != rep.Rule("phone_velocity_observe").Gained ||
		back.Current.Version != current.Version || !back.StartedAt.Equal(rep.StartedAt) {
		t.Errorf("JSON round trip lost data:\n%s", b)
	}
	if bytes.Contains(b, []byte(`"quality"`)) || !bytes.Contains(b, []byte(`"transitions"`)) {
		t.Errorf("JSON:\n%s", b)
	}
}

// An empty report's lists are JSON lists, not null: riskflow backtest --json over a period without
// events said "transitions": null.
func TestEmptyReportJSONHasLists(t *testing.T) {
	b, err := (&Report{}).JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"transitions": []`)) || !bytes.Contains(b, []byte(`"rules": []`)) || bytes.Contains(b, []byte("null")) {
		t.Errorf("JSON of an empty report:\n%s", b)
	}
}

func TestTextReport(t *testing.T) {
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "when: phone_verifies_10m >= 3\n", "when: phone_verifies_10m >= 2\n"))
	rep := run(t, []Event{ev("a1", t0, "A"), ev("a2", t0.Add(time.Minute), "A")}, current, candidate, Options{RunID: "bt-x"})
	txt := rep.String()
	for _, want := range []string{
		"backtest bt-x",
		"score transitions (rows: current score, columns: candidate score)",
		"0  300  600  900",
		"  0 → 300",
		"e.g. a2",
		"phone_velocity_observe",
		"+a2",
		"2 compared, 1 changed score (50.00%)",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("text report lacks %q:\n%s", want, txt)
		}
	}
	same := run(t, []Event{ev("a1", t0, "A")}, current, current, Options{})
	if s := same.String(); !strings.Contains(s, "no verdict changed") || !strings.Contains(s, "no rule changed") {
		t.Errorf("identical packs:\n%s", s)
	}
}

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels(strings.NewReader("# labels\nevent_id,label\n# comment\nev-1,1\nev-2\tbenign\nev-3 attack\n\nev-4,false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || !got[LabelKey{"", "ev-1"}] || got[LabelKey{"", "ev-2"}] || !got[LabelKey{"", "ev-3"}] || got[LabelKey{"", "ev-4"}] {
		t.Errorf("labels %v", got)
	}
	got, err = ParseLabels(strings.NewReader(` {"a": true, "b": false}`))
	if err != nil || len(got) != 2 || !got[LabelKey{"", "a"}] || got[LabelKey{"", "b"}] {
		t.Errorf("JSON labels %v %v", got, err)
	}
	got, err = ParseLabels(strings.NewReader("{\"event_id\":\"x\",\"label\":\"farm\",\"attack\":true}\n{\"event_id\":\"y\",\"label\":\"benign\",\"attack\":false}\n"))
	if err != nil || len(got) != 2 || !got[LabelKey{"", "x"}] || got[LabelKey{"", "y"}] {
		t.Errorf("JSON-lines labels %v %v", got, err)
	}
	// Per app: the same event id in two apps, two labels; an app-less label is the fallback.
	got, err = ParseLabels(strings.NewReader("app_id,event_id,label\napp1,ev-1,fraud\napp2,ev-1,legit\nev-9,1\n"))
	if err != nil || len(got) != 3 {
		t.Fatalf("per-app labels %v %v", got, err)
	}
	for _, c := range []struct {
		app, id      string
		attack, have bool
	}{{"app1", "ev-1", true, true}, {"app2", "ev-1", false, true}, {"app3", "ev-1", false, false}, {"app3", "ev-9", true, true}} {
		if a, ok := got.Of(c.app, c.id); a != c.attack || ok != c.have {
			t.Errorf("Of(%s, %s) = %v, %v", c.app, c.id, a, ok)
		}
	}
	got, err = ParseLabels(strings.NewReader(`{"event_id":"x","app_id":"a1","attack":true}` + "\n"))
	if err != nil || !got[LabelKey{"a1", "x"}] {
		t.Errorf("JSON line with app_id: %v %v", got, err)
	}
	// JSON lines in the stored labels' words, as riskflow label --file takes them (and as the CSV
	// form reads them): they were refused ("event_id and attack are required").
	got, err = ParseLabels(strings.NewReader(`{"app_id":"a1","event_id":"x","label":"fraud","note":"modem pool"}` + "\n" + `{"app_id":"a1","event_id":"y","label":"legit"}` + "\n"))
	if err != nil || len(got) != 2 || !got[LabelKey{"a1", "x"}] || got[LabelKey{"a1", "y"}] {
		t.Errorf("JSON lines with label fraud/legit: %v %v", got, err)
	}
	for _, bad := range []string{"ev-1,maybe\n", "ev-1\n", "a,b,c,1\n", "a,1\nevent_id,label\n", `{"a": 1}`, `{"event_id":"x","label":"farm"}`,
		`{"event_id":"x","attack":true}` + "\n" + `{"event_id":"y"}`, `{"event_id":"x","attack":true,"extra":1}`} {
		if _, err := ParseLabels(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A rule that fails at evaluation is counted and skipped; the events are still compared.
func TestEvalErrors(t *testing.T) {
	current := compile(t, packs.Default())
	broken := string(packs.Default()) + `
  - id: divide_by_zero
    tag: broken
    level: 600
    when: 10 / (phone_verifies_10m - phone_verifies_10m) > 1
`
	candidate := compile(t, []byte(broken))
	rep := run(t, []Event{ev("a1", t0, "A"), ev("a2", t0.Add(time.Minute), "A")}, current, candidate, Options{})
	if rep.Events != 2 || rep.Count(0, 0) != 2 {
		t.Errorf("events %d transitions %+v", rep.Events, rep.Transitions)
	}
	if got := rep.EvalErrors["candidate"]["divide_by_zero"]; got != 2 || len(rep.EvalErrors["current"]) != 0 {
		t.Errorf("eval errors %v", rep.EvalErrors)
	}
	if d := rep.Rule("divide_by_zero"); d == nil || d.CurrentMode != "" || d.CandidateMode != "enforce" || !d.Changed() {
		t.Errorf("new rule diff %+v", d)
	}
	if s := rep.String(); !strings.Contains(s, "rule evaluation errors") || !strings.Contains(s, "divide_by_zero") {
		t.Errorf("text:\n%s", s)
	}
}

// Every wrong line of a --labels file is named by its line and field, not the first alone (and a
// JSON line by its object's count, "object 2", with Go's type name: "Go struct field
// .labelLine.attack of type bool"); a phone number in a line is masked.
func TestParseLabelsNamesEveryWrongLine(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"app_id,event_id,label\napp1,ev-1,fraud\napp1,ev-2,frod\napp1;ev-3\napp1,ev-4,13800138000\n",
			"backtest: labels: 3 wrong lines:\n" +
				`  line 3: label "frod" is not 1/true/attack/fraud or 0/false/benign/legit` + "\n" +
				"  line 4: want `event_id,label` or `app_id,event_id,label`, got \"app1;ev-3\"\n" +
				`  line 5: label "<phone>" is not 1/true/attack/fraud or 0/false/benign/legit`},
		{`{"event_id":"ev-1","attack":true}` + "\n" + `{"event_id":"ev-2","attack":"yes"}` + "\n\n" +
			`{"event_id":"ev-3","label":"frad"}` + "\n" + `{"app_id":"a","decision_id":"d-1","label":"fraud"}` + "\n" +
			`{"event_id":"ev-5","attack":true,"extra":1}` + "\n" + `{"attack":false}` + "\n" + `{"event_id":"ev-7",`,
			"backtest: labels: 6 wrong lines:\n" +
				"  line 2: attack: want true or false, got a JSON string\n" +
				`  line 4: label: "frad" is not fraud or legit (or give attack: true|false)` + "\n" +
				"  line 5: decision_id: a decision's label is resolved to its events in ClickHouse: store it with riskflow label (backtest reads the stored labels), or label the event_id here\n" +
				"  line 6: extra: unknown field (want event_id, app_id and attack true|false or label fraud|legit)\n" +
				"  line 7: event_id: is required\n" +
				"  line 8: invalid JSON: unexpected EOF"},
		{"ev-1,maybe\n", `backtest: labels line 1: label "maybe" is not 1/true/attack/fraud or 0/false/benign/legit`},
	} {
		_, err := ParseLabels(strings.NewReader(c.doc))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n%v\nwant\n%s", c.doc, err, c.want)
		}
	}
	var many strings.Builder
	for i := range 30 {
		fmt.Fprintf(&many, "ev-%d,perhaps\n", i)
	}
	if _, err := ParseLabels(strings.NewReader(many.String())); err == nil || !strings.HasPrefix(err.Error(), "backtest: labels: 30 wrong lines:\n  line 1: ") ||
		!strings.Contains(err.Error(), "\n  line 20: ") || strings.Contains(err.Error(), "line 21:") || !strings.HasSuffix(err.Error(), "\n  and 10 more") {
		t.Errorf("30 wrong lines: %v", err)
	}
	// Pretty-printed objects, one after another, still read.
	got, err := ParseLabels(strings.NewReader("{\n  \"event_id\": \"x\",\n  \"attack\": true\n}\n{\n  \"event_id\": \"y\",\n  \"label\": \"legit\"\n}\n"))
	if err != nil || len(got) != 2 || !got[LabelKey{"", "x"}] || got[LabelKey{"", "y"}] {
		t.Errorf("pretty-printed: %v %v", got, err)
	}
}

// The lines of a JSON-lines labels file are counted once: the line each object starts on (for
// its errors) was counted from the top of the file for every object, so a loadgen --labels file
// of 365,000 lines kept `riskflow backtest` reading it for over 10 minutes, silently.
func TestParseJSONLabelsCountsEachLineOnce(t *testing.T) {
	var doc strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&doc, `{"event_id":"lg-%d","app_id":"news-cn","label":"benign","attack":%v}`+"\n", i, i%7 == 0)
	}
	doc.WriteString(`{"event_id":"lg-x","attack":"yes"}` + "\n")
	scanned := 0
	count := countNewlines
	countNewlines = func(b []byte) int { scanned += len(b); return count(b) }
	defer func() { countNewlines = count }()
	_, err := ParseLabels(strings.NewReader(doc.String()))
	if err == nil || !strings.Contains(err.Error(), "line 5001: attack: want true or false") {
		t.Errorf("the wrong last line: %v", err)
	}
	if scanned > doc.Len() {
		t.Errorf("counting lines scanned %d bytes of a %d-byte file", scanned, doc.Len())
	}
}

// interruptingSource yields events and, after stopAfter of them, cancels the run's context (a
// Ctrl-C) or fails (a server gone), as chsink's reader does then.
type interruptingSource struct {
	events    []Event
	stopAfter int
	cancel    context.CancelFunc // nil: fail with a read error instead
	pos       int
}

func (s *interruptingSource) Next(ctx context.Context) (Event, bool, error) {
	if s.pos == s.stopAfter {
		if s.cancel == nil {
			return Event{}, false, errors.New("read: connection reset by peer")
		}
		s.cancel()
		return Event{}, false, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return Event{}, false, err
	}
	s.pos++
	return s.events[s.pos-1], true, nil
}

// A run stopped midway (Ctrl-C, ClickHouse gone) returns what it compared, marked partial with
// where and why it stopped, along with the error: it returned the error alone, and minutes of
// replay over millions of events left nothing to read.
func TestStoppedRunReportsWhatItCompared(t *testing.T) {
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "    level: 300\n    when: phone_verifies_10m >= 3\n", "    level: 600\n    when: phone_verifies_10m >= 2\n"))
	// 3,000 events of 1,500 numbers, each number twice a second apart, a number every 10 minutes
	// (no burst of the segment): the candidate steps up every second one.
	var events []Event
	for i := range 1500 {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		n := fmt.Sprintf("N%d", i)
		events = append(events, ev(fmt.Sprintf("e%d-1", i), at, n), ev(fmt.Sprintf("e%d-2", i), at.Add(time.Second), n))
	}
	for _, interrupt := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		src := &interruptingSource{events: events, stopAfter: 2500}
		if interrupt {
			src.cancel = cancel
		}
		rep, err := Run(ctx, src, current, candidate, newScorer, Options{From: t0.Add(-time.Hour)})
		cancel()
		if interrupt && !errors.Is(err, context.Canceled) || !interrupt && (err == nil || !strings.Contains(err.Error(), "connection reset")) {
			t.Fatalf("interrupt %v: error %v", interrupt, err)
		}
		if rep == nil {
			t.Fatalf("interrupt %v: no report with %v", interrupt, err)
		}
		last := events[2499].TS
		if !rep.Partial || !rep.StoppedAt.Equal(last) || !strings.Contains(rep.StopReason, err.Error()) {
			t.Errorf("interrupt %v: partial %v stopped at %s (want %s) because %q", interrupt, rep.Partial, rep.StoppedAt, last, rep.StopReason)
		}
		if rep.Events != 2500 || rep.Read != 2500 || rep.Count(0, 600) != 1250 || rep.Count(0, 0) != 1250 || rep.Changed != 1250 {
			t.Errorf("interrupt %v: events %d read %d changed %d transitions %+v", interrupt, rep.Events, rep.Read, rep.Changed, rep.Transitions)
		}
		if txt := rep.String(); !strings.Contains(txt, "PARTIAL    stopped after the events up to "+last.Format(time.RFC3339)) {
			t.Errorf("interrupt %v: text report does not say it is partial:\n%s", interrupt, txt)
		}
	}
	// A complete run is not partial.
	rep := run(t, events, current, candidate, Options{})
	if rep.Partial || rep.Events != 3000 || rep.Count(0, 600) != 1500 || strings.Contains(rep.String(), "PARTIAL") {
		t.Errorf("complete run: partial %v events %d %+v", rep.Partial, rep.Events, rep.Transitions)
	}
	if b, _ := rep.JSON(); bytes.Contains(b, []byte(`"partial"`)) || bytes.Contains(b, []byte(`"stopped_at"`)) {
		t.Errorf("complete run's JSON names partial or stopped_at:\n%s", b)
	}
}

// A CSV labels line too long to read is named by its number (it was "bufio.Scanner: token too
// long").
func TestParseLabelsNamesALineTooLong(t *testing.T) {
	long := "ev-1,1\n" + strings.Repeat("x", maxLabelLine+1) + ",1\n"
	if _, err := ParseLabels(strings.NewReader(long)); err == nil || err.Error() != "backtest: labels line 2: longer than 1048576 bytes (one label a line)" {
		t.Errorf("long line: %v", err)
	}
}
