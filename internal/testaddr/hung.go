package testaddr

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Hung is a loopback server that takes every connection, reads what is sent and answers nothing:
// a ClickHouse, broker or API that hangs. Its connections close when the test ends.
type Hung struct {
	Addr     string
	accepted atomic.Int64
	asked    chan struct{}
}

// Accepted is how many connections the server has taken.
func (h *Hung) Accepted() int64 { return h.accepted.Load() }

// Asked hears of bytes received (a client that has dialled and now waits for the answer); a
// notice is dropped while an earlier one is unread.
func (h *Hung) Asked() <-chan struct{} { return h.asked }

// NewHung starts a Hung server for the rest of the test.
func NewHung(t testing.TB) *Hung {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Hung{Addr: ln.Addr().String(), asked: make(chan struct{}, 64)}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { // reads what the client sends, answers nothing
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					select {
					case h.asked <- struct{}{}:
					default:
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return h
}
