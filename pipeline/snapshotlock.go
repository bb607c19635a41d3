package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrSnapshotDirInUse means another process holds the snapshot lock of a directory and topic.
var ErrSnapshotDirInUse = errors.New("in use by another riskflow process")

// LockSnapshots takes the exclusive lock (flock) of dir's snapshots of topic, held until release
// is called or the process ends (a process killed releases it with its descriptors). Two
// processes writing one directory's snapshots of a topic rotate each other's out and fail each
// other's writes ("keep the previous one: … no such file or directory"): Snapshots.Save
// serialises the saves of one process only. The lock file, features-TOPIC.lock, names the
// process holding it; the error for a second process is ErrSnapshotDirInUse naming dir, the
// topic and that process. Processes following other topics share a directory freely.
//
// A directory where the lock file cannot be created (missing and not creatable, read-only) is
// not locked, and release is nil: nothing can write snapshots there, and Snapshots.CheckWritable
// says so. Any other error than ErrSnapshotDirInUse (a file system without locks) comes with a
// nil release too: the caller may go on unlocked.
func LockSnapshots(dir, topic string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil
	}
	name := filepath.Join(dir, "features-"+topic+".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if f, err = os.Open(name); err != nil { // read-only: lock an existing file all the same
			return nil, nil
		}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "a process that has not said which"
			}
			return nil, fmt.Errorf("%s (snapshots of topic %s) is %w (%s): give each process its own directory", dir, topic, ErrSnapshotDirInUse, who)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	host, _ := os.Hostname()
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d on %s, since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))), 0)
	}
	return sync.OnceFunc(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}), nil
}
