package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTests(t *testing.T) {
	src := `tests:
  - name: burst of one number gets observed
    now: "2026-01-01T10:00:00Z"
    given:
      - {phone: "13800138000", ip: "1.2.3.4", outcome: success, ts: "2026-01-01T09:55:00Z", count: 3}
      - {phone: 13800138001, ip: "1.2.3.4", outcome: fail, ts: 1767261300000}
    event: {phone: "13800138000", ip: "1.2.3.4", outcome: success}
    expect: {score: 300, tags: [phone_velocity], not_tags: [token_replay]}
  - name: quiet number passes
    event:
      phone: "13900139000"
      ip: 10.0.0.1
      ts: 2026-01-01T10:00:00Z
    expect:
      score: 0
      hits: [replay_shadow]
      not_hits: [pv_observe]
      reasons: {replay_shadow: "seen once before"}
`
	s, err := ParseTests([]byte(src))
	if err != nil {
		t.Fatalf("ParseTests: %v", err)
	}
	if len(s.Tests) != 2 {
		t.Fatalf("%d tests, want 2", len(s.Tests))
	}
	a := s.Tests[0]
	if a.Name != "burst of one number gets observed" || a.Line != 2 {
		t.Errorf("name %q line %d", a.Name, a.Line)
	}
	if !a.Now.Equal(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("Now = %v", a.Now)
	}
	wantGiven := []GivenEvent{
		{Count: 3, Event: map[string]any{"phone": "13800138000", "ip": "1.2.3.4", "outcome": "success", "ts": "2026-01-01T09:55:00Z"}},
		// An unquoted phone is still text; an integer ts is unix milliseconds.
		{Count: 1, Event: map[string]any{"phone": "13800138001", "ip": "1.2.3.4", "outcome": "fail", "ts": int64(1767261300000)}},
	}
	if !reflect.DeepEqual(a.Given, wantGiven) {
		t.Errorf("Given = %#v\nwant %#v", a.Given, wantGiven)
	}
	if !reflect.DeepEqual(a.Event, map[string]any{"phone": "13800138000", "ip": "1.2.3.4", "outcome": "success"}) {
		t.Errorf("Event = %#v", a.Event)
	}
	if a.Expect.Score == nil || *a.Expect.Score != 300 || !reflect.DeepEqual(a.Expect.Tags, []string{"phone_velocity"}) ||
		!reflect.DeepEqual(a.Expect.NotTags, []string{"token_replay"}) || a.Expect.Hits != nil {
		t.Errorf("Expect = %+v", a.Expect)
	}
	b := s.Tests[1]
	if !reflect.DeepEqual(b.Expect.Reasons, map[string]string{"replay_shadow": "seen once before"}) || a.Expect.Reasons != nil {
		t.Errorf("Reasons = %v and %v", a.Expect.Reasons, b.Expect.Reasons)
	}
	if !b.Now.IsZero() || b.Given != nil || b.Event["ts"] != "2026-01-01T10:00:00Z" || b.Event["ip"] != "10.0.0.1" {
		t.Errorf("test 2 = %+v", b)
	}
	if *b.Expect.Score != 0 || !reflect.DeepEqual(b.Expect.Hits, []string{"replay_shadow"}) || !reflect.DeepEqual(b.Expect.NotHits, []string{"pv_observe"}) {
		t.Errorf("test 2 expect = %+v", b.Expect)
	}
}

// A test may give both now and its event's ts when they are the same time, in either form.
func TestParseTestsNowAndTheSameTs(t *testing.T) {
	for _, ts := range []string{`"2026-01-01T10:00:00Z"`, `"2026-01-01T18:00:00+08:00"`, `1767261600000`} {
		if _, err := ParseTests([]byte("tests:\n  - name: t1\n    now: \"2026-01-01T10:00:00Z\"\n    event: {ts: " + ts + "}\n    expect: {score: 0}\n")); err != nil {
			t.Errorf("ts %s: %v", ts, err)
		}
	}
}

func TestParseTestsErrors(t *testing.T) {
	const ok = "    event: {phone: \"13800138000\"}\n    expect: {score: 0}\n"
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown test key", "tests:\n  - name: t1\n    exepct: {score: 0}\n" + ok,
			[]string{`line 3:5: test "t1": unknown key "exepct"`}},
		{"unknown expect key", "tests:\n  - name: t1\n    event: {phone: \"1\"}\n    expect: {scroe: 300}\n",
			[]string{`line 4:14: test "t1": expect: unknown key "scroe"`}},
		{"unknown event field", "tests:\n  - name: t1\n    event: {phone: \"1\", phnoe: \"2\"}\n    expect: {score: 0}\n",
			[]string{`line 3:25: test "t1": event: unknown key "phnoe"`}},
		{"count on the checked event", "tests:\n  - name: t1\n    event: {phone: \"1\", count: 2}\n    expect: {score: 0}\n",
			[]string{`test "t1": event: unknown key "count"`}},
		{"bad count", "tests:\n  - name: t1\n    given:\n      - {phone: \"1\", count: 0}\n" + ok,
			[]string{`line 4:29: test "t1": given[0]: count "0" must be a whole number ≥ 1`}},
		{"bad score", "tests:\n  - name: t1\n    event: {phone: \"1\"}\n    expect: {score: 450}\n",
			[]string{`line 4:21: test "t1": expect: score "450" must be 0, 300, 600 or 900`}},
		{"bad now", "tests:\n  - name: t1\n    now: yesterday\n" + ok,
			[]string{`line 3:10: test "t1": now: "yesterday" is not an RFC 3339 time`}},
		// A tests file saved in Latin-1: yaml.v3 said "invalid trailing UTF-8 octet", naming no line.
		{"not utf-8", "tests:\n  - name: caf\xe9 logins\n" + ok,
			[]string{`line 2:14: name: byte 0xE9 is not UTF-8`}},
		// The event is scored at its own ts, the given events without one leading up to now: they
		// came after the event, counted for nothing, and "now" was not when it was scored.
		{"now and another ts", "tests:\n  - name: t1\n    now: \"2026-01-01T10:00:00Z\"\n    given: [{}, {}]\n    event: {ts: \"2026-01-01T09:00:00Z\"}\n    expect: {score: 0}\n",
			[]string{`line 3:10: test "t1": now: 2026-01-01T10:00:00Z but the event's ts is 2026-01-01T09:00:00Z: an event is scored at its own ts`}},
		{"now and another ts in unix ms", "tests:\n  - name: t1\n    now: \"2026-01-01T10:00:00+08:00\"\n    event: {ts: 1767261600001}\n    expect: {score: 0}\n",
			[]string{`line 3:10: test "t1": now: 2026-01-01T10:00:00+08:00 but the event's ts is 2026-01-01T10:00:00.001Z`}},
		{"missing name", "tests:\n  -" + ok[3:], []string{`line 2:5: test "#1": name: is required`}},
		{"duplicate name", "tests:\n  - name: t1\n" + ok + "  - name: t1\n" + ok,
			[]string{`line 5:11: test "t1": name: duplicate test name (first at line 2)`}},
		// `riskflow rules test` prints every test's name: an escape sequence in one acted on the terminal.
		{"control character in name", "tests:\n  - name: \"\\e[2Jevil\"\n" + ok,
			[]string{`line 2:11: test "\x1b[2Jevil": name: contains a control character`}},
		// Every given event is scored, on every PUT /v1/rules too: a zero too many kept a node busy for minutes.
		{"count over the bound", "tests:\n  - name: t1\n    given:\n      - {count: 3}\n      - {count: 30000000}\n      - {count: 3}\n" + ok,
			[]string{`line 5:9: test "t1": given[1]: 30000003 events given up to here, over the 100000 a test may give`}},
		{"tests over the bound together", "tests:\n" + strings.Repeat("  - name: t\n    given: [{count: 100000}]\n"+ok, 11),
			[]string{`line 2:3: tests: 1100000 given events in all, over the 1000000 a tests file may give`}},
		{"missing event and expect", "tests:\n  - name: t1\n",
			[]string{`test "t1": event: is required`, `test "t1": expect: is required`}},
		{"empty expect", "tests:\n  - name: t1\n    event: {phone: \"1\"}\n    expect: {}\n",
			[]string{`test "t1": expect: is empty`}},
		{"contradiction", "tests:\n  - name: t1\n    event: {phone: \"1\"}\n    expect: {tags: [a], not_tags: [a]}\n",
			[]string{`test "t1": expect: tag a is in both tags and not_tags`}},
		{"bad tag name", "tests:\n  - name: t1\n    event: {phone: \"1\"}\n    expect: {tags: [Phone Velocity]}\n",
			[]string{`test "t1": expect: tags: "Phone Velocity" is not a tag or rule id`}},
		{"reasons not a mapping", "tests:\n  - name: t1\n    event: {phone: \"1\"}\n    expect: {reasons: [a]}\n",
			[]string{`test "t1": expect: reasons must be a mapping of rule ids to reason texts`}},
		{"reason not a string", "tests:\n  - name: t1\n    event: {phone: \"1\"}\n    expect: {reasons: {a: [x]}}\n",
			[]string{`test "t1": expect: reasons: a: the reason must be a string`}},
		{"reason and not_hits", "tests:\n  - name: t1\n    event: {phone: \"1\"}\n    expect: {reasons: {a: x}, not_hits: [a]}\n",
			[]string{`test "t1": expect: rule a is in both reasons and not_hits`}},
		{"nested event value", "tests:\n  - name: t1\n    event: {phone: [1, 2]}\n    expect: {score: 0}\n",
			[]string{`test "t1": event: field phone must be a single value`}},
		{"no tests", "tests: []\n", []string{"tests: is empty"}},
		{"unknown top key", "tests:\n  - name: t1\n" + ok + "suite: x\n", []string{`line 5:1: unknown key "suite"`}},
		{"empty file", "", []string{"empty file"}},
		{"bad yaml", "tests: [\n", []string{"rules tests: yaml:"}},
		{"errors of two tests", "tests:\n  - name: a\n    event: {phone: \"1\"}\n    expect: {score: 1}\n  - name: b\n    event: {ip: \"1\"}\n    expect: {score: 2}\n",
			[]string{`test "a": expect: score "1"`, `test "b": expect: score "2"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseTests([]byte(c.src))
			if err == nil {
				t.Fatalf("ParseTests succeeded: %+v", s)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}
