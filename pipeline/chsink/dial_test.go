package chsink

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// A server that accepts a connection and then never reads: writes fail after the write timeout
// instead of blocking for ever once the socket buffers are full.
func TestDialerWriteDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			held <- c
		}
	}()
	c, err := dialer(time.Second, 200*time.Millisecond)(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer func() {
		select {
		case s := <-held:
			s.Close()
		default:
		}
	}()
	chunk := make([]byte, 1<<20)
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write failed with %v, want a deadline", err)
		}
	case <-time.After(time.Minute): // a guard, not a measurement
		t.Fatal("writes to a server that does not read never failed")
	}
}

// An INSERT's context ends when the caller's does while the INSERT runs, but not because the
// caller cancels after it returned (clickhouse-go would close a pooled connection).
func TestInsertContext(t *testing.T) {
	s := &Store{cfg: Config{WriteTimeout: time.Hour}}
	parent, cancel := context.WithCancel(context.Background())
	ictx, done := s.insertContext(parent)
	cancel()
	<-ictx.Done() // the caller giving up stops the INSERT
	if !errors.Is(ictx.Err(), context.Canceled) {
		t.Errorf("err %v", ictx.Err())
	}
	done()

	parent, cancel = context.WithCancel(context.Background())
	ictx, done = s.insertContext(parent)
	done()
	cancel()
	time.Sleep(10 * time.Millisecond)
	if ictx.Err() != nil {
		t.Errorf("cancelled after done: %v", ictx.Err())
	}
	if d, ok := ictx.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("deadline %v, want WriteTimeout from now", d)
	}

	short, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ictx, done = s.insertContext(short)
	defer done()
	if d, _ := ictx.Deadline(); time.Until(d) > time.Minute {
		t.Errorf("deadline %v, want the caller's earlier one", d)
	}
}
