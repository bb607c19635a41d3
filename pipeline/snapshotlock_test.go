package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One holder per directory and topic: a second lock (flock conflicts between two open files in
// one process as between two processes) is refused with an error naming the directory, the topic
// and the holder; another topic shares the directory; a released lock can be taken again.
func TestLockSnapshotsOneHolderPerDirectoryAndTopic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snaps") // created by the lock
	release, err := LockSnapshots(dir, "verify.events")
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
	other()
	release()
	release() // twice is harmless
	again, err := LockSnapshots(dir, "verify.events")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

// A directory where no lock file can be created is not locked (nothing writes snapshots there).
func TestLockSnapshotsReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only directories")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	release, err := LockSnapshots(dir, "verify.events")
	if err != nil || release != nil {
		t.Fatalf("lock of a read-only directory: release %v, %v; want none, no error", release != nil, err)
	}
}
