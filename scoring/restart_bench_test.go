package scoring_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// BenchmarkRestart compares the two ways a node rebuilds its feature state at start, on the same
// retention of events (RISKFLOW_BENCH_EVENTS, default 1,000,000; about three events per phone, ten
// phones per IP): replay decodes and applies every event, as the feed does from Kafka (the fetch
// itself not included), one by one or (replay-batched) 256 at a time as the feed applies a
// backlog; snapshot loads the state written from the same events. One iteration is one
// whole restart; compare the two ns/op of one run.
//
//	RISKFLOW_BENCH_EVENTS=5000000 go test -run '^$' -bench Restart -benchtime 1x ./scoring/
func BenchmarkRestart(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("RISKFLOW_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	events := restartEvents(n)
	src := newScorer(b, scoring.Config{}, nil)
	for _, raw := range events {
		ev, err := schemas.DecodeEvent(raw)
		if err != nil {
			b.Fatal(err)
		}
		src.Apply(&ev)
	}
	var snap bytes.Buffer
	if _, err := src.State().WriteSnapshot(&snap, func() []byte { return nil }); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events: snapshot %d bytes (%.0f bytes per event)", n, snap.Len(), float64(snap.Len())/float64(n))

	b.Run("replay", func(b *testing.B) {
		for range b.N {
			s := newScorer(b, scoring.Config{}, nil)
			for _, raw := range events {
				ev, err := schemas.DecodeEvent(raw)
				if err != nil {
					b.Fatal(err)
				}
				s.Apply(&ev)
			}
		}
	})
	// As the feed replays now: what a partition reader fetched, decoded and applied as one batch.
	b.Run("replay-batched", func(b *testing.B) {
		evs := make([]schemas.VerifyEvent, 0, 256)
		for range b.N {
			s := newScorer(b, scoring.Config{}, nil)
			for i, raw := range events {
				ev, err := schemas.DecodeEvent(raw)
				if err != nil {
					b.Fatal(err)
				}
				if evs = append(evs, ev); len(evs) == cap(evs) || i == len(events)-1 {
					s.ApplyBatch(evs, nil)
					evs = evs[:0]
				}
			}
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		for range b.N {
			s := newScorer(b, scoring.Config{}, nil)
			if _, err := s.State().LoadSnapshot(bytes.NewReader(snap.Bytes()), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		for range b.N {
			var w bytes.Buffer
			if _, err := src.State().WriteSnapshot(&w, func() []byte { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// restartEvents is n events of the last 20 hours as JSON: phones make about three attempts each,
// ten phones share an IP, one in four has a device id.
func restartEvents(n int) [][]byte {
	end := time.Now().Add(-time.Hour)
	out := make([][]byte, n)
	phones := max(1, n/3)
	for i := range out {
		p := i % phones
		ev := map[string]any{
			"event_id": "r-" + strconv.Itoa(i),
			"ts":       end.Add(-time.Duration(i%72000) * time.Second).UnixMilli(),
			"app_id":   "app-" + strconv.Itoa(i%5),
			"flow":     "one_click_login",
			"phone":    fmt.Sprintf("13%09d", p),
			"ip":       fmt.Sprintf("39.%d.%d.%d", p/10/65536%256, p/10/256%256, p/10%256),
			"carrier":  "CM",
			"outcome":  "success",
		}
		if i%4 == 0 {
			ev["device_id"] = "d-" + strconv.Itoa(p)
		}
		out[i], _ = json.Marshal(ev)
	}
	return out
}
