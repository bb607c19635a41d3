package rulesvc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
)

type target struct {
	env  *rules.Env
	pack *rules.Pack
}

func (t *target) Env() *rules.Env       { return t.env }
func (t *target) SetPack(p *rules.Pack) { t.pack = p }

func newTarget(t *testing.T) *target {
	env, err := rules.NewEnv([]rules.Var{{Name: "phone_verifies_10m", Type: rules.Int, Doc: "verifications"}})
	if err != nil {
		t.Fatal(err)
	}
	return &target{env: env}
}

// store is rule_versions in memory: the latest load of each version, and every record call.
type store struct {
	mu      sync.Mutex
	byVer   map[string]Version
	records []Version
	down    bool
	// looked, when set, runs after each Lookup (outside the lock): what happens meanwhile.
	looked func()
}

func (s *store) RecordVersion(_ context.Context, v Version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("clickhouse: connection refused")
	}
	if s.byVer == nil {
		s.byVer = map[string]Version{}
	}
	s.byVer[v.Version] = v
	s.records = append(s.records, v)
	return nil
}

func (s *store) Versions(context.Context) ([]Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Version
	for _, v := range s.byVer {
		v.Content = nil
		out = append(out, v)
	}
	return out, nil
}

func (s *store) Lookup(ctx context.Context, version string) (Version, error) {
	v, err := s.lookup(version)
	if s.looked != nil {
		s.looked()
	}
	return v, err
}

func (s *store) lookup(version string) (Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return Version{}, errors.New("clickhouse: connection refused")
	}
	v, ok := s.byVer[version]
	if !ok {
		return Version{}, fmt.Errorf("%w: %s", ErrUnknownVersion, version)
	}
	return v, nil
}

func pack(name string, threshold int) []byte {
	return fmt.Appendf(nil, "pack: %s\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= %d'}\n", name, threshold)
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	v1 := pack("p", 3)
	if err := os.WriteFile(path, v1, 0o600); err != nil {
		t.Fatal(err)
	}
	tg, st := newTarget(t), &store{}
	s := New(Config{Path: path, Node: "n1", Settle: time.Millisecond}, tg, st, nil)

	// Startup: loaded, recorded by the first tick (start does not wait for the history).
	start, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tg.pack == nil || tg.pack.Version != start.Version.Version || start.LoadedBy != "startup@n1" || start.Source != schemas.MaskPhones(path) {
		t.Fatalf("start: %+v, target runs %v", start.Version, tg.pack)
	}
	if len(st.records) != 0 {
		t.Fatalf("start waited to record: %v", st.records)
	}
	s.Tick(ctx)
	if len(st.records) != 1 || string(st.records[0].Content) != string(v1) {
		t.Fatalf("startup not recorded once with its bytes: %+v", st.records)
	}

	// PUT: compiled, persisted, swapped, recorded once with who and the exact bytes.
	v2 := pack("p", 5)
	got, err := s.Load(ctx, v2, "api:lead", "api")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Persisted || !got.Recorded || got.LoadedBy != "api:lead@n1" || tg.pack.Version != got.Version.Version {
		t.Errorf("PUT: %+v", got)
	}
	if b, _ := os.ReadFile(path); string(b) != string(v2) {
		t.Errorf("pack file holds %q", b)
	}
	// The watcher sees its own write and does not load or record it again.
	s.Tick(ctx)
	if len(st.records) != 2 || st.records[1].LoadedBy != "api:lead@n1" || string(st.records[1].Content) != string(v2) {
		t.Errorf("records after PUT and a tick: %+v", st.records)
	}
	if sum := versionOf(v2); st.records[1].Version != sum {
		t.Errorf("recorded version %s is not the hash %s of the recorded bytes", st.records[1].Version, sum)
	}

	// A rejected pack leaves the running one and the file.
	_, err = s.Load(ctx, []byte("pack: broken\nrules:\n  - {id: r9, tag: t, level: 300, when: 'nope > 1'}\n"), "api:lead", "api")
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "r9") {
		t.Errorf("bad pack: %v", err)
	}
	if tg.pack.Version != got.Version.Version {
		t.Error("a rejected pack was swapped in")
	}

	// Another node (or a person) changes the file to a version PUT elsewhere: loaded, and the
	// history keeps who loaded it first.
	v3 := pack("p", 7)
	if _, err := st.Lookup(ctx, "x"); err == nil {
		t.Fatal("store lookup")
	}
	st.RecordVersion(ctx, Version{Version: versionOf(v3), Name: "p", LoadedBy: "api:other@n2", Content: v3})
	n := len(st.records)
	os.WriteFile(path, v3, 0o600)
	s.Tick(ctx)
	if tg.pack.Version != versionOf(v3) || s.Current().LoadedBy != "file@n1" {
		t.Errorf("file change not loaded: %s, %+v", tg.pack.Version, s.Current())
	}
	if len(st.records) != n {
		t.Errorf("a file load of a recorded version recorded it again: %+v", st.records[n:])
	}
	// A new version in the file is recorded as a file load, at the next tick: the process that
	// wrote the file records its own load right after writing it, and must not lose the race.
	v4 := pack("p", 9)
	os.WriteFile(path, v4, 0o600)
	s.Tick(ctx)
	if tg.pack.Version != versionOf(v4) || len(st.records) != n {
		t.Errorf("file change: running %s, recorded at once %+v", tg.pack.Version, st.records[n:])
	}
	s.Tick(ctx)
	if last := st.records[len(st.records)-1]; last.Version != versionOf(v4) || last.LoadedBy != "file@n1" || last.Source != schemas.MaskPhones(path) {
		t.Errorf("new file version: %+v", last)
	}
	// The writer's record lands between the ticks: the file load is not recorded over it.
	v5 := pack("p", 11)
	os.WriteFile(path, v5, 0o600)
	s.Tick(ctx)
	st.RecordVersion(ctx, Version{Version: versionOf(v5), Name: "p", LoadedBy: "console:lead@n2", Content: v5})
	n = len(st.records)
	s.Tick(ctx)
	if tg.pack.Version != versionOf(v5) || len(st.records) != n {
		t.Errorf("a file load recorded over the writer's record: %+v", st.records[n:])
	}

	// Rollback to a recorded version: its exact bytes, persisted, recorded as this load.
	rb, err := s.Rollback(ctx, start.Version.Version, "cli:ops")
	if err != nil {
		t.Fatal(err)
	}
	if tg.pack.Version != start.Version.Version || rb.Source != "rollback" || rb.LoadedBy != "cli:ops@n1" || !rb.Persisted || !rb.Recorded {
		t.Errorf("rollback: %+v", rb)
	}
	if b, _ := os.ReadFile(path); string(b) != string(v1) {
		t.Errorf("rollback did not persist the recorded bytes: %q", b)
	}
	if _, err := s.Rollback(ctx, "0000000000000000", "cli:ops"); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("rollback to an unknown version: %v", err)
	}
}

// With the history away, loads go on and are recorded once it is back.
// The pack file's path and the node's name are recorded in rule_versions and rule_loads
// (ClickHouse), printed by riskflow rules versions and shown in the console, where no mask reaches:
// a pack under /home/13957241301/ (an account named by its owner's number) was stored with the
// path as it is (held-out run), while the log line of the same load showed <phone>. Both are
// recorded with any phone number masked.
func TestRecordedSourceAndNodeHoldNoNumber(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "13957241301")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, pack("p", 3), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, st := newTarget(t), &store{}
	s := New(Config{Path: path, Node: "pc-13957241302", Settle: time.Millisecond}, tg, st, nil)
	start, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Tick(ctx)
	if len(st.records) != 1 {
		t.Fatalf("startup not recorded: %+v", st.records)
	}
	for _, v := range []Version{start.Version, st.records[0]} {
		if strings.Contains(v.Source+v.LoadedBy, "1395724") || !strings.HasSuffix(v.Source, "/<phone>/rules.yaml") || v.LoadedBy != "startup@pc-<phone>" {
			t.Errorf("recorded source %q, loaded by %q: want the numbers masked", v.Source, v.LoadedBy)
		}
	}
}

func TestRecordRetried(t *testing.T) {
	ctx := context.Background()
	tg, st := newTarget(t), &store{down: true}
	s := New(Config{Default: pack("d", 3), Node: "n"}, tg, st, nil)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, pack("d", 4), "api:lead", "api")
	if err != nil || got.Recorded || got.Persisted {
		t.Fatalf("load with the history down: %+v, %v", got, err)
	}
	if tg.pack.Version != got.Version.Version {
		t.Error("the pack waited for the history")
	}
	s.Tick(ctx)
	if len(st.records) != 0 {
		t.Fatal("recorded while down")
	}
	if s.Recorded() {
		t.Error("Recorded while the history is down")
	}
	st.down = false
	s.Tick(ctx)
	if len(st.records) != 2 || st.records[0].LoadedBy != "startup@n" || st.records[1].LoadedBy != "api:lead@n" {
		t.Errorf("after the history came back: %+v", st.records)
	}
	if !s.Recorded() {
		t.Error("not Recorded once the history took the load (GET /v1/rules said recorded: false for good)")
	}
	s.Tick(ctx)
	if len(st.records) != 2 {
		t.Errorf("recorded more than once: %d", len(st.records))
	}
	// Without a store: no history, said so.
	s = New(Config{Default: pack("d", 3)}, tg, nil, nil)
	if _, err := s.Start(ctx); err != nil || s.Recorded() {
		t.Errorf("without a store: Recorded %v (%v)", s.Recorded(), err)
	}
	if _, err := s.Versions(ctx); !errors.Is(err, ErrNoHistory) {
		t.Errorf("versions without a store: %v", err)
	}
}

// A history that lost the running pack's version — its database dropped, then recreated empty
// by the archiver or riskflow migrate — gets the load in force again at the next check: the
// rule_versions of a recreated database stayed empty until someone promoted a pack.
func TestHistoryEmptiedUnderTheRunningPack(t *testing.T) {
	ctx := context.Background()
	tg, st := newTarget(t), &store{}
	s := New(Config{Default: pack("d", 3), Node: "n"}, tg, st, nil)
	s.checkEvery = 2
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s.Tick(ctx) // tick 1: the startup load recorded
	if len(st.records) != 1 {
		t.Fatalf("startup load: %+v", st.records)
	}
	want := st.records[0]
	s.Tick(ctx) // tick 2, a check: the history holds it
	if len(st.records) != 1 {
		t.Fatalf("a history that holds the version was written again: %+v", st.records)
	}

	// The database is dropped: while ClickHouse says nothing about the version, nothing is
	// queued (the load stays Recorded).
	st.mu.Lock()
	st.byVer, st.down = nil, true
	st.mu.Unlock()
	s.Tick(ctx)
	s.Tick(ctx)
	if len(st.records) != 1 || !s.Recorded() {
		t.Fatalf("history down: %d records, Recorded %v", len(st.records), s.Recorded())
	}
	// It is recreated empty: the next check records the load in force, as it was loaded.
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	s.Tick(ctx) // tick 5: no check
	if len(st.records) != 1 {
		t.Fatalf("recorded between checks: %+v", st.records)
	}
	s.Tick(ctx) // tick 6: a check
	if len(st.records) != 2 || st.records[1].Version != want.Version || st.records[1].LoadedBy != want.LoadedBy ||
		!st.records[1].LoadedAt.Equal(want.LoadedAt) || string(st.records[1].Content) != string(want.Content) {
		t.Fatalf("after the history was emptied: %+v, want the load %+v again", st.records, want)
	}
	if !s.Recorded() {
		t.Error("not Recorded after the load was recorded again")
	}
	for range 4 {
		s.Tick(ctx)
	}
	if len(st.records) != 2 {
		t.Errorf("recorded again while the history holds it: %d records", len(st.records))
	}
}

// A file that does not compile is logged once and left until it changes; the running pack stays.
func TestRejectedFileNotRetried(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(path, pack("p", 3), 0o600)
	tg, st := newTarget(t), &store{}
	s := New(Config{Path: path, Settle: time.Millisecond}, tg, st, nil)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	running := tg.pack.Version
	os.WriteFile(path, []byte("pack: p\nrules:\n  - {id: r1, tag: t, level: 300, when: 'nope'}\n"), 0o600)
	s.Tick(ctx)
	s.Tick(ctx)
	if tg.pack.Version != running || s.Current().Version != running {
		t.Error("a rejected file replaced the running pack")
	}
	if _, err := New(Config{Path: filepath.Join(t.TempDir(), "missing.yaml")}, tg, nil, nil).Start(ctx); err == nil {
		t.Error("start without the pack file succeeded")
	}
}

// versionOf is the version rules gives a pack's bytes.
func versionOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// A pack file that cannot be written because it is read-only (a ConfigMap mount) says so and
// where packs are changed then; other failures keep their cause and the key.
func TestPersistErrorNamesAReadOnlyPackFile(t *testing.T) {
	for _, cause := range []error{syscall.EROFS, syscall.EACCES, syscall.EPERM} {
		err := persistError("/etc/riskflow/rules/rules.yaml", &fs.PathError{Op: "open", Path: "/etc/riskflow/rules/.rules-1.yaml", Err: cause})
		for _, want := range []string{"/etc/riskflow/rules/rules.yaml (scoring.rules)", "read-only", "ConfigMap", "writable volume every node shares"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: %q lacks %q", cause, err, want)
			}
		}
		if !errors.Is(err, cause) {
			t.Errorf("%v: the cause is lost: %v", cause, err)
		}
	}
	err := persistError("/x/rules.yaml", &fs.PathError{Op: "open", Path: "/x/.rules-1.yaml", Err: syscall.ENOSPC})
	if strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), "scoring.rules") || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a full disk: %v", err)
	}
}

// A pack file the node does not follow — rejected, unreadable — is reported by File until the
// file runs again, each problem counted once however many polls see it.
func TestFileStatusReportsAFileThatDoesNotRun(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	good := pack("p", 3)
	os.WriteFile(path, good, 0o600)
	tg := newTarget(t)
	s := New(Config{Path: path, Settle: time.Millisecond}, tg, nil, nil)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s.Tick(ctx)
	if f := s.File(); f.Problem != "" || f.Rejected != 0 || f.Unreadable != 0 {
		t.Fatalf("file status of a running file: %+v", f)
	}

	broken := []byte("pack: p\nrules:\n  - {id: r1, tag: t, level: 300, when: 'nope'}\n")
	os.WriteFile(path, broken, 0o600)
	s.Tick(ctx)
	s.Tick(ctx)
	f := s.File()
	if f.Problem != "rejected" || f.Rejected != 1 || !strings.Contains(f.Err, "nope") || f.Since.IsZero() {
		t.Errorf("after a broken pack, two polls: %+v", f)
	}

	os.Remove(path)
	s.Tick(ctx)
	s.Tick(ctx)
	if f := s.File(); f.Problem != "unreadable" || f.Unreadable != 1 || f.Rejected != 1 {
		t.Errorf("after the file was deleted, two polls: %+v", f)
	}

	// The same broken content back: rejected again, with its reason, without compiling it again.
	os.WriteFile(path, broken, 0o600)
	s.Tick(ctx)
	if f := s.File(); f.Problem != "rejected" || f.Rejected != 2 || !strings.Contains(f.Err, "nope") {
		t.Errorf("after the broken pack came back: %+v", f)
	}

	// The running pack's content back (a broken edit undone): the file runs again.
	os.WriteFile(path, good, 0o600)
	s.Tick(ctx)
	if f := s.File(); f.Problem != "" || f.Err != "" || !f.Since.IsZero() || f.Rejected != 2 || f.Unreadable != 1 {
		t.Errorf("after the running content came back: %+v", f)
	}

	// A new good pack loads and clears a problem too; so does a PUT, which writes the file.
	os.WriteFile(path, broken, 0o600)
	s.Tick(ctx)
	os.WriteFile(path, pack("p", 4), 0o600)
	s.Tick(ctx)
	if f := s.File(); f.Problem != "" || tg.pack.Version != versionOf(pack("p", 4)) {
		t.Errorf("after a good pack replaced a broken one: %+v, running %s", f, tg.pack.Version)
	}
	os.Remove(path)
	s.Tick(ctx)
	if _, err := s.Load(ctx, pack("p", 5), "api:lead", "api"); err != nil {
		t.Fatal(err)
	}
	if f := s.File(); f.Problem != "" {
		t.Errorf("after a PUT wrote the file: %+v", f)
	}
}

// A pack file written over in place (cp, scp, an editor) is not loaded halfway: cut inside a
// condition, a pack compiled — six rules of many, one threshold cut from 10 to 1 — and ran on
// every node watching the file, and was recorded, until the next poll. A file read while it was
// just modified is read again once it has been left alone for Settle, and loaded only if it reads
// the same.
func TestHalfWrittenFileIsNotLoaded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(path, pack("p", 3), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	tg, st := newTarget(t), &store{}
	s := New(Config{Path: path, Settle: time.Second}, tg, st, nil)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	running := tg.pack.Version

	full := []byte("pack: p\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 10'}\n  - {id: r2, tag: burst, level: 900, when: 'phone_verifies_10m >= 50'}\n")
	// A writer that has written the first rule so far, cut inside its threshold.
	half := append(bytes.Clone(full[:bytes.Index(full, []byte(">= 10"))+len(">= 1")]), "'}\n"...)
	if _, err := rules.Compile(half, tg.env); err != nil {
		t.Fatalf("the half pack must compile for this test: %v", err)
	}
	os.WriteFile(path, half, 0o600) // modified now: not settled
	var slept []time.Duration
	s.sleep = func(d time.Duration) {
		slept = append(slept, d)
		os.WriteFile(path, full, 0o600) // the writer finishes while the node waits
	}
	s.Tick(ctx)
	if tg.pack.Version != running || s.Current().Version != running {
		t.Fatalf("the half-written pack was loaded: %s", tg.pack.Version)
	}
	if len(slept) != 1 || slept[0] <= 0 || slept[0] > time.Second {
		t.Errorf("waited %v, want one wait of at most Settle", slept)
	}

	// The next poll: the file is whole and left alone (it reads the same after the wait).
	s.sleep = func(time.Duration) {}
	s.Tick(ctx)
	if tg.pack.Version != versionOf(full) || len(tg.pack.Rules) != 2 {
		t.Fatalf("the whole pack was not loaded: %s, %d rules", tg.pack.Version, len(tg.pack.Rules))
	}
	s.Tick(ctx)
	for _, r := range st.records {
		if r.Version == versionOf(half) {
			t.Errorf("the half-written pack was recorded: %+v", r)
		}
	}

	// A file modified longer ago than Settle is loaded at once, without a wait.
	os.WriteFile(path, pack("p", 7), 0o600)
	os.Chtimes(path, old, old)
	s.sleep = func(d time.Duration) { t.Errorf("waited %v for a file left alone for an hour", d) }
	s.Tick(ctx)
	if tg.pack.Version != versionOf(pack("p", 7)) {
		t.Errorf("a settled file was not loaded: %s", tg.pack.Version)
	}
}

// A process starting while the pack file is being written waits for the writer too.
func TestStartWaitsForAHalfWrittenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	full := []byte("pack: p\nrules:\n  - {id: r1, tag: burst, level: 600, when: 'phone_verifies_10m >= 10'}\n  - {id: r2, tag: burst, level: 900, when: 'phone_verifies_10m >= 50'}\n")
	half := append(bytes.Clone(full[:bytes.Index(full, []byte(">= 10"))+len(">= 1")]), "'}\n"...)
	os.WriteFile(path, half, 0o600)
	tg := newTarget(t)
	s := New(Config{Path: path, Settle: time.Second}, tg, nil, nil)
	waits := 0
	s.sleep = func(time.Duration) {
		if waits++; waits == 1 {
			os.WriteFile(path, full, 0o600)
		}
	}
	l, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if l.Version.Version != versionOf(full) || len(tg.pack.Rules) != 2 {
		t.Errorf("started on %s with %d rules, want the whole pack %s", l.Version.Version, len(tg.pack.Rules), versionOf(full))
	}
}

// A PUT or rollback writes the pack file with the permissions it had (0644 for a new one): it
// was made 0600, so another node sharing the file under another user or through its group could
// no longer read it and kept its old pack.
// A node whose scoring.rules is a symlink to a shared pack file writes a PUT through the link: the
// shared file changes (the nodes watching it load the new pack) and the link stays a link. (The
// rename replaced the link with a file of this node's own, and the others kept the old pack.)
func TestPersistThroughASymlinkReplacesTheSharedFile(t *testing.T) {
	dir := t.TempDir()
	shared, link := filepath.Join(dir, "shared.yaml"), filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(shared, pack("p", 3), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shared, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	s := New(Config{Path: link, Settle: time.Millisecond, Default: pack("p", 3)}, newTarget(t), nil, nil)
	if _, err := s.Load(context.Background(), pack("p", 5), "api:lead", "api"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s after a PUT: %v, %v; want the symlink still", link, st.Mode(), err)
	}
	got, err := os.ReadFile(shared)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(pack("p", 5)) {
		t.Errorf("the shared file holds %q, want the PUT's pack", got)
	}
}

func TestPersistKeepsThePackFilePermissions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for name, c := range map[string]struct {
		before os.FileMode // 0: no file before
		want   os.FileMode
	}{
		"shared with all": {0o644, 0o644},
		"group":           {0o640, 0o640},
		"private":         {0o600, 0o600},
		"new":             {0, 0o644},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			if c.before != 0 {
				os.WriteFile(path, pack("p", 3), 0o600)
				if err := os.Chmod(path, c.before); err != nil {
					t.Fatal(err)
				}
			}
			s := New(Config{Path: path, Settle: time.Millisecond, Default: pack("p", 3)}, newTarget(t), nil, nil)
			if _, err := s.Load(ctx, pack("p", 5), "api:lead", "api"); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != c.want {
				t.Errorf("pack file mode %v after a PUT, want %v", got, c.want)
			}
		})
	}
}

// Two nodes sharing the pack file, two admins promoting at once: one promotion wins, the other
// is refused (ErrConflict) rather than answered "loaded" and silently replaced seconds later by the
// first one's file; the refused node keeps its pack until it reads the file, then promotes over it.
func TestConcurrentPromotionsThroughTwoNodes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, pack("p", 3), 0o644); err != nil {
		t.Fatal(err)
	}
	ta, tb := newTarget(t), newTarget(t)
	a := New(Config{Path: path, Node: "a", Settle: time.Millisecond}, ta, nil, nil)
	b := New(Config{Path: path, Node: "b", Settle: time.Millisecond}, tb, nil, nil)
	for _, s := range []*Service{a, b} {
		if _, err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	start := tb.pack.Version

	// One after the other, before b read the file: b's promotion is refused and changes nothing.
	alice, err := a.Load(ctx, pack("p", 4), "api:alice", "api")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Load(ctx, pack("p", 5), "api:bob", "api")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), alice.Version.Version) || !strings.Contains(err.Error(), path) {
		t.Fatalf("promotion over an unseen one: %v, want ErrConflict naming the file and version %s", err, alice.Version.Version)
	}
	if tb.pack.Version != start || b.Current().Version != start {
		t.Fatalf("a refused promotion was swapped in: b runs %s", tb.pack.Version)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, pack("p", 4)) {
		t.Fatalf("a refused promotion was written: %s", got)
	}
	// Once b has read the file, bob promotes over alice's pack knowingly.
	b.Tick(ctx)
	if tb.pack.Version != alice.Version.Version {
		t.Fatalf("b did not load the file: runs %s", tb.pack.Version)
	}
	if _, err := b.Load(ctx, pack("p", 5), "api:bob", "api"); err != nil {
		t.Fatal(err)
	}

	// At the same moment, over and over: exactly one wins each round, and the file holds its pack.
	for round := range 30 {
		a.Tick(ctx)
		b.Tick(ctx)
		pa, pb := pack("p", 100+2*round), pack("p", 101+2*round)
		var wg sync.WaitGroup
		var ea, eb error
		wg.Add(2)
		go func() { defer wg.Done(); _, ea = a.Load(ctx, pa, "api:alice", "api") }()
		go func() { defer wg.Done(); _, eb = b.Load(ctx, pb, "api:bob", "api") }()
		wg.Wait()
		file, _ := os.ReadFile(path)
		switch {
		case ea == nil && eb == nil:
			t.Fatalf("round %d: both promotions answered loaded; the file holds %s", round, file)
		case ea == nil && errors.Is(eb, ErrConflict) && bytes.Equal(file, pa):
		case eb == nil && errors.Is(ea, ErrConflict) && bytes.Equal(file, pb):
		default:
			t.Fatalf("round %d: alice %v, bob %v, file %s", round, ea, eb, file)
		}
	}
}

// A CLI rollback (a service that never started, so never read the file) and a file holding a pack
// that does not compile are no promotion to protect: both are written over.
func TestPromotionOverABrokenFileOrFromTheCLI(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, pack("p", 3), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t)
	s := New(Config{Path: path, Node: "n", Settle: time.Millisecond}, tg, nil, nil)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("pack: p\nrules: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, pack("p", 4), "api:lead", "api"); err != nil {
		t.Fatalf("promotion over a broken file: %v", err)
	}
	cli := New(Config{Path: path, Node: "cli"}, newTarget(t), nil, nil)
	if _, err := cli.Load(ctx, pack("p", 6), "cli:lead", "rollback"); err != nil {
		t.Fatalf("CLI load: %v", err)
	}
}

// hangingStore is a history that accepted the connection and never answers, whatever the context
// says (a ClickHouse hanging in the driver's handshake), until release is closed.
type hangingStore struct {
	store
	entered chan struct{}
	release chan struct{}
	cmu     sync.Mutex
	calls   []string // the versions RecordVersion was called with
}

func (h *hangingStore) RecordVersion(ctx context.Context, v Version) error {
	h.cmu.Lock()
	h.calls = append(h.calls, v.Version)
	h.cmu.Unlock()
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.release
	return h.store.RecordVersion(ctx, v)
}

// A promotion while the history hangs answers within the history's timeout, not recorded, and
// while its record waits the node still answers what it runs and follows its pack file; the
// record is made once the history answers again.
func TestPromotionWhileTheHistoryHangs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, pack("p", 3), 0o644); err != nil {
		t.Fatal(err)
	}
	st := &hangingStore{entered: make(chan struct{}, 1), release: make(chan struct{})}
	tg := newTarget(t)
	s := New(Config{Path: path, Node: "n", Settle: time.Millisecond}, tg, st, nil)
	s.recordTimeout = 200 * time.Millisecond
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	type result struct {
		l   Loaded
		err error
	}
	res := make(chan result, 1)
	go func() { l, err := s.Load(ctx, pack("p", 4), "api:lead", "api"); res <- result{l, err} }()
	<-st.entered // the record is under way (and hangs)

	// Meanwhile the node answers which pack it runs, and loads what another node writes to the file.
	cur := make(chan Version, 1)
	go func() { cur <- s.Current() }()
	select {
	case v := <-cur:
		if v.Version != tg.pack.Version {
			t.Fatalf("Current %s, target runs %s", v.Version, tg.pack.Version)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Current waited for the hanging history")
	}
	r := <-res
	if r.err != nil || r.l.Recorded || !r.l.Persisted {
		t.Fatalf("promotion while the history hangs: %+v, %v; want persisted and not recorded", r.l, r.err)
	}
	if s.Recorded() {
		t.Fatal("Recorded says the promotion is in the history")
	}
	// A second promotion waits for its own record only, not for the first one's again.
	st.cmu.Lock()
	st.calls = nil
	st.cmu.Unlock()
	second, err := s.Load(ctx, pack("p", 5), "api:lead", "api")
	if err != nil || second.Recorded {
		t.Fatalf("second promotion: %+v, %v", second, err)
	}
	st.cmu.Lock()
	if len(st.calls) != 1 || st.calls[0] != second.Version.Version {
		t.Fatalf("the second promotion tried to record %v, want only its own %s", st.calls, second.Version.Version)
	}
	st.cmu.Unlock()
	other := pack("p", 7)
	if err := os.WriteFile(path, other, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	// A tick reads the file before it retries the records: with a history that never answers (and
	// no timeout to end the wait) it still loads what another node wrote.
	s.recordTimeout = time.Hour
	ticked := make(chan struct{})
	go func() { s.Tick(ctx); close(ticked) }()
	want, _ := rules.Compile(other, tg.env)
	for deadline := time.Now().Add(10 * time.Second); s.Current().Version != want.Version; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the file was not followed while the history hangs: runs %s", s.Current().Version)
		}
	}
	close(st.release)
	<-ticked
	s.Tick(ctx)
	s.Tick(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, v := range []string{r.l.Version.Version, second.Version.Version} {
		if got, ok := st.byVer[v]; !ok || got.LoadedBy != "api:lead@n" {
			t.Fatalf("promotion %s not recorded once the history answered: %+v", v, st.byVer)
		}
	}
}

// A pack file far larger than any pack (MaxPackBytes), or a pipe or device in its place, is refused
// unread — at the start and when the file changes under a running node, whose pack stays. A 15 MB
// file took 0.65 GB and 26 s to parse and refuse; read at every start and reload, a larger one took
// a node's memory at every restart, and a fifo hung its start.
func TestOversizedOrSpecialPackFileRefusedUnread(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	big := append([]byte("pack: p\nrules:\n"), bytes.Repeat([]byte("  - a\n"), rules.MaxPackBytes/6+1)...)
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t)
	want := fmt.Sprintf("%s holds %d bytes: a rule pack is at most 16 MiB", path, len(big))
	if _, err := New(Config{Path: path}, tg, &store{}, nil).Start(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("start on a %d-byte pack file: %v, want %q", len(big), err, want)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Path: fifo}, tg, &store{}, nil).Start(ctx); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("start on a fifo: %v", err)
	}
	if err := os.WriteFile(path, pack("p", 3), 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Path: path, Settle: time.Millisecond}, tg, &store{}, nil)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	running := tg.pack.Version
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Tick(ctx)
	if tg.pack.Version != running {
		t.Error("the running pack was replaced")
	}
	if f := s.File(); !strings.Contains(f.Err, want) {
		t.Errorf("file status: %+v, want %q", f, want)
	}
	if _, err := rules.CompileFile(path, tg.env); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CompileFile: %v", err)
	}
}

// A load the history keeps failing to record is retried on every tick but logged once, then at
// most once a minute (a ClickHouse outage had a warning every 5 s on every node); its recording
// says how many attempts failed.
func TestRecordRetriesLoggedOncePerMinute(t *testing.T) {
	ctx := context.Background()
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	tg, st := newTarget(t), &store{down: true}
	s := New(Config{Default: pack("d", 3), Node: "n"}, tg, st, log)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		s.Tick(ctx)
	}
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	s.Tick(ctx)
	out := buf.String()
	if n := strings.Count(out, "rule version not recorded yet"); n != 1 {
		t.Errorf("%d warnings for 11 failed attempts in less than a minute, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `msg="rule version recorded"`) || !regexp.MustCompile(`msg="rule version recorded" .* failed_attempts=1[01]\b`).MatchString(out) {
		t.Errorf("the recording does not say how many attempts failed:\n%s", out)
	}
}

// latestStore is rule_versions as ClickHouse keeps it (ReplacingMergeTree(loaded_at), DateTime):
// a version's row is its load with the latest second, the later record of a second winning.
type latestStore struct{ store }

func (s *latestStore) RecordVersion(ctx context.Context, v Version) error {
	v.LoadedAt = v.LoadedAt.Truncate(time.Second)
	s.mu.Lock()
	held, ok := s.byVer[v.Version]
	s.mu.Unlock()
	if ok && v.LoadedAt.Before(held.LoadedAt) {
		// Recorded (in rule_loads), but not the version's latest load.
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			return errors.New("clickhouse: connection refused")
		}
		s.records = append(s.records, v)
		return nil
	}
	return s.store.RecordVersion(ctx, v)
}

// A promotion made while the history was away and recorded once it is back stays its version's
// latest load, whoever records first: the other nodes' pickups of the file, recorded meanwhile and
// stamped later, made rule_versions say the pack was shipped by file@node (held-out run: PUT
// through a node whose ClickHouse was away; GET /v1/rules/versions and riskflow rules versions
// named the node that picked the file up, not the admin).
func TestPromotionRecordedLateStaysTheLatestLoad(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, pack("p", 3), 0o644); err != nil {
		t.Fatal(err)
	}
	st := &latestStore{}
	clock := time.Date(2026, 12, 7, 2, 53, 16, 400_000_000, time.UTC)
	now := func() time.Time { return clock }
	a := New(Config{Path: path, Node: "a", Settle: time.Millisecond}, newTarget(t), st, nil)
	b := New(Config{Path: path, Node: "b", Settle: time.Millisecond}, newTarget(t), st, nil)
	a.now, b.now = now, now
	for _, s := range []*Service{a, b} {
		if _, err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		s.Tick(ctx)
	}

	st.mu.Lock()
	st.down = true
	st.mu.Unlock()
	v2 := pack("p", 5)
	l, err := a.Load(ctx, v2, "api:alice", "api")
	if err != nil || l.Recorded {
		t.Fatalf("PUT with the history away: %+v, %v", l, err)
	}
	// Node b picks the file up a second later and records its pickup first, once the history is back.
	clock = clock.Add(time.Second)
	if err := os.Chtimes(path, clock.Add(-time.Minute), clock.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	b.Tick(ctx)
	if b.Current().Version != l.Version.Version {
		t.Fatalf("node b runs %s, not the promoted %s", b.Current().Version, l.Version.Version)
	}
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	b.Tick(ctx)
	a.Tick(ctx)

	got, err := st.Lookup(ctx, l.Version.Version)
	if err != nil {
		t.Fatal(err)
	}
	if got.LoadedBy != "api:alice@a" || got.Source != "api" {
		var recs []string
		for _, r := range st.records {
			recs = append(recs, fmt.Sprintf("%s %s %s", r.Version, r.LoadedBy, r.LoadedAt.Format(time.RFC3339)))
		}
		t.Errorf("the version's latest load is %s (%s) at %s, want api:alice@a, who promoted it; records:\n%s", got.LoadedBy, got.Source, got.LoadedAt, strings.Join(recs, "\n"))
	}
	if !a.Recorded() || !b.Recorded() {
		t.Errorf("recorded: a %v, b %v", a.Recorded(), b.Recorded())
	}
}

// Two admins roll back at once from pages showing the same live version: the one whose recorded
// pack is swapped in second is refused (ErrNotLive, naming the version now live), not told it
// was done while the first one's rollback is silently undone — the live version was checked
// before the history's look-up of the recorded bytes, and swapped in after it.
func TestRollbackOverAPackLoadedMeanwhile(t *testing.T) {
	ctx := context.Background()
	st := &store{}
	s := New(Config{Node: "n1"}, newTarget(t), st, nil)
	v1, err := s.Load(ctx, pack("p", 3), "api:lead", "api")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.Load(ctx, pack("p", 4), "api:lead", "api")
	if err != nil {
		t.Fatal(err)
	}
	// While the history is asked for v1's bytes, another admin's rollback to v0 lands.
	v0 := pack("p", 9)
	st.looked = func() {
		st.looked = nil
		if _, err := s.LoadOver(ctx, v0, "console:bob", "rollback", v2.Version.Version); err != nil {
			t.Errorf("the load meanwhile: %v", err)
		}
	}
	_, err = s.RollbackOver(ctx, v1.Version.Version, "console:alice", v2.Version.Version)
	if !errors.Is(err, ErrNotLive) || !strings.Contains(err.Error(), versionOf(v0)) {
		t.Fatalf("a rollback over a version no longer live: %v, want ErrNotLive naming %s", err, versionOf(v0))
	}
	if cur := s.Current(); cur.Version != versionOf(v0) {
		t.Errorf("live after the refused rollback: %s, want %s", cur.Version, versionOf(v0))
	}
	if _, err := s.RollbackOver(ctx, v1.Version.Version, "console:alice", versionOf(v0)); err != nil || s.Current().Version != v1.Version.Version {
		t.Errorf("a rollback over the live version: %v, live %s", err, s.Current().Version)
	}
}

// blockingTarget's Env blocks, once armed, until released: a compile that takes its time.
type blockingTarget struct {
	*target
	mu      sync.Mutex
	armed   bool
	entered chan struct{} // closed when an armed Env is entered
	release chan struct{}
}

func (t *blockingTarget) Env() *rules.Env {
	t.mu.Lock()
	armed := t.armed
	t.armed = false
	t.mu.Unlock()
	if armed {
		close(t.entered)
		<-t.release
	}
	return t.target.Env()
}

func (t *blockingTarget) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed, t.entered, t.release = true, make(chan struct{}), make(chan struct{})
}

// A new pack is compiled before the node's pack lock is taken: a large pack's compile (seconds)
// held GET /v1/rules, the console's live pack and the file watcher for its whole duration. The
// swap keeps its checks: of two promotions over one version compiled at once, one wins.
func TestCompileOutsideThePackLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, pack("p", 3), 0o644); err != nil {
		t.Fatal(err)
	}
	bt := &blockingTarget{target: newTarget(t)}
	s := New(Config{Path: path, Node: "a", Settle: time.Millisecond}, bt, nil, nil)
	start, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	readable := func(what string) {
		t.Helper()
		done := make(chan struct{})
		go func() { s.Current(); s.File(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second): // a deadlock, not a threshold: Current waits for the compile
			t.Fatalf("%s: Current() blocked while a pack compiled", what)
		}
	}

	// A PUT.
	bt.arm()
	loaded := make(chan error, 1)
	go func() {
		_, err := s.LoadOver(ctx, pack("p", 4), "api:alice", "api", start.Version.Version)
		loaded <- err
	}()
	<-bt.entered
	readable("PUT")
	close(bt.release)
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}

	// The file watcher. A PUT meanwhile over a pack the node has not loaded yet is refused, as
	// ever; over a broken file it wins, and the watcher's verdict on the content it read before
	// is dropped: the file holds the PUT's pack, not a rejected one.
	writeFile := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-time.Minute)
		os.Chtimes(path+".tmp", past, past)
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(pack("p", 5))
	bt.arm()
	ticked := make(chan struct{})
	go func() { s.Tick(ctx); close(ticked) }()
	<-bt.entered
	readable("file")
	if _, err := s.Load(ctx, pack("p", 6), "api:bob", "api"); !errors.Is(err, ErrConflict) {
		t.Fatalf("a PUT over the file's unseen pack: %v, want ErrConflict", err)
	}
	close(bt.release)
	<-ticked
	if cur := s.Current().Version; cur != versionOf(pack("p", 5)) {
		t.Fatalf("the file's pack was not loaded: runs %s", cur)
	}
	writeFile([]byte("pack: broken\nrules:\n  - {id: r1, tag: t, level: 600, when: 'nope > 1'}\n"))
	bt.arm()
	ticked = make(chan struct{})
	go func() { s.Tick(ctx); close(ticked) }()
	<-bt.entered
	put, err := s.Load(ctx, pack("p", 6), "api:bob", "api")
	if err != nil {
		t.Fatal(err)
	}
	close(bt.release)
	<-ticked
	if cur := s.Current().Version; cur != put.Version.Version || bt.pack.Version != put.Version.Version {
		t.Fatalf("runs %s, want the PUT's %s", cur, put.Version.Version)
	}
	if f := s.File(); f.Problem != "" {
		t.Fatalf("the file holds the PUT's pack, but its status says %q: %s", f.Problem, f.Err)
	}

	// Two PUTs over one version, compiled at once: one wins, the other is refused.
	for round := range 20 {
		base := s.Current().Version
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.LoadOver(ctx, pack("p", 100+2*round+i), "api:x", "api", base)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrNotLive):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d promotions over %s won (%v)", round, won, base, errs)
		}
	}
}
