package consumers_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
)

// A tail's positions carry the time of the last message applied in each partition, and
// MessageTimes reads the time of the message at an offset back from the broker: the pair a
// snapshot records to recognise a topic deleted and created again.
func TestPositionsAndMessageTimes(t *testing.T) {
	cfg := fakeBroker(t, "ev")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := consumers.NewWriter(cfg, "ev")
	defer w.Close()
	base := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ { // one write each: five record batches
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte{byte(i)}, Value: []byte("x"), Time: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	tl := consumers.NewBatchTail(cfg, "ev", time.Time{}, func([]kafka.Message) {}, slog.New(slog.DiscardHandler))
	if _, err := tl.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if mk := tl.Positions()[0]; mk.Next != 5 || !mk.Last.Equal(base.Add(4*time.Second)) {
		t.Errorf("positions: %+v, want next 5, last %v", mk, base.Add(4*time.Second))
	}
	times, err := consumers.MessageTimes(ctx, cfg, "ev", map[int]int64{0: 2})
	if err != nil || !times[0].Equal(base.Add(2*time.Second)) {
		t.Errorf("time of offset 2: %v, %v; want %v", times, err, base.Add(2*time.Second))
	}
	times, err = consumers.MessageTimes(ctx, cfg, "ev", map[int]int64{0: 7})
	if _, ok := times[0]; err != nil || ok {
		t.Errorf("an offset past the end: %v, %v; want left out", times, err)
	}

	// A tail resumed at a snapshot's position keeps its time until it applies something.
	resumed := consumers.NewBatchTail(cfg, "ev", time.Time{}, func([]kafka.Message) {}, slog.New(slog.DiscardHandler))
	resumed.StartAt(map[int]consumers.Mark{0: {Next: 5, Last: base.Add(4 * time.Second)}})
	if _, err := resumed.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if mk := resumed.Positions()[0]; mk.Next != 5 || !mk.Last.Equal(base.Add(4*time.Second)) {
		t.Errorf("resumed: %+v, want the snapshot's position", mk)
	}
}
