package consumers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lockedBuf is a bytes.Buffer safe for a logger and a test to share.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A group whose committed offset the topic has deleted since (a scorer down longer than
// verify.events' retention) reads on from the oldest offset left — and says how many messages it
// never read, in its log and in Deleted, instead of skipping them without a word.
func TestGroupReaderTellsWhatRetentionDeletedUnread(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	c := Config{Brokers: cluster.ListenAddrs(), DialTimeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	w := NewWriter(c, "events")
	var msgs []kafka.Message
	for i := range 20 {
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprint(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	r1 := NewGroupReader(c, "events", "scorers", WithGroupLogger(slog.New(slog.DiscardHandler)))
	var m kafka.Message
	for range 3 {
		if m, err = r1.FetchMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := r1.CommitMessages(ctx, m); err != nil { // committed: offset 3
		t.Fatal(err)
	}
	r1.Close()

	if err := cluster.DeleteRecords("events", 0, 12); err != nil { // retention: offsets 0–11 gone
		t.Fatal(err)
	}
	logs := &lockedBuf{}
	r2 := NewGroupReader(c, "events", "scorers", WithGroupLogger(slog.New(slog.NewTextHandler(logs, nil))))
	defer r2.Close()
	if m, err = r2.FetchMessage(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Offset != 12 {
		t.Fatalf("first message after the deletion at offset %d, want 12 (the oldest left)", m.Offset)
	}
	if got := r2.Deleted(); got != 9 {
		t.Errorf("Deleted() = %d, want 9 (offsets 3–11: committed but deleted before read)\nlog:\n%s", got, logs)
	}
	out := logs.String()
	for _, want := range []string{"retention", "partition=0", "from_offset=3", "to_offset=12", "messages=9", "group=scorers"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// The messages read from there on are consecutive: no further loss is reported.
	for range 7 {
		if _, err = r2.FetchMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := r2.Deleted(); got != 9 {
		t.Errorf("Deleted() = %d after reading on, want 9", got)
	}
}

// A tail cut off from the broker (or frozen) for longer than the topic's retention comes back to
// find its next offset deleted: it reads on from the oldest offset left and says how many
// messages are missing from the state, instead of applying on as if nothing were (an API node
// frozen past the retention stayed ready with 1,000 events missing and not a word).
func TestTailTellsWhatRetentionDeletedUnread(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var down atomic.Bool     // fetches fail: the broker is out of reach for this node
	var refused atomic.Int64 // fetches failed so
	cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if down.Load() {
			refused.Add(1)
			return nil, errors.New("out of reach"), true
		}
		return nil, nil, false
	})
	c := Config{Brokers: cluster.ListenAddrs(), DialTimeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	w := NewWriter(c, "events")
	defer w.Close()
	produce := func(n int) {
		t.Helper()
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Value: []byte("v")}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	produce(5)

	var mu sync.Mutex
	var applied []int64
	logs := &lockedBuf{}
	tl := NewBatchTail(c, "events", time.Time{}, func(ms []kafka.Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			applied = append(applied, m.Offset)
		}
	}, slog.New(slog.NewTextHandler(logs, nil)))
	tl.backoff = 50 * time.Millisecond
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); tl.Follow(fctx) }()
	defer func() { stop(); <-done }()
	waitApplied := func(last int64) {
		t.Helper()
		for {
			mu.Lock()
			n := len(applied)
			reached := n > 0 && applied[n-1] >= last
			mu.Unlock()
			if reached {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("offset %d never applied (applied %v)\nlog:\n%s", last, applied, logs)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	waitApplied(4)

	down.Store(true)
	for refused.Load() == 0 { // the fetch waiting at the broker has ended: the next one failed
		select {
		case <-ctx.Done():
			t.Fatal("no fetch refused")
		case <-time.After(5 * time.Millisecond):
		}
	}
	produce(20)                                                    // offsets 5–24, never fetched before…
	if err := cluster.DeleteRecords("events", 0, 15); err != nil { // …retention deletes 0–14
		t.Fatal(err)
	}
	down.Store(false)
	waitApplied(24)

	mu.Lock()
	if len(applied) != 15 || applied[5] != 15 {
		t.Errorf("applied %v, want 0–4 and 15–24", applied)
	}
	mu.Unlock()
	if got := tl.Deleted(); got != 10 {
		t.Errorf("Deleted() = %d, want 10 (offsets 5–14)\nlog:\n%s", got, logs)
	}
	out := logs.String()
	for _, want := range []string{"retention", "missing from the state", "partition=0", "from_offset=5", "to_offset=15", "messages=10"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// OldestTimes reads the time of the oldest message a partition holds, after retention deleted
// the ones before it: what a snapshot whose last message is gone is checked against.
func TestOldestTimesAfterRetention(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, "events"), kfake.SeedTopics(1, "empty"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	c := Config{Brokers: cluster.ListenAddrs(), DialTimeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	w := NewWriter(c, "events")
	defer w.Close()
	base := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := range 6 { // one write each: a record batch per message
		if err := w.WriteMessages(ctx, kafka.Message{Value: []byte(fmt.Sprint(i)), Time: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := OldestTimes(ctx, c, "events", []int{0})
	if err != nil || !got[0].Equal(base) {
		t.Errorf("oldest of 6 messages: %v, %v; want the first's, %v", got, err, base)
	}
	if got, err := OldestTimes(ctx, c, "empty", []int{0}); err != nil || len(got) != 0 {
		t.Errorf("oldest of an empty partition: %v, %v; want left out", got, err)
	}
	if err := cluster.DeleteRecords("events", 0, 4); err != nil { // retention: offsets 0–3 gone
		t.Fatal(err)
	}
	if got, err = OldestTimes(ctx, c, "events", []int{0}); err != nil || !got[0].Equal(base.Add(4*time.Minute)) {
		t.Errorf("oldest after retention: %v, %v; want %v", got, err, base.Add(4*time.Minute))
	}
}
