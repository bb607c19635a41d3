package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
)

// Partitions added to the lists topic (an operator growing every topic alike) must not bring
// removed entries back: an entry added before and removed after the growth had its add on
// partition 0 and its removal, hashed by key over more partitions, mostly on another one; a node
// reading the partitions side by side at its next start applied some removals before their adds,
// and the removed entries were on its lists again. Every message goes to one partition instead, so
// the topic keeps one order of adds and removals however many partitions it has.
// An entry already on another partition (written by key hash over a topic that had several
// partitions from the start) is removed, and added again, on its own partition.
func TestSharedListsRemovalsSurvivePartitionsAdded(t *testing.T) {
	const topic = "lists"
	kc := embeddedKafka(t, topic, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := func() *SharedLists {
		w := NewListsWriter(kc, topic)
		t.Cleanup(func() { w.Close() })
		l := NewSharedLists(kc, topic, w, &listsTarget{}, quiet())
		go l.Follow(ctx)
		waitLists(t, "a node's lists catch up", func() bool { return !l.Fresh().IsZero() })
		return l
	}
	a := node()
	var ids []string
	for i := range 24 {
		e, err := a.Add(ctx, ListEntry{Action: "block", Kind: "ip", Value: fmt.Sprintf("198.51.100.%d", i), Who: "admin", At: time.Now().UTC(), Why: "farm"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	client := &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Timeout: 10 * time.Second}
	res, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}}})
	if err != nil || res.Errors[topic] != nil {
		t.Fatalf("add partitions: %v %v", err, res.Errors)
	}
	b := node() // started after the growth: its writer knows the 4 partitions
	waitLists(t, "the new node has every entry", func() bool { _, es := b.Snapshot(); return len(es) == 24 })
	for _, id := range ids {
		if err := b.Remove(ctx, id, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 { // nodes started later replay the topic
		c := node()
		if _, es := c.Snapshot(); len(es) != 0 {
			t.Fatalf("node %d started after the removals has %d of the 24 removed entries back", i, len(es))
		}
	}
	ends, err := consumers.EndOffsets(ctx, kc, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends {
		if p != 0 && end != 0 {
			t.Errorf("partition %d holds %d messages: adds and removals are no longer in one order", p, end)
		}
	}

	// Entries written by key hash over the 4 partitions (an earlier build), removed and some added
	// again by this one.
	hashing := consumers.NewWriter(kc, topic)
	hashing.BatchTimeout = time.Millisecond
	t.Cleanup(func() { hashing.Close() })
	old := NewSharedLists(kc, topic, hashing, &listsTarget{}, quiet())
	go old.Follow(ctx)
	waitLists(t, "the old node's lists catch up", func() bool { return !old.Fresh().IsZero() })
	ids = ids[:0]
	for i := range 12 {
		e, err := old.Add(ctx, ListEntry{Action: "block", Kind: "ip", Value: fmt.Sprintf("203.0.113.%d", i), Who: "admin", At: time.Now().UTC(), Why: "farm"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	d := node()
	waitLists(t, "a node has the hashed entries", func() bool { _, es := d.Snapshot(); return len(es) == 12 })
	for _, id := range ids {
		if err := d.Remove(ctx, id, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		if _, err := d.Add(ctx, ListEntry{Action: "block", Kind: "ip", Value: fmt.Sprintf("203.0.113.%d", i), Who: "admin", At: time.Now().UTC(), Why: "again"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		c := node()
		if _, es := c.Snapshot(); len(es) != 4 {
			t.Fatalf("node %d started after the hashed entries were removed and 4 added again has %d entries, want 4", i, len(es))
		}
	}
}
