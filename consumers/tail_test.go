package consumers

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// A batch tail hands a partition's messages over in offset order, skips those before the
// position, and then records the position after the batch, the newest message time and the high
// water mark.
func TestTailApplyBatch(t *testing.T) {
	var got []int64
	calls := 0
	tl := NewBatchTail(Config{}, "t", time.Time{}, func(ms []kafka.Message) {
		calls++
		for _, m := range ms {
			got = append(got, m.Offset)
		}
	}, quiet())
	tl.targets = map[int]int64{}
	tl.pm.Store((*partMaps)(nil).with(0, 5))
	base := time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)
	var batch []kafka.Message
	for off := int64(3); off < 10; off++ {
		m := kafka.Message{Offset: off, HighWaterMark: 12, Time: base.Add(time.Duration(off) * time.Second)}
		if off == 9 {
			m.Time = time.Time{} // no timestamp: the one before it is the newest known
		}
		batch = append(batch, m)
	}
	st := tl.parts()[0]
	if n := tl.applyBatch(0, st, batch); n != 5 {
		t.Errorf("applied %d, want 5 (offsets 5–9)", n)
	}
	if calls != 1 || len(got) != 5 || got[0] != 5 || got[4] != 9 {
		t.Errorf("apply called %d times with offsets %v, want once with 5–9", calls, got)
	}
	if st.pos.Load() != 10 {
		t.Errorf("position %d, want 10", st.pos.Load())
	}
	if mk := tl.Positions()[0]; mk.Next != 10 || !mk.Last.IsZero() {
		t.Errorf("Positions: %+v, want next 10 and no time (offset 9 has none)", mk)
	}
	if last := tl.parts()[0].last.Load(); last != base.Add(8*time.Second).UnixNano() {
		t.Errorf("last message time %v, want offset 8's", time.Unix(0, last).UTC())
	}
	if tl.targets[0] != 12 {
		t.Errorf("target %d, want the high water mark 12", tl.targets[0])
	}
	// Everything already applied: apply is not called.
	if n := tl.applyBatch(0, st, batch); n != 0 || calls != 1 {
		t.Errorf("a batch applied already: %d applied, apply called %d times", n, calls)
	}
}

// While the broker cannot answer, the end-offsets probe is retried soon at first, then less and
// less often, down to once per probe interval — not 20 times a second through a whole outage.
func TestTailProbeBacksOffWhileBrokerAway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every probe fails at once
	tl := NewTail(Config{Brokers: []string{addr}}, "t", time.Time{}, func(kafka.Message) {}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	fired := make(chan time.Time)
	close(fired)
	tl.after = func(d time.Duration) <-chan time.Time {
		if waits = append(waits, d); len(waits) == 12 {
			cancel()
		}
		return fired
	}
	tl.probeEnds(ctx, []int{0}, new(sync.WaitGroup))
	if len(waits) < 12 {
		t.Fatalf("probe retried %d times before it stopped, want 12", len(waits))
	}
	if waits[0] != retryProbe {
		t.Errorf("first retry after %v, want %v (soon: a topic just created may not list its offsets yet)", waits[0], retryProbe)
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] {
			t.Fatalf("waits between failed probes shrink: %v", waits)
		}
	}
	if last := waits[len(waits)-1]; last != tl.probe {
		t.Errorf("waits between failed probes %v: the last is %v, want the probe interval %v", waits, last, tl.probe)
	}
}
