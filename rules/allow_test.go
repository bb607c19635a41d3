package rules

import (
	"testing"
)

func TestAllowRuleDecidesTheVerdict(t *testing.T) {
	env, err := NewEnv([]Var{{Name: "n", Type: Int}, {Name: "listed", Type: String}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile([]byte(`pack: p
rules:
  - {id: burst, tag: burst, level: 900, when: "n >= 10", reason: "{n} attempts"}
  - {id: allowlist, tag: allowlist, mode: allow, when: 'listed == "allow"', reason: "on the allow list"}
`), env)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := p.Eval(mapInput{"n": int64(12), "listed": "allow"}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Score != 0 || len(res.Tags) != 1 || res.Tags[0] != "allowlist" || res.Detail["allowlist"].Score != 0 {
		t.Fatalf("allowed: score %d tags %v detail %v; want 0, [allowlist]", res.Score, res.Tags, res.Detail)
	}
	if len(res.Hits) != 2 {
		t.Errorf("hits %v: the suppressed burst hit must still be recorded", res.Hits)
	}
	if err := p.Eval(mapInput{"n": int64(12), "listed": ""}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Score != 900 {
		t.Errorf("not allowed: score %d, want 900", res.Score)
	}

	for _, bad := range []string{
		"pack: p\nrules:\n  - {id: a, tag: a, mode: allow, level: 300, when: 'n > 1'}\n",
		"pack: p\nrules:\n  - {id: a, tag: a, level: 0, when: 'n > 1'}\n",
	} {
		if _, err := Compile([]byte(bad), env); err == nil {
			t.Errorf("compiled %q; want a level error", bad)
		}
	}
}

func TestTagRuleShowsWithoutRaisingTheScore(t *testing.T) {
	env, err := NewEnv([]Var{{Name: "n", Type: Int}, {Name: "night", Type: Bool}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile([]byte(`pack: p
rules:
  - {id: odd_hour, tag: odd_hour, mode: tag, when: "night", reason: "at night"}
  - {id: burst, tag: burst, level: 300, when: "n >= 3", reason: "{n} attempts"}
`), env)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := p.Eval(mapInput{"n": int64(1), "night": true}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Score != 0 || len(res.Tags) != 1 || res.Tags[0] != "odd_hour" || res.Detail["odd_hour"].Reason != "at night" {
		t.Fatalf("tag only: score %d tags %v detail %v", res.Score, res.Tags, res.Detail)
	}
	if err := p.Eval(mapInput{"n": int64(4), "night": true}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Score != 300 || len(res.Tags) != 2 || res.Tags[0] != "burst" || res.Tags[1] != "odd_hour" {
		t.Fatalf("with an enforced hit: score %d tags %v; want 300 [burst odd_hour]", res.Score, res.Tags)
	}
	if _, err := Compile([]byte("pack: p\nrules:\n  - {id: a, tag: a, mode: tag, level: 300, when: 'night'}\n"), env); err == nil {
		t.Error("a tag rule with a level compiled")
	}
}
