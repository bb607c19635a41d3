package consumers

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// A consumer loop on a broker address that takes connections and closes them at once — a proxy
// or load balancer in front of a broker that is down, a broker half started — keeps retrying
// until it is stopped: the group reader's errors wrap io.EOF, and a full node used to take them
// for its reader being closed and exit (`archiver: fetch: reader closed: EOF`).
func TestLoopOnABrokerThatClosesEveryConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	r := NewGroupReader(Config{Brokers: []string{ln.Addr().String()}, DialTimeout: time.Second}, "t", "g")
	defer r.Close()
	handled := func(context.Context, []kafka.Message) error {
		t.Error("a batch from a broker that closes every connection")
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewLoop(fastConfig(10), r, handled, quiet(), nil).Run(ctx) }()
	for end := time.Now().Add(time.Minute); accepted.Load() < 5; time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("the loop ended after %d connections were closed: %v", accepted.Load(), err)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("only %d connections in a minute", accepted.Load())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after the loop was stopped: %v, want nil", err)
	}
}
