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
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { return nil }

// BenchmarkConnGuardFlood is a new connection while the guard is full: 15,000 connections from
// 5,000 addresses (three each), each new one evicting one.
func BenchmarkConnGuardFlood(b *testing.B) {
	const addrs, per = 5000, 3
	g := NewConnGuard(addrs*per, slog.New(slog.DiscardHandler))
	conn := func(i int) net.Conn {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		return &fakeConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(1000+i%50000)))}
	}
	for i := range addrs * per {
		c := conn(i % addrs)
		g.ConnState(c, http.StateNew)
		g.ConnState(c, http.StateActive)
		g.ConnState(c, http.StateIdle)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := conn(i % addrs)
		g.ConnState(c, http.StateNew)
	}
	b.StopTimer()
	if n := g.Open(); n != addrs*per {
		b.Fatal(fmt.Sprintf("%d open", n))
	}
}
