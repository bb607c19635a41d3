package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/riskflow/riskflow/schemas"
)

const semanticsPack = `pack: semantics
rules:
  - id: pv_observe
    tag: phone_velocity
    level: 300
    when: phone_verifies_10m >= 3
    reason: "{phone_verifies_10m} verifications"
  - id: pv_stepup
    tag: phone_velocity
    level: 600
    when: phone_verifies_10m >= 10
    reason: "{phone_verifies_10m} verifications (step up)"
  - id: ip_many
    tag: phones_per_ip
    level: 600
    when: ip_phones_10m >= 20 && !ip_is_mobile
    reason: "{ip_phones_10m} phones from a {ip_type} IP"
  - id: replay_shadow
    tag: token_replay
    level: 900
    mode: shadow
    when: token_seen
    reason: token seen before
  - id: idc
    tag: idc_proxy_ip
    level: 300
    when: ip_type == "idc"
    reason: datacenter IP
  - id: travel
    tag: impossible_travel
    level: 600
    when: speed_kmh > 1000
    reason: "{speed_kmh} km/h"
  - id: pv_stepup_again
    tag: phone_velocity
    level: 600
    when: phone_verifies_10m >= 11
    reason: later rule at the same level
  - id: replay_block
    tag: token_reuse
    level: 900
    when: token_seen && phone_verifies_10m > 100
    reason: replayed token on a hot number
`

func TestEvalSemantics(t *testing.T) {
	p := mustCompile(t, testEnv(t), semanticsPack)
	in := mapInput{
		"phone_verifies_10m": int64(12), "ip_phones_10m": int64(25), "speed_kmh": 1500.25,
		"ip_is_mobile": false, "token_seen": true, "ip_type": "idc", "device_id": "d1",
	}
	var res Result
	if err := p.Eval(in, &res); err != nil {
		t.Fatalf("Eval: %v", err)
	}
	if res.Score != 600 {
		t.Errorf("Score = %d, want 600 (the 900 shadow rule must not count)", res.Score)
	}
	// Level first (600s, then 300), then first appearance of the tag in the pack.
	wantTags := []string{"phone_velocity", "phones_per_ip", "impossible_travel", "idc_proxy_ip"}
	if !reflect.DeepEqual(res.Tags, wantTags) {
		t.Errorf("Tags = %q, want %q", res.Tags, wantTags)
	}
	wantDetail := map[string]schemas.TagDetail{
		"phone_velocity":    {Score: 600, Reason: "12 verifications (step up)"},
		"phones_per_ip":     {Score: 600, Reason: "25 phones from a idc IP"},
		"impossible_travel": {Score: 600, Reason: "1500.25 km/h"},
		"idc_proxy_ip":      {Score: 300, Reason: "datacenter IP"},
	}
	if !reflect.DeepEqual(res.Detail, wantDetail) {
		t.Errorf("Detail = %+v\nwant %+v", res.Detail, wantDetail)
	}
	wantHits := []schemas.RuleHit{
		{Rule: "pv_observe", Tag: "phone_velocity", Score: 300, Mode: "enforce", Reason: "12 verifications"},
		{Rule: "pv_stepup", Tag: "phone_velocity", Score: 600, Mode: "enforce", Reason: "12 verifications (step up)"},
		{Rule: "ip_many", Tag: "phones_per_ip", Score: 600, Mode: "enforce", Reason: "25 phones from a idc IP"},
		{Rule: "replay_shadow", Tag: "token_replay", Score: 900, Mode: "shadow", Reason: "token seen before"},
		{Rule: "idc", Tag: "idc_proxy_ip", Score: 300, Mode: "enforce", Reason: "datacenter IP"},
		{Rule: "travel", Tag: "impossible_travel", Score: 600, Mode: "enforce", Reason: "1500.25 km/h"},
		{Rule: "pv_stepup_again", Tag: "phone_velocity", Score: 600, Mode: "enforce", Reason: "later rule at the same level"},
	}
	if !reflect.DeepEqual(res.Hits, wantHits) {
		t.Errorf("Hits =\n%+v\nwant\n%+v", res.Hits, wantHits)
	}

	// A later tag with a higher level sorts first; the result is reset between calls.
	in["phone_verifies_10m"] = int64(150)
	in["ip_phones_10m"] = int64(0)
	in["speed_kmh"] = 0.0
	in["ip_type"] = "mobile"
	if err := p.Eval(in, &res); err != nil {
		t.Fatalf("Eval: %v", err)
	}
	if res.Score != 900 || !reflect.DeepEqual(res.Tags, []string{"token_reuse", "phone_velocity"}) {
		t.Errorf("second eval: Score %d Tags %q", res.Score, res.Tags)
	}
	if len(res.Detail) != 2 || res.Detail["token_reuse"].Score != 900 || len(res.Hits) != 5 {
		t.Errorf("second eval: Detail %+v, %d hits", res.Detail, len(res.Hits))
	}

	// Nothing matches: everything is cleared.
	for k := range in {
		switch in[k].(type) {
		case int64:
			in[k] = int64(0)
		case float64:
			in[k] = 0.0
		case bool:
			in[k] = false
		case string:
			in[k] = ""
		}
	}
	if err := p.Eval(in, &res); err != nil {
		t.Fatalf("Eval: %v", err)
	}
	if res.Score != 0 || len(res.Tags) != 0 || len(res.Detail) != 0 || len(res.Hits) != 0 {
		t.Errorf("no match: %+v", res)
	}
}

func TestEvalShadowOnly(t *testing.T) {
	p := mustCompile(t, testEnv(t), `pack: p
rules:
  - {id: s, tag: token_replay, level: 900, mode: shadow, when: token_seen, reason: shadow}
`)
	var res Result
	if err := p.Eval(mapInput{"token_seen": true}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Score != 0 || len(res.Tags) != 0 || len(res.Detail) != 0 {
		t.Errorf("a shadow hit counted: %+v", res)
	}
	if len(res.Hits) != 1 || res.Hits[0].Mode != "shadow" || res.Hits[0].Score != 900 {
		t.Errorf("Hits = %+v", res.Hits)
	}
}

func TestReasonTemplating(t *testing.T) {
	env := testEnv(t)
	p := mustCompile(t, env, `pack: p
rules:
  - id: all
    tag: t
    level: 300
    when: "true"
    reason: "n={phone_verifies_10m} v={ speed_kmh } mobile={ip_is_mobile} type={ip_type} {{literal}} }}{{"
`)
	cases := []struct {
		in   mapInput
		want string
	}{
		{mapInput{"phone_verifies_10m": int64(42), "speed_kmh": 1234.5678, "ip_is_mobile": true, "ip_type": "idc"},
			"n=42 v=1234.57 mobile=true type=idc {literal} }{"},
		{mapInput{"phone_verifies_10m": -7, "speed_kmh": 3.0, "ip_is_mobile": false, "ip_type": ""},
			"n=-7 v=3 mobile=false type= {literal} }{"},
		{mapInput{"phone_verifies_10m": types.Int(5), "speed_kmh": types.Double(2.5), "ip_is_mobile": types.True, "ip_type": types.String("broadband")},
			"n=5 v=2.5 mobile=true type=broadband {literal} }{"},
		{mapInput{"phone_verifies_10m": int64(1), "speed_kmh": 1.0 / 3, "ip_is_mobile": false}, // ip_type unknown to the input
			"n=1 v=0.33 mobile=false type=? {literal} }{"},
	}
	var res Result
	for _, c := range cases {
		if err := p.Eval(c.in, &res); err != nil {
			t.Fatalf("Eval: %v", err)
		}
		if got := res.Detail["t"].Reason; got != c.want || res.Hits[0].Reason != c.want {
			t.Errorf("reason = %q, want %q", got, c.want)
		}
	}
}

// A count reads in the singular when it is 1 and in the plural otherwise: "seen once before",
// "over 1 block", not "seen 1 time(s)" or "over 1 blocks".
func TestReasonPlurals(t *testing.T) {
	env := testEnv(t)
	p := mustCompile(t, env, `pack: p
rules:
  - id: all
    tag: t
    level: 300
    when: "true"
    reason: "seen {phone_verifies_10m|once|# times} before, {ip_phones_10m|# phone|# phones} ({ ip_phones_10m |one|#/#}){{|}}"
`)
	for _, c := range []struct {
		verifies, phones int64
		want             string
	}{
		{1, 1, "seen once before, 1 phone (one){|}"},
		{2, 0, "seen 2 times before, 0 phones (0/0){|}"},
		{11, 21, "seen 11 times before, 21 phones (21/21){|}"},
		{-1, 1000, "seen -1 times before, 1000 phones (1000/1000){|}"},
	} {
		var res Result
		if err := p.Eval(mapInput{"phone_verifies_10m": c.verifies, "ip_phones_10m": types.Int(c.phones)}, &res); err != nil {
			t.Fatal(err)
		}
		if got := res.Hits[0].Reason; got != c.want {
			t.Errorf("verifies %d, phones %d: reason %q, want %q", c.verifies, c.phones, got, c.want)
		}
	}
	for src, want := range map[string]string{
		"{speed_kmh|# km/h|# km/h}": "need an int variable, speed_kmh is double",
		"{ip_type|# type|# types}":  "need an int variable, ip_type is string",
		"{ip_phones_10m|phone}":     "must give two forms",
		"{ip_phones_10m|a|b|c}":     "must give two forms",
		"{nope|# thing|# things}":   "not a declared variable",
	} {
		_, errs := parseTemplate(src, env)
		if len(errs) != 1 || !strings.Contains(errs[0].msg, want) {
			t.Errorf("%s: errors %+v, want one saying %q", src, errs, want)
		}
	}
}

func TestParseTemplate(t *testing.T) {
	env := testEnv(t)
	tmpl, errs := parseTemplate("plain {{text}}", env)
	if len(errs) != 0 || tmpl.segs != nil || tmpl.static != "plain {text}" {
		t.Errorf("static template: %+v %v", tmpl, errs)
	}
	tmpl, errs = parseTemplate("{ip_type}", env)
	if len(errs) != 0 || len(tmpl.segs) != 1 || tmpl.segs[0].name != "ip_type" {
		t.Errorf("one placeholder: %+v %v", tmpl, errs)
	}
	_, errs = parseTemplate("{a} and {b", env)
	if len(errs) != 2 || errs[0].offset != 0 || errs[1].offset != 8 {
		t.Errorf("errors = %+v, want two, at offsets 0 and 8", errs)
	}
	_, errs = parseTemplate("{ip_type{x}}", env)
	if len(errs) == 0 {
		t.Error("nested brace accepted")
	}
}

func TestAppendDouble(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0", 3: "3", 2.5: "2.5", 1234.5678: "1234.57", -0.001: "0", -1.25e-9: "0", 1e20: "1e+20", 99.999: "100",
	} {
		if got := string(appendDouble(nil, f)); got != want {
			t.Errorf("appendDouble(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestEvalRuleErrorDoesNotStopOthers(t *testing.T) {
	p := mustCompile(t, testEnv(t), `pack: p
rules:
  - id: before
    tag: a
    level: 300
    when: phone_verifies_10m >= 1
  - id: expensive
    tag: b
    level: 900
    when: device_id.contains("needle")
  - id: wrong_type
    tag: c
    level: 900
    when: ip_phones_10m > 5
  - id: after
    tag: d
    level: 600
    when: token_seen
    reason: after {phone_verifies_10m}
`)
	in := mapInput{
		"phone_verifies_10m": int64(2),
		"device_id":          strings.Repeat("x", 1<<20), // far beyond RuntimeCostLimit to scan
		"ip_phones_10m":      "not a number",             // the scorer supplied the wrong type
		"token_seen":         true,
	}
	var res Result
	err := p.Eval(in, &res)
	if err == nil {
		t.Fatal("Eval returned no error")
	}
	var re *RuleError
	if !errors.As(err, &re) {
		t.Fatalf("error %v holds no *RuleError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "rule expensive: ") || !strings.Contains(msg, "cost limit exceeded") {
		t.Errorf("error %q does not report the cost limit of rule expensive", msg)
	}
	if !strings.Contains(msg, "rule wrong_type: ") {
		t.Errorf("error %q does not name rule wrong_type", msg)
	}
	if strings.Contains(msg, "rule before") || strings.Contains(msg, "rule after") {
		t.Errorf("error %q names a rule that evaluated fine", msg)
	}
	if res.Score != 600 || !reflect.DeepEqual(res.Tags, []string{"d", "a"}) || res.Detail["d"].Reason != "after 2" {
		t.Errorf("the other rules did not count: %+v", res)
	}
}

func TestEvalNilInput(t *testing.T) {
	p := mustCompile(t, testEnv(t), "pack: p\nrules:\n  - {id: r, tag: t, level: 300, when: token_seen}\n")
	res := Result{Score: 900, Tags: []string{"stale"}}
	if err := p.Eval(nil, &res); err == nil {
		t.Fatal("Eval(nil) succeeded")
	}
	if res.Score != 0 || len(res.Tags) != 0 {
		t.Errorf("Eval(nil) left stale results: %+v", res)
	}
}

// structInput is how scoring is expected to implement Input: a switch over a struct.
type structInput struct {
	verifies int64
	ipType   string
	mobile   bool
}

func (s *structInput) ResolveName(name string) (any, bool) {
	switch name {
	case "phone_verifies_10m":
		return s.verifies, true
	case "ip_type":
		return s.ipType, true
	case "ip_is_mobile":
		return s.mobile, true
	}
	return nil, false
}

func (*structInput) Parent() interpreter.Activation { return nil }

func TestInputIsAnActivation(t *testing.T) {
	var in Input = &structInput{verifies: 4, ipType: "idc"}
	var act interpreter.Activation = in // compiles only if the method sets agree
	if v, ok := act.ResolveName("phone_verifies_10m"); !ok || v != int64(4) {
		t.Fatalf("ResolveName = %v, %v", v, ok)
	}
	p := mustCompile(t, testEnv(t), `pack: p
rules:
  - {id: r, tag: t, level: 300, when: "phone_verifies_10m > 3 && ip_type == 'idc' && !ip_is_mobile"}
`)
	var res Result
	if err := p.Eval(in, &res); err != nil || res.Score != 300 {
		t.Fatalf("Eval: %v, score %d", err, res.Score)
	}
}
