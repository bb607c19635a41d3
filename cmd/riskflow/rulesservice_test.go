package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/console"
)

// PUT /v1/rules through the rule-pack service: compiled against this node's variables, persisted,
// swapped in; without ClickHouse nothing is recorded and there is no history to list.
func TestRulesAdminUpdate(t *testing.T) {
	path, _, svc, s := startedRuleService(t, false)
	ra := rulesAdmin{s: svc, persisted: true}
	before := ra.Current()
	if before.LoadedBy == "" || !strings.HasPrefix(before.LoadedBy, "startup@") || before.Source != path || !before.Persisted {
		t.Errorf("current at start: %+v", before)
	}

	_, err := ra.Update(context.Background(), []byte("pack: broken\nrules:\n  - {id: r1, tag: t, level: 300, when: 'nope > 1'}\n"), "lead", api.UpdateOptions{})
	if !errors.Is(err, api.ErrRejected) || !strings.Contains(err.Error(), "r1") {
		t.Fatalf("bad pack: err %v; want ErrRejected naming r1", err)
	}
	if got := ra.Current(); got.Version != before.Version {
		t.Fatalf("a rejected pack replaced the running one: %s → %s", before.Version, got.Version)
	}

	good := "pack: tiny\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 2'}\n"
	info, err := ra.Update(context.Background(), []byte(good), "lead", api.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Pack != "tiny" || info.Rules != 1 || !info.Persisted || info.Recorded || !strings.HasPrefix(info.LoadedBy, "api:lead@") || info.Source != "api" {
		t.Errorf("info %+v", info)
	}
	if s.Rules().Load().Name != "tiny" {
		t.Errorf("scorer runs pack %q, want tiny", s.Rules().Load().Name)
	}
	if b, _ := os.ReadFile(path); string(b) != good {
		t.Errorf("pack file not replaced: %q", b)
	}
	if _, err := ra.Versions(context.Background()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("versions without ClickHouse: %v, want ErrNotFound", err)
	}
	if _, err := ra.Rollback(context.Background(), before.Version, "lead", ""); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("rollback without ClickHouse: %v, want ErrNotFound", err)
	}
}

// A PUT with If-Match is loaded only while that version runs when the pack is swapped in, after
// its tests: the API checked it before them, and another node's promotion, picked up from the file
// while the tests ran, was written over (held-out run: alice's PUT of a 200-rule pack with 1,000
// tests took 6 s, and undid bob's promotion, which her node had loaded 4 s before, answering 200).
func TestRulesAdminUpdateIfMatchCheckedAtTheSwap(t *testing.T) {
	ctx := context.Background()
	path, _, svc, _ := startedRuleService(t, false)
	ra := rulesAdmin{s: svc, persisted: true}
	edited := ra.Current().Version
	// Bob's promotion through another node, picked up from the file by this one.
	bob := "pack: bob\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 4'}\n"
	if err := os.WriteFile(path, []byte(bob), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute) // left alone: the watcher loads it at once
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	svc.Tick(ctx)
	if got := ra.Current(); got.Pack != "bob" {
		t.Fatalf("the node runs %s, not bob's promotion", got.Pack)
	}
	alice := "pack: alice\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 2'}\n"
	_, err := ra.Update(ctx, []byte(alice), "alice", api.UpdateOptions{IfMatch: edited})
	if !errors.Is(err, api.ErrNotLive) || !strings.Contains(err.Error(), edited) {
		t.Fatalf("a pack edited from %s loaded over bob's: err %v, want ErrNotLive naming it", edited, err)
	}
	if b, _ := os.ReadFile(path); string(b) != bob || ra.Current().Pack != "bob" {
		t.Fatalf("bob's promotion replaced: the file holds %q, the node runs %s", b, ra.Current().Pack)
	}
	// The console's promotion of a draft edited from that version alike: its page checked the
	// version before the tests, and nothing after them.
	cr := &consoleRules{a: &app{cfg: Default(), rules: svc}}
	if _, err := cr.Promote(ctx, []byte(alice), "alice", edited); !errors.Is(err, console.ErrStale) || !strings.Contains(err.Error(), edited) {
		t.Fatalf("a draft edited from %s promoted over bob's: err %v, want console.ErrStale naming it", edited, err)
	}
	if b, _ := os.ReadFile(path); string(b) != bob || ra.Current().Pack != "bob" {
		t.Fatalf("bob's promotion replaced by the console: the file holds %q, the node runs %s", b, ra.Current().Pack)
	}
	info, err := ra.Update(ctx, []byte(alice), "alice", api.UpdateOptions{IfMatch: ra.Current().Version, SkipTests: true})
	if err != nil || info.Pack != "alice" {
		t.Fatalf("over the live version: %+v, %v", info, err)
	}
}

// versionsInMemory is rule_versions that takes every record.
type versionsInMemory struct{ byVer map[string]rulesvc.Version }

func (v *versionsInMemory) RecordVersion(_ context.Context, r rulesvc.Version) error {
	v.byVer[r.Version] = r
	return nil
}
func (v *versionsInMemory) Versions(context.Context) ([]rulesvc.Version, error) { return nil, nil }
func (v *versionsInMemory) Lookup(_ context.Context, version string) (rulesvc.Version, error) {
	if r, ok := v.byVer[version]; ok {
		return r, nil
	}
	return rulesvc.Version{}, rulesvc.ErrUnknownVersion
}

// GET /v1/rules says whether the running pack is in rule_versions: it said recorded: false for
// every pack, the ones recorded too.
func TestRulesAdminCurrentSaysRecorded(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	s, err := buildScorer(Default().Scoring, schemas.NewPhoneHasher([]byte("k")), log)
	if err != nil {
		t.Fatal(err)
	}
	svc := rulesvc.New(rulesvc.Config{Default: packs.Default(), Node: "n"}, s, &versionsInMemory{byVer: map[string]rulesvc.Version{}}, log)
	if _, err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ra := rulesAdmin{s: svc}
	if ra.Current().Recorded {
		t.Error("a startup load is recorded by the first tick, not before")
	}
	svc.Tick(context.Background())
	if !ra.Current().Recorded {
		t.Error("GET /v1/rules: recorded false after the startup load was recorded")
	}
	if _, err := ra.Update(context.Background(), []byte("pack: tiny\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 2'}\n"), "lead", api.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !ra.Current().Recorded {
		t.Error("GET /v1/rules: recorded false after a PUT that was recorded")
	}
}

// GET /v1/rules says when the pack file is not what runs on the node (rejected, unreadable), and
// why: it showed the running pack and nothing else, so an admin who had edited the file saw the
// old version without a reason.
func TestRulesAdminCurrentSaysTheFileDoesNotRun(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	s, err := buildScorer(Default().Scoring, schemas.NewPhoneHasher([]byte("k")), log)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tempDir(t), "rules.yaml")
	os.WriteFile(path, packs.Default(), 0o644)
	svc := rulesvc.New(rulesvc.Config{Path: path, Settle: time.Millisecond, Node: "n"}, s, nil, log)
	ctx := context.Background()
	if _, err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ra := rulesAdmin{s: svc, persisted: true}
	if p := ra.Current().FileProblem; p != "" {
		t.Errorf("file problem of a running file: %q", p)
	}
	os.WriteFile(path, []byte("pack: p\nrules:\n  - {id: r1, tag: t, level: 300, when: 'nope'}\n"), 0o644)
	svc.Tick(ctx)
	cur := ra.Current()
	if !strings.Contains(cur.FileProblem, "the pack file is rejected since ") || !strings.Contains(cur.FileProblem, "undeclared reference to 'nope'") || cur.Pack != "default" {
		t.Errorf("GET /v1/rules after a broken pack file: %+v", cur)
	}
	os.WriteFile(path, packs.Default(), 0o644)
	svc.Tick(ctx)
	if p := ra.Current().FileProblem; p != "" {
		t.Errorf("file problem once the file runs again: %q", p)
	}
}

// POST /v1/rules/rollback with something that is not a version is the caller's mistake, named by
// its field, not a 404 "unknown version" after asking ClickHouse.
func TestRulesAdminRollbackOfNoVersion(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	s, err := buildScorer(Default().Scoring, schemas.NewPhoneHasher([]byte("k")), log)
	if err != nil {
		t.Fatal(err)
	}
	store := &versionsInMemory{byVer: map[string]rulesvc.Version{}}
	svc := rulesvc.New(rulesvc.Config{Default: packs.Default(), Node: "n"}, s, store, log)
	if _, err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ra := rulesAdmin{s: svc}
	for _, v := range []string{"zzz", "3F2A9C0D1E2B4A5F", "3f2a9c0d1e2b4a5", "13800138000"} {
		_, err := ra.Rollback(context.Background(), v, "lead", "")
		if !errors.Is(err, api.ErrRejected) || !strings.HasPrefix(err.Error(), "version: ") || strings.Contains(err.Error(), "13800138000") {
			t.Errorf("rollback to %q: %v, want a rejected version naming the field", v, err)
		}
	}
	if _, err := ra.Rollback(context.Background(), "3f2a9c0d1e2b4a5f", "lead", ""); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("rollback to an unrecorded version: %v, want not found", err)
	}
}

// A new pack must pass the pack's tests (tests.yaml beside scoring.rules) to be loaded through a
// node — PUT /v1/rules and the console's promote — and is refused naming each failing test; a pack
// that passes them is loaded, and one that does not compile is refused with its own problems.
func TestPromotionRunsThePacksTests(t *testing.T) {
	path, cfg, svc, s := startedRuleService(t, true)
	ra := rulesAdmin{s: svc, persisted: true, scoring: &cfg.Scoring}
	before := ra.Current().Version

	// phone_velocity_observe at 4 instead of 3: the tests that pin it at 3 fail.
	broken := strings.Replace(string(packs.Default()), "when: phone_verifies_10m >= 3\n", "when: phone_verifies_10m >= 4\n", 1)
	if broken == string(packs.Default()) {
		t.Fatal("the default pack no longer has phone_velocity_observe at 3")
	}
	_, err := ra.Update(context.Background(), []byte(broken), "lead", api.UpdateOptions{})
	if !errors.Is(err, api.ErrRejected) || !strings.Contains(err.Error(), "tests.yaml:") || !strings.Contains(err.Error(), "phone_velocity") ||
		!strings.Contains(err.Error(), "?tests=skip") {
		t.Fatalf("a pack failing its tests: %v; want ErrRejected naming tests.yaml, the failing test's line, the rule and the way round", err)
	}
	if got := ra.Current().Version; got != before {
		t.Fatalf("a pack failing its tests was loaded: %s", got)
	}
	if b, _ := os.ReadFile(path); string(b) != string(packs.Default()) {
		t.Fatal("a pack failing its tests was written to the pack file")
	}
	// The console's promote goes through the same gate.
	cr := &consoleRules{a: &app{cfg: cfg, rules: svc, scorer: s}}
	if _, err := cr.Promote(context.Background(), []byte(broken), "lead", ""); err == nil || !strings.Contains(err.Error(), "tests.yaml:") {
		t.Fatalf("console promote of a pack failing its tests: %v", err)
	}

	// A pack that does not compile: its own problems, not the tests'.
	_, err = ra.Update(context.Background(), []byte("pack: broken\nrules:\n  - {id: r1, tag: t, level: 300, when: 'nope > 1'}\n"), "lead", api.UpdateOptions{})
	if !errors.Is(err, api.ErrRejected) || !strings.Contains(err.Error(), "rule r1") || strings.Contains(err.Error(), "tests.yaml") {
		t.Fatalf("a pack that does not compile: %v", err)
	}
	// A change the tests allow is loaded.
	ok := string(packs.Default()) + "\n  - {id: extra_shadow, tag: extra, level: 600, mode: shadow, when: 'device_fails_10m >= 50'}\n"
	if _, err := ra.Update(context.Background(), []byte(ok), "lead", api.UpdateOptions{}); err != nil {
		t.Fatalf("a pack passing its tests: %v", err)
	}
	// A change meant to change what the tests pin, by an admin who cannot update the node's
	// tests.yaml first: loaded with SkipTests (PUT ?tests=skip), and recorded as such.
	info, err := ra.Update(context.Background(), []byte(broken), "lead", api.UpdateOptions{SkipTests: true})
	if err != nil || info.Source != "api, tests skipped" || ra.Current().Version != info.Version {
		t.Fatalf("a pack failing its tests, tests skipped: %v, %+v", err, info)
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Fatal("a pack loaded with its tests skipped was not written to the pack file")
	}
}

// startedRuleService starts a rule service on the default pack in a file of its own (with the
// default pack's tests.yaml beside it, withTests) and returns the file, the configuration, the
// service and its scorer.
func startedRuleService(t *testing.T, withTests bool) (string, Config, *rulesvc.Service, *scoring.Scorer) {
	t.Helper()
	dir := tempDir(t)
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, packs.Default(), 0o644); err != nil {
		t.Fatal(err)
	}
	if withTests {
		if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), packs.DefaultTests(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Default()
	cfg.Scoring.Rules = path
	log := slog.New(slog.DiscardHandler)
	s, err := buildScorer(cfg.Scoring, schemas.NewPhoneHasher([]byte("k")), log)
	if err != nil {
		t.Fatal(err)
	}
	svc := newRuleService(cfg, s, log, nil)
	if _, err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path, cfg, svc, s
}

// A pack with a rule failing at run time fails the tests it runs on, and the refusal names the
// rule first (an answer is cut at about 1 KB): "146 of 146 tests fail; update tests.yaml first"
// sent an admin to the tests, which no update mends.
func TestPromotionNamesRulesFailingAtRunTime(t *testing.T) {
	_, cfg, svc, _ := startedRuleService(t, true)
	ra := rulesAdmin{s: svc, persisted: true, scoring: &cfg.Scoring}
	pack := string(packs.Default()) + "\n  - {id: fail_ratio, tag: fail_ratio, level: 600, mode: shadow, when: 'phone_fails_10m / (ip_verifies_24h - ip_verifies_24h) > 1'}\n"
	_, err := ra.Update(context.Background(), []byte(pack), "lead", api.UpdateOptions{})
	if !errors.Is(err, api.ErrRejected) {
		t.Fatalf("a pack with a rule dividing by zero: %v", err)
	}
	msg := apiExcerpt(err.Error())
	if !strings.Contains(msg, "rules fail at run time, skipped on those events as they would be in production: fail_ratio (guard their conditions") ||
		strings.Contains(msg, "update "+filepath.Join(filepath.Dir(cfg.Scoring.Rules), "tests.yaml")+" first") {
		t.Errorf("the refusal does not name the rule failing at run time first:\n%s", msg)
	}
}

// apiExcerpt is the first KB of an error, as the API answers it.
func apiExcerpt(s string) string { return s[:min(len(s), 1<<10)] }

// The console's rollback names the version it means to undo: over another one it is refused as
// stale (the console answers 409), over the live one it is loaded.
func TestConsoleRollbackOverAVersionNoLongerLive(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	s, err := buildScorer(Default().Scoring, schemas.NewPhoneHasher([]byte("k")), log)
	if err != nil {
		t.Fatal(err)
	}
	svc := rulesvc.New(rulesvc.Config{Default: packs.Default(), Node: "n"}, s, &versionsInMemory{byVer: map[string]rulesvc.Version{}}, log)
	start, err := svc.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svc.Tick(ctx)
	cr := &consoleRules{a: &app{cfg: Default(), rules: svc}}
	shown, err := svc.Load(ctx, []byte("pack: shown\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 2'}\n"), "lead", "api")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Load(ctx, []byte("pack: bobs\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 3'}\n"), "bob", "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := cr.Rollback(ctx, start.Version.Version, "alice", shown.Version.Version); !errors.Is(err, console.ErrStale) {
		t.Fatalf("rollback over %s, no longer live: %v, want console.ErrStale", shown.Version.Version, err)
	}
	if got := svc.Current(); got.Name != "bobs" {
		t.Fatalf("bob's pack replaced: %s runs", got.Name)
	}
	// POST /v1/rules/rollback with If-Match: the same check, at the swap.
	ra := rulesAdmin{s: svc, persisted: true}
	if _, err := ra.Rollback(ctx, start.Version.Version, "alice", shown.Version.Version); !errors.Is(err, api.ErrNotLive) {
		t.Fatalf("API rollback over %s, no longer live: %v, want api.ErrNotLive", shown.Version.Version, err)
	}
	if got := svc.Current(); got.Name != "bobs" {
		t.Fatalf("bob's pack replaced through the API: %s runs", got.Name)
	}
	if info, err := cr.Rollback(ctx, start.Version.Version, "alice", svc.Current().Version); err != nil || info.Version != start.Version.Version {
		t.Errorf("rollback over the live version: %+v, %v", info, err)
	}
}

// A recorded version that this build no longer compiles (a variable it no longer declares) is
// refused by the console's rollback as the admin's request (console.ErrInvalid: 400 naming the
// problem), not as a part away (503, "try again").
func TestConsoleRollbackToAPackThatNoLongerCompiles(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	s, err := buildScorer(Default().Scoring, schemas.NewPhoneHasher([]byte("k")), log)
	if err != nil {
		t.Fatal(err)
	}
	const old = "00000000000000aa"
	store := &versionsInMemory{byVer: map[string]rulesvc.Version{old: {Version: old, Name: "old", Rules: 1,
		Content: []byte("pack: old\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'a_variable_long_gone >= 2'}\n")}}}
	svc := rulesvc.New(rulesvc.Config{Default: packs.Default(), Node: "n"}, s, store, log)
	if _, err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cr := &consoleRules{a: &app{cfg: Default(), rules: svc}}
	_, err = cr.Rollback(ctx, old, "alice", svc.Current().Version)
	if !errors.Is(err, console.ErrInvalid) || !strings.Contains(err.Error(), "a_variable_long_gone") {
		t.Errorf("rollback to a pack that no longer compiles: %v, want console.ErrInvalid naming the variable", err)
	}
	if got := svc.Current(); got.Name == "old" {
		t.Error("the pack that does not compile was loaded")
	}
}

// A node runs its pack's tests (about 2 s of CPU for the default pack's) one at a time, with a
// few more requests waiting for their turn within their context; beyond them PUT /v1/rules and
// the console are refused at once as unavailable (503 with Retry-After), naming why: every
// admin's click ran them at once, and a handful took every core from scoring.
func TestPackTestRunsBounded(t *testing.T) {
	_, cfg, svc, s := startedRuleService(t, true)
	gate := newTestGate(1, 1)
	ra := rulesAdmin{s: svc, persisted: true, scoring: &cfg.Scoring, tests: gate}
	cr := &consoleRules{a: &app{cfg: cfg, rules: svc, scorer: s, packTests: gate}}
	before := ra.Current().Version
	pack := []byte(string(packs.Default()) + "\n  - {id: extra_shadow, tag: extra, level: 600, mode: shadow, when: 'device_fails_10m >= 50'}\n")

	// A run under way (another admin's tests).
	started, release, ran := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() { ran <- gate.run(context.Background(), func() error { close(started); <-release; return nil }) }()
	<-started
	// One request waits for its turn, until its caller goes away.
	wctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error)
	go func() { _, err := ra.Update(wctx, pack, "lead", api.UpdateOptions{}); waited <- err }()
	for len(gate.queue) < 2 {
		select {
		case err := <-waited:
			t.Fatalf("a PUT while the node runs its tests for others did not wait for its turn: %v", err)
		default:
			runtime.Gosched()
		}
	}
	// The next is refused at once, through the API and the console alike.
	_, err := ra.Update(context.Background(), pack, "lead", api.UpdateOptions{})
	if !errors.Is(err, schemas.ErrUnavailable) || !strings.Contains(err.Error(), "tests are being run for other requests") {
		t.Fatalf("a PUT while the node runs its tests for others: %v, want unavailable naming why", err)
	}
	if _, err := cr.Test(context.Background(), pack); !errors.Is(err, schemas.ErrUnavailable) {
		t.Fatalf("the console's run tests while the node runs them for others: %v, want unavailable", err)
	}
	if _, err := cr.Promote(context.Background(), pack, "lead", ""); !errors.Is(err, schemas.ErrUnavailable) {
		t.Fatalf("the console's promote while the node runs them for others: %v, want unavailable", err)
	}
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("a PUT whose caller went away while it waited: %v", err)
	}
	if got := ra.Current().Version; got != before {
		t.Fatalf("a pack whose tests did not run was loaded: %s", got)
	}
	close(release)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	// Its turn come, a PUT runs the tests and loads the pack.
	if _, err := ra.Update(context.Background(), pack, "lead", api.UpdateOptions{}); err != nil {
		t.Fatalf("a PUT once the node is free: %v", err)
	}
}
