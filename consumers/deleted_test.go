package consumers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
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
