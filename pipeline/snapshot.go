package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// SnapshotState is feature state that can be written and loaded whole (features.State).
type SnapshotState interface {
	WriteSnapshot(w io.Writer, meta func() []byte) (int64, error)
	LoadSnapshot(r io.Reader, accept func(meta []byte) error) ([]byte, error)
	// PeekSnapshot reads a snapshot's metadata, and whether it was kept under the state's bounds,
	// from the start of the file alone.
	PeekSnapshot(r io.Reader) (meta []byte, sameBounds bool, err error)
}

// Snapshots keeps a node's feature state on local disk so that a restart loads it and replays only
// what came after, instead of the whole retention window. Each snapshot stores the feed positions
// it covers (per partition, the next offset to apply and the time of the message before it), the
// topic, and a fingerprint of the node's phone-hash key. Files are written to a temporary name, synced and renamed, so a crash mid-write
// leaves the previous snapshot; the one before that is kept as .prev. A snapshot that is damaged,
// partial, of another format, of another topic, written under another key or other address
// classification data is refused with a
// warning and the next older one is tried; with none usable the node replays from Kafka.
//
// A snapshot of this topic written under another configuration — another phone-hash key, other
// classification data, other state bounds — and younger than MaxAge is never rotated out by
// this node's own snapshots: it stays as .prev, and this node's newest replaces its previous
// newest in place, until it is older than MaxAge (see Save). A node started with a wrong key (or
// lists) thus leaves behind the snapshot a node configured as before loads; it cannot tell a
// mistake from a deliberate change, and keeping one snapshot of the other configuration costs
// its own .prev, not more disk.
type Snapshots struct {
	Dir         string
	Topic       string
	Fingerprint string // identifies the phone-hash key; a snapshot written under another is refused
	// Classes identifies the data that classifies addresses (scoring.Scorer.ClassFingerprint); a
	// snapshot written under other data is refused: its network keys were derived differently.
	Classes string
	State   SnapshotState
	// Ends returns the topic's end offsets now. A snapshot covering offsets past them was written
	// for an earlier topic of that name (deleted and created again) and is refused: loading it
	// would keep events the topic no longer holds. nil, or an error: not checked.
	Ends func() (map[int]int64, error)
	// Times returns the timestamps of the messages at the given offsets (partition → offset) as
	// the topic holds them now, leaving out those it no longer holds. A snapshot records the time
	// of the last message it covers in each partition; the topic holding a message of another time
	// there was deleted and created again since (with as many messages or more, which Ends cannot
	// tell) and the snapshot is refused. nil, or an error: not checked.
	Times func(offsets map[int]int64) (map[int]time.Time, error)
	// Oldest returns the timestamps of the oldest messages the given partitions hold, leaving
	// out empty ones. Where the topic no longer holds the last message a snapshot covers
	// (retention deleted it), its oldest message came after that one, so it is not older than
	// it by more than MaxAge; one that is belongs to another topic of that name (another
	// cluster's, or one deleted and created again) that has passed the snapshot's offsets, and
	// the snapshot is refused. nil, an error, or MaxAge 0: not checked.
	Oldest func(parts []int) (map[int]time.Time, error)
	// MaxAge, when set (the feature retention), refuses a snapshot written longer ago: everything
	// in it has left the windows, and resuming from its offsets reads more of the topic than a
	// replay of the retention does (a pod back after three days with its volume read three days
	// of events — the topic's retention is often a week — where a replay reads one).
	MaxAge time.Duration
	// Lock is this process's lock of the directory's snapshots of the topic (LockSnapshots), or
	// nil. Held (SnapshotLock.Hold, before each snapshot), no other process writes the topic's
	// snapshots there, so every temporary snapshot of the topic found there was left by a process
	// that stopped while writing it, and is removed at once instead of after staleTemp; a lock
	// this process can no longer hold (another process took the directory's new lock file after
	// it was deleted) stops its snapshots.
	Lock *SnapshotLock
	Log  *slog.Logger
	// Clock is the time a snapshot is written at and its age is read against (nil: time.Now).
	Clock func() time.Time

	keptLogged atomic.Bool // Save said it keeps a snapshot of another configuration
	saving     sync.Mutex  // one Save at a time: the shutdown's may meet a periodic one
}

// snapshotMeta is stored inside each snapshot.
type snapshotMeta struct {
	Topic       string        `json:"topic"`
	Fingerprint string        `json:"key_fingerprint"`
	Classes     string        `json:"classes_fingerprint"`
	Offsets     map[int]int64 `json:"offsets"`
	// Last is, per partition, the timestamp (unix ms, Kafka's precision) of the message before
	// Offsets, where known.
	Last    map[int]int64 `json:"last_ms,omitempty"`
	Written time.Time     `json:"written"`
}

// marks are the positions a snapshot covers.
func (m snapshotMeta) marks() map[int]consumers.Mark {
	out := make(map[int]consumers.Mark, len(m.Offsets))
	for p, off := range m.Offsets {
		mk := consumers.Mark{Next: off}
		if ms, ok := m.Last[p]; ok {
			mk.Last = time.UnixMilli(ms)
		}
		out[p] = mk
	}
	return out
}

func (s *Snapshots) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

// future reports whether a snapshot written at w claims a time later than this node's clock, by
// more than clocks may drift apart (schemas.MaxClockSkew): the clock that wrote it was ahead (a
// clock stepped back since, a host with a wrong clock), and its age is unknown. Such a snapshot
// used to pass for a young one: loaded whatever its real age — resuming from offsets that may
// lie days back, where a replay reads the retention window — with a negative
// riskflow_snapshot_age_seconds that no "snapshot too old" alert reads; and one of another
// configuration stayed as .prev until the clock caught up with it.
func (s *Snapshots) future(w time.Time) bool {
	return w.Sub(s.now()) > schemas.MaxClockSkew
}

// ErrNoSnapshot means no snapshot file was there to load.
var ErrNoSnapshot = errors.New("no snapshot")

func (s *Snapshots) path() string {
	return filepath.Join(s.Dir, "features-"+s.Topic+".snap")
}

// Load loads the newest usable snapshot into the (empty) state and returns the positions to resume
// from and when it was written. ErrNoSnapshot when there is none; any other error means every
// snapshot there was refused (each refusal is logged) and the state is still empty. A snapshot is
// checked against the topic (Ends, Times) before it is loaded: while the broker cannot answer,
// Load waits for it until ctx ends — a node is not ready before it has caught up with the topic
// anyway, and a snapshot loaded unchecked may be of an earlier topic of that name.
func (s *Snapshots) Load(ctx context.Context) (map[int]consumers.Mark, time.Time, error) {
	s.removeStaleTemps(s.Lock != nil && s.Lock.Hold() == nil)
	var ends map[int]int64
	if s.Ends != nil {
		if err := s.retried(ctx, "the topic's end offsets", func() (err error) { ends, err = s.Ends(); return err }); err != nil {
			return nil, time.Time{}, fmt.Errorf("feature snapshot not checked against the topic: %w", err)
		}
	}
	var errs []error
	found := false
	for _, p := range []string{s.path(), s.path() + ".prev"} {
		meta, err := s.loadFile(ctx, p, ends)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		found = true
		if err != nil {
			logger(s.Log).Warn("feature snapshot refused; trying an older one or replaying from Kafka", "file", p, "err", err)
			errs = append(errs, err)
			continue
		}
		return meta.marks(), meta.Written, nil
	}
	if !found {
		return nil, time.Time{}, ErrNoSnapshot
	}
	return nil, time.Time{}, errors.Join(errs...)
}

// checkRetries are the waits between attempts at reading what a snapshot is checked against (end
// offsets, message times); the last one repeats until the broker answers. A node usually starts
// right after the broker answered for the first time, and its first requests then often meet "Not
// Leader For Partition" while leaders are elected — an error that used to load the snapshot
// unchecked.
var checkRetries = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}

// retried calls fn until it succeeds or ctx ends, waiting checkRetries in between; once those are
// used up it says that it waits. It returns nil or fn's last error with ctx's.
func (s *Snapshots) retried(ctx context.Context, what string, fn func() error) error {
	err := fn()
	for i := 0; err != nil; i++ {
		if i == len(checkRetries) {
			logger(s.Log).Warn("waiting for the broker to check the feature snapshot against the topic", "reading", what, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reading %s: %w (%w)", what, err, ctx.Err())
		case <-time.After(checkRetries[min(i, len(checkRetries)-1)]):
		}
		err = fn()
	}
	return nil
}

// tempPattern names a snapshot being written (os.CreateTemp's pattern): per topic, so that nodes
// of other topics sharing the directory leave each other's alone.
func (s *Snapshots) tempPattern() string { return ".features-" + s.Topic + "-*.tmp" }

// ownTemp reports whether the file named name is one of this topic's temporary files: a snapshot
// being written (os.CreateTemp puts decimal digits in tempPattern's *) or keepPrevious's link
// (prev). tempPattern's glob alone also matches the files of a topic whose name begins with this
// one's and a dash (verify.events-v2's .features-verify.events-v2-123.tmp): the node of
// verify.events removed the other's snapshots while they were written, and all of them failed.
func (s *Snapshots) ownTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, ".features-"+s.Topic+"-")
	if !ok {
		return false
	}
	mid, ok := strings.CutSuffix(rest, ".tmp")
	if !ok || mid == "" {
		return false
	}
	if mid == "prev" {
		return true
	}
	for _, c := range mid {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// staleTemp is how long after its last write a temporary snapshot counts as left behind: a
// process killed while writing (an OOM kill, SIGKILL, a node crash) never removes its temporary
// file, and every such file stays on the snapshot volume — which on Kubernetes has a size limit
// whose excess evicts the pod. A write in progress touches its file far more often than this;
// another process sharing the directory may be writing one.
const staleTemp = 10 * time.Minute

// removeStaleTemps removes this topic's temporary snapshots that nobody has written to for
// staleTemp — every one when exclusive (this process holds the lock: no other process writes
// them, and Save calls it before creating its own) — logging what it removed. A node killed while writing and restarted
// at once (an OOM kill during the snapshot's memory peak, in a loop) used to keep each kill's
// file for ten minutes, one more snapshot's size on the volume per restart.
func (s *Snapshots) removeStaleTemps(exclusive bool) {
	paths, _ := filepath.Glob(filepath.Join(s.Dir, s.tempPattern()))
	for _, p := range paths {
		if !s.ownTemp(filepath.Base(p)) {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || (!exclusive && time.Since(fi.ModTime()) < staleTemp) {
			continue
		}
		if err := os.Remove(p); err != nil {
			logger(s.Log).Warn("could not remove a partly written feature snapshot", "file", p, "err", err)
			continue
		}
		logger(s.Log).Warn("removed a partly written feature snapshot (a process stopped while writing it)", "file", p, "bytes", fi.Size())
	}
}

func (s *Snapshots) loadFile(ctx context.Context, p string, ends map[int]int64) (snapshotMeta, error) {
	var meta snapshotMeta
	// Only a regular file (or a link to one) is read: opening a named pipe blocks until something
	// writes to it (the node hung at start, unready, deaf to SIGTERM), and a device such as
	// /dev/zero never ends (read into memory until the kernel killed the process: 21 GB).
	if err := notAFile(p); err != nil {
		return meta, err
	}
	f, err := os.Open(p)
	if err != nil {
		return meta, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return meta, fmt.Errorf("snapshot: %w", err)
	} else if !fi.Mode().IsRegular() { // replaced between the check and the open
		return meta, fmt.Errorf("snapshot: %s is a %s, not a snapshot file", p, kindOf(fi.Mode()))
	}
	_, err = s.State.LoadSnapshot(f, func(raw []byte) error {
		if err := schemas.UnmarshalJSON(raw, &meta, "written"); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		switch {
		case meta.Topic != s.Topic:
			return fmt.Errorf("of topic %q, this node follows %q", meta.Topic, s.Topic)
		case meta.Fingerprint != s.Fingerprint:
			return errors.New("written under another phone-hash key")
		case meta.Classes != s.Classes:
			return errors.New("written under other address classification data (ASN data, datacenter, cloud or mobile lists) or by a build that keys addresses otherwise: its address keys were derived differently")
		case s.future(meta.Written):
			return fmt.Errorf("written at %s, %s after this node's clock (%s): a clock was wrong when it was written or is now, and how old it is cannot be told (it may be older than the feature retention)",
				meta.Written.UTC().Format(time.RFC3339), meta.Written.Sub(s.now()).Round(time.Second), s.now().UTC().Format(time.RFC3339))
		case s.MaxAge > 0 && s.now().Sub(meta.Written) > s.MaxAge:
			return fmt.Errorf("written %s ago, longer than the feature retention (%s): nothing in it is in a window any more, and a replay reads less of the topic than resuming from its offsets would",
				s.now().Sub(meta.Written).Round(time.Second), s.MaxAge)
		}
		if ends == nil {
			return nil
		}
		for part, off := range meta.Offsets {
			end, ok := ends[part]
			if !ok || off > end {
				return fmt.Errorf("covers partition %d up to offset %d, but the topic ends at %d (%d partitions): written for another topic of that name (another cluster's, or this one deleted and created again)", part, off, end, len(ends))
			}
		}
		return s.checkTimes(ctx, meta)
	})
	return meta, err
}

// checkTimes compares the times of the last messages the snapshot covers with the messages the
// topic holds at those offsets now.
func (s *Snapshots) checkTimes(ctx context.Context, meta snapshotMeta) error {
	if s.Times == nil || len(meta.Last) == 0 {
		return nil
	}
	at := make(map[int]int64, len(meta.Last))
	for p, off := range meta.Offsets {
		if _, ok := meta.Last[p]; ok && off > 0 {
			at[p] = off - 1
		}
	}
	var times map[int]time.Time
	if err := s.retried(ctx, "the times of the snapshot's last messages", func() (err error) { times, err = s.Times(at); return err }); err != nil {
		return fmt.Errorf("not checked against the topic: %w", err)
	}
	var gone []int
	for p, off := range at {
		got, ok := times[p]
		if !ok {
			gone = append(gone, p)
		}
		if ok && got.UnixMilli() != meta.Last[p] {
			return fmt.Errorf("partition %d holds at offset %d a message of %s, the snapshot's was of %s: written for another topic of that name (another cluster's, or this one deleted and created again)",
				p, off, got.UTC().Format(time.RFC3339Nano), time.UnixMilli(meta.Last[p]).UTC().Format(time.RFC3339Nano))
		}
	}
	return s.checkOldest(ctx, meta, gone)
}

// checkOldest compares the oldest messages of the partitions gone (whose last message the
// snapshot covers is no longer held) with the snapshot's last ones (see Oldest).
func (s *Snapshots) checkOldest(ctx context.Context, meta snapshotMeta, gone []int) error {
	if s.Oldest == nil || s.MaxAge <= 0 || len(gone) == 0 {
		return nil
	}
	var oldest map[int]time.Time
	if err := s.retried(ctx, "the times of the topic's oldest messages", func() (err error) { oldest, err = s.Oldest(gone); return err }); err != nil {
		return fmt.Errorf("not checked against the topic: %w", err)
	}
	for _, p := range gone {
		got, ok := oldest[p]
		last := time.UnixMilli(meta.Last[p])
		if ok && got.Before(last.Add(-s.MaxAge)) {
			return fmt.Errorf("covers partition %d up to offset %d (a message of %s), which the topic no longer holds, yet the topic holds there a message of %s, after it in offsets and %s older: the snapshot was written for another topic of that name (another cluster's, or one deleted and created again)",
				p, meta.Offsets[p], last.UTC().Format(time.RFC3339), got.UTC().Format(time.RFC3339), last.Sub(got).Round(time.Second))
		}
	}
	return nil
}

// CheckWritable reports whether snapshots can be written to Dir (creating it if need be), by
// creating and removing a temporary file there: a directory that is a file, read-only or on a full
// volume, or a snapshot's name taken by something else than a file (a directory, a volume mounted
// there), is otherwise found only at the first periodic snapshot, minutes after the start.
func (s *Snapshots) CheckWritable() error {
	if err := s.mkdir(); err != nil {
		return err
	}
	for _, p := range []string{s.path(), s.path() + ".prev"} {
		if err := notAFile(p); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(s.Dir, s.tempPattern())
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// mkdir creates Dir if need be. A Dir that is a symbolic link to nothing (a volume not mounted
// where it points) is named as such: MkdirAll says only "file exists".
func (s *Snapshots) mkdir() error {
	err := os.MkdirAll(s.Dir, 0o700)
	if err == nil {
		return nil
	}
	if to, lerr := os.Readlink(s.Dir); lerr == nil {
		if _, serr := os.Stat(s.Dir); errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("snapshot: %s is a symbolic link to %s, which does not exist (is the volume mounted?)", s.Dir, to)
		}
	}
	return fmt.Errorf("snapshot: create %s: %w", s.Dir, err)
}

// otherConfig reports whether p holds a snapshot of this topic written under another
// configuration than this node's (phone-hash key, classification data, state bounds) no longer
// ago than MaxAge: one a node configured otherwise would load. why says what differs. Only the
// file's start is read; a file that cannot be read as a snapshot of this format is not one.
func (s *Snapshots) otherConfig(p string) (other bool, why string) {
	if notAFile(p) != nil {
		return false, ""
	}
	f, err := os.Open(p)
	if err != nil {
		return false, ""
	}
	defer f.Close()
	raw, sameBounds, err := s.State.PeekSnapshot(f)
	var meta snapshotMeta
	if err != nil || json.Unmarshal(raw, &meta) != nil || meta.Topic != s.Topic {
		return false, ""
	}
	if s.future(meta.Written) || (s.MaxAge > 0 && s.now().Sub(meta.Written) > s.MaxAge) {
		return false, ""
	}
	var diff []string
	if meta.Fingerprint != s.Fingerprint {
		diff = append(diff, "another phone-hash key")
	}
	if meta.Classes != s.Classes {
		diff = append(diff, "other address classification data or address or device keying")
	}
	if !sameBounds {
		diff = append(diff, "other state bounds (retention, entries per key)")
	}
	return len(diff) > 0, strings.Join(diff, ", ")
}

// isOther is otherConfig without the reason.
func (s *Snapshots) isOther(p string) bool {
	other, _ := s.otherConfig(p)
	return other
}

// notAFile returns an error naming p when something other than a regular file is there: a
// snapshot cannot be renamed onto it, nor it onto a snapshot's name.
func notAFile(p string) error {
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("snapshot: %s is a %s, not a snapshot file: remove it (snapshots cannot be written until then)", p, kindOf(fi.Mode()))
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// Save writes a snapshot of the state; positions is called in the state's consistent moment and
// returns the positions it covers. It returns the bytes written.
//
// A snapshot is not written while positions returns none (the feed has not read the topic's
// partitions yet): it would cover the state without saying where the feed stands, and push the
// previous snapshot out. Before writing, temporary files left by a process killed mid-write are
// removed as at Load: a node restarted within staleTemp of the kill would otherwise keep them on
// the volume for as long as it runs.
//
// The newest snapshot becomes .prev, unless .prev holds a snapshot of another configuration
// (otherConfig) and the newest does not: then the newest is replaced and .prev stays. So the
// first snapshot of a node whose key or lists differ from the node that wrote the directory's
// snapshots moves the newest of those to .prev, and there it stays until it is older than MaxAge.
//
// A volume without room for the new snapshot beside the newest and .prev ("no space left on
// device") has this node's own .prev removed and the snapshot written again (makeRoom).
func (s *Snapshots) Save(positions func() map[int]consumers.Mark) (int64, error) {
	// Two at once would each move the newest to .prev: the second rename then fails, or .prev
	// ends up the snapshot just written.
	s.saving.Lock()
	defer s.saving.Unlock()
	if err := s.mkdir(); err != nil {
		return 0, err
	}
	for _, p := range []string{s.path(), s.path() + ".prev"} {
		if err := notAFile(p); err != nil {
			return 0, err
		}
	}
	if s.Lock != nil {
		if err := s.Lock.Hold(); err != nil {
			return 0, fmt.Errorf("snapshot: %w", err)
		}
	}
	s.removeStaleTemps(s.Lock != nil)
	tmp, n, err := s.writeTemp(positions)
	if full(err) && s.makeRoom() {
		tmp, n, err = s.writeTemp(positions)
	}
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err) // err names the temporary file
	}
	defer os.Remove(tmp) // after a successful rename this finds nothing
	if kept, why := s.otherConfig(s.path() + ".prev"); kept && !s.isOther(s.path()) {
		// .prev holds a snapshot of another configuration: the newest, this node's own, is
		// replaced in place and .prev stays.
		if s.keptLogged.CompareAndSwap(false, true) {
			logger(s.Log).Warn("feature snapshot of another configuration kept as .prev, not rotated out: a node configured as it was can still load it; this node keeps no previous snapshot of its own until that one is older than the feature retention",
				"file", s.path()+".prev", "written_under", why)
		}
	} else if _, err := os.Stat(s.path()); err == nil {
		if err := s.keepPrevious(); err != nil {
			return 0, fmt.Errorf("snapshot: keep the previous one: %w", err)
		}
	}
	betweenRenames()
	if err := os.Rename(tmp, s.path()); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	if d, err := os.Open(s.Dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}

// writeTemp writes a snapshot to a new temporary file, synced and closed, and returns its name;
// on an error the file is removed.
func (s *Snapshots) writeTemp(positions func() map[int]consumers.Mark) (string, int64, error) {
	tmp, err := os.CreateTemp(s.Dir, s.tempPattern())
	if err != nil {
		return "", 0, err
	}
	covered := 0
	n, err := s.State.WriteSnapshot(tmp, func() []byte {
		meta := snapshotMeta{Topic: s.Topic, Fingerprint: s.Fingerprint, Classes: s.Classes, Offsets: map[int]int64{}, Last: map[int]int64{}, Written: s.now().UTC()}
		for p, mk := range positions() {
			meta.Offsets[p] = mk.Next
			if !mk.Last.IsZero() {
				meta.Last[p] = mk.Last.UnixMilli()
			}
		}
		covered = len(meta.Offsets)
		b, _ := json.Marshal(meta)
		return b
	})
	if err == nil && covered == 0 {
		err = errors.New("no feed positions yet (the feed has not read the topic): not written, the previous snapshot stays")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", 0, err
	}
	return tmp.Name(), n, nil
}

// full reports whether err says the volume (or the user's quota) has no room left.
func full(err error) bool { return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) }

// makeRoom removes this node's .prev to make room for a snapshot the volume had none for, and
// reports whether it did. A volume with room for two snapshots and not three (the newest, .prev,
// the one being written: the state grew past a third of it) failed every snapshot from then on
// with "no space left on device", for as long as the node ran; the newest grew older and each
// restart replayed more. .prev is only tried when the newest is refused; with it gone, the new
// snapshot is written and the newest becomes .prev again (a second name of one file, no more
// room). A .prev of another configuration stays (see Save), and so does one beside no newest
// of another file (missing, or a second name of .prev's): removing it would free nothing, or
// leave no snapshot at all if the write failed again.
func (s *Snapshots) makeRoom() bool {
	prev := s.path() + ".prev"
	fi, err := os.Lstat(prev)
	if err != nil || !fi.Mode().IsRegular() || s.isOther(prev) {
		return false
	}
	if newest, err := os.Lstat(s.path()); err != nil || !newest.Mode().IsRegular() || os.SameFile(newest, fi) {
		return false
	}
	if err := os.Remove(prev); err != nil {
		return false
	}
	logger(s.Log).Warn("the snapshot volume has no room for another snapshot beside the newest and the previous one: removed the previous one to write the newest (size the volume at three snapshots: docs/SCALING.md)",
		"file", prev, "bytes", fi.Size())
	return true
}

// betweenRenames is called after the newest snapshot was kept as .prev and before the new one
// takes its name (a test's seam: a process killed there).
var betweenRenames = func() {}

// keepPrevious makes the newest snapshot .prev and leaves it under its own name too, so that the
// new one replaces it in one rename: the newest's name is never empty. A process killed between
// moving the newest to .prev and renaming the new one left neither under the newest's name, and
// its restart loaded the older .prev (held-out run: one of six SIGKILLs at random moments of a
// scorer snapshotting every second). Where hard links are not supported the newest is renamed.
func (s *Snapshots) keepPrevious() error {
	link := filepath.Join(s.Dir, ".features-"+s.Topic+"-prev.tmp") // tempPattern: a left one is removed
	_ = os.Remove(link)
	if err := os.Link(s.path(), link); err != nil {
		return os.Rename(s.path(), s.path()+".prev")
	}
	err := os.Rename(link, s.path()+".prev")
	// Also after a rename that did nothing: .prev was the newest already (a save failed after
	// keeping it), and rename(2) of two links to one file leaves both.
	_ = os.Remove(link)
	return err
}
