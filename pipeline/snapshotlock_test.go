package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/scoring/features"
)

// One holder per directory and topic: a second lock (flock conflicts between two open files in
// one process as between two processes) is refused with an error naming the directory, the topic
// and the holder; another topic shares the directory; a released lock can be taken again.
func TestLockSnapshotsOneHolderPerDirectoryAndTopic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snaps") // created by the lock
	lock, err := LockSnapshots(dir, "verify.events")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockSnapshots(dir, "verify.events")
	if !errors.Is(err, ErrSnapshotDirInUse) {
		t.Fatalf("second lock: %v, want ErrSnapshotDirInUse", err)
	}
	for _, want := range []string{dir, "verify.events", fmt.Sprintf("pid %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	other, err := LockSnapshots(dir, "other.events")
	if err != nil {
		t.Fatalf("another topic's lock in the same directory: %v", err)
	}
	other.Release()
	lock.Release()
	lock.Release() // twice is harmless
	again, err := LockSnapshots(dir, "verify.events")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Release()
}

// A directory where no lock file can be created is not locked (nothing writes snapshots there).
func TestLockSnapshotsReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only directories")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	lock, err := LockSnapshots(dir, "verify.events")
	if err != nil || lock != nil {
		t.Fatalf("lock of a read-only directory: lock %v, %v; want none, no error", lock != nil, err)
	}
}

// locked takes dir's lock of topic for the test.
func locked(t *testing.T, dir, topic string) *SnapshotLock {
	t.Helper()
	l, err := LockSnapshots(dir, topic)
	if err != nil || l == nil {
		t.Fatalf("lock %s: %v", dir, err)
	}
	t.Cleanup(l.Release)
	return l
}

// A snapshot directory deleted while its node runs (an operator emptying it to force a replay)
// took the lock file with it; the node's next snapshot made the directory again, without a lock,
// and a second process started on it took one of its own: the two wrote there at once, the first
// removing the second's snapshots while they were written (held-out run: every snapshot of the
// second failed). The node now takes the lock again at its next snapshot, and a second process
// is refused; when the second came first, the first stops writing there instead.
func TestSnapshotLockTakenAgainAfterTheDirectoryWasDeleted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snaps")
	first := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet(), Lock: locked(t, dir, "verify.events")}
	if _, err := first.Save(at(map[int]int64{0: 20})); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Save(at(map[int]int64{0: 30})); err != nil {
		t.Fatalf("snapshot into the deleted directory: %v", err)
	}
	if l, err := LockSnapshots(dir, "verify.events"); !errors.Is(err, ErrSnapshotDirInUse) {
		l.Release()
		t.Fatalf("second process on the directory made again: %v, want ErrSnapshotDirInUse", err)
	}

	// The second process came first this time: it holds the directory, the first no longer
	// writes there.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	second := &Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: stateWith(20), Log: quiet(), Lock: locked(t, dir, "verify.events")}
	if _, err := first.Save(at(map[int]int64{0: 40})); !errors.Is(err, ErrSnapshotDirInUse) {
		t.Fatalf("first process's snapshot with the second holding the new lock: %v, want ErrSnapshotDirInUse", err)
	}
	if _, err := second.Save(at(map[int]int64{0: 50})); err != nil {
		t.Fatalf("second process's snapshot: %v", err)
	}
	offs, _, err := (&Snapshots{Dir: dir, Topic: "verify.events", Fingerprint: "key-a", State: features.New(features.Config{}), Log: quiet()}).Load(context.Background())
	if err != nil || offs[0].Next != 50 {
		t.Fatalf("newest: offsets %v, %v; want the second's, 50", offs, err)
	}
}
