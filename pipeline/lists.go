package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// ListEntry is one allow/block entry added through the console, as it travels on the lists topic
// (kafka.lists_topic): keyed by ID, a removal is a tombstone (no value) of the same key. Kind is
// the list file's: phone_hash, ip (an address or a network), device or prefix — a number never
// travels, only its keyed hash and masked form (Shown).
type ListEntry struct {
	ID     string    `json:"id"`
	Action string    `json:"action"`
	Kind   string    `json:"kind"`
	Value  string    `json:"value"`
	Shown  string    `json:"shown,omitempty"`
	Who    string    `json:"who"`
	At     time.Time `json:"at"`
	Why    string    `json:"why"`
}

// Line is the entry in the list file's format.
func (e ListEntry) Line() string { return e.Action + " " + e.Kind + " " + e.Value }

// ListEntryID is the id of a list line ("block ip 198.51.100.0/24  # why"): a hash of its entry,
// comment and spacing aside, so that the same entry has the same id in the file and on the topic.
func ListEntryID(line string) string {
	entry, _, _ := strings.Cut(line, "#")
	h := sha256.Sum256([]byte(strings.Join(strings.Fields(entry), " ")))
	return hex.EncodeToString(h[:6])
}

// ErrListEntry marks an entry the lists refuse: it does not parse, it is there already, or it is
// not there (to remove), or it is in the file (changed only there).
var ErrListEntry = errors.New("list entry refused")

// ListsTarget is what applies the lists: a scorer (*scoring.Scorer).
type ListsTarget interface {
	SetLists(*scoring.Lists)
}

// SharedLists are the allow/block lists every node applies: the scoring.lists file (hand-written,
// shared the way the pack file is) and the entries added through the console on any node, which
// live on the compacted lists topic — one message per entry, so two nodes adding at once never
// lose one another's entry, as rewriting one shared file did. Every node tails the whole topic
// (it is small: one message per entry, compacted) and rebuilds its lists whenever the file or the
// topic changes, without a restart.
type SharedLists struct {
	tail   *consumers.Tail
	w      consumers.MessageWriter
	target ListsTarget
	log    *slog.Logger

	mu      sync.Mutex
	file    []byte               // the file's content as last set
	entries map[string]ListEntry // the topic's entries by id
	// where is the partition of each id's newest message (an entry or its removal): the next
	// message of the id goes there too (NewListsWriter), so that an entry's adds and removals
	// keep their order and compaction, however many partitions the topic has or had.
	where   map[string]int
	changes int // rebuilds applied, for tests
}

// NewSharedLists prepares the lists of topic (every message from the oldest) and file content
// for target; w writes to topic. Follow starts reading.
func NewSharedLists(kc consumers.Config, topic string, w consumers.MessageWriter, target ListsTarget, log *slog.Logger) *SharedLists {
	l := &SharedLists{w: w, target: target, log: log, entries: map[string]ListEntry{}, where: map[string]int{}}
	l.tail = consumers.NewBatchTail(kc, topic, time.Time{}, l.apply, log)
	return l
}

// Follow reads the topic until ctx is done.
func (l *SharedLists) Follow(ctx context.Context) error { return l.tail.Follow(ctx) }

// Fresh is when the lists last caught up with the topic (zero: not yet).
func (l *SharedLists) Fresh() time.Time { return l.tail.Fresh() }

// apply takes one partition's messages in offset order: the latest of a key wins.
func (l *SharedLists) apply(ms []kafka.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range ms {
		id := string(m.Key)
		l.where[id] = m.Partition
		if m.Value == nil {
			delete(l.entries, id)
			continue
		}
		var e ListEntry
		err := schemas.UnmarshalJSON(m.Value, &e, "at")
		if err == nil && e.ID != id {
			err = errors.New("id: is not the message key")
		}
		if err == nil {
			err = checkEntry(e)
		}
		if err != nil {
			// One entry at a time: a bad one (not written by riskflow, or by a later version) in
			// the text rebuilt below failed it whole, and every later change with it.
			l.log.Error("list entry unreadable; skipped", "offset", m.Offset, "key", schemas.Excerpt(id, 64), "err", schemas.MaskPhones(err.Error())) // a key not written by riskflow may hold anything
			continue
		}
		l.entries[id] = e
	}
	// A rebuild parses every entry: one per batch made reading a topic of many entries quadratic
	// (51,200 entries took 3 minutes at a node's start). While the partition held more than this
	// batch when it was fetched, another batch follows and the rebuild waits for it.
	if n := len(ms); n > 0 && ms[n-1].HighWaterMark > ms[n-1].Offset+1 {
		return
	}
	if err := l.rebuildLocked(); err != nil {
		l.log.Error("lists from the topic rejected; the running lists stay", "err", err)
	}
}

// checkEntry reports why e is not one entry of the lists: a line of exactly its action, kind and
// value (a value holding a space, a '#' or a second line would read as something else) that parses.
func checkEntry(e ListEntry) error {
	line := e.Line()
	if f := strings.Fields(line); len(f) != 3 || f[0] != e.Action || f[1] != e.Kind || f[2] != e.Value || strings.ContainsAny(line, "#\r\n") {
		return errors.New("action, kind and value are not one line of three fields")
	}
	if _, err := scoring.ParseLists(strings.NewReader(line)); err != nil {
		return err
	}
	return nil
}

// SetFile replaces the file's part of the lists. Content that does not parse is refused and the
// running lists stay.
func (l *SharedLists) SetFile(content []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.file
	l.file = content
	if err := l.rebuildLocked(); err != nil {
		l.file = old
		return err
	}
	return nil
}

// text is the file and the topic's entries in the list format; topic entries sorted by id.
func (l *SharedLists) textLocked() string {
	var b strings.Builder
	b.Write(l.file)
	if len(l.file) > 0 && l.file[len(l.file)-1] != '\n' {
		b.WriteByte('\n')
	}
	ids := make([]string, 0, len(l.entries))
	for id := range l.entries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		b.WriteString(l.entries[id].Line())
		b.WriteByte('\n')
	}
	return b.String()
}

func (l *SharedLists) rebuildLocked() error {
	parsed, err := scoring.ParseLists(strings.NewReader(l.textLocked()))
	if err != nil {
		return fmt.Errorf("lists: %w", err)
	}
	l.target.SetLists(parsed)
	l.changes++
	return nil
}

// Snapshot returns the file's content and the topic's entries (oldest first) as this node
// applies them.
func (l *SharedLists) Snapshot() (file []byte, entries []ListEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b ListEntry) int { return cmpOr(a.At.Compare(b.At), strings.Compare(a.ID, b.ID)) })
	return bytes.Clone(l.file), entries
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// has reports whether id is on the lists (the file's or the topic's).
func (l *SharedLists) has(id string) (inFile, onTopic bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(string(l.file), "\n") {
		if entry, _, _ := strings.Cut(line, "#"); strings.TrimSpace(entry) != "" && ListEntryID(line) == id {
			inFile = true
		}
	}
	_, onTopic = l.entries[id]
	return inFile, onTopic
}

// Add writes e (its ID set here) to the topic and waits, at most 5 s, until this node applied it.
// An entry that does not parse or is on the lists already is refused (ErrListEntry).
func (l *SharedLists) Add(ctx context.Context, e ListEntry) (ListEntry, error) {
	e.ID = ListEntryID(e.Line())
	if err := checkEntry(e); err != nil {
		return e, fmt.Errorf("%w: %v", ErrListEntry, err)
	}
	if inFile, onTopic := l.has(e.ID); inFile || onTopic {
		return e, fmt.Errorf("%w: the entry is on the list already", ErrListEntry)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	return e, l.write(ctx, kafka.Message{Key: []byte(e.ID), Value: b})
}

// Remove writes a tombstone of id (who is logged by the caller) and waits until this node applied
// it. An entry of the file, or one not on the lists, is refused (ErrListEntry).
func (l *SharedLists) Remove(ctx context.Context, id, who string) error {
	inFile, onTopic := l.has(id)
	switch {
	case !onTopic && inFile:
		return fmt.Errorf("%w: entry %s is in the lists file (scoring.lists): change it there", ErrListEntry, schemas.Excerpt(id, 40))
	case !onTopic:
		return fmt.Errorf("%w: no entry %s (removed already?)", ErrListEntry, schemas.Excerpt(id, 40))
	}
	return l.write(ctx, kafka.Message{Key: []byte(id), Headers: []kafka.Header{{Key: "removed_by", Value: []byte(who)}}})
}

// write produces m, then waits until the tail has applied it, so that this node's next read (and
// its scorer) has it — in the topic's order with every other node's changes.
func (l *SharedLists) write(ctx context.Context, m kafka.Message) error {
	m.Time = time.Now()
	l.mu.Lock()
	m.Partition = l.where[string(m.Key)] // 0 for an id the topic has not held
	l.mu.Unlock()
	if err := l.w.WriteMessages(ctx, m); err != nil {
		return fmt.Errorf("write the lists topic: %w", err)
	}
	if _, ok := l.tail.WaitThrough(ctx, consumers.Point{Stamp: m.Time}, 5*time.Second); !ok {
		return fmt.Errorf("written, but not applied on this node within 5 s (it is on every node once their lists catch up with the topic)")
	}
	return nil
}

// NewListsWriter returns the writer of the lists topic: an entry is one message, sent at once, to
// the partition the message names (SharedLists names the partition of the id's newest message,
// or 0), not by key hash: an entry added before partitions were added to the topic and removed
// after had its removal hashed to another partition than its add, and a node reading them side by
// side at its start could apply the removal first — the entry was back on its lists. A partition
// the topic does not have (any more) gives the first one.
func NewListsWriter(kc consumers.Config, topic string) *kafka.Writer {
	w := consumers.NewWriter(kc, topic)
	w.BatchTimeout = time.Millisecond
	w.Balancer = kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
		if slices.Contains(partitions, m.Partition) {
			return m.Partition
		}
		return slices.Min(partitions)
	})
	return w
}
