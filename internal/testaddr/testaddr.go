// Package testaddr gives tests a loopback address nothing listens on.
package testaddr

import (
	"net"
	"testing"
)

// Free returns a loopback address nothing listens on (a port the kernel just handed out and took
// back): a server to start there, or a peer that refuses connections.
func Free(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
