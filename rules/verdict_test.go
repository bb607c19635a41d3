package rules

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// A pack's verdicts stay small enough to be written: every hit goes with the verdict to the
// caller, risk.scores, risk.decisions and ClickHouse. 20,000 shadow rules `true` (cost 0, so under
// MaxPackCost) made every score record 2.9 MB, over the broker's message size: every event was
// dead-lettered instead of scored, and every /v1/risk/check verdict dropped from the decision log.
func TestPackVerdictsStayWritable(t *testing.T) {
	env := testEnv(t)
	pack := func(n int, rule string) string {
		var b strings.Builder
		b.WriteString("pack: big\nrules:\n")
		for i := range n {
			fmt.Fprintf(&b, rule, i)
		}
		return b.String()
	}
	cases := []struct {
		name, src, want string
	}{
		{"more rules than MaxRules", pack(MaxRules+1, "  - {id: r%d, tag: t, level: 300, mode: shadow, when: 'true'}\n"),
			fmt.Sprintf("line 3:3: rules: %d rules: a pack holds at most %d", MaxRules+1, MaxRules)},
		{"hits too large together", pack(1000, "  - {id: r%d, tag: t, level: 300, mode: shadow, when: 'true', reason: '"+strings.Repeat("x", 300)+"'}\n"),
			"line 3:3: rules: too large together: were all 1000 rules to match, the verdict's hits, tags and detail would take"},
		{"string placeholders count at MaxStringSize", pack(1000, "  - {id: r%d, tag: t, level: 300, when: 'true', reason: '{ip_type}'}\n"),
			"too large together"},
		// encoding/json writes each < as \u003c: 300 such reasons take 921 KB of JSON.
		{"reasons JSON escapes", pack(300, "  - {id: r%d, tag: t, level: 300, when: 'true', reason: '"+strings.Repeat("<", 500)+"'}\n"),
			"too large together"},
	}
	for _, c := range cases {
		_, err := Compile([]byte(c.src), env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, clip(fmt.Sprint(err), 400), c.want)
		}
	}
	// Many small rules are fine: the bound is on what a verdict carries.
	mustCompile(t, env, pack(1000, "  - {id: r%d, tag: t, level: 300, when: 'phone_verifies_10m > %[1]d', reason: '{phone_verifies_10m} checks'}\n"))
}

// A reason is at most MaxReasonBytes (and an ellipsis) in a hit, whatever the text or the values.
func TestReasonsAreClipped(t *testing.T) {
	env := testEnv(t)
	long := strings.Repeat("é", MaxReasonBytes) // 2 bytes each: the cut falls inside one
	p := mustCompile(t, env, `pack: p
rules:
  - {id: described, tag: a, level: 300, when: 'true', description: '`+long+`'}
  - {id: valued, tag: b, level: 300, when: 'true', reason: 'type {ip_type}'}
`)
	var res Result
	in := &structInput{ipType: strings.Repeat("x", 10*MaxReasonBytes)}
	if err := p.Eval(in, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 2 {
		t.Fatalf("hits %v", res.Hits)
	}
	for _, h := range res.Hits {
		if len(h.Reason) > MaxReasonBytes+len("…") || !strings.HasSuffix(h.Reason, "…") {
			t.Errorf("%s: reason of %d bytes: %.40q…", h.Rule, len(h.Reason), h.Reason)
		}
		if d := res.Detail[h.Tag].Reason; d != h.Reason {
			t.Errorf("%s: detail %.40q, hit %.40q", h.Rule, d, h.Reason)
		}
	}
	if want := clip(long, MaxReasonBytes); res.Hits[0].Reason != want {
		t.Errorf("description reason: %.40q…, want it cut at a character boundary", res.Hits[0].Reason)
	}
	if p.Rules[0].Reason != long {
		t.Errorf("Rule.Reason is not the pack's text")
	}
}

// countingInput counts the variables read through it.
type countingInput struct {
	structInput
	reads int
}

func (c *countingInput) ResolveName(name string) (any, bool) {
	c.reads++
	return c.structInput.ResolveName(name)
}

// A reason is rendered only as far as a hit shows it: a pack whose reason held 20,000 placeholders
// (760 KB, under PUT /v1/rules' 1 MiB) compiled, and every check it matched rendered all of them
// before cutting the text to 512 bytes — 2 to 20 ms a check instead of 0.6 on a real node, on the
// scorers' every event too. The hit's reason is the same as before: the first MaxReasonBytes of
// the whole text, cut at a character boundary.
func TestLongReasonRenderedOnlyAsFarAsItIsShown(t *testing.T) {
	env := testEnv(t)
	const n = 20000
	p := mustCompile(t, env, `pack: p
rules:
  - {id: values, tag: a, level: 300, when: 'true', reason: '`+strings.Repeat("é{ip_type}", n)+`'}
  - {id: plurals, tag: b, level: 300, when: 'true', reason: '{phone_verifies_10m|one|`+strings.Repeat("#", n)+`}'}
`)
	in := &countingInput{structInput: structInput{verifies: 12, ipType: "idc"}}
	var res Result
	if err := p.Eval(in, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 2 {
		t.Fatalf("hits %v", res.Hits)
	}
	for i, whole := range []string{strings.Repeat("éidc", n), strings.Repeat("12", n)} {
		if want := clip(whole, MaxReasonBytes); res.Hits[i].Reason != want {
			t.Errorf("%s: reason %.40q… (%d bytes), want %.40q… (%d bytes)", res.Hits[i].Rule, res.Hits[i].Reason, len(res.Hits[i].Reason), want, len(want))
		}
	}
	if in.reads > MaxReasonBytes {
		t.Errorf("rendering the reasons read %d variables; a shown reason holds at most %d bytes", in.reads, MaxReasonBytes)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if err := p.Eval(in, &res); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 16<<10 {
		t.Errorf("an evaluation allocated %d bytes for two reasons shown as at most %d bytes each", per, MaxReasonBytes)
	}
}

// jsonLen is what encoding/json writes, without the quotes.
func TestJSONLen(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "tab\tnl\ncr\r", "\x00\x1f", "<a & b>", "\u2028\u2029", "é中😀", "bad \xff utf-8", "\ufffd"} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := jsonLen(s), len(b)-2; got != want {
			t.Errorf("jsonLen(%q) = %d, encoding/json writes %d", s, got, want)
		}
	}
}

// The largest verdict a pack that compiles can give — every rule matching, each with its own tag
// and the longest reason JSON can make of its text, string variables as long as assumed — is a decision
// the archiver stores: a 124-rule pack's verdict (390 KB) was dead-lettered there as over
// schemas.MaxDecisionBytes.
func TestLargestVerdictIsADecisionTheArchiverTakes(t *testing.T) {
	env := testEnv(t)
	pack := func(n int) string {
		var b strings.Builder
		b.WriteString("pack: big\nrules:\n")
		for i := range n {
			// Half the rules with the longest literal reason, half with string variables.
			reason := strings.Repeat("<", MaxReasonBytes)
			if i%2 == 1 {
				reason = "{ip_type} " + strings.Repeat("&", MaxReasonBytes-MaxStringSize-1)
			}
			fmt.Fprintf(&b, "  - {id: rule_%03d_%s, tag: tag_%03d_%s, level: 900, when: 'true', reason: '%s'}\n", i, strings.Repeat("i", 50), i, strings.Repeat("t", 50), reason)
		}
		return b.String()
	}
	n := 1
	for ; ; n++ {
		if _, err := Compile([]byte(pack(n+1)), env); err != nil {
			if !strings.Contains(err.Error(), "too large together") {
				t.Fatal(err)
			}
			break
		}
	}
	p := mustCompile(t, env, pack(n))
	var res Result
	// A string variable as long as assumed (its characters are plain: a string of < would take six
	// times as much, which nothing riskflow declares holds; literal text is counted exactly).
	if err := p.Eval(&structInput{ipType: strings.Repeat("é", MaxStringSize/2)}, &res); err != nil {
		t.Fatal(err)
	}
	d := schemas.Decision{DecisionID: strings.Repeat("d", schemas.MaxDecisionIDLen), TS: time.Now(), AppID: strings.Repeat("a", 64),
		PhoneHash: strings.Repeat("f", 64), PhoneMasked: "1381234****", PhoneSegment: "1381234", IP: "2001:db8::1", DeviceID: strings.Repeat("<", 128),
		TokenDigest: strings.Repeat("e", 64), ExID: strings.Repeat("<", 128), Score: res.Score, Tags: res.Tags, Detail: res.Detail, Hits: res.Hits,
		RulesVersion: p.Version, Node: "node-1", LatencyUS: 1 << 40}
	b := d.AppendJSON(nil)
	if len(res.Hits) != n || len(b) < MaxVerdictBytes*3/4 {
		t.Fatalf("%d hits of %d rules, %d bytes: not the largest verdict", len(res.Hits), n, len(b))
	}
	if _, err := schemas.DecodeDecision(b); err != nil {
		t.Errorf("the verdict of %d rules matching, %d bytes: %v", n, len(b), err)
	}
}
