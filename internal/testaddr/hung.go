package testaddr

import (
	"io"
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
}

// Accepted is how many connections the server has taken.
func (h *Hung) Accepted() int64 { return h.accepted.Load() }

// NewHung starts a Hung server for the rest of the test.
func NewHung(t testing.TB) *Hung {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Hung{Addr: ln.Addr().String()}
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
			go io.Copy(io.Discard, c) // reads what the client sends, answers nothing
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
