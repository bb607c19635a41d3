package testaddr

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// The address is free: a connection to it is refused, and a listener can take it.
func TestFree(t *testing.T) {
	addr := Free(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	ln.Close()
}

// A hung server takes the connection and the request and never answers, until the test ends.
func TestHung(t *testing.T) {
	h := NewHung(t)
	c, err := net.DialTimeout("tcp", h.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("SELECT 1\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v: want no answer until the deadline", n, err)
	}
	for deadline := time.Now().Add(10 * time.Second); h.Accepted() != 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := h.Accepted(); n != 1 {
		t.Errorf("accepted %d connections, want 1", n)
	}
}
