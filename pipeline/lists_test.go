package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/scoring"
)

type listsTarget struct{ n atomic.Int64 }

func (t *listsTarget) SetLists(l *scoring.Lists) { t.n.Store(int64(l.Len())) }

// listsNode is one node's lists on the lists topic.
func listsNode(t *testing.T, ctx context.Context, kc consumers.Config, topic string, file string) (*SharedLists, *listsTarget) {
	t.Helper()
	w := consumers.NewWriter(kc, topic)
	w.BatchTimeout = time.Millisecond
	t.Cleanup(func() { w.Close() })
	target := &listsTarget{}
	l := NewSharedLists(kc, topic, w, target, quiet())
	if err := l.SetFile([]byte(file)); err != nil {
		t.Fatal(err)
	}
	go l.Follow(ctx)
	return l, target
}

// Two nodes add entries at the same time: every entry is on both nodes' lists (with the lists file
// shared by both, two nodes rewriting the file lost 17 of 40 entries), a removal on one node is
// gone on the other, and the file's entries are changed only in the file.
func TestSharedListsConcurrentAddsFromTwoNodes(t *testing.T) {
	const topic = "lists"
	kc := embeddedKafka(t, topic, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const file = "allow ip 203.0.113.7  # partner gateway\n"
	a, ta := listsNode(t, ctx, kc, topic, file)
	b, tb := listsNode(t, ctx, kc, topic, file)
	var wg sync.WaitGroup
	for n, l := range []*SharedLists{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				e := ListEntry{Action: "block", Kind: "ip", Value: fmt.Sprintf("198.51.%d.%d", n, i), Who: fmt.Sprint("admin", n), At: time.Now().UTC(), Why: "farm"}
				if _, err := l.Add(ctx, e); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	waitLists(t, "both nodes have every entry", func() bool {
		_, ea := a.Snapshot()
		_, eb := b.Snapshot()
		return len(ea) == 40 && len(eb) == 40 && ta.n.Load() == 41 && tb.n.Load() == 41
	})
	_, es := b.Snapshot()
	gone := es[0]
	if err := a.Remove(ctx, gone.ID, "admin0"); err != nil {
		t.Fatal(err)
	}
	waitLists(t, "the removal on a reaches b", func() bool {
		_, eb := b.Snapshot()
		return len(eb) == 39 && tb.n.Load() == 40
	})
	if _, err := b.Add(ctx, ListEntry{Action: "block", Kind: "ip", Value: es[1].Value, Who: "x", Why: "again"}); !errors.Is(err, ErrListEntry) {
		t.Errorf("a duplicate: %v", err)
	}
	if err := b.Remove(ctx, ListEntryID("allow ip 203.0.113.7"), "x"); !errors.Is(err, ErrListEntry) {
		t.Errorf("removing a file entry: %v", err)
	}
	if _, err := b.Add(ctx, ListEntry{Action: "block", Kind: "ip", Value: "198.51.100.0/33", Who: "x", Why: "bad"}); !errors.Is(err, ErrListEntry) {
		t.Errorf("a network that does not parse: %v", err)
	}
	// A node started later reads every entry from the topic.
	c, tc := listsNode(t, ctx, kc, topic, "")
	waitLists(t, "a new node reads the topic", func() bool {
		_, ec := c.Snapshot()
		return len(ec) == 39 && tc.n.Load() == 39
	})
}

func waitLists(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A message on the lists topic that is no entry riskflow wrote (a hand-made one, another tool's)
// is logged and skipped; its key, as sent, may hold a number, and the log line shows it masked.
func TestUnreadableListEntryLogMasksItsKey(t *testing.T) {
	var buf syncbuf.Buffer
	l := NewSharedLists(consumers.Config{Brokers: []string{"127.0.0.1:1"}}, "lists", nil, &listsTarget{}, slog.New(slog.NewTextHandler(&buf, nil)))
	l.apply([]kafka.Message{{Key: []byte("block 138 1234 5678"), Value: []byte(`{"id":"x"}`)}})
	if got := buf.String(); !strings.Contains(got, "list entry unreadable") || strings.Contains(strings.ReplaceAll(got, " ", ""), "13812345678") {
		t.Errorf("log: %s", got)
	}
}

// A message on the lists topic that reads as an entry but is none riskflow takes (a hand-made one,
// a later version's kind, a value holding a second line) is skipped on its own: the entries before
// and after it apply. It held every later change back on every node ('lists from the topic
// rejected; the running lists stay', for good: it stays on the compacted topic), and a node
// restarting then started with the file's entries only.
func TestBadListEntryHoldsNoOtherBack(t *testing.T) {
	var buf syncbuf.Buffer
	target := &listsTarget{}
	l := NewSharedLists(consumers.Config{Brokers: []string{"127.0.0.1:1"}}, "lists", nil, target, slog.New(slog.NewTextHandler(&buf, nil)))
	if err := l.SetFile([]byte("allow ip 203.0.113.7\n")); err != nil {
		t.Fatal(err)
	}
	entry := func(action, kind, value string) kafka.Message {
		e := ListEntry{Action: action, Kind: kind, Value: value, Who: "x", Why: "test"}
		e.ID = ListEntryID(e.Line())
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Key: []byte(e.ID), Value: b}
	}
	l.apply([]kafka.Message{entry("block", "ip", "198.51.100.1")})
	if n := target.n.Load(); n != 2 {
		t.Fatalf("lists before: %d entries, want 2", n)
	}
	l.apply([]kafka.Message{
		entry("block", "asn", "4134"),                            // a kind this version does not know
		entry("block", "ip", "198.51.100.2\nblock ip 0.0.0.0/0"), // a second line inside the value
		entry("block", "ip", "198.51.100.3 198.51.100.4"),        // two values
		entry("block", "ip", "198.51.100.5"),
	})
	l.apply([]kafka.Message{entry("block", "ip", "198.51.100.6")})
	if n := target.n.Load(); n != 4 {
		t.Errorf("lists after bad entries: %d entries, want 4 (file, .1, .5, .6)", n)
	}
	if _, es := l.Snapshot(); len(es) != 3 {
		t.Errorf("entries on the topic: %d, want 3: %+v", len(es), es)
	}
	if got := buf.String(); strings.Count(got, "list entry unreadable") != 3 {
		t.Errorf("log: want the three bad entries named: %s", got)
	}
}

// A node reading a lists topic of many entries rebuilds its lists once it has read up to the end
// the partition had, not at every batch: each rebuild parses every entry, and one per batch made
// the read quadratic (51,200 entries took 3 minutes at a node's start, 25,600 took 40 s).
func TestListsTopicOfManyEntriesRebuildsOnceCaughtUp(t *testing.T) {
	target := &listsTarget{}
	l := NewSharedLists(consumers.Config{Brokers: []string{"127.0.0.1:1"}}, "lists", nil, target, quiet())
	const n = 20 * consumers.TailBatch
	batch := make([]kafka.Message, 0, consumers.TailBatch)
	for i := range n {
		e := ListEntry{Action: "block", Kind: "ip", Value: fmt.Sprintf("10.0.%d.%d", i>>8, i&255), Who: "x", Why: "farm"}
		e.ID = ListEntryID(e.Line())
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, kafka.Message{Key: []byte(e.ID), Value: b, Offset: int64(i), HighWaterMark: n})
		if len(batch) == cap(batch) {
			l.apply(batch)
			batch = batch[:0]
		}
	}
	if l.changes != 1 || target.n.Load() != n {
		t.Errorf("%d rebuilds, %d entries applied; want 1 rebuild of %d", l.changes, target.n.Load(), n)
	}
	// One more entry, the partition's last: applied at once.
	e := ListEntry{Action: "block", Kind: "device", Value: "dev-1", Who: "x", Why: "farm"}
	e.ID = ListEntryID(e.Line())
	b, _ := json.Marshal(e)
	l.apply([]kafka.Message{{Key: []byte(e.ID), Value: b, Offset: n, HighWaterMark: n + 1}})
	if l.changes != 2 || target.n.Load() != n+1 {
		t.Errorf("%d rebuilds, %d entries applied; want 2 and %d", l.changes, target.n.Load(), n+1)
	}
}

// A phone_hash entry on the lists topic with more than 64 hex digits (hand-made, or cut wrong)
// is skipped as unreadable. ParseLists decoded it into a 32-byte array before checking its length,
// and panicked: the panic ended every node following the topic, and, the entry staying on the
// compacted topic, every restart after.
func TestListEntryOfALongPhoneHashIsSkipped(t *testing.T) {
	var buf syncbuf.Buffer
	target := &listsTarget{}
	l := NewSharedLists(consumers.Config{Brokers: []string{"127.0.0.1:1"}}, "lists", nil, target, slog.New(slog.NewTextHandler(&buf, nil)))
	for _, value := range []string{strings.Repeat("ab", 33), strings.Repeat("0", 65), strings.Repeat("f", 128)} {
		e := ListEntry{Action: "block", Kind: "phone_hash", Value: value, Who: "x", Why: "test"}
		e.ID = ListEntryID(e.Line())
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		l.apply([]kafka.Message{{Key: []byte(e.ID), Value: b}})
	}
	if got := buf.String(); strings.Count(got, "list entry unreadable") != 3 || !strings.Contains(got, "64 hex digits") {
		t.Errorf("log: want the three entries named unreadable: %s", got)
	}
}

// A message on the lists topic that does not decode as an entry is logged naming the field and
// what it must be, as the event decoder words it, not encoding/json's text ("cannot unmarshal
// array into Go value of type pipeline.ListEntry"), with a number in it masked and its key too.
func TestUnreadableListEntryLogNamesTheField(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`[1]`, "expected a JSON object, got array"},
		{`{"id":"k","action":["block"]}`, "action: must be a string, got array"},
		{`{"id":"k","at":5}`, "at: "},
		{`{"id":"k","at":"13812345678"}`, "at: "},
		{`{"id":"other"}`, "id: is not the message key"},
		{`{"id":`, "invalid JSON"},
	} {
		var buf syncbuf.Buffer
		l := NewSharedLists(consumers.Config{Brokers: []string{"127.0.0.1:1"}}, "lists", nil, &listsTarget{}, slog.New(slog.NewTextHandler(&buf, nil)))
		l.apply([]kafka.Message{{Key: []byte("k"), Value: []byte(c.value)}})
		got := buf.String()
		if !strings.Contains(got, "list entry unreadable") || !strings.Contains(got, c.want) || strings.Contains(got, "Go value") ||
			strings.Contains(got, "Go struct") || strings.Contains(got, "13812345678") {
			t.Errorf("%s: log wants %q: %s", c.value, c.want, got)
		}
	}
}
