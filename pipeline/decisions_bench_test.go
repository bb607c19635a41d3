package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/scoringtest"
)

type nopWriter struct{}

func (nopWriter) WriteMessages(context.Context, ...kafka.Message) error { return nil }

// BenchmarkCheckDecisionLog is the API handler answering checks (no network) with the decision
// log off and on (its background work included, writing to a writer that costs nothing): the
// decision log's own CPU per verdict, as a ratio within one run.
func BenchmarkCheckDecisionLog(b *testing.B) {
	s := scoringtest.DefaultPack(b, scoring.WithPhoneHasher(decHasher))
	now := time.Now()
	for i := range 20000 {
		ev := schemas.VerifyEvent{EventID: fmt.Sprint(i), TS: now.Add(-time.Minute), AppID: "a", Flow: "one_click_login",
			Phone: fmt.Sprintf("139%08d", i), IP: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), Outcome: "success"}
		s.Apply(&ev)
	}
	keys := map[string]string{"a": "s"}
	bodies := make([]string, 1000)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"phone":"139%08d","ip":"10.%d.%d.1","app_id":"a","device_id":"d-%d"}`, i*7, (i*7)>>8&255, (i*7)&255, i)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var start time.Duration
	run := func(b *testing.B, srv *api.Server) {
		b.ReportAllocs()
		i := 0
		start = cpu()
		for b.Loop() {
			r := httptest.NewRequest("POST", "/v1/risk/check", strings.NewReader(bodies[i%len(bodies)]))
			r.SetBasicAuth("a", "s")
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			i++
		}
	}
	b.Run("off", func(b *testing.B) {
		run(b, api.New(api.Config{Keys: keys}, s, nil, api.WithLogger(slog.New(slog.DiscardHandler))))
		b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
	})
	b.Run("on", func(b *testing.B) {
		dl := NewDecisionLog(DecisionLogConfig{Queue: 1 << 16}, nopWriter{}, decHasher, quiet())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { dl.Run(ctx, time.Second); close(done) }()
		run(b, api.New(api.Config{Keys: keys}, s, nil, api.WithLogger(slog.New(slog.DiscardHandler)), api.WithDecisionLog(dl)))
		for dl.Published() < dl.Recorded() {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
		b.StopTimer()
		cancel()
		<-done
		if dl.Dropped() > 0 {
			b.Logf("%d dropped", dl.Dropped())
		}
	})
}
