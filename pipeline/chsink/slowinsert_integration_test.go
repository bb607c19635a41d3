//go:build integration

package chsink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// A ClickHouse too slow for the archiver's batches: every INSERT larger than some size outlives
// clickhouse.write_timeout, smaller ones pass. The archiver retries its batch after each
// failure; the same batch again timed out again, for ever — nothing acknowledged, the loop
// stalled, every attempt leaving part of its rows behind (an archiver against 18.16 with
// write_timeout 300ms and a 47,270-record backlog: 0 archived and 167,527 rows of 46,463 events
// in verify_events after 45 s). Now a timed-out INSERT halves the next ones (not below
// minInsertRows) for insertBoundFor, the error names the setting, and the batch goes through,
// each event once.
func TestWriteBatchThroughInsertsTooLargeForTheTimeout(t *testing.T) {
	defer func(n int64) { minInsertRows = n }(minInsertRows)
	minInsertRows = 100

	// The proxy stops passing on a connection's bytes once the client has sent gate bytes
	// without a word from the server in between: the data blocks of an INSERT. The server never
	// answers such an INSERT and the client's read times out.
	base := newTestStoreAt(t, slog.LevelWarn)
	if _, err := base.Migrate(testContext(t)); err != nil {
		t.Fatal(err)
	}
	// (Closed before the database is dropped: a held INSERT keeps its table locked.)
	const gate = 256 << 10
	proxy, closeProxy := gatedProxy(t, clickhouseAddr(), gate)
	defer closeProxy()
	st, err := Open(context.Background(), Config{Addr: proxy, Database: base.db, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	recs := recentRecords(3000) // about 1 MB of risk_scores rows: over the gate; 100 rows are not
	ctx := testContext(t)
	var errs []error
	for attempt := 1; ; attempt++ {
		err := st.WriteBatch(ctx, recs)
		if err == nil {
			break
		}
		errs = append(errs, err)
		if attempt == 8 {
			t.Fatalf("the batch still fails after %d attempts: %v", attempt, errors.Join(errs...))
		}
	}
	if len(errs) == 0 {
		t.Fatal("the first INSERT went through: the proxy's gate does not hold it back")
	}
	if !strings.Contains(errs[0].Error(), "clickhouse.write_timeout") {
		t.Errorf("the timeout does not name the setting: %v", errs[0])
	}
	if got := queryUint(t, base, "SELECT count() FROM "+base.db+".verify_events FINAL"); got != 3000 {
		t.Errorf("verify_events FINAL: %d rows, want 3000", got)
	}
	if got := queryUint(t, base, "SELECT count() FROM "+base.db+".risk_scores FINAL"); got != 3000 {
		t.Errorf("risk_scores FINAL: %d rows, want 3000", got)
	}
	if got := queryUint(t, base, "SELECT uniqMerge(events) FROM "+base.db+".verify_events_hourly"); got != 3000 {
		t.Errorf("verify_events_hourly: %d events, want 3000", got)
	}
	// The bound holds for insertBoundFor after the last timeout, then whole batches go again.
	limit := st.events.limit(time.Now())
	if limit == 0 || limit >= 3000 {
		t.Fatalf("bound after the timeouts: %d", limit)
	}
	clock := time.Now().Add(insertBoundFor)
	st.now = func() time.Time { return clock }
	if err := st.WriteBatch(ctx, recs[:10]); err != nil {
		t.Fatal(err)
	}
	if got := st.events.limit(clock); got != 0 {
		t.Errorf("%s after the last timeout the bound is %d, want none", insertBoundFor, got)
	}
}

// The same for the decision log's INSERTs into risk_decisions.
func TestWriteDecisionsThroughInsertsTooLargeForTheTimeout(t *testing.T) {
	defer func(n int64) { minInsertRows = n }(minInsertRows)
	minInsertRows = 100

	base := newTestStoreAt(t, slog.LevelWarn)
	if _, err := base.Migrate(testContext(t)); err != nil {
		t.Fatal(err)
	}
	proxy, closeProxy := gatedProxy(t, clickhouseAddr(), 256<<10)
	defer closeProxy()
	st, err := Open(context.Background(), Config{Addr: proxy, Database: base.db, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	now := time.Now().UTC().Truncate(time.Second)
	ds := make([]schemas.Decision, 2000) // about 600 KB of rows: over the gate
	for i := range ds {
		ds[i] = testDecision(i, fmt.Sprintf("1380013%04d", i), now.Add(-time.Duration(i)*time.Second))
	}
	ctx := testContext(t)
	var errs []error
	for attempt := 1; ; attempt++ {
		err := st.WriteDecisions(ctx, ds)
		if err == nil {
			break
		}
		errs = append(errs, err)
		if attempt == 8 {
			t.Fatalf("the decisions still fail after %d attempts: %v", attempt, errors.Join(errs...))
		}
	}
	if len(errs) == 0 {
		t.Fatal("the first INSERT went through: the proxy's gate does not hold it back")
	}
	if !strings.Contains(errs[0].Error(), "clickhouse.write_timeout") {
		t.Errorf("the timeout does not name the setting: %v", errs[0])
	}
	if got := queryUint(t, base, "SELECT count() FROM "+base.db+".risk_decisions FINAL"); got != 2000 {
		t.Errorf("risk_decisions FINAL: %d rows, want 2000", got)
	}
}

// gatedProxy forwards to addr and holds a connection for good once its client sent gate bytes
// without the server answering in between.
func gatedProxy(t *testing.T, addr string, gate int64) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	closeAll := func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			var unanswered atomic.Int64
			wg.Add(2)
			go func() { // client → server, up to the gate
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if unanswered.Add(int64(n)) > gate {
							_, _ = io.Copy(io.Discard, c) // held: read on, pass nothing
							return
						}
						if _, err := s.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						s.Close()
						return
					}
				}
			}()
			go func() { // server → client
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						unanswered.Store(0)
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), closeAll
}
