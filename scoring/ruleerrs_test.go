package scoring_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// A rule that fails at run time on every event (here: a division by zero) is counted per rule for
// every event and check, but logged once per RuleErrorLogEvery, not once per event: a scorer at
// thousands of events a second wrote as many warnings a second. The other rules' verdict stands.
func TestRuleFailingAtRunTimeIsCountedAndLoggedOnce(t *testing.T) {
	const pack = `
pack: failing
rules:
  - id: divides_by_zero
    tag: broken
    level: 900
    when: 100 / (phone_verifies_10m - phone_verifies_10m) > 1
  - id: busy
    tag: busy
    level: 300
    when: phone_verifies_10m >= 1
`
	var logs bytes.Buffer
	s := newScorer(t, scoring.Config{}, []byte(pack), scoring.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	const n = 500
	for i := range n {
		ev := event(fmt.Sprintf("e%d", i), t0, fmt.Sprintf("1380013%04d", i), "198.51.100.7")
		rec, err := s.Process(&ev)
		if !errors.Is(err, schemas.ErrPartial) || schemas.Classify(err) != schemas.Proceed {
			t.Fatalf("event %d: err %v, want a partial result", i, err)
		}
		if rec.Score != 300 || !hits(rec)["busy"] {
			t.Fatalf("event %d: the other rules' verdict did not stand: score %d, hits %v", i, rec.Score, rec.Hits)
		}
	}
	if _, err := s.Check(&schemas.CheckRequest{Phone: "13800138000", IP: netip.MustParseAddr("198.51.100.7"), AppID: "app-test"}); !errors.Is(err, schemas.ErrPartial) {
		t.Fatalf("check: err %v, want a partial result", err)
	}
	if got := s.RuleErrors(); len(got) != 1 || got["divides_by_zero"] != n+1 {
		t.Errorf("RuleErrors() = %v, want divides_by_zero: %d", got, n+1)
	}
	lines := strings.Count(logs.String(), "rule failed at run time")
	if lines != 1 {
		t.Errorf("%d log lines for %d failures, want 1:\n%s", lines, n+1, logs.String())
	}
	if !strings.Contains(logs.String(), "rule=divides_by_zero") || !strings.Contains(logs.String(), "division by zero") ||
		!strings.Contains(logs.String(), "rules_version=") {
		t.Errorf("the line does not name the rule, the version and the error: %s", logs.String())
	}
}

// The failures counted are those of the running pack's rules: a node cycling through packs of
// failing rules (drafts promoted and rolled back) kept a count, and a riskflow_rule_errors_total
// series, for every rule that ever failed, so /metrics grew without bound. A rule kept by the next
// pack keeps its count.
func TestRuleErrorsKeptForTheRunningPackOnly(t *testing.T) {
	failing := func(id string) []byte {
		return fmt.Appendf(nil, `
pack: cycling
rules:
  - {id: %s, tag: broken, level: 900, when: '100 / (phone_verifies_10m - phone_verifies_10m) > 1'}
  - {id: kept, tag: kept, level: 300, mode: shadow, when: '1 / (phone_verifies_10m - phone_verifies_10m) > 1'}
`, id)
	}
	s := newScorer(t, scoring.Config{}, failing("fails_0"))
	for i := range 50 {
		if i > 0 {
			p, err := rules.Compile(failing(fmt.Sprintf("fails_%d", i)), s.Env())
			if err != nil {
				t.Fatal(err)
			}
			s.SetPack(p)
		}
		ev := event(fmt.Sprintf("e%d", i), t0, "13800138000", "198.51.100.7")
		if _, err := s.Process(&ev); !errors.Is(err, schemas.ErrPartial) {
			t.Fatalf("pack %d: err %v, want a partial result", i, err)
		}
	}
	if got := s.RuleErrors(); len(got) != 2 || got["fails_49"] != 1 || got["kept"] != 50 {
		t.Errorf("RuleErrors() after 50 packs = %v, want fails_49: 1 and kept: 50 alone", got)
	}
}
