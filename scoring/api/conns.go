package api

import (
	"container/list"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnGuard bounds the connections an http.Server holds open. Without it one client could open
// connections, send a request on each and leave them idle (90 s each), until the process ran out
// of file descriptors: then every new connection — a verify service's checks, the process's own
// Kafka connections — failed at accept, while the idle ones sat there.
//
// Set ConnState as the server's ConnState. Once more than max connections are open, each new one
// makes the guard close one connection of the peer address holding the most (IPv6: its /64): its
// oldest that is idle or has not sent a request yet, else its oldest. So a client holding many
// connections loses its own, and an address with a few — a verify service's pool — keeps them.
// Behind a load balancer, whose few addresses hold every connection, the oldest idle ones go:
// clients open new ones.
type ConnGuard struct {
	max int
	log *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]*guardedConn
	byAddr map[netip.Prefix]*addrConns
	// byCount[n] are the addresses holding n connections; top is the largest n with any. A flood
	// from many addresses used to scan them all for each new connection over the limit (5,000
	// addresses: 40–500 µs per connection under mu, which every request's state changes take too).
	byCount []map[*addrConns]struct{}
	top     int
	seq     uint64
	// evicted counts closures since the last log line; lastLog is that line's time.
	evicted int
	lastLog time.Time

	open   prometheus.GaugeFunc
	closed prometheus.Counter
}

type guardedConn struct {
	c     net.Conn
	addr  netip.Prefix
	seq   uint64 // order of arrival, or of the last change to idle
	quiet bool   // idle between requests, or no request yet
	// Its elements in its address's lists: all (always) and quiet (while quiet).
	allEl, quietEl *list.Element
}

// addrConns are the connections of one address, in two lists ordered by seq, oldest first: a
// connection goes to the back whenever it takes a new seq, so the front is the oldest without a
// scan (behind a load balancer one address holds every connection).
type addrConns struct {
	all, quiet list.List // of *guardedConn
}

// connLimitLogEvery bounds the guard's log lines: the first eviction after a quiet minute is
// logged, later ones are counted into the next line.
const connLimitLogEvery = time.Minute

// maxConnsCap is the automatic limit's ceiling: an idle connection costs the server about 20 KB
// (two buffers and a goroutine), so 16,384 stay within a few hundred MB.
const maxConnsCap = 16384

// fdReserve are the file descriptors the automatic limit leaves to the rest of the process:
// Kafka and ClickHouse connections, snapshots, rule packs, lists.
const fdReserve = 1024

// DefaultMaxConns is the limit for max ≤ 0: three quarters of the process's open-file limit
// once fdReserve is left aside, at most maxConnsCap, at least 64.
func DefaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return maxConnsCap
	}
	return maxConnsFor(rl.Cur)
}

func maxConnsFor(nofile uint64) int {
	if nofile > 1<<30 {
		nofile = 1 << 30 // RLIM_INFINITY
	}
	n := (int(nofile) - fdReserve) * 3 / 4
	return max(64, min(n, maxConnsCap))
}

// NewConnGuard returns a guard of at most max connections (≤ 0: DefaultMaxConns()).
func NewConnGuard(max int, log *slog.Logger) *ConnGuard {
	if max <= 0 {
		max = DefaultMaxConns()
	}
	if log == nil {
		log = slog.Default()
	}
	g := &ConnGuard{max: max, log: log, conns: map[net.Conn]*guardedConn{}, byAddr: map[netip.Prefix]*addrConns{}}
	g.open = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "riskflow_api_connections", Help: "Client connections the HTTP server holds open.",
	}, func() float64 { return float64(g.Open()) })
	g.closed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "riskflow_api_connections_limited_total",
		Help: "Connections closed because the server held its maximum (api.max_conns): each of the peer address holding the most.",
	})
	return g
}

// Max is the limit in force.
func (g *ConnGuard) Max() int { return g.max }

// Open is the number of connections held.
func (g *ConnGuard) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// Register registers the guard's metrics on reg.
func (g *ConnGuard) Register(reg prometheus.Registerer) {
	reg.MustRegister(g.open, g.closed)
}

// ConnState is the http.Server hook (net/http calls it for a new connection in its accept loop,
// before serving it).
func (g *ConnGuard) ConnState(c net.Conn, st http.ConnState) {
	var victim net.Conn
	g.mu.Lock()
	switch st {
	case http.StateNew:
		g.seq++
		gc := &guardedConn{c: c, addr: peerPrefix(c.RemoteAddr()), seq: g.seq, quiet: true}
		g.conns[c] = gc
		ac := g.byAddr[gc.addr]
		if ac == nil {
			ac = &addrConns{}
			g.byAddr[gc.addr] = ac
		}
		g.recount(ac, +1)
		gc.allEl = ac.all.PushBack(gc)
		gc.quietEl = ac.quiet.PushBack(gc)
		if len(g.conns) > g.max {
			victim = g.evictLocked()
		}
	case http.StateActive:
		if gc := g.conns[c]; gc != nil && gc.quiet {
			g.byAddr[gc.addr].quiet.Remove(gc.quietEl)
			gc.quiet, gc.quietEl = false, nil
		}
	case http.StateIdle:
		if gc := g.conns[c]; gc != nil {
			g.seq++
			gc.seq = g.seq
			ac := g.byAddr[gc.addr]
			ac.all.MoveToBack(gc.allEl)
			if gc.quiet {
				ac.quiet.MoveToBack(gc.quietEl)
			} else {
				gc.quiet, gc.quietEl = true, ac.quiet.PushBack(gc)
			}
		}
	case http.StateClosed, http.StateHijacked:
		g.removeLocked(c)
	}
	g.mu.Unlock()
	if victim != nil {
		_ = victim.Close() // the server's goroutine reading it sees the error and ends
	}
}

// evictLocked picks the connection to close (g.mu held) and forgets it: the oldest quiet
// connection of the address holding the most, else that address's oldest.
func (g *ConnGuard) evictLocked() net.Conn {
	if g.top == 0 {
		return nil
	}
	var top *addrConns
	for ac := range g.byCount[g.top] {
		top = ac // any of the addresses holding the most
		break
	}
	oldest := top.quiet.Front()
	if oldest == nil {
		oldest = top.all.Front()
	}
	victim := oldest.Value.(*guardedConn)
	its := top.all.Len()
	g.removeLocked(victim.c)
	g.closed.Inc()
	g.evicted++
	if now := time.Now(); now.Sub(g.lastLog) >= connLimitLogEvery {
		g.log.Warn("connection limit reached: closing connections of the address holding the most (api.max_conns)",
			"max_conns", g.max, "closed", g.evicted, "addr", victim.addr.String(), "its_conns", its)
		g.evicted, g.lastLog = 0, now
	}
	return victim.c
}

func (g *ConnGuard) removeLocked(c net.Conn) {
	gc := g.conns[c]
	if gc == nil {
		return
	}
	delete(g.conns, c)
	ac := g.byAddr[gc.addr]
	g.recount(ac, -1)
	ac.all.Remove(gc.allEl)
	if gc.quietEl != nil {
		ac.quiet.Remove(gc.quietEl)
	}
	if ac.all.Len() == 0 {
		delete(g.byAddr, gc.addr)
	}
}

// recount moves ac from the bucket of its connections' count to that of count+by (by is ±1; ac's
// lists not yet changed) and keeps top the largest count held (g.mu held).
func (g *ConnGuard) recount(ac *addrConns, by int) {
	n := ac.all.Len()
	if n > 0 {
		delete(g.byCount[n], ac)
	}
	n += by
	if n > 0 {
		for len(g.byCount) <= n {
			g.byCount = append(g.byCount, nil)
		}
		if g.byCount[n] == nil {
			g.byCount[n] = map[*addrConns]struct{}{}
		}
		g.byCount[n][ac] = struct{}{}
	}
	if n > g.top {
		g.top = n
	}
	for g.top > 0 && len(g.byCount[g.top]) == 0 {
		g.top--
	}
}

// peerPrefix is the address a connection counts against: its IPv4 address, or its IPv6 /64 (one
// host's share, as the authentication throttle counts it); the zero prefix for another kind of
// address.
func peerPrefix(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
