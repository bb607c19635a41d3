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

// SnapshotLock is a process's lock of a directory's snapshots of a topic (LockSnapshots).
type SnapshotLock struct {
	dir, topic string
	mu         sync.Mutex
	f          *os.File // nil once released
}

// LockSnapshots takes the exclusive lock (flock) of dir's snapshots of topic, held until Release
// is called or the process ends (a process killed releases it with its descriptors). Two
// processes writing one directory's snapshots of a topic rotate each other's out and fail each
// other's writes ("keep the previous one: … no such file or directory"): Snapshots.Save
// serialises the saves of one process only. The lock file, features-TOPIC.lock, names the
// process holding it; the error for a second process is ErrSnapshotDirInUse naming dir, the
// topic and that process. Processes following other topics share a directory freely.
//
// A directory where the lock file cannot be created (missing and not creatable, read-only) is
// not locked, and the lock is nil: nothing can write snapshots there, and Snapshots.CheckWritable
// says so. Any other error than ErrSnapshotDirInUse (a file system without locks) comes with a
// nil lock too: the caller may go on unlocked.
func LockSnapshots(dir, topic string) (*SnapshotLock, error) {
	f, err := takeLock(dir, topic)
	if f == nil {
		return nil, err
	}
	return &SnapshotLock{dir: dir, topic: topic, f: f}, nil
}

func lockName(dir, topic string) string { return filepath.Join(dir, "features-"+topic+".lock") }

// takeLock opens (creating it) and locks dir's lock file of topic; nil, nil where it cannot be
// created.
func takeLock(dir, topic string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil
	}
	name := lockName(dir, topic)
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
	return f, nil
}

// Hold reports whether this process still holds the lock, taking it again on a new lock file
// when the one it locked is gone from the directory — the directory deleted (or emptied) while
// the node ran, and made again by its next snapshot: the old lock then locked nothing, a second
// process started on the directory took a lock of its own, and the two wrote there at once (the
// first removed the second's snapshots while they were written; held-out run). An error (the
// second process holds the new lock file: ErrSnapshotDirInUse) means this process must not
// write there.
func (l *SnapshotLock) Hold() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("snapshot lock released")
	}
	held, err1 := l.f.Stat()
	now, err2 := os.Stat(lockName(l.dir, l.topic))
	if err1 == nil && err2 == nil && os.SameFile(held, now) {
		return nil
	}
	f, err := takeLock(l.dir, l.topic)
	if f == nil {
		if err == nil {
			err = fmt.Errorf("%s cannot be created", lockName(l.dir, l.topic))
		}
		return fmt.Errorf("the lock file this process held is gone and it could not take a new one: %w", err)
	}
	l.f.Close()
	l.f = f
	return nil
}

// Release releases the lock; a nil lock, or one released already, is left as it is.
func (l *SnapshotLock) Release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}
