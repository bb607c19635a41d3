package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/riskflow/riskflow/schemas"
)

// TestSuite is a tests.yaml file: rule tests as data, owned by the risk team next to the pack.
// This package only defines and parses the format; the runner (package scoring) applies the
// events to real feature state and evaluates the pack.
type TestSuite struct {
	Tests []TestCase
}

// TestCase is one test: apply Given in order, then score Event and compare with Expect.
type TestCase struct {
	Name string
	// Now is the clock at which Event is scored ("now:", RFC 3339); zero when not given.
	Now time.Time
	// Given are events applied, in order, before Event.
	Given []GivenEvent
	// Event is the checked event as VerifyEvent JSON fields; event_id and ts may be left out for
	// the runner to fill.
	Event map[string]any
	// Expect is what the verdict for Event must satisfy.
	Expect Expectation
	// Line is where the test starts in the file, for the runner's messages.
	Line int
}

// GivenEvent is one entry of `given`: VerifyEvent JSON fields, plus an optional `count` that
// applies the same event Count times (the runner gives each copy its own event_id, unless the
// entry has one: then the copies are deliveries of one event, counted once), and an
// optional `vary` that gives each copy its own number, so that a test can stand for a large app's
// many users: VaryPhone (`phone`: the next numbers of the block, 连号 — the last 4 digits count
// up), VaryBlock (`block`: the same last 4 digits in the next 7-digit blocks), or `block/N` (the
// copies cycle through N blocks, N ≥ 1, the last 4 digits counting up at each round: N blocks
// of about count/N numbers each, as a regional app's).
type GivenEvent struct {
	Count int            // ≥ 1; 1 when `count` is omitted
	Vary  string         // "", VaryPhone or VaryBlock
	Event map[string]any // the event's fields, without `count` and `vary`
}

// Bounds of the events a tests file gives: each is scored through a fresh scorer, and the tests
// run on every PUT /v1/rules and console promotion, in the API node. A count of 30,000,000 (a
// zero too many) kept a node's core busy for about 13 minutes per promotion. The default pack's
// tests give 43,268 events, at most 5,030 in one test.
const (
	MaxTestEvents  = 100_000
	MaxSuiteEvents = 1_000_000
)

// Values of GivenEvent.Vary (and VaryBlock + "/N").
const (
	VaryPhone = "phone"
	VaryBlock = "block"
)

// ParseVary reads a `vary` value: how (VaryPhone or VaryBlock) and, for "block/N", the number of
// blocks N the copies cycle through (0: no cycle).
func ParseVary(v string) (how string, blocks int, err error) {
	switch {
	case v == VaryPhone || v == VaryBlock:
		return v, 0, nil
	case strings.HasPrefix(v, VaryBlock+"/"):
		n, err := strconv.Atoi(v[len(VaryBlock)+1:])
		if err != nil || n < 1 || n > 10000 {
			return "", 0, fmt.Errorf("vary %q: N must be a whole number from 1 to 10000", v)
		}
		return VaryBlock, n, nil
	}
	return "", 0, fmt.Errorf("vary %q is not %s, %s or %s/N", v, VaryPhone, VaryBlock, VaryBlock)
}

// Expectation is a test's `expect`. Every field is optional but at least one must be set.
type Expectation struct {
	Score   *int     // `score`: the exact score (0, 300, 600, 900)
	Tags    []string // `tags`: tags that must be in the verdict (others may be too)
	NotTags []string // `not_tags`: tags that must not be in the verdict
	Hits    []string // `hits`: rule ids that must match, shadow rules included
	NotHits []string // `not_hits`: rule ids that must not match
	// Reasons (`reasons`): rule id → the exact reason its hit must carry (the rule must match).
	Reasons map[string]string
}

var (
	testKeys   = []string{"name", "now", "given", "event", "expect"}
	expectKeys = []string{"score", "tags", "not_tags", "hits", "not_hits", "reasons"}
)

// eventFields are the keys an event may have: VerifyEvent's JSON fields.
var eventFields = func() []string {
	t := reflect.TypeFor[schemas.VerifyEvent]()
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}()

// suiteParser collects the problems of one tests file.
type suiteParser struct {
	errs   []error
	events int // given events of the tests parsed so far, counts included
}

func (s *suiteParser) errAt(n *yaml.Node, test, field, format string, args ...any) {
	var b strings.Builder
	if n != nil {
		fmt.Fprintf(&b, "line %d:%d: ", n.Line, n.Column)
	}
	if test != "" {
		fmt.Fprintf(&b, "test %q: ", test)
	}
	if field != "" {
		b.WriteString(field)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, format, args...)
	s.errs = append(s.errs, errors.New(b.String()))
}

// fields returns a mapping's values by key, reporting unknown and repeated keys.
func (s *suiteParser) fields(n *yaml.Node, test, where string, known []string) map[string]*yaml.Node {
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(known, k.Value):
			s.errAt(k, test, where, "unknown key %q (known keys: %s)", k.Value, strings.Join(known, ", "))
		case out[k.Value] != nil:
			s.errAt(k, test, where, "key %q repeated", k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

// ParseTests parses a tests.yaml file strictly: unknown keys, unknown event fields, missing names
// or events, duplicate names and bad values are all reported, each naming the test, joined in one
// error.
func ParseTests(data []byte) (*TestSuite, error) {
	if !utf8.Valid(data) && !utf16BOM(data) {
		line, col, b, field := firstNotUTF8(data)
		if field != "" {
			field += ": "
		}
		return nil, fmt.Errorf("rules tests: line %d:%d: %s%s", line, col, field, notUTF8Msg(b))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // no effect on a yaml.Node; keys are checked by fields()
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("rules tests: empty file: want a mapping with key tests")
		}
		return nil, fmt.Errorf("rules tests: %w", err)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	s := &suiteParser{}
	if doc.Kind != yaml.MappingNode {
		s.errAt(doc, "", "", "want a mapping with key tests")
		return nil, fmt.Errorf("rules tests: %w", errors.Join(s.errs...))
	}
	top := s.fields(doc, "", "", []string{"tests"})
	list := top["tests"]
	switch {
	case list == nil:
		s.errAt(doc, "", "tests", "is required")
	case list.Kind != yaml.SequenceNode:
		s.errAt(list, "", "tests", "must be a list")
	case len(list.Content) == 0:
		s.errAt(list, "", "tests", "is empty")
	}
	suite := &TestSuite{}
	if list != nil && list.Kind == yaml.SequenceNode {
		seen := make(map[string]int)
		for i, tn := range list.Content {
			if tc, ok := s.test(i, tn, seen); ok {
				suite.Tests = append(suite.Tests, tc)
			}
		}
	}
	if s.events > MaxSuiteEvents {
		s.errAt(list, "", "tests", "%d given events in all, over the %d a tests file may give", s.events, MaxSuiteEvents)
	}
	if len(s.errs) > 0 {
		return nil, fmt.Errorf("rules tests: %w", errors.Join(s.errs...))
	}
	return suite, nil
}

func (s *suiteParser) test(i int, n *yaml.Node, seen map[string]int) (TestCase, bool) {
	before := len(s.errs)
	label := fmt.Sprintf("#%d", i+1)
	tc := TestCase{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		s.errAt(n, label, "", "must be a mapping with keys %s", strings.Join(testKeys, ", "))
		return tc, false
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k, v := n.Content[j], n.Content[j+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) != "" {
			label = v.Value
		}
	}
	f := s.fields(n, label, "", testKeys)

	if nn := f["name"]; nn == nil || nn.Kind != yaml.ScalarNode || strings.TrimSpace(nn.Value) == "" {
		s.errAt(n, label, "name", "is required")
	} else {
		tc.Name = nn.Value
		if strings.ContainsFunc(tc.Name, isBadControl) {
			// `riskflow rules test` prints every test's name on its terminal.
			s.errAt(nn, label, "name", "contains a control character (a NUL, an escape, a bidirectional override …): only text, tabs and line breaks")
		}
		if line, dup := seen[tc.Name]; dup {
			s.errAt(nn, label, "name", "duplicate test name (first at line %d)", line)
		}
		seen[tc.Name] = nn.Line
	}

	if nw := f["now"]; nw != nil {
		t, err := time.Parse(time.RFC3339Nano, nw.Value)
		if nw.Kind != yaml.ScalarNode || err != nil {
			s.errAt(nw, label, "now", "%q is not an RFC 3339 time", nw.Value)
		}
		tc.Now = t
	}

	if g := f["given"]; g != nil {
		if g.Kind != yaml.SequenceNode {
			s.errAt(g, label, "given", "must be a list of events")
		} else {
			total := 0
			for k, en := range g.Content {
				ev, count := s.event(en, label, fmt.Sprintf("given[%d]", k), true)
				vary, _ := ev["vary"].(string)
				delete(ev, "vary")
				tc.Given = append(tc.Given, GivenEvent{Count: count, Vary: vary, Event: ev})
				if total += count; total > MaxTestEvents && total-count <= MaxTestEvents {
					s.errAt(en, label, fmt.Sprintf("given[%d]", k), "%d events given up to here, over the %d a test may give (a count with a zero too many?)", total, MaxTestEvents)
				}
			}
			s.events += total
		}
	}

	if e := f["event"]; e == nil {
		s.errAt(n, label, "event", "is required: the event to score")
	} else {
		tc.Event, _ = s.event(e, label, "event", false)
		if ts, ok := eventTime(tc.Event["ts"]); ok && f["now"] != nil && !tc.Now.IsZero() && !ts.Equal(tc.Now) {
			// Scored at its own ts (event time, as the scorer does), while the given events
			// without a ts lead up to now: they came after the event and counted for nothing.
			s.errAt(f["now"], label, "now", "%s but the event's ts is %s: an event is scored at its own ts, and given events without one lead up to now; "+
				"give one of the two (or both alike)", tc.Now.Format(time.RFC3339Nano), ts.UTC().Format(time.RFC3339Nano))
		}
	}

	if x := f["expect"]; x == nil {
		s.errAt(n, label, "expect", "is required")
	} else {
		tc.Expect = s.expect(x, label)
	}
	return tc, len(s.errs) == before
}

// eventTime reads an event's ts as the runner passes it on (RFC 3339 text or unix milliseconds);
// ok is false for none, or one the event's decoding will refuse.
func eventTime(v any) (time.Time, bool) {
	switch ts := v.(type) {
	case int64:
		return time.UnixMilli(ts), true
	case string:
		t, err := time.Parse(time.RFC3339Nano, ts)
		return t, err == nil
	}
	return time.Time{}, false
}

// event decodes an event mapping; with allowCount, a `count` key gives the repetitions and a
// `vary` key (left in the map for the caller) how the copies differ.
func (s *suiteParser) event(n *yaml.Node, test, where string, allowCount bool) (map[string]any, int) {
	count := 1
	if n.Kind != yaml.MappingNode {
		s.errAt(n, test, where, "must be a mapping of VerifyEvent fields")
		return nil, count
	}
	known := eventFields
	if allowCount {
		known = append([]string{"count", "vary"}, eventFields...)
	}
	f := s.fields(n, test, where, known)
	ev := make(map[string]any, len(f))
	for k, v := range f {
		if k == "count" {
			c, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || c < 1 {
				s.errAt(v, test, where, "count %q must be a whole number ≥ 1", v.Value)
			}
			count = c
			continue
		}
		if k == "vary" {
			if _, _, err := ParseVary(v.Value); v.Kind != yaml.ScalarNode || err != nil {
				s.errAt(v, test, where, "vary %q must be %s (the next numbers of the block), %s (the next blocks) or %s/N (N blocks in turn)", v.Value, VaryPhone, VaryBlock, VaryBlock)
			}
			ev[k] = v.Value
			continue
		}
		if v.Kind != yaml.ScalarNode {
			s.errAt(v, test, where, "field %s must be a single value", k)
			continue
		}
		// Every field is a string on the wire except ts, which may also be unix milliseconds; an
		// unquoted phone number or code is taken as the text it is.
		var val any = v.Value
		if k == "ts" && v.Tag == "!!int" {
			ms, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				s.errAt(v, test, where, "field ts: %q is not unix milliseconds", v.Value)
				continue
			}
			val = ms
		}
		ev[k] = val
	}
	return ev, count
}

func (s *suiteParser) expect(n *yaml.Node, test string) Expectation {
	var x Expectation
	if n.Kind != yaml.MappingNode {
		s.errAt(n, test, "expect", "must be a mapping with keys %s", strings.Join(expectKeys, ", "))
		return x
	}
	f := s.fields(n, test, "expect", expectKeys)
	if len(n.Content) == 0 {
		s.errAt(n, test, "expect", "is empty: give at least one of %s", strings.Join(expectKeys, ", "))
	}
	if sc := f["score"]; sc != nil {
		v, err := strconv.Atoi(sc.Value)
		if sc.Kind != yaml.ScalarNode || err != nil || !schemas.ValidScore(v) {
			s.errAt(sc, test, "expect", "score %q must be 0, 300, 600 or 900", sc.Value)
		}
		x.Score = &v
	}
	x.Tags = s.names(f["tags"], test, "tags")
	x.NotTags = s.names(f["not_tags"], test, "not_tags")
	x.Hits = s.names(f["hits"], test, "hits")
	x.NotHits = s.names(f["not_hits"], test, "not_hits")
	x.Reasons = s.reasons(f["reasons"], test)
	for id := range x.Reasons {
		if slices.Contains(x.NotHits, id) {
			s.errAt(n, test, "expect", "rule %s is in both reasons and not_hits", id)
		}
	}
	for _, t := range x.Tags {
		if slices.Contains(x.NotTags, t) {
			s.errAt(n, test, "expect", "tag %s is in both tags and not_tags", t)
		}
	}
	for _, h := range x.Hits {
		if slices.Contains(x.NotHits, h) {
			s.errAt(n, test, "expect", "rule %s is in both hits and not_hits", h)
		}
	}
	return x
}

// reasons decodes `reasons`: a mapping of rule ids to reason texts.
func (s *suiteParser) reasons(n *yaml.Node, test string) map[string]string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		s.errAt(n, test, "expect", "reasons must be a mapping of rule ids to reason texts")
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode || !idPattern.MatchString(k.Value):
			s.errAt(k, test, "expect", "reasons: %q is not a rule id ([a-z0-9_]+)", k.Value)
		case v.Kind != yaml.ScalarNode:
			s.errAt(v, test, "expect", "reasons: %s: the reason must be a string", k.Value)
		default:
			if _, dup := out[k.Value]; dup {
				s.errAt(k, test, "expect", "reasons: rule %s repeated", k.Value)
			}
			out[k.Value] = v.Value
		}
	}
	return out
}

// names decodes a list of tags or rule ids.
func (s *suiteParser) names(n *yaml.Node, test, key string) []string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		s.errAt(n, test, "expect", "%s must be a list", key)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		if e.Kind != yaml.ScalarNode || !idPattern.MatchString(e.Value) {
			s.errAt(e, test, "expect", "%s: %q is not a tag or rule id ([a-z0-9_]+)", key, e.Value)
			continue
		}
		out = append(out, e.Value)
	}
	return out
}
