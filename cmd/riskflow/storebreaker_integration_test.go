//go:build integration

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/scoring/console"
)

// hangProxy forwards connections to a real server until hang is set; from then on it forwards
// nothing either way (a server that stopped answering) and new connections are taken and left
// silent; while refuse is set, new connections are closed at once (a server gone away): set
// refuse, then closeAll, and no connection is left open.
// accepted counts connections.
type hangProxy struct {
	ln       net.Listener
	hang     atomic.Bool
	refuse   atomic.Bool
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
}

func newHangProxy(t *testing.T, target string) *hangProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangProxy{ln: ln}
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.hang.Load() {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			if p.refuse.Load() {
				c.Close()
				continue
			}
			if p.hang.Load() {
				if p.track(c) {
					go io.Copy(io.Discard, c)
				}
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, s) {
				continue
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

// closeAll closes every connection forwarded so far, both ends.
func (p *hangProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// track keeps the ends of a forwarded connection for closeAll, or closes them while refuse is set
// (false). Checked under closeAll's lock: a connection accepted while a test set refuse and
// called closeAll is either closed by closeAll or refused here — checked before the dial, one
// slipped through, and an archiver whose ClickHouse was "away" kept storing through it.
func (p *hangProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse.Load() {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

// The console's breaker on the real ClickHouse: closed while it answers; open after three uses
// that waited out a ClickHouse that stopped answering, failing the next uses at once without
// connecting; closed again by the first probe once ClickHouse answers.
func TestConsoleBreakerOnARealClickHouseGoingAwayAndBack(t *testing.T) {
	addr, db, _, _ := throwawayDatabase(t, "console_breaker")
	proxy := newHangProxy(t, addr)
	cfg := ClickHouseConfig{
		Config:          chsink.Config{Addr: proxy.ln.Addr().String(), Database: db, DialTimeout: time.Second, WriteTimeout: 2 * time.Second},
		BreakerFailures: 3,
		BreakerOpenFor:  Duration(500 * time.Millisecond),
	}
	obs := newObserver(prometheus.NewRegistry())
	ch := newLazyStore(cfg, "console", "console", slog.New(slog.DiscardHandler), func(s string) { obs.breakerState("console", s) })
	state := consoleState{ch: ch}
	ctx := context.Background()
	if err := state.Put(ctx, console.Item{Kind: "draft", ID: "d1", At: time.Now().UTC(), Body: []byte("rules: []")}); err != nil {
		t.Fatalf("save a draft while ClickHouse answers: %v", err)
	}
	if _, found, err := state.Get(ctx, "draft", "d1"); err != nil || !found {
		t.Fatalf("read the draft back: found %v, %v", found, err)
	}

	proxy.hang.Store(true)
	for i := range 3 {
		c, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		_, _, err := state.Get(c, "draft", "d1")
		cancel()
		if err == nil {
			t.Fatalf("use %d through a ClickHouse that does not answer succeeded", i+1)
		}
	}
	if got := gaugeOf(t, obs.breaker.WithLabelValues("console", "open")); got != 1 {
		t.Fatalf(`breaker{console} open = %v after three uses timed out, want 1`, got)
	}
	before := proxy.accepted.Load()
	if _, _, err := state.Get(ctx, "draft", "d1"); !errors.Is(err, console.ErrNotAvailable) {
		t.Fatalf("use with the breaker open: %v, want ErrNotAvailable at once", err)
	}
	if after := proxy.accepted.Load(); after != before {
		t.Errorf("the open breaker connected: %d connections before, %d after", before, after)
	}

	proxy.hang.Store(false)
	var err error
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, _, err = state.Get(c, "draft", "d1")
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("ClickHouse answers again, the console still fails: %v", err)
	}
	if got := gaugeOf(t, obs.breaker.WithLabelValues("console", "closed")); got != 1 {
		t.Errorf(`breaker{console} closed = %v once ClickHouse answered a probe, want 1`, got)
	}
}

// A table or the whole database dropped under a running node (a restore, an operator's clean-up):
// the console's store applies the schema again on the next use instead of failing every page
// until the node restarts, and its breaker stays closed (ClickHouse answered).
func TestConsoleStoreMigratesAgainWhenItsTablesAreDropped(t *testing.T) {
	addr, db, _, conn := throwawayDatabase(t, "console_remigrate")
	cfg := ClickHouseConfig{Config: chsink.Config{Addr: addr, Database: db}, BreakerFailures: 1, BreakerOpenFor: Duration(time.Minute)}
	ch := newLazyStore(cfg, "console", "console", slog.New(slog.DiscardHandler), nil)
	state := consoleState{ch: ch}
	ctx := context.Background()
	put := func(id string) {
		t.Helper()
		if err := state.Put(ctx, console.Item{Kind: "draft", ID: id, At: time.Now().UTC(), Body: []byte("rules: []")}); err != nil {
			t.Fatalf("save draft %s: %v", id, err)
		}
		if _, found, err := state.Get(ctx, "draft", id); err != nil || !found {
			t.Fatalf("read draft %s back: found %v, %v", id, found, err)
		}
	}
	put("d1")
	for _, drop := range []string{"DROP TABLE " + db + ".console_state", "DROP DATABASE " + db} {
		if err := conn.Exec(ctx, drop); err != nil {
			t.Fatalf("%s: %v", drop, err)
		}
		if _, found, err := state.Get(ctx, "draft", "d1"); err != nil || found {
			t.Fatalf("after %s: read found %v, %v; want not found and no error (the schema applied again)", drop, found, err)
		}
		put("d2")
	}
}
