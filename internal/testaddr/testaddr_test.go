package testaddr

import (
	"net"
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
