package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestResolveRoles(t *testing.T) {
	withOps := Default()
	withOps.Ops.Listen = "127.0.0.1:9464"
	for _, c := range []struct {
		roles string
		cfg   Config
		parts []string
	}{
		{"scorer", Default(), []string{"topics", "rules", "feed", "scorer"}},
		{"scorer", withOps, []string{"topics", "rules", "feed", "scorer", "ops"}},
		{"archiver", Default(), []string{"topics", "rules", "archiver"}},
		{"archiver", withOps, []string{"topics", "rules", "archiver", "ops"}},
		// An API without a scorer keeps its own replica of the feature state.
		{"api", Default(), []string{"topics", "rules", "feed", "api"}},
		// The api role serves the probes itself, and /metrics too unless ops.listen is set: then
		// /metrics is on the ops port only (not where verify services call).
		{"api", withOps, []string{"topics", "rules", "feed", "api", "ops"}},
		// One rule-pack service and one feature state per process, whatever the roles.
		{"api,scorer,archiver", withOps, []string{"topics", "rules", "feed", "scorer", "archiver", "api", "ops"}},
		{"scorer,archiver", Default(), []string{"topics", "rules", "feed", "scorer", "archiver"}},
		{"scorer, scorer", Default(), []string{"topics", "rules", "feed", "scorer"}},
	} {
		names, err := parseRoles(c.roles)
		if err != nil {
			t.Errorf("%s: %v", c.roles, err)
			continue
		}
		p, err := resolveRoles(names, &c.cfg)
		if err != nil {
			t.Errorf("%s: %v", c.roles, err)
			continue
		}
		if got := p.partList(); !slices.Equal(got, c.parts) {
			t.Errorf("--roles %s (ops.listen %q): parts %v, want %v", c.roles, c.cfg.Ops.Listen, got, c.parts)
		}
	}
	for _, bad := range []string{"", " , ", "scorer,bogus"} {
		if _, err := parseRoles(bad); !errors.As(err, new(usageError)) {
			t.Errorf("--roles %q: %v, want a usage error", bad, err)
		}
	}
	if _, err := resolveRoles([]string{"bogus"}, new(Config)); err == nil {
		t.Error("an unknown role resolved")
	}
}

// Every role's parts come from the table, and every part some role needs is started by start.
func TestRoleTable(t *testing.T) {
	needed := map[part]bool{}
	for _, r := range roleTable {
		if r.doc == "" || r.check == nil || len(r.needs) == 0 {
			t.Errorf("role %s is incomplete", r.name)
		}
		if !slices.Contains(r.needs, partTopics) || !slices.Contains(r.needs, partRules) {
			t.Errorf("role %s does not need the topics and the rule-pack service", r.name)
		}
		for _, x := range r.needs {
			needed[x] = true
		}
		if (slices.Contains(r.needs, partScorer) || slices.Contains(r.needs, partAPI)) && !slices.Contains(r.needs, partFeed) {
			t.Errorf("role %s scores without the feature state", r.name)
		}
	}
	for x := part(0); x < numParts; x++ {
		if !needed[x] && x != partOps {
			t.Errorf("no role needs part %s", x)
		}
	}
}

func TestAllInOne(t *testing.T) {
	c := Default()
	p, note := allInOne(&c)
	if !slices.Equal(p.partList(), []string{"topics", "rules", "feed", "scorer", "api"}) || !strings.Contains(note, "archiver is off") {
		t.Errorf("without ClickHouse: %v, note %q", p.partList(), note)
	}
	c.ClickHouse.Addr = "127.0.0.1:19000"
	p, note = allInOne(&c)
	if !slices.Equal(p.partList(), []string{"topics", "rules", "feed", "scorer", "archiver", "api"}) || note != "" {
		t.Errorf("with ClickHouse: %v, note %q", p.partList(), note)
	}
	c.Ops.Listen = "127.0.0.1:9464" // /metrics moves to the ops port
	p, note = allInOne(&c)
	if !slices.Equal(p.partList(), []string{"topics", "rules", "feed", "scorer", "archiver", "api", "ops"}) || note != "" {
		t.Errorf("with ClickHouse: %v, note %q", p.partList(), note)
	}
}

// The role-dependent settings are checked in one place, each problem named once.
func TestPlanCheck(t *testing.T) {
	c := Default()
	c.API.Listen = ""
	names, _ := parseRoles("scorer,api,archiver")
	p, _ := resolveRoles(names, &c)
	err := p.check(&c)
	if !errors.As(err, new(configError)) {
		t.Fatalf("%v: want a configuration error", err)
	}
	for _, key := range []string{"scoring.phone_hash_key", "api.keys", "api.listen", "clickhouse.addr"} {
		if n := strings.Count(err.Error(), key+":"); n != 1 {
			t.Errorf("%s named %d times:\n%v", key, n, err)
		}
	}
	names, _ = parseRoles("archiver")
	p, _ = resolveRoles(names, &c)
	if err := p.check(&c); err == nil || strings.Contains(err.Error(), "phone_hash_key") || strings.Contains(err.Error(), "api.keys") {
		t.Errorf("archiver alone: %v; want only clickhouse.addr", err)
	}
	c.ClickHouse.Addr = "127.0.0.1:19000"
	if err := p.check(&c); err != nil {
		t.Errorf("archiver with clickhouse.addr: %v", err)
	}
}
