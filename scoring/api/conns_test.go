package api

import (
	"bufio"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// keptConn is a client connection from a chosen loopback address that sends requests one after
// the other on the same connection (keep-alive), as a pool does.
type keptConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialFrom(t *testing.T, from, to string) *keptConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", to)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", to, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptConn{c: c, br: bufio.NewReader(c)}
}

// get sends GET /healthz and reads the answer; an error means the server closed the connection.
func (k *keptConn) get() (int, error) {
	if _, err := io.WriteString(k.c, "GET /healthz HTTP/1.1\r\nHost: riskflow\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// One client holding many idle keep-alive connections used to keep them all until the process ran
// out of file descriptors, and then no new connection was accepted, a verify service's checks
// included. Over the limit, the guard closes the connections of the address holding the most: the
// flooding client loses its own, a pool of a few connections from another address keeps working,
// and a new client is served.
func TestConnGuardClosesTheFloodersConnections(t *testing.T) {
	const max, pool, flood = 8, 3, 20
	guard := NewConnGuard(max, slog.New(slog.DiscardHandler))
	ts := httptest.NewUnstartedServer(New(Config{}, nil, nil))
	ts.Config.ConnState = guard.ConnState
	ts.Start()
	defer ts.Close()
	addr := ts.Listener.Addr().String()

	var verifier []*keptConn
	for range pool {
		k := dialFrom(t, "127.0.0.3", addr)
		if code, err := k.get(); err != nil || code != http.StatusOK {
			t.Fatalf("verify service's connection: %d, %v", code, err)
		}
		verifier = append(verifier, k)
	}
	var flooder []*keptConn
	for range flood {
		k := dialFrom(t, "127.0.0.2", addr)
		if code, err := k.get(); err != nil || code != http.StatusOK {
			// The guard closes the flooder's oldest idle connections, never the newest, which
			// has just been accepted and sent nothing yet.
			t.Fatalf("flooder's new connection: %d, %v", code, err)
		}
		flooder = append(flooder, k)
	}

	for i, k := range verifier {
		if code, err := k.get(); err != nil || code != http.StatusOK {
			t.Errorf("verify service's pooled connection %d after the flood: %d, %v (closed instead of the flooder's)", i, code, err)
		}
	}
	if code, err := dialFrom(t, "127.0.0.4", addr).get(); err != nil || code != http.StatusOK {
		t.Errorf("a new client during the flood: %d, %v", code, err)
	}
	closed := 0
	for _, k := range flooder {
		if _, err := k.get(); err != nil {
			closed++
		}
	}
	// Open at most max: the pool, the new client's, and max-pool-1 of the flooder's.
	if want := flood - (max - pool - 1); closed < want {
		t.Errorf("%d of the flooder's %d idle connections were closed, want at least %d (limit %d)", closed, flood, want, max)
	}
	if n := guard.Open(); n > max {
		t.Errorf("guard holds %d connections, limit %d", n, max)
	}
}

// A process started with a low open-file limit keeps descriptors for its Kafka and ClickHouse
// connections and files; a high one does not allow unbounded memory for idle connections.
func TestDefaultMaxConns(t *testing.T) {
	for _, c := range []struct {
		nofile uint64
		want   int
	}{{1024, 64}, {4096, 2304}, {20000, 14232}, {1 << 20, maxConnsCap}, {^uint64(0), maxConnsCap}} {
		if got := maxConnsFor(c.nofile); got != c.want {
			t.Errorf("open-file limit %d: max_conns %d, want %d", c.nofile, got, c.want)
		}
	}
	if n := DefaultMaxConns(); n < 64 || n > maxConnsCap {
		t.Errorf("DefaultMaxConns() = %d", n)
	}
}

func TestConfigMaxConnsNegative(t *testing.T) {
	err := Config{MaxConns: -1}.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "max_conns: ") {
		t.Errorf("Validate() = %v, want max_conns named", err)
	}
}

// The guard finds the address holding the most without scanning them all (a flood from 5,000
// addresses made each new connection over the limit scan every one). Its choice is the one the
// scan made: among the addresses holding the most, that address's oldest quiet connection (idle,
// or no request yet), else its oldest. Random arrivals, requests, idles and closes from a few
// addresses, checked against that rule computed from scratch at each eviction.
func TestConnGuardEvictsAsTheScanDid(t *testing.T) {
	type model struct {
		addr  int
		seq   int
		quiet bool
	}
	const limit = 40
	rng := rand.New(rand.NewPCG(1, 2))
	g := NewConnGuard(limit, slog.New(slog.DiscardHandler))
	open := map[*fakeConn]*model{}
	seq, evictions := 0, 0
	for step := range 20000 {
		var any *fakeConn
		for c := range open {
			any = c
			break
		}
		switch op := rng.IntN(10); {
		case op < 4 || any == nil: // a new connection
			a := rng.IntN(6)
			if rng.IntN(4) == 0 {
				a = 0 // one address floods more than the others
			}
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(a)})
			c := &fakeConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(1000+step)))}
			// The connections the scan could have closed: each most-holding address's pick.
			counts := map[int]int{}
			for _, m := range open {
				counts[m.addr]++
			}
			counts[a]++
			most := 0
			for _, n := range counts {
				most = max(most, n)
			}
			seq++
			open[c] = &model{addr: a, seq: seq, quiet: true}
			allowed := map[*fakeConn]bool{}
			for addr, n := range counts {
				if n != most {
					continue
				}
				var quiet, oldest *fakeConn
				for oc, m := range open {
					if m.addr != addr {
						continue
					}
					if oldest == nil || m.seq < open[oldest].seq {
						oldest = oc
					}
					if m.quiet && (quiet == nil || m.seq < open[quiet].seq) {
						quiet = oc
					}
				}
				if quiet != nil {
					oldest = quiet
				}
				allowed[oldest] = true
			}
			g.ConnState(c, http.StateNew)
			if len(open) <= limit {
				continue
			}
			var closed []*fakeConn
			for oc := range open {
				if oc.closed {
					closed = append(closed, oc)
				}
			}
			if len(closed) != 1 {
				t.Fatalf("step %d: %d connections closed over the limit, want 1", step, len(closed))
			}
			if !allowed[closed[0]] {
				m := open[closed[0]]
				t.Fatalf("step %d: closed a connection of address %d (seq %d, quiet %v), not one the rule picks", step, m.addr, m.seq, m.quiet)
			}
			delete(open, closed[0])
			evictions++
		case op < 6: // a request on it
			if open[any].quiet {
				open[any].quiet = false
				g.ConnState(any, http.StateActive)
			}
		case op < 8: // idle again
			seq++
			open[any].seq, open[any].quiet = seq, true
			g.ConnState(any, http.StateIdle)
		default: // the client closes it
			delete(open, any)
			g.ConnState(any, http.StateClosed)
		}
		if g.Open() != len(open) {
			t.Fatalf("step %d: guard holds %d, want %d", step, g.Open(), len(open))
		}
	}
	if evictions < 100 {
		t.Fatalf("only %d evictions: the test did not reach the limit often", evictions)
	}
}
