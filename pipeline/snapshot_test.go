package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/features"
)

func stateWith(n int) *features.State {
	st := features.New(features.Config{})
	t0 := features.Sec(time.Now().Add(-time.Hour))
	for i := 1; i <= n; i++ {
		st.Apply(&features.Keys{EventID: uint64(i), T: t0 + uint32(i), Phone: uint64(1000 + i%7), IP: 42})
	}
	return st
}

// at is a snapshot's positions: offsets, times unknown.
func at(offsets map[int]int64) func() map[int]consumers.Mark {
	return func() map[int]consumers.Mark {
		out := map[int]consumers.Mark{}
		for p, off := range offsets {
			out[p] = consumers.Mark{Next: off}
		}
		return out
	}
}

// Save then Load restores the state and the offsets it covers; the previous snapshot is kept and
// used when the newest is damaged; a snapshot of another key or topic is refused and leaves the
// state empty.
func TestSnapshotsSaveLoadAndFallBack(t *testing.T) {
	dir := t.TempDir()
	src := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(50), Log: quiet()}
	if _, err := src.Save(at(map[int]int64{0: 10, 1: 20})); err != nil {
		t.Fatal(err)
	}
	src.State = stateWith(80)
	if _, err := src.Save(at(map[int]int64{0: 30, 1: 40})); err != nil {
		t.Fatal(err)
	}
	load := func(fp, topic string) (*features.State, map[int]consumers.Mark, error) {
		st := features.New(features.Config{})
		offs, _, err := (&Snapshots{Dir: dir, Topic: topic, Fingerprint: fp, State: st, Log: quiet()}).Load(context.Background())
		return st, offs, err
	}
	st, offs, err := load("key-a", "verify.events")
	if err != nil || offs[0].Next != 30 || offs[1].Next != 40 || st.Stats().Applied != 80 {
		t.Fatalf("newest: offsets %v, applied %d, err %v", offs, st.Stats().Applied, err)
	}
	// Damage the newest: the previous one is used.
	p := filepath.Join(dir, "features-verify.events.snap")
	b, _ := os.ReadFile(p)
	b[len(b)/3] ^= 0xff
	os.WriteFile(p, b, 0o600)
	st, offs, err = load("key-a", "verify.events")
	if err != nil || offs[0].Next != 10 || st.Stats().Applied != 50 {
		t.Fatalf("fallback: offsets %v, applied %d, err %v", offs, st.Stats().Applied, err)
	}
	// Another key or topic (a file copied from another deployment): refused, nothing loaded.
	prev, _ := os.ReadFile(p + ".prev")
	os.WriteFile(filepath.Join(dir, "features-other.events.snap"), prev, 0o600)
	for _, c := range [][2]string{{"key-b", "verify.events"}, {"key-a", "other.events"}} {
		st, _, err = load(c[0], c[1])
		if err == nil || errors.Is(err, ErrNoSnapshot) || st.Stats().Applied != 0 {
			t.Errorf("%v: err %v, applied %d: want a refusal and an empty state", c, err, st.Stats().Applied)
		}
	}
	if _, _, err := (&Snapshots{Dir: t.TempDir(), Topic: "t", State: features.New(features.Config{}), Log: quiet()}).Load(context.Background()); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("empty dir: %v, want ErrNoSnapshot", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".features-*.tmp"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A snapshot of a scorer's state written under one phone-hash key is refused, with a warning, by
// a node under another key (its phone keys would match none of that node's numbers); the node's
// state stays empty, so it replays from Kafka instead. Under the same key it loads, and scores as
// the state it was written from.
func TestSnapshotOfAnotherPhoneKeyIsRefused(t *testing.T) {
	mk := func(key string) *scoring.Scorer {
		s, err := scoring.New(scoring.Config{}, scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte(key))))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	src := mk("key-a")
	t0 := time.Now().Add(-time.Hour).UTC()
	for i := 0; i < 30; i++ {
		src.Apply(&schemas.VerifyEvent{EventID: fmt.Sprintf("e%d", i), TS: t0.Add(time.Duration(i) * time.Second), AppID: "app",
			Flow: schemas.FlowOneClickLogin, Phone: fmt.Sprintf("138001380%02d", i%5), IP: netip.MustParseAddr("203.0.113.7"),
			Outcome: schemas.OutcomeSuccess})
	}
	dir := t.TempDir()
	snap := func(s *scoring.Scorer, log *slog.Logger) *Snapshots {
		return &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: s.KeyFingerprint(), State: s.State(), Log: log}
	}
	if _, err := snap(src, quiet()).Save(at(map[int]int64{0: 30})); err != nil {
		t.Fatal(err)
	}

	other := mk("key-b")
	var logged bytes.Buffer
	_, _, err := snap(other, slog.New(slog.NewTextHandler(&logged, nil))).Load(context.Background())
	if err == nil || errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("snapshot of another phone-hash key: err %v, want a refusal", err)
	}
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "another phone-hash key") {
		t.Errorf("no warning naming the key:\n%s", logged.String())
	}
	if st := other.State().Stats(); st.Applied != 0 || st.Keys[features.KindPhone] != 0 {
		t.Errorf("a refused snapshot left state behind: %+v", st)
	}

	same := mk("key-a")
	offs, _, err := snap(same, quiet()).Load(context.Background())
	if err != nil || offs[0].Next != 30 {
		t.Fatalf("same key: offsets %v, err %v", offs, err)
	}
	if a, b := src.State().Stats(), same.State().Stats(); a.Keys != b.Keys || a.Entries != b.Entries || a.Applied != b.Applied {
		t.Errorf("loaded state %+v, written %+v", b, a)
	}
	// A replayed event is recognized (the event ids came along), a new one is counted.
	if same.Apply(&schemas.VerifyEvent{EventID: "e3", TS: t0.Add(3 * time.Second), AppID: "app", Phone: "13800138003"}) {
		t.Error("an event in the snapshot was applied again")
	}
}

// A snapshot written under other address classification data (a datacenter, cloud or mobile list,
// or ASN data, updated between two starts) is refused with a warning naming it: a mobile pool's
// network key is its /16 and a datacenter's IPv6 one its /48, so keys derived before the update
// would split the windows of the networks it reclassified until they aged out. The node replays.
func TestSnapshotOfOtherClassificationDataIsRefused(t *testing.T) {
	mk := func() *scoring.Scorer {
		s, err := scoring.New(scoring.Config{}, scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("key-a"))))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	src := mk()
	src.Apply(&schemas.VerifyEvent{EventID: "e1", TS: time.Now().Add(-time.Minute).UTC(), AppID: "app", Flow: schemas.FlowOneClickLogin,
		Phone: "13800138000", IP: netip.MustParseAddr("203.0.113.7"), Outcome: schemas.OutcomeSuccess})
	dir := t.TempDir()
	snap := func(s *scoring.Scorer, classes string, log *slog.Logger) *Snapshots {
		return &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: s.KeyFingerprint(), Classes: classes, State: s.State(), Log: log}
	}
	if _, err := snap(src, "0123456789abcdef", quiet()).Save(at(map[int]int64{0: 1})); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	if _, _, err := snap(mk(), "fedcba9876543210", slog.New(slog.NewTextHandler(&logged, nil))).Load(context.Background()); err == nil || errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("snapshot of other classification data: err %v, want a refusal", err)
	}
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "address classification data") {
		t.Errorf("no warning naming the classification data:\n%s", logged.String())
	}
	if offs, _, err := snap(mk(), "0123456789abcdef", quiet()).Load(context.Background()); err != nil || offs[0].Next != 1 {
		t.Fatalf("the same data: offsets %v, err %v", offs, err)
	}
}

// A node started under another configuration — a wrong phone-hash key, other classification
// data, another entry cap — refuses the directory's snapshots and replays (as it must), but its
// own snapshots do not rotate them out: the newest of them stays as .prev, so that the node,
// started again as it was configured before, loads it and replays only what came after. The
// wrong node still loads its own newest snapshot at its next start, and a snapshot of another
// configuration older than MaxAge (refused anyway) is rotated out as usual. Before, the wrong
// node's second snapshot pushed the good one out: fixing the key meant a full replay.
func TestSnapshotOfAnotherConfigurationIsKept(t *testing.T) {
	type conf struct {
		key, classes string
		cfg          features.Config
	}
	good := conf{"key-a", "classes-1", features.Config{}}
	for _, wrong := range []conf{
		{"key-b", "classes-1", features.Config{}},
		{"key-a", "classes-2", features.Config{}},
		{"key-a", "classes-1", features.Config{MaxEntriesPerKey: 64}},
	} {
		dir := t.TempDir()
		node := func(c conf, st *features.State, log *slog.Logger) *Snapshots {
			return &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: c.key, Classes: c.classes, State: st, Log: log, MaxAge: time.Hour}
		}
		stateOf := func(c conf, n int) *features.State {
			st := features.New(c.cfg)
			t0 := features.Sec(time.Now().Add(-time.Hour))
			for i := 1; i <= n; i++ {
				st.Apply(&features.Keys{EventID: uint64(i), T: t0 + uint32(i), Phone: uint64(1000 + i%7), IP: 42})
			}
			return st
		}
		for i, n := range []int{50, 80} { // the good node's .prev and newest
			if _, err := node(good, stateOf(good, n), quiet()).Save(at(map[int]int64{0: int64(10 * (i + 1))})); err != nil {
				t.Fatal(err)
			}
		}
		var logged bytes.Buffer
		bad := node(wrong, features.New(wrong.cfg), slog.New(slog.NewTextHandler(&logged, nil)))
		if _, _, err := bad.Load(context.Background()); err == nil || errors.Is(err, ErrNoSnapshot) {
			t.Fatalf("%+v: the good snapshots loaded (err %v), want a refusal", wrong, err)
		}
		for i := range 3 { // the wrong node's state replayed; three snapshots of it
			bad.State = stateOf(wrong, 100+i)
			if _, err := bad.Save(at(map[int]int64{0: int64(100 + i)})); err != nil {
				t.Fatal(err)
			}
		}
		if n := strings.Count(logged.String(), "kept as .prev"); n != 1 {
			t.Errorf("%+v: said %d times that it keeps the other snapshot, want once:\n%s", wrong, n, logged.String())
		}
		st := features.New(good.cfg)
		offs, _, err := node(good, st, quiet()).Load(context.Background())
		if err != nil || offs[0].Next != 20 || st.Stats().Applied != 80 {
			t.Fatalf("%+v: the good node again: offsets %v, applied %d, err %v; want its newest snapshot (offset 20, 80 applied)", wrong, offs, st.Stats().Applied, err)
		}
		st = features.New(wrong.cfg)
		offs, _, err = node(wrong, st, quiet()).Load(context.Background())
		if err != nil || offs[0].Next != 102 || st.Stats().Applied != 102 {
			t.Fatalf("%+v: the wrong node again: offsets %v, applied %d, err %v; want its own newest (offset 102)", wrong, offs, st.Stats().Applied, err)
		}
		// Older than MaxAge, the other configuration's snapshot is rotated out like any.
		old := node(wrong, stateOf(wrong, 200), quiet())
		old.MaxAge = time.Nanosecond
		if _, err := old.Save(at(map[int]int64{0: 200})); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(dir, "features-verify.events.snap.prev"))
		if err != nil {
			t.Fatal(err)
		}
		raw, _, err := features.New(wrong.cfg).PeekSnapshot(f)
		f.Close()
		if err != nil || !strings.Contains(string(raw), `"offsets":{"0":102}`) {
			t.Errorf("%+v: .prev after the old snapshot's MaxAge: %s (err %v), want the wrong node's previous one", wrong, raw, err)
		}
	}
}

// A process killed while writing a snapshot leaves its temporary file behind; the next start
// removes such files once nobody has written to them for a while (on Kubernetes each one counts
// against the snapshot volume's size limit), and leaves a recent one — another process sharing
// the directory may be writing it — and other topics' alone.
func TestSnapshotsRemoveLeftTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	src := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
	if _, err := src.Save(at(map[int]int64{0: 20})); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, ".features-verify.events-123.tmp")
	fresh := filepath.Join(dir, ".features-verify.events-456.tmp")
	other := filepath.Join(dir, ".features-other.topic-789.tmp")
	for _, p := range []string{old, fresh, other} {
		if err := os.WriteFile(p, []byte("partly written"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-time.Hour)
	for _, p := range []string{old, other} {
		if err := os.Chtimes(p, hourAgo, hourAgo); err != nil {
			t.Fatal(err)
		}
	}
	offs, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet()}).Load(context.Background())
	if err != nil || offs[0].Next != 20 {
		t.Fatalf("load beside temporary files: offsets %v, %v", offs, err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a temporary snapshot untouched for an hour is still there (%v)", err)
	}
	for _, p := range []string{fresh, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}

// A snapshot covering offsets the topic does not reach was written for an earlier topic of that
// name (deleted and created again): loading it kept the old topic's events in the state — on the
// real broker, 2,038 of them beside the new topic's 210 — and the next snapshot kept them again.
func TestSnapshotOfARecreatedTopicIsRefused(t *testing.T) {
	fastRetries(t)
	dir := t.TempDir()
	src := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
	if _, err := src.Save(at(map[int]int64{0: 500, 1: 40})); err != nil {
		t.Fatal(err)
	}
	load := func(ends map[int]int64, endsErr error) (map[int]consumers.Mark, *features.State, error) {
		st := features.New(features.Config{})
		offs, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, Log: quiet(),
			Ends: func() (map[int]int64, error) { return ends, endsErr }}).Load(context.Background())
		return offs, st, err
	}
	if offs, _, err := load(map[int]int64{0: 500, 1: 90}, nil); err != nil || offs[0].Next != 500 {
		t.Errorf("a topic that reaches the snapshot's offsets: %v, %v", offs, err)
	}
	for name, ends := range map[string]map[int]int64{
		"shorter":         {0: 65, 1: 90},
		"fewer partition": {0: 600},
	} {
		offs, st, err := load(ends, nil)
		if err == nil || errors.Is(err, ErrNoSnapshot) || !strings.Contains(err.Error(), "created again") || !strings.Contains(err.Error(), "another cluster's") {
			t.Errorf("%s topic: loaded offsets %v, err %v; want refused", name, offs, err)
		}
		if n := st.Stats().Applied; n != 0 {
			t.Errorf("%s topic: the refused snapshot left %d events in the state", name, n)
		}
	}
}

// While the broker cannot say what the topic holds, a snapshot is not loaded unchecked: Load waits
// for the broker (the node is not ready meanwhile) and, if the wait ends first, loads nothing, so
// the feed replays. A snapshot loaded unchecked may be of an earlier topic of that name.
func TestSnapshotWaitsForTheBrokerToCheckIt(t *testing.T) {
	fastRetries(t)
	dir, t0 := t.TempDir(), time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	saveOnePartition(t, dir, t0)
	away := errors.New("dial tcp 127.0.0.1:9092: connection refused")
	okEnds := func() (map[int]int64, error) { return map[int]int64{0: 900}, nil }
	okTimes := func(map[int]int64) (map[int]time.Time, error) { return map[int]time.Time{0: t0}, nil }
	for name, c := range map[string]struct {
		ends  func() (map[int]int64, error)
		times func(map[int]int64) (map[int]time.Time, error)
	}{
		"end offsets":   {ends: func() (map[int]int64, error) { return nil, away }, times: okTimes},
		"message times": {ends: okEnds, times: func(map[int]int64) (map[int]time.Time, error) { return nil, away }},
	} {
		st := features.New(features.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		marks, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, Log: quiet(), Ends: c.ends, Times: c.times}).Load(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "connection refused") || marks != nil {
			t.Errorf("%s unreadable: loaded %v, err %v; want nothing loaded and the broker's error", name, marks, err)
		}
		if n := st.Stats().Applied; n != 0 {
			t.Errorf("%s unreadable: %d events in the state", name, n)
		}
	}
	// The broker answers after more failures than the quick retries: the snapshot is checked, then
	// loaded.
	st := features.New(features.Config{})
	marks, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, Log: quiet(),
		Ends: failing(len(checkRetries)+4, away, map[int]int64{0: 900}), Times: okTimes}).Load(context.Background())
	if err != nil || marks[0].Next != 500 || st.Stats().Applied != 20 {
		t.Errorf("broker back: %v, %v, applied %d; want the snapshot loaded", marks, err, st.Stats().Applied)
	}
}

// A topic deleted and created again that has since grown past the snapshot's offsets (here with
// more partitions, as after raising kafka.partitions) passes the end-offset check: the snapshot
// records the time of the last message it covers in each partition, and the message the topic
// holds at that offset now is of another time. Before, such a snapshot was loaded: on the real
// broker the state held 40,150 numbers where the topic had 32,176 — 8,000 of the old topic's
// events in, about 8,000 of the new one's skipped.
func TestSnapshotOfATopicRecreatedLongerIsRefused(t *testing.T) {
	fastRetries(t)
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 123e6, time.UTC)
	src := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
	if _, err := src.Save(func() map[int]consumers.Mark {
		return map[int]consumers.Mark{0: {Next: 500, Last: t0}, 1: {Next: 40, Last: t0.Add(time.Second)}, 2: {Next: 0}}
	}); err != nil {
		t.Fatal(err)
	}
	ends := map[int]int64{0: 900, 1: 90, 2: 70, 3: 60, 4: 80} // longer, and more partitions
	var asked map[int]int64
	load := func(times map[int]time.Time, timesErr error) (map[int]consumers.Mark, *features.State, error) {
		st := features.New(features.Config{})
		var logged bytes.Buffer
		marks, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, Log: slog.New(slog.NewTextHandler(&logged, nil)),
			Ends: func() (map[int]int64, error) { return ends, nil },
			Times: func(offsets map[int]int64) (map[int]time.Time, error) {
				asked = offsets
				return times, timesErr
			}}).Load(context.Background())
		return marks, st, err
	}

	// The same topic: loaded, with the times to resume from.
	marks, st, err := load(map[int]time.Time{0: t0, 1: t0.Add(time.Second)}, nil)
	if err != nil || marks[0].Next != 500 || !marks[0].Last.Equal(t0) || marks[1].Next != 40 || st.Stats().Applied != 20 {
		t.Fatalf("same topic: %v, %v, applied %d", marks, err, st.Stats().Applied)
	}
	if len(asked) != 2 || asked[0] != 499 || asked[1] != 39 {
		t.Errorf("asked for the times of %v, want the last covered messages {0: 499, 1: 39}", asked)
	}

	// Recreated: another message at the last covered offset of one partition.
	marks, st, err = load(map[int]time.Time{0: t0, 1: t0.Add(-3 * time.Hour)}, nil)
	// The same refusal meets a snapshot copied from another cluster's topic of that name (a volume
	// restored into another deployment, which has since passed its offsets): it said only that the
	// topic was deleted and created again (h12's held-out run), sending the operator to look for a
	// deletion that never happened.
	if err == nil || errors.Is(err, ErrNoSnapshot) || !strings.Contains(err.Error(), "created again") || !strings.Contains(err.Error(), "another cluster's") ||
		!strings.Contains(err.Error(), "partition 1") {
		t.Errorf("recreated topic: loaded %v, err %v; want refused naming partition 1, another cluster's topic and a topic created again", marks, err)
	}
	if n := st.Stats().Applied; n != 0 {
		t.Errorf("recreated topic: the refused snapshot left %d events in the state", n)
	}

	// Gone (retention deleted the message): nothing to compare, loaded. (Unreadable:
	// TestSnapshotWaitsForTheBrokerToCheckIt.)
	if marks, _, err := load(map[int]time.Time{}, nil); err != nil || marks[0].Next != 500 {
		t.Errorf("messages gone: %v, %v; want the snapshot loaded", marks, err)
	}
}

// A snapshot directory that cannot be written (here: a file stands where it should be) is
// reported by CheckWritable at the start, naming the directory, instead of at the first periodic
// snapshot minutes later; a usable one is created if missing and left empty.
func TestSnapshotDirCheckedAtStart(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "snapshots")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		err := (&Snapshots{Dir: dir, Topic: "verify.events"}).CheckWritable()
		if err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v, want an error naming it", dir, err)
		}
	}
	ok := filepath.Join(base, "new", "snapshots")
	if err := (&Snapshots{Dir: ok, Topic: "verify.events"}).CheckWritable(); err != nil {
		t.Fatalf("a directory that can be created: %v", err)
	}
	if left, _ := os.ReadDir(ok); len(left) != 0 {
		t.Errorf("the check left %d files behind", len(left))
	}
}

// saveOnePartition saves in dir a snapshot of 20 events covering partition 0 up to offset 500,
// whose last message was of t0.
func saveOnePartition(t *testing.T, dir string, t0 time.Time) {
	t.Helper()
	if _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}).Save(func() map[int]consumers.Mark {
		return map[int]consumers.Mark{0: {Next: 500, Last: t0}}
	}); err != nil {
		t.Fatal(err)
	}
}

// fastRetries makes the snapshot checks' retries quick for one test.
func fastRetries(t *testing.T) {
	old := checkRetries
	checkRetries = []time.Duration{time.Millisecond, time.Millisecond}
	t.Cleanup(func() { checkRetries = old })
}

// A node starting right after the broker came back meets "Not Leader For Partition" on its first
// requests while leaders are elected (seen on the real broker): the end offsets and message times
// a snapshot is checked against are asked again, so that such a moment does not load a snapshot
// of a recreated topic unchecked.
func TestSnapshotChecksRetryTransientErrors(t *testing.T) {
	fastRetries(t)
	dir, t0 := t.TempDir(), time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	saveOnePartition(t, dir, t0)
	notLeader := errors.New("[6] Not Leader For Partition")
	for name, c := range map[string]struct {
		ends  func() (map[int]int64, error)
		times func(map[int]int64) (map[int]time.Time, error)
	}{
		"end offsets": {ends: failing(2, notLeader, map[int]int64{0: 40})},
		"message times": {ends: func() (map[int]int64, error) { return map[int]int64{0: 900}, nil },
			times: func() func(map[int]int64) (map[int]time.Time, error) {
				f := failing(2, notLeader, map[int]time.Time{0: t0.Add(time.Hour)})
				return func(map[int]int64) (map[int]time.Time, error) { return f() }
			}()},
	} {
		st := features.New(features.Config{})
		_, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, Log: quiet(), Ends: c.ends, Times: c.times}).Load(context.Background())
		if err == nil || !strings.Contains(err.Error(), "created again") || st.Stats().Applied != 0 {
			t.Errorf("%s failing twice, then showing a recreated topic: err %v, applied %d; want refused", name, err, st.Stats().Applied)
		}
	}
}

// failing returns a function that fails n times with err, then returns v.
func failing[T any](n int, err error, v T) func() (T, error) {
	return func() (T, error) {
		if n > 0 {
			n--
			var zero T
			return zero, err
		}
		return v, nil
	}
}

// A node restarted right after it was killed mid-write (an OOM kill, a container restart: seconds
// later) finds the temporary file too fresh to remove at its start, and used to keep it on the
// snapshot volume for as long as it ran (a real scorer: still there after its periodic snapshots).
// Each snapshot it writes removes those nobody has written to for a while, as a start does.
func TestSnapshotSaveRemovesLeftTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, ".features-verify.events-123.tmp")
	mine := filepath.Join(dir, ".features-verify.events-456.tmp") // being written by another process
	for _, p := range []string{left, mine} {
		if err := os.WriteFile(p, []byte("partly written"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(left, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}).Save(at(map[int]int64{0: 20})); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a temporary snapshot untouched for an hour survived a snapshot (%v)", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a recent temporary snapshot was removed: %v", err)
	}
}

// Saves at once (a node stopping while its periodic snapshot is written) each succeed, and leave
// the newest and the previous snapshot, each loadable, and no temporary file.
func TestSnapshotSavesAtOnce(t *testing.T) {
	dir := t.TempDir()
	s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() { _, errs[i] = s.Save(at(map[int]int64{0: int64(100*round + i)})) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, save %d: %v", round, i, err)
			}
		}
	}
	for _, name := range []string{"features-verify.events.snap", "features-verify.events.snap.prev"} {
		st := features.New(features.Config{})
		probe := &Snapshots{Dir: t.TempDir(), Topic: "verify.events", Fingerprint: "key-a", State: st, Log: quiet()}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(probe.path(), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := probe.Load(context.Background()); err != nil || st.Stats().Applied != 20 {
			t.Errorf("%s: %v, applied %d", name, err, st.Stats().Applied)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".features-*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A snapshot is not written before the feed knows its positions (it had not read the topic's
// partitions: the broker went away at the start, and the node was stopped): such a snapshot
// covered the state without offsets, rotated the good one to .prev, and the next start loaded it
// and replayed the whole retention window; twice, and the good snapshot was gone.
func TestSnapshotWithoutPositionsIsNotWritten(t *testing.T) {
	dir := t.TempDir()
	good := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(30), Log: quiet()}
	if _, err := good.Save(at(map[int]int64{0: 30})); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet()}
		_, err := s.Save(func() map[int]consumers.Mark { return nil })
		if err == nil || !strings.Contains(err.Error(), "no feed positions") {
			t.Errorf("a snapshot without positions: %v, want it refused", err)
		}
	}
	st := features.New(features.Config{})
	marks, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, Log: quiet()}).Load(context.Background())
	if err != nil || marks[0].Next != 30 || st.Stats().Applied != 30 {
		t.Errorf("after two refused snapshots: loaded %v, %d events, %v; want the good one", marks, st.Stats().Applied, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".features-*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Something other than a file under a snapshot's name (a directory: a volume mounted at the file's
// path) is reported at the start, naming it, and every snapshot says so, instead of being
// renamed to .prev by the first snapshot — after which every snapshot failed on renaming the
// newest onto that directory ("rename …snap …snap.prev: file exists").
func TestSnapshotNameTakenByADirectory(t *testing.T) {
	for _, name := range []string{"features-verify.events.snap", "features-verify.events.snap.prev"} {
		dir := t.TempDir()
		taken := filepath.Join(dir, name)
		if err := os.Mkdir(taken, 0o700); err != nil {
			t.Fatal(err)
		}
		s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
		if err := s.CheckWritable(); err == nil || !strings.Contains(err.Error(), taken) || !strings.Contains(err.Error(), "directory") {
			t.Errorf("%s a directory: start check %v, want an error naming it", name, err)
		}
		for i := range 2 {
			if _, err := s.Save(at(map[int]int64{0: 20})); err == nil || !strings.Contains(err.Error(), taken) {
				t.Errorf("%s a directory: snapshot %d: %v, want an error naming it", name, i+1, err)
			}
		}
		if fi, err := os.Stat(taken); err != nil || !fi.IsDir() {
			t.Errorf("%s: the directory was moved (%v)", name, err)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".features-*.tmp")); len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
		// Loading is not disturbed: the directory is refused, a replay takes over.
		if _, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet()}).Load(context.Background()); err == nil && name == "features-verify.events.snap" {
			t.Errorf("a directory loaded as a snapshot")
		}
	}
}

// A named pipe or a device under a snapshot's name is refused without reading it, and the older
// snapshot is loaded: opening a named pipe blocked until something wrote to it (the node hung at
// its start, unready, and SIGTERM did not stop it), and a link to /dev/zero was read until the
// kernel killed the process (21 GB).
func TestSnapshotNameTakenByAPipeOrDevice(t *testing.T) {
	for _, kind := range []string{"named pipe", "device"} {
		dir := t.TempDir()
		s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
		if _, err := s.Save(at(map[int]int64{0: 20})); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, "features-verify.events.snap")
		if err := os.Rename(name, name+".prev"); err != nil {
			t.Fatal(err)
		}
		var err error
		if kind == "named pipe" {
			err = syscall.Mkfifo(name, 0o600)
		} else {
			err = os.Symlink(os.DevNull, name) // bounded; /dev/zero would take the machine's memory without the fix
		}
		if err != nil {
			t.Skipf("%s: %v", kind, err)
		}
		st := features.New(features.Config{})
		type loaded struct {
			marks map[int]consumers.Mark
			err   error
		}
		done := make(chan loaded, 1)
		go func() {
			marks, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, Log: quiet()}).Load(context.Background())
			done <- loaded{marks, err}
		}()
		var got loaded
		select {
		case got = <-done:
		case <-time.After(time.Minute): // a hang, not a speed: the load takes milliseconds
			if kind == "named pipe" { // release the blocked open
				if w, err := os.OpenFile(name, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
			}
			t.Fatalf("%s under the snapshot's name: Load did not return", kind)
		}
		if got.err != nil || got.marks[0].Next != 20 || st.Stats().Applied != 20 {
			t.Errorf("%s under the snapshot's name: Load %v, marks %v, applied %d; want the .prev snapshot (offset 20, 20 applied)", kind, got.err, got.marks, st.Stats().Applied)
		}
	}
}

// A snapshot written longer ago than the feature retention is refused (a replay takes over): its
// state has left every window, and resuming from its offsets read more of the topic than a replay
// (a node back after three days read three days of events, where a replay reads one). A younger
// one loads.
func TestSnapshotOlderThanTheRetentionIsRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}).Save(at(map[int]int64{0: 20})); err != nil {
		t.Fatal(err)
	}
	load := func(maxAge time.Duration) (*features.State, error) {
		st := features.New(features.Config{})
		_, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, MaxAge: maxAge, Log: quiet()}).Load(context.Background())
		return st, err
	}
	// The snapshot was written before this load: any age above a nanosecond is older than 1ns.
	if st, err := load(time.Nanosecond); err == nil || errors.Is(err, ErrNoSnapshot) || !strings.Contains(err.Error(), "retention") || st.Stats().Applied != 0 {
		t.Errorf("older than MaxAge: err %v, applied %d; want a refusal naming the retention, an empty state", err, st.Stats().Applied)
	}
	if st, err := load(24 * time.Hour); err != nil || st.Stats().Applied != 20 {
		t.Errorf("younger than MaxAge: err %v, applied %d; want it loaded", err, st.Stats().Applied)
	}
}

// A process holding the directory's lock removes every temporary snapshot of its
// topic at once, however recent: no other process writes them. A node OOM-killed while writing
// its snapshot and restarted seconds later used to keep each such file for ten minutes — one more
// snapshot's size on the volume per kill. Other topics' files stay.
func TestExclusiveSnapshotsRemoveRecentTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, ".features-verify.events-123.tmp")
	other := filepath.Join(dir, ".features-other.topic-789.tmp")
	for _, p := range []string{left, other} {
		if err := os.WriteFile(p, []byte("partly written"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet(), Lock: locked(t, dir, "verify.events")}
	if _, _, err := s.Load(context.Background()); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("load: %v, want ErrNoSnapshot", err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a recent temporary snapshot is still there under the lock (%v)", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another topic's temporary snapshot was removed: %v", err)
	}
}

// A process killed after the newest snapshot became .prev and before the new one took its name
// left no newest: its restart loaded the older .prev. The newest's name now always holds one.
func TestSnapshotNewestNeverMissingMidSave(t *testing.T) {
	dir := t.TempDir()
	s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
	if _, err := s.Save(at(map[int]int64{0: 10})); err != nil {
		t.Fatal(err)
	}
	var missing bool
	betweenRenames = func() { _, err := os.Stat(s.path()); missing = err != nil }
	defer func() { betweenRenames = func() {} }()
	if _, err := s.Save(at(map[int]int64{0: 20})); err != nil {
		t.Fatal(err)
	}
	if missing {
		t.Error("between keeping the previous snapshot and renaming the new one, no snapshot had the newest's name")
	}
	offs, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet()}).Load(context.Background())
	if err != nil || offs[0].Next != 20 {
		t.Fatalf("newest: offsets %v, %v; want 20", offs, err)
	}
	os.Remove(s.path())
	offs, _, err = (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet()}).Load(context.Background())
	if err != nil || offs[0].Next != 10 {
		t.Fatalf(".prev: offsets %v, %v; want 10", offs, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".features-*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A snapshot whose written time lies ahead of the node's clock (the clock that wrote it was
// ahead, and was stepped back since) has no age to trust: it used to load as a young one whatever
// its real age (an hour-old view of it: -48h), and one of another configuration stayed as .prev
// until the clock caught up with it. It is refused, and rotated out like any other; a few seconds
// ahead — clocks drifting within schemas.MaxClockSkew — still loads.
func TestSnapshotWrittenInTheFutureIsRefused(t *testing.T) {
	dir := t.TempDir()
	ahead := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }
	save := func(key string, clock func() time.Time) {
		t.Helper()
		if _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: key, State: stateWith(20), Log: quiet(), Clock: clock}).Save(at(map[int]int64{0: 20})); err != nil {
			t.Fatal(err)
		}
	}
	load := func(key string) (*features.State, error) {
		st := features.New(features.Config{})
		_, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: key, State: st, MaxAge: 24 * time.Hour, Log: quiet()}).Load(context.Background())
		return st, err
	}
	save("key-a", ahead(48*time.Hour))
	if st, err := load("key-a"); err == nil || errors.Is(err, ErrNoSnapshot) || !strings.Contains(err.Error(), "clock") || st.Stats().Applied != 0 {
		t.Errorf("written 48h ahead: err %v, applied %d; want a refusal naming the clock, an empty state", err, st.Stats().Applied)
	}
	save("key-a", ahead(time.Minute))
	if st, err := load("key-a"); err != nil || st.Stats().Applied != 20 {
		t.Errorf("written 1m ahead (clock drift): err %v, applied %d; want it loaded", err, st.Stats().Applied)
	}

	// A snapshot of another key written ahead is not kept as .prev by this node's snapshots.
	dir = t.TempDir()
	save("key-b", ahead(48*time.Hour))
	save("key-a", nil)
	save("key-a", nil)
	os.Remove(filepath.Join(dir, "features-verify.events.snap"))
	if st, err := load("key-a"); err != nil || st.Stats().Applied != 20 {
		t.Errorf(".prev after two snapshots of this node over a future one of another key: err %v, applied %d; want this node's own", err, st.Stats().Applied)
	}
}

// Processes of other topics share a directory, and a topic's name may begin with another's and a
// dash (verify.events, verify.events-v2): the node of verify.events removed verify.events-v2's
// snapshots being written (.features-verify.events-v2-123.tmp matched its own pattern), at its
// start and before each of its snapshots — held-out run of two scorers sharing a directory,
// snapshots every second: every snapshot of the second one failed ("rename …: no such file or
// directory"), its shutdown's too.
func TestSnapshotsLeaveTemporaryFilesOfATopicNamedLikeTheirs(t *testing.T) {
	for _, exclusive := range []bool{true, false} {
		t.Run(fmt.Sprintf("exclusive=%v", exclusive), func(t *testing.T) {
			dir := t.TempDir()
			mine := filepath.Join(dir, ".features-verify.events-123.tmp")
			link := filepath.Join(dir, ".features-verify.events-prev.tmp")
			theirs := []string{
				filepath.Join(dir, ".features-verify.events-v2-456.tmp"),
				filepath.Join(dir, ".features-verify.events-v2-prev.tmp"),
				filepath.Join(dir, ".features-verify.events-1-789.tmp"), // topic verify.events-1
			}
			hourAgo := time.Now().Add(-time.Hour)
			for _, p := range append([]string{mine, link}, theirs...) {
				if err := os.WriteFile(p, []byte("partly written"), 0o600); err != nil {
					t.Fatal(err)
				}
				if !exclusive { // left for an hour: this node's are removed without the lock too
					if err := os.Chtimes(p, hourAgo, hourAgo); err != nil {
						t.Fatal(err)
					}
				}
			}
			var lock *SnapshotLock
			if exclusive {
				lock = locked(t, dir, "verify.events")
			}
			s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet(), Lock: lock}
			if _, err := s.Save(at(map[int]int64{0: 20})); err != nil {
				t.Fatal(err)
			}
			if _, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet(), Lock: lock}).Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{mine, link} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("this topic's %s is still there (%v)", filepath.Base(p), err)
				}
			}
			for _, p := range theirs {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("another topic's %s was removed: %v", filepath.Base(p), err)
				}
			}
		})
	}
}

// A save that failed after keeping the newest as .prev (the new one's rename refused) leaves the
// newest and .prev one file under two names; the next save's link of the newest renamed onto
// .prev then did nothing (rename(2) of two links to one file) and stayed, and the save after
// logged it as "a partly written feature snapshot (a process stopped while writing it)" (seen on
// the held-out runs of a directory shared by mistake).
func TestSnapshotKeepsNoLinkBehindWhenPrevIsTheNewest(t *testing.T) {
	dir := t.TempDir()
	s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
	if _, err := s.Save(at(map[int]int64{0: 10})); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(s.path(), s.path()+".prev"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(at(map[int]int64{0: 20})); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(left) > 0 {
		t.Errorf("temporary files left after a save: %v", left)
	}
}

// roomForTwo is a state whose snapshots meet a full volume once two snapshot files of its topic
// are in dir (the newest and .prev): a volume sized for two.
type roomForTwo struct {
	*features.State
	dir string
}

func (r roomForTwo) WriteSnapshot(w io.Writer, meta func() []byte) (int64, error) {
	files, _ := filepath.Glob(filepath.Join(r.dir, "features-verify.events.snap*"))
	if len(files) >= 2 {
		return 0, &os.PathError{Op: "write", Path: filepath.Join(r.dir, ".features-verify.events-1.tmp"), Err: syscall.ENOSPC}
	}
	return r.State.WriteSnapshot(w, meta)
}

// A snapshot volume with room for two snapshots and not three (the state grew past a third of
// it): every snapshot failed with "no space left on device" from then on, for as long as the
// node ran — held-out run on a 100 MB tmpfs with 48 MB snapshots: the newest grew older, and
// each restart replayed more. The node now makes room by removing its own .prev and writes the
// newest, which a restart loads; a .prev of another configuration is kept (and the snapshot
// fails as before).
func TestSnapshotOnAFullVolumeReplacesPrev(t *testing.T) {
	dir := t.TempDir()
	s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: roomForTwo{stateWith(20), dir}, Log: quiet()}
	for _, off := range []int64{10, 20, 30, 40} {
		if _, err := s.Save(at(map[int]int64{0: off})); err != nil {
			t.Fatalf("snapshot at offset %d: %v", off, err)
		}
	}
	offs, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet()}).Load(context.Background())
	if err != nil || offs[0].Next != 40 {
		t.Fatalf("newest: offsets %v, %v; want 40", offs, err)
	}
	if _, err := os.Stat(s.path() + ".prev"); err != nil {
		t.Errorf("no .prev after the newest was written: %v", err)
	}

	// .prev of another phone-hash key stays: the snapshot fails.
	other := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-b", State: roomForTwo{stateWith(20), dir}, Log: quiet()}
	if _, err := other.Save(at(map[int]int64{0: 50})); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("snapshot of key b beside key a's: %v, want ENOSPC", err)
	}
}

// noRoom is a state whose snapshots always meet a full volume.
type noRoom struct{ *features.State }

func (noRoom) WriteSnapshot(io.Writer, func() []byte) (int64, error) {
	return 0, &os.PathError{Op: "write", Path: ".features-verify.events-1.tmp", Err: syscall.ENOSPC}
}

// Making room on a full volume never removes the only snapshot there: .prev goes only beside a
// newest that is another file.
func TestSnapshotOnAFullVolumeKeepsTheOnlySnapshot(t *testing.T) {
	dir := t.TempDir()
	s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
	if _, err := s.Save(at(map[int]int64{0: 10})); err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"no newest", "newest and .prev one file"} {
		if how == "no newest" {
			if err := os.Rename(s.path(), s.path()+".prev"); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Link(s.path()+".prev", s.path()); err != nil {
			t.Fatal(err)
		}
		full := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: noRoom{stateWith(20)}, Log: quiet()}
		if _, err := full.Save(at(map[int]int64{0: 20})); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s: snapshot on a full volume: %v, want ENOSPC", how, err)
		}
		offs, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet()}).Load(context.Background())
		if err != nil || offs[0].Next != 10 {
			t.Fatalf("%s: after a snapshot failed for room: offsets %v, %v; want the snapshot there, 10", how, offs, err)
		}
	}
}

// A snapshot directory that is a symbolic link to nothing (a volume not mounted where the link
// points) was reported as "mkdir DIR: file exists", which sends the reader looking for a file
// in the way; the error names the link and its missing target.
func TestSnapshotDirDanglingLinkNamed(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "volume", "snapshots")
	dir := filepath.Join(base, "snapshots")
	if err := os.Symlink(target, dir); err != nil {
		t.Fatal(err)
	}
	s := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet()}
	_, saveErr := s.Save(at(map[int]int64{0: 10}))
	for what, err := range map[string]error{"at the start": s.CheckWritable(), "snapshot": saveErr} {
		if err == nil || !strings.Contains(err.Error(), "symbolic link to "+target) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%s: %v; want it to name the link to %s, which does not exist", what, err, target)
		}
	}
}

// Where retention deleted the last message a snapshot covers, the message at its offset cannot be
// compared; the oldest message the partition holds can: it was produced after the snapshot's
// last, so it is not older than that by more than the feature retention. A snapshot of another
// topic of that name — another cluster's verify.events (a volume restored from staging, a
// migration to a new cluster), or the topic deleted and created again — whose offsets the topic
// has passed and no longer holds was loaded: the state held the other topic's events, and its
// windows counted them for up to the retention.
func TestSnapshotOfAnotherTopicWhoseOffsetsAreGoneIsRefused(t *testing.T) {
	fastRetries(t)
	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	last := now.Add(-2 * time.Hour)
	src := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet(), Clock: clock}
	if _, err := src.Save(func() map[int]consumers.Mark {
		return map[int]consumers.Mark{0: {Next: 500, Last: last}, 1: {Next: 40, Last: last.Add(time.Second)}}
	}); err != nil {
		t.Fatal(err)
	}
	load := func(oldest map[int]time.Time) (map[int]consumers.Mark, *features.State, error) {
		st := features.New(features.Config{})
		marks, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: st, Log: quiet(), Clock: clock, MaxAge: 25 * time.Hour,
			Ends: func() (map[int]int64, error) { return map[int]int64{0: 90_000, 1: 80_000}, nil },
			// Neither message the snapshot ended at is held any more.
			Times:  func(map[int]int64) (map[int]time.Time, error) { return map[int]time.Time{}, nil },
			Oldest: func([]int) (map[int]time.Time, error) { return oldest, nil },
		}).Load(context.Background())
		return marks, st, err
	}

	// This topic: retention deleted up to past the snapshot's offsets; what it holds is newer.
	marks, st, err := load(map[int]time.Time{0: last.Add(time.Hour), 1: last.Add(-time.Minute)})
	if err != nil || marks[0].Next != 500 || st.Stats().Applied != 20 {
		t.Fatalf("this topic, retention past the snapshot: %v, %v, applied %d; want loaded", marks, err, st.Stats().Applied)
	}
	// Another topic of that name: it holds a week at offsets past the snapshot's.
	marks, st, err = load(map[int]time.Time{0: last.Add(time.Hour), 1: now.Add(-7 * 24 * time.Hour)})
	if err == nil || errors.Is(err, ErrNoSnapshot) || !strings.Contains(err.Error(), "partition 1") || !strings.Contains(err.Error(), "another topic") {
		t.Errorf("another topic: loaded %v, err %v; want refused naming partition 1", marks, err)
	}
	if n := st.Stats().Applied; n != 0 {
		t.Errorf("another topic: the refused snapshot left %d events in the state", n)
	}
}

// A snapshot whose metadata does not decode (another build's, or one written by hand) is refused
// naming the member and what it must be, as the event decoder words it, not with encoding/json's
// "cannot unmarshal string into Go struct field snapshotMeta.offsets of type int64".
func TestSnapshotOfUnreadableMetadataNamesTheMember(t *testing.T) {
	for meta, want := range map[string]string{
		`{"topic":"verify.events","offsets":{"0":"ten"}}`:          "metadata: offsets",
		`{"topic":"verify.events","offsets":{"0":10},"written":7}`: "metadata: written: must be an RFC 3339 time string, got number",
		`{"topic":["verify.events"]}`:                              "metadata: topic: must be a string, got array",
		`["verify.events"]`:                                        "metadata: expected a JSON object, got array",
	} {
		dir := t.TempDir()
		st := stateWith(10)
		if _, err := (&Snapshots{Dir: dir, Topic: "verify.events", State: st, Log: quiet()}).Save(at(map[int]int64{0: 10})); err != nil {
			t.Fatal(err)
		}
		paths, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, p := range paths {
			if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.WriteSnapshot(f, func() []byte { return []byte(meta) }); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		var logged bytes.Buffer
		_, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", State: features.New(features.Config{}), Log: slog.New(slog.NewTextHandler(&logged, nil))}).Load(context.Background())
		got := fmt.Sprint(err) + "\n" + logged.String()
		if err == nil || !strings.Contains(got, want) || strings.Contains(got, "Go struct") || strings.Contains(got, "Go value") || strings.Contains(got, "UnmarshalJSON") {
			t.Errorf("snapshot of metadata %s: %v, want %q\n%s", meta, err, want, logged.String())
		}
	}
}
