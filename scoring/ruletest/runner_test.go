package ruletest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/ruletest"
)

// miniPack is a small pack for testing the runner itself, independent of the default pack's tuning.
const miniPack = `
pack: mini
rules:
  - id: busy_number
    tag: phone_velocity
    level: 300
    when: phone_verifies_10m >= 3
    reason: "{phone_verifies_10m} verifications in 10 min"
  - id: minute_burst
    tag: burst
    level: 600
    when: phone_verifies_1m >= 100
  - id: night
    tag: night
    level: 300
    mode: shadow
    when: hour_cn < 6
`

// newScorer builds fresh scorers and counts how many were built.
func newScorer(t *testing.T, built *int) ruletest.NewScorer {
	mk := scorers(idcOnly(t))
	return func() (*scoring.Scorer, error) {
		*built++
		return mk()
	}
}

// runMini runs a tests file against miniPack.
func runMini(t *testing.T, tests string) []ruletest.Result {
	t.Helper()
	var built int
	results, err := ruletest.Run([]byte(miniPack), []byte(tests), newScorer(t, &built))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if built != len(results) {
		t.Errorf("built %d scorers for %d tests, want one per test", built, len(results))
	}
	return results
}

// Two earlier attempts plus the event make busy_number match; 18:00 China time (DefaultNow) is not
// night; 02:00 China time is.
const (
	busy  = "given: [{}, {}]\n    event: {}"
	quiet = "event: {}"
	night = "now: 2026-01-01T18:00:00Z\n    event: {}"
)

func TestRunFailsTestsThatMustFail(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"wrong score", busy + "\n    expect: {score: 0}", "score: got 300, want 0"},
		{"score when nothing matched", quiet + "\n    expect: {score: 300}", "score: got 0, want 300"},
		{"missing tag", quiet + "\n    expect: {tags: [phone_velocity]}", `tags: "phone_velocity" missing`},
		{"unexpected tag", busy + "\n    expect: {not_tags: [phone_velocity]}", `tags: "phone_velocity" present but must not be`},
		{"shadow rule never tags", night + "\n    expect: {tags: [night]}", `tags: "night" missing`},
		{"hit missing", quiet + "\n    expect: {hits: [night]}", `hits: rule "night" did not match`},
		{"unexpected hit", night + "\n    expect: {not_hits: [night]}", `hits: rule "night" matched but must not`},
		{"enforce hit unexpected", busy + "\n    expect: {not_hits: [busy_number]}", `hits: rule "busy_number" matched but must not`},
		{"unknown rule in not_hits", quiet + "\n    expect: {not_hits: [nigth]}", `not_hits: pack "mini" has no rule "nigth"`},
		{"unknown rule in hits", quiet + "\n    expect: {hits: [nigth]}", `hits: pack "mini" has no rule "nigth"`},
		{"unknown tag in not_tags", quiet + "\n    expect: {not_tags: [phone_velocty]}", `not_tags: pack "mini" has no tag "phone_velocty"`},
		{"unknown tag in tags", quiet + "\n    expect: {tags: [phone_velocty]}", `tags: pack "mini" has no tag "phone_velocty"`},
		{"wrong reason", busy + "\n    expect: {reasons: {busy_number: \"3 verification in 10 min\"}}", `reasons: rule "busy_number": got "3 verifications in 10 min", want "3 verification in 10 min"`},
		{"reason of a rule that did not match", quiet + "\n    expect: {reasons: {busy_number: \"1 verifications in 10 min\"}}", `reasons: rule "busy_number" did not match`},
		{"unknown rule in reasons", busy + "\n    expect: {reasons: {busy_numbr: x}}", `reasons: pack "mini" has no rule "busy_numbr"`},
		{"bad given event", "given: [{phone: \"123\"}]\n    event: {}\n    expect: {score: 0}", "given[0]:"},
		{"bad event", "event: {ip: not-an-ip}\n    expect: {score: 0}", "event:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			results := runMini(t, "tests:\n  - name: "+c.name+"\n    "+c.body+"\n")
			if len(results) != 1 {
				t.Fatalf("got %d results, want 1", len(results))
			}
			r := results[0]
			if r.Passed() {
				t.Fatalf("test %q passed, want it to fail with %q (verdict: score %d, tags %v)", c.name, c.want, r.Verdict.Score, r.Verdict.Tags)
			}
			if r.Name != c.name || r.Line != 2 {
				t.Errorf("result names %q line %d, want %q line 2", r.Name, r.Line, c.name)
			}
			if !strings.Contains(strings.Join(r.Failures, "\n"), c.want) {
				t.Errorf("failures %q do not mention %q", r.Failures, c.want)
			}
		})
	}
}

func TestRunPassesCorrectExpectations(t *testing.T) {
	results := runMini(t, `tests:
  - name: busy number
    `+busy+`
    expect: {score: 300, tags: [phone_velocity], not_tags: [burst, night], hits: [busy_number], not_hits: [night, minute_burst]}
  - name: busy number's reason
    `+busy+`
    expect: {reasons: {busy_number: "3 verifications in 10 min"}}
  - name: quiet
    `+quiet+`
    expect: {score: 0, not_tags: [phone_velocity], not_hits: [busy_number, night]}
  - name: night is shadow
    `+night+`
    expect: {score: 0, hits: [night], not_tags: [night]}
  - name: each copy of a counted given is its own event
    given: [{count: 2}]
    event: {}
    expect: {score: 300, hits: [busy_number]}
  - name: given events with an old ts are outside the window
    now: 2026-01-01T10:00:00Z
    given: [{ts: "2026-01-01T09:49:00Z", count: 5}, {ts: 1767260700000}]
    event: {}
    expect: {score: 0, not_hits: [busy_number]}
  - name: given events lead up to the event's own ts when there is no now
    given: [{}, {}]
    event: {ts: "2025-06-01T12:00:00Z"}
    expect: {score: 300, hits: [busy_number]}
  - name: more than 59 given events all fall in the last minute
    given: [{count: 99}]
    event: {}
    expect: {score: 600, hits: [minute_burst]}
  - name: a given event_id repeated is a re-delivery, counted once
    given: [{event_id: same, count: 3}]
    event: {}
    expect: {score: 0, not_hits: [busy_number]}
  - name: each test starts from empty state
    event: {}
    expect: {score: 0}
  - name: an id the runner would give is taken by the test (this is test 10)
    given: [{event_id: t10-event}, {event_id: t10-g2-0}, {}]
    event: {}
    expect: {score: 300, hits: [busy_number], reasons: {busy_number: "4 verifications in 10 min"}}
`)
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("test %q (line %d) failed: %s", r.Name, r.Line, strings.Join(r.Failures, "; "))
		}
	}
	if len(results) != 11 {
		t.Errorf("got %d results, want 11", len(results))
	}
}

func TestRunRejectsBadTestsFiles(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string // every one must appear in the error
	}{
		{"unknown test key", "tests:\n  - name: typo test\n    event: {}\n    expct: {score: 0}\n",
			[]string{`test "typo test"`, `unknown key "expct"`}},
		{"unknown event field", "tests:\n  - name: field test\n    event: {phon: \"13800138000\"}\n    expect: {score: 0}\n",
			[]string{`test "field test"`, `unknown key "phon"`}},
		{"score not a level", "tests:\n  - name: level test\n    event: {}\n    expect: {score: 450}\n",
			[]string{`test "level test"`, "score"}},
		{"missing event", "tests:\n  - name: no event\n    expect: {score: 0}\n",
			[]string{`test "no event"`, "event"}},
		{"missing expect", "tests:\n  - name: no expect\n    event: {}\n",
			[]string{`test "no expect"`, "expect"}},
		{"duplicate names", "tests:\n  - name: twice\n    event: {}\n    expect: {score: 0}\n  - name: twice\n    event: {}\n    expect: {score: 0}\n",
			[]string{`test "twice"`, "duplicate"}},
		{"bad count", "tests:\n  - name: count test\n    given: [{count: 0}]\n    event: {}\n    expect: {score: 0}\n",
			[]string{`test "count test"`, "count"}},
		{"bad now", "tests:\n  - name: now test\n    now: yesterday\n    event: {}\n    expect: {score: 0}\n",
			[]string{`test "now test"`, "now"}},
		{"tag both wanted and unwanted", "tests:\n  - name: both test\n    event: {}\n    expect: {tags: [burst], not_tags: [burst]}\n",
			[]string{`test "both test"`, "burst"}},
		{"empty file", "", []string{"empty"}},
		{"no tests", "tests: []\n", []string{"tests"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var built int
			results, err := ruletest.Run([]byte(miniPack), []byte(c.file), newScorer(t, &built))
			if err == nil {
				t.Fatalf("Run accepted the file (%d results)", len(results))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if built != 0 {
				t.Errorf("built %d scorers for a file that does not parse", built)
			}
		})
	}
}

func TestRunRejectsBadPack(t *testing.T) {
	var built int
	_, err := ruletest.Run([]byte("pack: broken\nrules:\n  - id: x\n    tag: x\n    level: 300\n    when: no_such_var > 1\n"),
		[]byte("tests:\n  - name: t\n    event: {}\n    expect: {score: 0}\n"), newScorer(t, &built))
	if err == nil || !strings.Contains(err.Error(), "no_such_var") {
		t.Fatalf("err = %v, want a compile error naming no_such_var", err)
	}
}

func TestSummary(t *testing.T) {
	results := runMini(t, `tests:
  - name: passes
    `+quiet+`
    expect: {score: 0}
  - name: fails on score
    `+busy+`
    expect: {score: 0}
  - name: also passes
    `+busy+`
    expect: {score: 300}
`)
	text, failed := ruletest.Summary(results)
	if failed != 1 {
		t.Errorf("failed = %d, want 1", failed)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "2 passed, 1 failed" {
		t.Errorf("last line %q, want %q\n%s", last, "2 passed, 1 failed", text)
	}
	for _, want := range []string{"ok    passes\n", "FAIL  fails on score (line 5)\n", "score: got 300, want 0", "ok    also passes\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}

	text, failed = ruletest.Summary(results[:1])
	if failed != 0 || text != "ok    passes\n1 passed, 0 failed\n" {
		t.Errorf("all passing: failed %d, summary %q", failed, text)
	}
	if text, failed = ruletest.Summary(nil); failed != 0 || text != "0 passed, 0 failed\n" {
		t.Errorf("no results: failed %d, summary %q", failed, text)
	}
}

// An event id given again — twice in given, with a count, or on the checked event — is the same
// event delivered again: scored, counted once, as in production.
func TestRepeatedEventIDsAreRedeliveries(t *testing.T) {
	results := runMini(t, `tests:
  - name: five deliveries of one event and the event
    given:
      - {event_id: same, count: 5}
    event: {}
    expect: {not_hits: [busy_number]}
  - name: the checked event is a given one delivered again
    given:
      - {event_id: a}
      - {event_id: b}
    event: {event_id: b}
    expect: {not_hits: [busy_number]}
  - name: three distinct ids count three
    given:
      - {event_id: a}
      - {event_id: b, ts: "2026-01-01T09:59:00Z"}
      - {event_id: a, ts: "2026-01-01T09:58:00Z"}
    event: {event_id: c}
    expect: {hits: [busy_number], reasons: {busy_number: "3 verifications in 10 min"}}
`)
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("%s: %v (verdict %+v)", r.Name, r.Failures, r.Verdict.Hits)
		}
	}
}

// The summary masks phone numbers as riskflow's errors do: in a test's name and in its failures (an
// expected reason quoting a number). They were printed as written on stdout while stderr's error
// line masked them.
func TestSummaryMasksPhoneNumbers(t *testing.T) {
	results := runMini(t, `tests:
  - name: login of 13812345678 is observed
    `+busy+`
    expect: {score: 300}
  - name: +86 139-1234-5678 is not
    `+busy+`
    expect: {score: 0, reasons: {busy_number: "13712345678 seen"}}
`)
	text, failed := ruletest.Summary(results)
	if failed != 1 {
		t.Fatalf("failed = %d, want 1:\n%s", failed, text)
	}
	for _, want := range []string{"ok    login of " + schemas.PhoneMask + " is observed\n", "FAIL  " + schemas.PhoneMask + " is not (line 6)\n",
		`want "` + schemas.PhoneMask + ` seen"`} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if m := schemas.MaskPhones(text); m != text {
		t.Errorf("summary shows a phone number:\n%s", text)
	}
}

// A rule failing at run time (a ratio over a count that is 0) is skipped, as production skips it,
// and reported once per test with the event it failed on; the test goes on and checks the other
// rules' verdict, with a guard that fits the failure (a missing map key was told to guard a
// division). A shadow rule dividing by zero on the first given event ended every test there:
// 146 of the default pack's 146 tests failed with "given[0]: … division by zero" and none of their
// checks ran (PUT /v1/rules then said to update tests.yaml).
func TestRunGoesOnPastRulesFailingAtRunTime(t *testing.T) {
	pack := miniPack + `  - id: fail_ratio
    tag: fail_ratio
    level: 600
    mode: shadow
    when: phone_fails_10m / (phone_verifies_10m - phone_verifies_10m) > 0
  - id: fail_key
    tag: fail_key
    level: 600
    mode: shadow
    when: '{"idc": 2}[ip_type] > 1'
`
	var built int
	results, err := ruletest.Run([]byte(pack), []byte("tests:\n  - name: busy\n    "+busy+"\n    expect: {score: 600, hits: [busy_number]}\n"), newScorer(t, &built))
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if r.Verdict.Score != 300 || len(r.Verdict.Hits) == 0 || r.Verdict.Hits[0].Rule != "busy_number" {
		t.Errorf("verdict %d %v, want busy_number's 300", r.Verdict.Score, r.Verdict.Hits)
	}
	want := []string{
		"rule fail_ratio failed at run time on given[0]: division by zero (skipped, as in production, where it never fires on such events: guard the condition, e.g. `b > 0 && a / b > 0.5`)",
		"rule fail_key failed at run time on given[0]: no such key:  (skipped, as in production, where it never fires on such events: guard the condition, e.g. `ip_type in {",
		"score: got 300, want 600",
	}
	if len(r.Failures) != len(want) {
		t.Fatalf("failures %q, want %d: %q", r.Failures, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(r.Failures[i], w) {
			t.Errorf("failure %d: %q, want %q", i, r.Failures[i], w)
		}
	}
}

// RunContext stops within a test's given events when its context is done, and returns no
// results: a Ctrl-C of riskflow rules test waited for every given event of every test.
func TestRunContextStops(t *testing.T) {
	tests := "tests:\n  - name: many\n    given:\n      - {phone: \"13800138000\", count: 100000, vary: phone}\n    event: {phone: \"13800138000\"}\n    expect: {score: 300}\n  - name: next\n    event: {phone: \"13800138000\"}\n    expect: {score: 0}\n"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	built := 0
	mk := newScorer(t, &built)
	res, err := ruletest.RunContext(ctx, []byte(miniPack), []byte(tests), func() (*scoring.Scorer, error) {
		cancel() // the Ctrl-C comes once the first test has started
		return mk()
	})
	if !errors.Is(err, context.Canceled) || res != nil || !strings.Contains(err.Error(), `stopped in test "many" (line 2), 0 of 2 tests run`) {
		t.Errorf("results %v, error %v; want none and the test it stopped in", res, err)
	}
	if built != 1 {
		t.Errorf("%d scorers built, want 1: the next test ran", built)
	}
}
