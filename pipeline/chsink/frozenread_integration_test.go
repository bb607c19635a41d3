//go:build integration

package chsink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// freezingProxy is a chProxy whose connections the test freezes.
func freezingProxy(t *testing.T) (addr string, freeze func() int) {
	addr, p := newCHProxy(t)
	return addr, p.freeze
}

// A server that stops sending mid-stream without closing the connection (ClickHouse frozen,
// hung, a network path that drops packets) is noticed after clickhouse.write_timeout without a
// byte and the read is resumed after the last row read, as after a broken connection: a
// backtest whose ClickHouse was stopped with SIGSTOP mid-chunk waited, silent, for the chunk
// timeout (6 h).
func TestReadEventsResumesAfterTheServerWentSilent(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	const n = 20_000
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	recs := make([]schemas.ScoreRecord, 0, n)
	for i := range n {
		r := testRecord(i)
		r.TS = base.Add(time.Duration(i/10) * time.Second)
		r.EventID = fmt.Sprintf("ev-%06d", i)
		recs = append(recs, r)
	}
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	readBlockRows = 100
	t.Cleanup(func() { readBlockRows = 0 })
	addr, freeze := freezingProxy(t)
	viaProxy, err := Open(ctx, Config{Addr: addr, Database: st.db, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()
	var resumed []string
	rd, err := viaProxy.ReadEvents(ctx, base, base.Add(time.Hour), ReadOptions{Batch: 50,
		// without noticing the silence, the read would wait for this, then fail
		ChunkTimeout: time.Minute,
		OnResume: func(attempt int, wait time.Duration, err error) {
			resumed = append(resumed, fmt.Sprintf("attempt %d in %s: %v", attempt, wait, err))
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	read := 0
	for {
		_, ok, err := rd.Next(ctx)
		if err != nil {
			t.Fatalf("after %d rows: %v (resumed: %v)", read, err, resumed)
		}
		if !ok {
			break
		}
		if read++; read == 1000 {
			if f := freeze(); f == 0 {
				t.Fatal("the read went through no connection of the proxy")
			}
		}
	}
	if read != n {
		t.Errorf("read %d events, want %d", read, n)
	}
	if len(resumed) == 0 {
		t.Fatal("the read was never resumed: the freeze came after the whole result had been received, the test proves nothing")
	}
	if !strings.Contains(resumed[0], "clickhouse.write_timeout") {
		t.Errorf("the resumption does not name clickhouse.write_timeout: %s", resumed[0])
	}
	t.Logf("resumed: %v", resumed)
}

// A lookup that outlives clickhouse.write_timeout (a large --limit over a busy address: 1,000,000
// rows of one IP took more than the 30 s) says which setting bounds it and what asks less: it
// said "chsink: lookup verdicts: context deadline exceeded". The caller's own deadline is not
// the lookup's to explain.
func TestLookupOutlivingWriteTimeoutNamesIt(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	short, err := Open(ctx, Config{Addr: clickhouseAddr(), Database: st.db})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	short.cfg.WriteTimeout = time.Nanosecond // the lookup's own deadline has passed as it starts
	_, _, err = short.Lookup(ctx, LookupKey{IP: "47.92.10.20"}, LookupRange{Since: time.Now().Add(-time.Hour)}, 10)
	if err == nil || !strings.Contains(err.Error(), "clickhouse.write_timeout") || !strings.Contains(err.Error(), "fewer rows or a shorter range") || !strings.Contains(err.Error(), "hung") {
		t.Errorf("lookup past its deadline: %v", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err = st.Lookup(done, LookupKey{IP: "47.92.10.20"}, LookupRange{Since: time.Now().Add(-time.Hour)}, 10); err == nil || strings.Contains(err.Error(), "write_timeout") {
		t.Errorf("lookup whose caller gave up: %v", err)
	}
}
