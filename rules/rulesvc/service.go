// Package rulesvc is the rule-pack lifecycle of one process: a pack — from the watched file, a
// PUT through the admin API, or a rollback to a recorded version — is compiled against the
// scorer's declared variables, swapped in, persisted to the pack file and recorded once in the
// version history, with who loaded it and the exact bytes whose hash is its version.
package rulesvc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
)

// ErrRejected wraps a pack that does not compile; the running pack stays.
var ErrRejected = errors.New("rule pack rejected")

// ErrUnknownVersion wraps a rollback to a version the history does not hold.
var ErrUnknownVersion = errors.New("unknown rule pack version")

// ErrConflict wraps an explicit load refused because the pack file holds a pack this process has
// not loaded yet: another node's promotion or rollback wrote it since this process last read the
// file, and writing over it would undo that promotion without anyone having seen it.
var ErrConflict = errors.New("rule pack file changed by another load")

// ErrNotLive wraps a load refused because the running pack is no longer the version the caller's
// pack was edited from (LoadOver): another promotion came first.
var ErrNotLive = errors.New("the live rule pack changed")

// ErrNoHistory is returned by Versions and Rollback when the service has no history store.
var ErrNoHistory = errors.New("no rule version history (clickhouse.addr is not set)")

// Version is one load of a rule pack.
type Version struct {
	Version  string    // the pack's content hash (rules.Pack.Version)
	Name     string    // the pack's name
	Rules    int       // number of rules
	LoadedBy string    // who: "startup", "file", "api:NAME", "cli:USER", with "@node"
	Source   string    // the file path, "embedded default", "api", or "rollback"
	LoadedAt time.Time // UTC
	Content  []byte    // the exact bytes compiled (empty in lists)
}

// Store is the version history (rule_versions in ClickHouse). RecordVersion may be retried after
// any error; Lookup returns an error wrapping ErrUnknownVersion for a version it does not hold.
type Store interface {
	RecordVersion(ctx context.Context, v Version) error
	Versions(ctx context.Context) ([]Version, error)
	Lookup(ctx context.Context, version string) (Version, error)
}

// Target is what runs the pack: a scorer (*scoring.Scorer).
type Target interface {
	Env() *rules.Env
	SetPack(*rules.Pack)
}

// Config is where the pack lives and who this process is.
type Config struct {
	// Path is the pack file: watched, and where PUT and rollbacks persist a pack so that restarts
	// and other processes watching it pick it up. "" = the pack lives in this process only.
	Path string
	// Interval is how often the file is polled (and failed records retried); 0 means 5 s.
	Interval time.Duration
	// Settle is how long a changed file must have been left alone before it is loaded: a file
	// modified more recently is read again once it is this old, and loaded only if it still
	// reads the same — a writer that writes over the file in place (cp, scp, an editor) is not
	// caught halfway, when a truncated pack may well compile (a threshold cut from 10 to 1, the
	// rules after it missing). 0 means 1 s (or Interval when shorter); a renamed-in file (PUT,
	// rollback, a ConfigMap) waits at most this long.
	Settle time.Duration
	// Node names this process in LoadedBy ("api:lead@node"); "" = the host name.
	Node string
	// Default is the pack run when Path is "" (the embedded default).
	Default []byte
}

// Loaded is the outcome of a load.
type Loaded struct {
	Version
	Persisted bool // written to Config.Path
	Recorded  bool // in the history (false: no store, or it failed; retried in the background)
}

// Service owns the running pack of one process. It is safe for concurrent use.
type Service struct {
	cfg    Config
	target Target
	store  Store // nil: no history
	log    *slog.Logger
	sleep  func(time.Duration) // time.Sleep; tests finish a writer's work in it
	now    func() time.Time    // time.Now; when a load happened (Version.LoadedAt)

	// recordTimeout bounds one use of the history, whether or not the store heeds its context.
	recordTimeout time.Duration
	// checkEvery is how many ticks apart the history is asked whether it still holds the running
	// pack's version: a dropped database, recreated by the archiver or riskflow migrate, starts
	// with an empty rule_versions, which no load would fill until the next promotion.
	checkEvery int
	ticks      int // Tick's count

	mu       sync.Mutex
	cur      Version
	fileSum  [sha256.Size]byte // the file's content as last read or written here
	haveSum  bool
	readFail bool              // a read failure was reported and the file has not been read since
	badSum   [sha256.Size]byte // content last rejected, not compiled again until it changes
	badErr   error             // why it was rejected
	pending  []pendingRecord   // loads not recorded yet (being recorded, or retried on every tick)
	seq      uint64            // numbers pendingRecords
	file     FileStatus
	gen      uint64 // counts swaps: a file load compiled outside mu is dropped when another load came first
}

// FileStatus says whether the pack file is what runs: a file that cannot be read or holds a pack
// that does not compile leaves the running pack in place, and nothing else on the node would show
// that it no longer follows its file (the other nodes may have loaded it, or be on yet another
// version).
type FileStatus struct {
	// Problem is "" while the running pack is the file's (or there is no file), "unreadable" while
	// the file cannot be read, "rejected" while it holds a pack that does not compile.
	Problem string
	// Err is the problem's error ("" when none).
	Err string
	// Since is when the current problem was first seen (zero when none).
	Since time.Time
	// Unreadable and Rejected count the problems seen since start: a file that stays unreadable
	// counts once, and so does one content rejected on every poll.
	Unreadable, Rejected uint64
}

// File reports whether the pack file is what runs (see FileStatus).
func (s *Service) File() FileStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file
}

// fileProblemLocked records the file's state: problem "" clears it.
func (s *Service) fileProblemLocked(problem string, err error) {
	switch {
	case problem == "":
		s.file.Problem, s.file.Err, s.file.Since = "", "", time.Time{}
		return
	case problem == "unreadable":
		s.file.Unreadable++
	case problem == "rejected":
		s.file.Rejected++
	}
	if s.file.Problem != problem {
		s.file.Since = time.Now().UTC()
	}
	s.file.Problem, s.file.Err = problem, err.Error()
}

type pendingRecord struct {
	v      Version
	always bool      // record even if the history holds the version (an explicit load)
	seq    uint64    // identifies it while it is recorded outside mu
	failed bool      // an attempt failed already (its success is logged)
	busy   bool      // being recorded (outside mu): no other flush takes it
	tries  int       // failed attempts
	logged time.Time // when a failed attempt was last logged
}

// retryLogEvery is the least time between two log lines about one load the history keeps
// failing to record: retried on every tick (5 s), each failure had its line through an outage.
const retryLogEvery = time.Minute

// New returns a service; store and log may be nil.
func New(cfg Config, target Target, store Store, log *slog.Logger) *Service {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = min(time.Second, cfg.Interval)
	}
	if cfg.Node == "" {
		cfg.Node, _ = os.Hostname()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, target: target, store: store, log: log, sleep: time.Sleep, now: time.Now, recordTimeout: 5 * time.Second,
		checkEvery: historyCheckTicks}
}

// Start loads the pack file (or the default pack) as "startup"; it is recorded, unless the history
// holds its version already, by the first Tick (start does not wait for the history store). A pack
// that does not compile is an error: a process does not start without one.
func (s *Service) Start(ctx context.Context) (Loaded, error) {
	content, source := s.cfg.Default, "embedded default"
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Path != "" {
		b, err := rules.ReadPackFile(s.cfg.Path)
		// A file being written as the process starts: wait for the writer, as the watcher does.
		for tries := 0; err == nil && tries < 10 && !s.settledLocked(sha256.Sum256(b)); tries++ {
			b, err = rules.ReadPackFile(s.cfg.Path)
		}
		if err != nil {
			return Loaded{}, fmt.Errorf("rules: read pack: %w", err)
		}
		content, source = b, s.cfg.Path
	}
	if s.cfg.Path != "" {
		s.fileSum, s.haveSum = sha256.Sum256(content), true
	}
	l, _, err := s.loadLocked(content, "startup", source, false)
	return l, err
}

// Load compiles content, persists it to the pack file, swaps it in and records it with who. A pack
// that does not compile (ErrRejected), cannot be persisted, or would replace one this process has
// not loaded (ErrConflict) leaves the running pack. The record is waited for at most the history's
// timeout (5 s) and retried in the background when it failed.
func (s *Service) Load(ctx context.Context, content []byte, who, source string) (Loaded, error) {
	return s.LoadOver(ctx, content, who, source, "")
}

// LoadOver is Load of a pack edited from version live (If-Match), refused (ErrNotLive) unless that
// version is the running one at the moment it is swapped in; "" loads over any. A caller that
// checked before running the pack's tests — seconds, for a large suite — left a window in which
// another node's promotion, picked up from the file meanwhile, was written over unseen.
//
// The pack is compiled before the node's pack lock is taken — a large pack's compile takes
// seconds, for which it held GET /v1/rules, the console's live pack and the file watcher — and
// the live version is checked as it is swapped in, under the lock: of two loads over one version
// compiled at once, one wins.
func (s *Service) LoadOver(ctx context.Context, content []byte, who, source, live string) (Loaded, error) {
	p, err := s.compile(content)
	if err != nil {
		return Loaded{}, err
	}
	s.mu.Lock()
	if live != "" && s.cur.Version != live {
		cur := s.cur.Version
		s.mu.Unlock()
		return Loaded{}, fmt.Errorf("%w: the live pack is version %s, not %s, which the pack was edited from: another promotion came first; "+
			"see the recorded versions (GET /v1/rules/versions, riskflow rules versions), and promote again over %s if this pack is to replace that one",
			ErrNotLive, cur, live, cur)
	}
	out, seq, err := s.swapLocked(p, content, who, source, true)
	s.mu.Unlock()
	if err != nil || s.store == nil {
		return out, err
	}
	out.Recorded = s.flush(ctx, func(r pendingRecord) bool { return r.seq == seq })[seq]
	s.log.Info("rule pack loaded", "pack", out.Name, "version", out.Version.Version, "rules", out.Rules, "by", out.LoadedBy, "source", source, "recorded", out.Recorded)
	return out, nil
}

// compile compiles content against the target's variables; it takes no lock.
func (s *Service) compile(content []byte) (*rules.Pack, error) {
	p, err := rules.Compile(content, s.target.Env())
	if err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrRejected, err)
	}
	return p, nil
}

// loadLocked compiles content and swaps it in (swapLocked); only Start uses it, before anyone
// reads the pack.
func (s *Service) loadLocked(content []byte, who, source string, explicit bool) (Loaded, uint64, error) {
	p, err := s.compile(content)
	if err != nil {
		return Loaded{}, 0, err
	}
	return s.swapLocked(p, content, who, source, explicit)
}

// swapLocked persists (explicit loads) and swaps in p, compiled from content, and queues the
// load's record (seq): Load records it at once, the next tick otherwise.
func (s *Service) swapLocked(p *rules.Pack, content []byte, who, source string, explicit bool) (Loaded, uint64, error) {
	var out Loaded
	if explicit && s.cfg.Path != "" {
		if err := s.persistLocked(content); err != nil {
			return Loaded{}, 0, err
		}
		s.fileSum, s.haveSum = sha256.Sum256(content), true // the watcher need not load it again
		s.fileProblemLocked("", nil)
		out.Persisted = true
	}
	s.target.SetPack(p)
	s.gen++
	// Who, the node and the source (the file's path) are recorded in the history and shown where
	// no mask reaches (riskflow rules versions, the console): a number in them (an account or a
	// host named by one, /home/13912345678/…) is masked here, as the log line of the load masks it.
	v := Version{Version: p.Version, Name: p.Name, Rules: len(p.Rules), LoadedBy: schemas.MaskPhones(who + "@" + s.cfg.Node),
		Source: schemas.MaskPhones(source), LoadedAt: s.now().UTC(), Content: append([]byte(nil), content...)}
	s.cur = v
	out.Version = v
	// An explicit load is recorded as the latest load of its version; a startup or file load only
	// when the history does not hold the version yet, so that nodes picking up a pack that was PUT
	// elsewhere do not replace who loaded it.
	var seq uint64
	if s.store != nil {
		s.seq++
		seq = s.seq
		// An explicit load's record is its caller's to make (Load), not a tick's meanwhile.
		s.pending = append(s.pending, pendingRecord{v: v, always: explicit, seq: seq, busy: explicit})
	}
	if !explicit || s.store == nil {
		s.log.Info("rule pack loaded", "pack", v.Name, "version", v.Version, "rules", v.Rules, "by", v.LoadedBy, "source", source, "recorded", false)
	}
	return out, seq, nil
}

// persistLocked writes content to the pack file under the file's lock, unless the file holds a pack
// this process has not loaded (ErrConflict): nodes sharing the file promote one after the other,
// and a promotion another node made a moment ago is not overwritten by one that never saw it (two
// admins promoting at once each got "rule pack loaded", and every node ended on one of the two).
func (s *Service) persistLocked(content []byte) error {
	unlock, err := lockFile(s.cfg.Path)
	if err != nil {
		return persistError(s.cfg.Path, err)
	}
	defer unlock()
	if err := s.checkFileLocked(); err != nil {
		return err
	}
	if err := writeAtomic(s.cfg.Path, content); err != nil {
		return persistError(s.cfg.Path, err)
	}
	return nil
}

// checkFileLocked returns an ErrConflict when the pack file holds, compiled, another version than
// the one this process runs and this process has not read that content yet. A process that does
// not follow the file (the CLI's rollback, which never started the service), a file that cannot
// be read, one rejected here already or one that does not compile is no one's promotion to keep.
func (s *Service) checkFileLocked() error {
	if !s.haveSum {
		return nil
	}
	data, err := rules.ReadPackFile(s.cfg.Path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(data)
	if sum == s.fileSum || sum == s.badSum {
		return nil
	}
	p, err := rules.Compile(data, s.target.Env())
	if err != nil || p.Version == s.cur.Version {
		return nil
	}
	var when string
	if st, err := os.Stat(s.cfg.Path); err == nil {
		when = " at " + st.ModTime().UTC().Format(time.RFC3339)
	}
	return fmt.Errorf("%w: the pack file %s (scoring.rules) was changed%s to version %s, which this node (running %s) has not loaded yet: "+
		"another node promoted or rolled back meanwhile; see the recorded versions (GET /v1/rules/versions, riskflow rules versions), "+
		"and promote again if this pack is to replace that one", ErrConflict, s.cfg.Path, when, p.Version, s.cur.Version)
}

// lockFile takes an exclusive lock (flock) on a lock file beside the pack file — next to the file
// a symlink names, as writeAtomic replaces that one — held by every process sharing the pack file
// for the moment it checks and writes it. The lock file is opened read-only: nodes running as
// other users share it.
func lockFile(path string) (func(), error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	name := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
	f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// flush records the pending loads pick chooses, outside mu — a history that hangs must not hold
// the node's pack, its file watcher, GET /v1/rules and the console's live pack for as long as it
// does — and reports which (by seq) are recorded; the others stay pending for the next tick. A
// Load picks its own alone (earlier ones the history failed are the tick's to retry, not for a
// promotion to wait out); a tick those no other flush is recording.
func (s *Service) flush(ctx context.Context, pick func(pendingRecord) bool) map[uint64]bool {
	s.mu.Lock()
	var batch []pendingRecord
	for i, r := range s.pending {
		if pick(r) {
			s.pending[i].busy = true
			batch = append(batch, r)
		}
	}
	s.mu.Unlock()
	done := make(map[uint64]bool, len(batch))
	failed := map[uint64]pendingRecord{} // by seq, as updated
	for _, r := range batch {
		err := s.record(ctx, r)
		if err != nil {
			r.tries++
			if now := time.Now(); r.tries == 1 || now.Sub(r.logged) >= retryLogEvery {
				s.log.Warn("rule version not recorded yet; retried on every tick, logged at most once a minute",
					"version", r.v.Version, "by", r.v.LoadedBy, "failed_attempts", r.tries, "err", err)
				r.logged = now
			}
			failed[r.seq] = r
			continue
		}
		done[r.seq] = true
		if r.failed {
			s.log.Info("rule version recorded", "version", r.v.Version, "by", r.v.LoadedBy, "failed_attempts", r.tries)
		}
	}
	s.mu.Lock()
	keep := s.pending[:0]
	for _, r := range s.pending {
		if done[r.seq] {
			continue
		}
		if f, ok := failed[r.seq]; ok {
			r.failed, r.busy, r.tries, r.logged = true, false, f.tries, f.logged
		}
		keep = append(keep, r)
	}
	s.pending = keep
	s.mu.Unlock()
	return done
}

// record stores r.v in the history (a startup or file load only when the history does not hold
// its version), giving up after recordTimeout even if the store does not heed its context (a
// ClickHouse that accepted the connection and never answers held a PUT for 15 s).
//
// An explicit load whose record failed before (the history away) may find the version recorded
// meanwhile by a node that picked it up from the file (startup@, file@), stamped later than the
// load: the history keeps a version's latest load, and "who shipped it" would then read file@node
// for good (held-out run: PUT through a node whose ClickHouse was away, the other nodes recording
// their pickups). Such a load is recorded at the pickup's time instead, the later record of that
// second, so that it stays the version's latest load.
func (s *Service) record(ctx context.Context, r pendingRecord) error {
	return s.bounded(ctx, "record version "+r.v.Version, func(ctx context.Context) error {
		if !r.always || r.failed {
			held, err := s.store.Lookup(ctx, r.v.Version)
			switch {
			case err != nil:
			case !r.always:
				return nil
			case isPickup(held.LoadedBy) && !held.LoadedAt.Before(r.v.LoadedAt.Truncate(time.Second)):
				r.v.LoadedAt = held.LoadedAt
			}
		}
		return s.store.RecordVersion(ctx, r.v)
	})
}

// isPickup reports whether loadedBy is a node's pickup of the pack file (at start or on a change),
// not a load someone made (api:, console:, cli:).
func isPickup(loadedBy string) bool {
	return strings.HasPrefix(loadedBy, "startup@") || strings.HasPrefix(loadedBy, "file@")
}

// bounded runs f, a use of the history, for at most recordTimeout, even if f does not heed its
// context; what names the use in the error of one that took longer.
func (s *Service) bounded(ctx context.Context, what string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.recordTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("rules: %s in the history: no answer within %s: %w", what, s.recordTimeout, ctx.Err())
	}
}

// Current is the running pack's load.
func (s *Service) Current() Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Recorded reports whether the running pack's load is in the history: false without a store, or
// while its record waits to be retried (ClickHouse away) or for the first tick (a startup load).
func (s *Service) Recorded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return false
	}
	return !s.pendingLocked(s.cur.Version)
}

// Versions lists the recorded versions, newest first.
func (s *Service) Versions(ctx context.Context) ([]Version, error) {
	if s.store == nil {
		return nil, ErrNoHistory
	}
	return s.store.Versions(ctx)
}

// Rollback loads a recorded version again — its exact bytes — as who, persisting it to the pack
// file and recording the load.
func (s *Service) Rollback(ctx context.Context, version, who string) (Loaded, error) {
	return s.RollbackOver(ctx, version, who, "")
}

// RollbackOver is Rollback meant to undo version live: refused (ErrNotLive) unless live is the
// running version at the moment the recorded one is swapped in, as LoadOver; "" rolls back over
// any. A caller that checked the live version first left a window — the history's look-up of the
// recorded bytes — in which two admins rolling back at once were both told their rollback was done.
func (s *Service) RollbackOver(ctx context.Context, version, who, live string) (Loaded, error) {
	if s.store == nil {
		return Loaded{}, ErrNoHistory
	}
	v, err := s.store.Lookup(ctx, version)
	if err != nil {
		return Loaded{}, err
	}
	if v.Version != version {
		return Loaded{}, fmt.Errorf("rules: history returned version %s for %s", v.Version, version)
	}
	return s.LoadOver(ctx, v.Content, who, "rollback", live)
}

// Run watches the pack file until ctx is done: a change of content that compiles is loaded as
// "file" (a rejected content is logged once and left until it changes again), and loads whose
// record failed are retried. It polls every Config.Interval, reading and hashing the file — packs
// are a few kilobytes — so a rewrite within the file system's timestamp granularity, or a
// Kubernetes ConfigMap symlink swap, is not missed.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Tick(ctx)
		}
	}
}

// historyCheckTicks is how many ticks apart (a minute at the default Interval) the history is
// asked whether it still holds the running pack's version.
const historyCheckTicks = 12

// Tick is one poll of Run.
func (s *Service) Tick(ctx context.Context) {
	s.mu.Lock()
	queued := s.seq // the loads queued before this tick: its own file load waits for the next
	data, sum, load := s.watchLocked()
	gen := s.gen
	s.ticks++
	check := s.store != nil && s.checkEvery > 0 && s.ticks%s.checkEvery == 0 && s.cur.Version != "" && !s.pendingLocked(s.cur.Version)
	s.mu.Unlock()
	if load {
		// Compiled outside the lock, as LoadOver's packs; swapped in only if no load came
		// meanwhile (a PUT wrote the file after it was read here: the next tick reads that).
		p, err := s.compile(data)
		s.mu.Lock()
		if s.gen == gen {
			s.fileLoadedLocked(p, data, sum, err)
		}
		s.mu.Unlock()
	}
	// The file first, the history after: a history that hangs delays only the records.
	if s.store != nil {
		s.flush(ctx, func(r pendingRecord) bool { return !r.busy && r.seq <= queued })
	}
	if check {
		s.checkHistory(ctx)
	}
}

// pendingLocked reports whether a load of version waits to be recorded.
func (s *Service) pendingLocked(version string) bool {
	for _, r := range s.pending {
		if r.v.Version == version {
			return true
		}
	}
	return false
}

// checkHistory records the running pack's load again when the history answers that it does not
// hold its version (its database was dropped and recreated); a history that does not answer is
// asked again at the next check.
func (s *Service) checkHistory(ctx context.Context) {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	err := s.bounded(ctx, "look up version "+cur.Version, func(ctx context.Context) error {
		_, err := s.store.Lookup(ctx, cur.Version)
		return err
	})
	if !errors.Is(err, ErrUnknownVersion) {
		return
	}
	s.mu.Lock()
	if s.cur.Version != cur.Version || s.pendingLocked(cur.Version) {
		s.mu.Unlock()
		return // loaded or queued meanwhile: that load is recorded
	}
	s.seq++
	seq := s.seq
	s.pending = append(s.pending, pendingRecord{v: cur, seq: seq, failed: true})
	s.mu.Unlock()
	s.log.Warn("the rule version history does not hold the running pack's version (its database recreated?); recording its load again",
		"version", cur.Version, "by", cur.LoadedBy)
	s.flush(ctx, func(r pendingRecord) bool { return r.seq == seq })
}

// watchLocked is Tick's look at the pack file: it returns the file's content (and its sum) when
// it is to be compiled and loaded (fileLoadedLocked).
func (s *Service) watchLocked() (data []byte, sum [sha256.Size]byte, load bool) {
	if s.cfg.Path == "" {
		return nil, sum, false
	}
	data, err := rules.ReadPackFile(s.cfg.Path)
	if err != nil {
		if !s.readFail {
			s.log.Error("rule pack file unreadable; the running pack stays", "path", s.cfg.Path, "version", s.cur.Version, "err", err)
			s.fileProblemLocked("unreadable", err)
		}
		s.readFail = true
		return nil, sum, false
	}
	s.readFail = false
	sum = sha256.Sum256(data)
	switch {
	case s.haveSum && sum == s.fileSum:
		s.fileProblemLocked("", nil) // the file is the running pack again (a broken edit undone)
		return nil, sum, false
	case sum == s.badSum:
		if s.file.Problem != "rejected" { // unreadable in between, then the same rejected content
			s.fileProblemLocked("rejected", s.badErr)
		}
		return nil, sum, false
	}
	if !s.settledLocked(sum) {
		return nil, sum, false // still being written: the next poll sees how it ends
	}
	return data, sum, true
}

// fileLoadedLocked swaps in the pack file's content data (sum), compiled to p, or records that it
// was rejected (err).
func (s *Service) fileLoadedLocked(p *rules.Pack, data []byte, sum [sha256.Size]byte, err error) {
	// Recorded at the next tick, not now: when another process wrote the file (a PUT, a rollback,
	// the console), it records its load right after writing, and looking the version up a tick
	// later finds that record instead of racing it with "file" (the later load_at would win).
	if err == nil {
		_, _, err = s.swapLocked(p, data, "file", s.cfg.Path, false)
	}
	if err != nil {
		s.badSum, s.badErr = sum, err
		s.log.Error("rule pack rejected; the running pack stays", "path", s.cfg.Path, "version", s.cur.Version, "err", err)
		s.fileProblemLocked("rejected", err)
		return
	}
	s.fileSum, s.haveSum = sum, true
	s.fileProblemLocked("", nil)
}

// settledLocked reports whether the file, read with content sum, has been left alone for
// Config.Settle: it was modified longer ago than that, or it reads the same once it has been.
// The wait (at most Settle) holds the lock, so a PUT cannot write the file in between.
func (s *Service) settledLocked(sum [sha256.Size]byte) bool {
	st, err := os.Stat(s.cfg.Path)
	if err != nil {
		return false
	}
	age := time.Since(st.ModTime())
	if age >= s.cfg.Settle {
		return true
	}
	s.sleep(min(s.cfg.Settle-max(age, 0), s.cfg.Settle))
	again, err := rules.ReadPackFile(s.cfg.Path)
	if err != nil || sha256.Sum256(again) != sum {
		s.log.Info("rule pack file changed while it was read; loaded once it is left alone", "path", s.cfg.Path)
		return false
	}
	return true
}

// persistError says why the pack file could not be written. A read-only one (a Kubernetes
// ConfigMap mount, a read-only file system) will stay so whatever the caller retries: the error
// says where packs are changed then.
func persistError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("rules: persist the pack to %s (scoring.rules): the file or its directory is read-only here (a ConfigMap mount?): "+
			"PUT /v1/rules, the console's promote and rollbacks write it, so put it on a writable volume every node shares, "+
			"or change the pack where the file comes from (the ConfigMap): %w", path, err)
	}
	return fmt.Errorf("rules: persist the pack to %s (scoring.rules): %w", path, err)
}

// writeAtomic replaces path with data so that a watcher never reads half a file. The new file
// keeps the permissions of the one it replaces (0644 when there is none): os.CreateTemp makes it
// 0600, which other nodes sharing the file under another user, or its group, could not read —
// they kept their old pack. It is synced before the rename, so a crash cannot leave an empty pack
// file that no node would start on. A path that is a symlink (nodes pointing at one shared file)
// stays one: the file it points to is replaced, not the link, which other nodes would not follow.
func writeAtomic(path string, data []byte) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rules-*.yaml")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
