package consumers

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hungCommits is a reader whose commits are never answered: CommitMessages returns only when its
// context ends, as against a hung broker.
type hungCommits struct {
	*fakeReader
	asked chan struct{}
	once  sync.Once
}

func (r *hungCommits) CommitMessages(ctx context.Context, _ ...kafka.Message) error {
	r.once.Do(func() { close(r.asked) })
	<-ctx.Done()
	return ctx.Err()
}

// A loop told to stop while it commits its last batch (written downstream just before the signal)
// waits for the commit only a little longer (stopCommitWait), not the whole commitTimeout: against a
// hung broker a stopping archiver waited 10 s for it. Here commitTimeout is an hour, so a loop that
// waits it out never returns within the test's guard.
func TestStopDoesNotWaitOutTheCommitTimeout(t *testing.T) {
	defer func(d time.Duration) { commitTimeout = d }(commitTimeout)
	commitTimeout = time.Hour
	r := &hungCommits{fakeReader: newFakeReader(), asked: make(chan struct{})}
	r.push(3)
	ctx, cancel := context.WithCancel(context.Background())
	l := NewLoop(fastConfig(10), r, func(context.Context, []kafka.Message) error { return nil }, quiet(), nil)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	<-r.asked // the batch is handled and being committed
	cancel()
	finish(t, "a loop stopped during a commit", func() error { return <-done })
}

// blockingCloser blocks in Close until released.
type blockingCloser struct{ release chan struct{} }

func (c blockingCloser) Close() error { <-c.release; return nil }

// chanCloser closes its channel when closed.
type chanCloser chan struct{}

func (c chanCloser) Close() error { close(c); return nil }

// CloseWithin returns once every closer is closed, or after its wait, leaving a close that hangs
// (a writer's in-flight batch to a hung broker) behind; the others are closed all the same.
func TestCloseWithin(t *testing.T) {
	c := make(chanCloser)
	CloseWithin(time.Hour, c)
	select {
	case <-c:
	default:
		t.Error("returned before the close")
	}
	hung := blockingCloser{release: make(chan struct{})}
	defer close(hung.release)
	other := make(chanCloser)
	finish(t, "CloseWithin of a close that hangs", func() error {
		CloseWithin(10*time.Millisecond, hung, other)
		return nil
	})
	finish(t, "the other close", func() error { <-other; return nil })
}

// A group reader closed while its broker hangs returns without the group's leave: kafka-go's
// leave waits for a coordinator lookup and the leave request, each up to the configured timeout
// (an archiver, closing two group readers, took 20 s to exit against a broker stopped with
// SIGSTOP; a scorer 32 s). Here the timeout is ten minutes, so waiting for the leave fails the test.
func TestGroupReaderCloseDoesNotWaitForAHungBroker(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	hung := false
	cluster.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		return nil, nil, hung // handled with no answer: the request is never answered
	})
	defer cluster.Close()
	c := Config{Brokers: cluster.ListenAddrs(), DialTimeout: 10 * time.Minute}
	w := NewWriter(c, "t")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r := NewGroupReader(c, "t", "g")
	if _, err := r.FetchMessage(ctx); err != nil { // joined, assigned, reading
		t.Fatal(err)
	}
	mu.Lock()
	hung = true
	mu.Unlock()
	if err := finish(t, "GroupReader.Close", r.Close); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
}
