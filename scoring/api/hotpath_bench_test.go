package api

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAuthFailsBlocked is the login hot path's look at the failed-login limiter once some
// address has failed: every request asks about its own address, which is not blocked.
func BenchmarkAuthFailsBlocked(b *testing.B) {
	a := newAddrLimiter(20, 10)
	now := time.Now()
	for i := range 100 {
		a.failed(netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32), "", now)
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		g := next.Add(1)
		i := 0
		for pb.Next() {
			i++
			addr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)}), 32)
			if a.blocked(addr, "app", now) != 0 {
				b.Fatal("blocked")
			}
		}
	})
}

// fakeConn is a connection from a chosen address (for the guard's bookkeeping only).
type fakeConn struct {
	net.Conn
	remote net.Addr
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

// BenchmarkConnGuardFlood is a new connection while the guard is full of 15,000 idle ones, each
// new one evicting one: from 5,000 addresses (three each), and from one address (behind a load
// balancer).
func BenchmarkConnGuardFlood(b *testing.B) {
	for _, addrs := range []int{5000, 1} {
		b.Run(fmt.Sprintf("addrs=%d", addrs), func(b *testing.B) {
			const total = 15000
			g := NewConnGuard(total, slog.New(slog.DiscardHandler))
			port := 0
			conn := func(i int) net.Conn {
				port++
				ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				return &fakeConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))}
			}
			for i := range total {
				c := conn(i % addrs)
				g.ConnState(c, http.StateNew)
				g.ConnState(c, http.StateActive)
				g.ConnState(c, http.StateIdle)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				g.ConnState(conn(i%addrs), http.StateNew)
			}
			b.StopTimer()
			if n := g.Open(); n != total {
				b.Fatalf("%d open", n)
			}
		})
	}
}
