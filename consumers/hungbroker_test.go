package consumers

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
)

// silentBroker accepts connections and never answers, as a hung broker does (stopped with
// SIGSTOP, or a half-open connection: the kernel completes the handshake, nothing replies). Each
// request received (the client has dialled and now waits for the answer) is announced on the
// returned channel.
func silentBroker(t testing.TB) (addr string, asked <-chan struct{}) {
	h := testaddr.NewHung(t)
	return h.Addr, h.Asked()
}

// finish runs call and returns its error; the test fails if it has not returned within a minute
// (a guard against hanging the test binary, not a measurement).
func finish(t *testing.T, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s against a broker that answers nothing did not return at its context's end", what)
		return nil
	}
}

// The metadata requests riskflow sends on its own connections give up at their context's deadline
// against a hung broker: the consumer-group lag kept its last reading (0) through a 40 s SIGSTOP
// of the broker, because listing the partitions never returned.
func TestRequestsToAHungBrokerEndWithTheirContext(t *testing.T) {
	addr, _ := silentBroker(t)
	c := Config{Brokers: []string{addr}}
	for what, call := range map[string]func(context.Context) error{
		"Partitions": func(ctx context.Context) error { _, err := Partitions(ctx, c, "t"); return err },
		"GroupLag":   func(ctx context.Context) error { _, err := GroupLag(ctx, c, "g", "t"); return err },
		"EndOffsets": func(ctx context.Context) error { _, err := EndOffsets(ctx, c, "t"); return err },
		"EnsureTopics": func(ctx context.Context) error {
			return EnsureTopics(ctx, c, []TopicSpec{{Name: "t", Partitions: 1}}, slog.New(slog.DiscardHandler))
		},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := finish(t, what, func() error { return call(ctx) })
		cancel()
		if err == nil {
			t.Errorf("%s against a broker that answers nothing: no error", what)
		}
	}
}

// A context without a deadline that is cancelled (SIGTERM while the broker hangs) ends the request
// too: a scorer starting while the broker hung did not stop on SIGTERM until the broker answered.
func TestRequestsToAHungBrokerEndWhenCancelled(t *testing.T) {
	addr, asked := silentBroker(t)
	c := Config{Brokers: []string{addr}}
	for what, call := range map[string]func(context.Context) error{
		"Partitions": func(ctx context.Context) error { _, err := Partitions(ctx, c, "t"); return err },
		"EnsureTopics": func(ctx context.Context) error {
			return EnsureTopics(ctx, c, []TopicSpec{{Name: "t", Partitions: 1}}, slog.New(slog.DiscardHandler))
		},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-asked; cancel() }()
		err := finish(t, what, func() error { return call(ctx) })
		cancel()
		if err == nil {
			t.Errorf("%s cancelled against a broker that answers nothing: no error", what)
		}
	}
}

// A partition reader's connection moves a read deadline in the future FetchAnswerSlack later,
// bounds a read kafka-go left without one by RequestTimeout, and keeps one in the past (a caller
// cutting the connection short) and every write deadline as asked.
func TestFetchConnDeadlines(t *testing.T) {
	now := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		ask, to time.Time
	}{
		{"the fetch wait", now.Add(50 * time.Millisecond), now.Add(50*time.Millisecond + FetchAnswerSlack)},
		{"none", time.Time{}, now.Add(RequestTimeout)},
		{"cut short", time.Unix(1, 0), time.Unix(1, 0)},
	} {
		if got := answerBy(c.ask, now); !got.Equal(c.to) {
			t.Errorf("%s: read deadline %v, want %v", c.name, got, c.to)
		}
	}
	rec := &deadlineRecorder{}
	done := make(chan struct{})
	fc := &fetchConn{Conn: rec, done: done}
	ask := time.Now().Add(time.Hour)
	if err := fc.SetDeadline(ask); err != nil {
		t.Fatal(err)
	}
	if !rec.write.Equal(ask) || !rec.read.Equal(ask.Add(FetchAnswerSlack)) {
		t.Errorf("SetDeadline(%v): read %v, write %v; want the read %s later, the write as asked", ask, rec.read, rec.write, FetchAnswerSlack)
	}
	// kafka-go asks a deadline before every message of a batch: one set already between it and
	// the slack after it is kept, any other is set.
	next := ask.Add(time.Millisecond)
	if err := fc.SetReadDeadline(next); err != nil || !rec.read.Equal(ask.Add(FetchAnswerSlack)) {
		t.Errorf("SetReadDeadline(%v) after %v: read deadline %v, want the one set kept (%v)", next, ask, rec.read, ask.Add(FetchAnswerSlack))
	}
	for _, t2 := range []time.Time{ask.Add(FetchAnswerSlack + time.Millisecond), ask.Add(-time.Millisecond), time.Unix(1, 0)} {
		want := answerBy(t2, time.Now())
		if err := fc.SetReadDeadline(t2); err != nil || !rec.read.Equal(want) {
			t.Errorf("SetReadDeadline(%v): read deadline %v, want %v", t2, rec.read, want)
		}
	}
	if err := fc.SetReadDeadline(time.Time{}); err != nil || !rec.read.After(time.Now().Add(RequestTimeout-time.Minute)) {
		t.Errorf("SetReadDeadline(none): read deadline %v, want about RequestTimeout from now", rec.read)
	}
	close(done) // the reader stops: every read ends at once, whatever kafka-go asks
	if err := fc.SetReadDeadline(ask); err != nil {
		t.Fatal(err)
	}
	if !rec.read.Before(time.Now()) {
		t.Errorf("after the reader's context ended: read deadline %v, want one in the past", rec.read)
	}
}

// deadlineRecorder is a net.Conn that records the deadlines set on it.
type deadlineRecorder struct {
	net.Conn
	read, write time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error  { d.read = t; return nil }
func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error { d.write = t; return nil }

// A read on a partition reader's connection ends as soon as the reader's context is done, however
// far its deadline: kafka-go's Reader.Close waits for the fetch in flight, so a hung broker held
// every stop for the fetch's whole slack.
func TestFetchConnReadEndsWithItsReader(t *testing.T) {
	addr, _ := silentBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := Config{}.fetchDialer(ctx).DialFunc(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() { _, err := conn.Read(make([]byte, 8)); read <- err }()
	cancel()
	err = finish(t, "a read after its reader's context ended", func() error { return <-read })
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("the read ended with %v, want a timeout", err)
	}
}

// BenchmarkReadDeadline is what a read deadline costs a partition reader's connection, which
// kafka-go sets before every message of a batch: raw is a TCP connection's own SetReadDeadline,
// fetchConn the same through fetchConn (which keeps the deadline it set while it answers the one
// asked).
func BenchmarkReadDeadline(b *testing.B) {
	addr, _ := silentBroker(b)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	for name, conn := range map[string]net.Conn{"raw": raw, "fetchConn": &fetchConn{Conn: raw, done: make(chan struct{})}} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			}
		})
	}
}
