package consumers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Stalled reports a batch retried for longer than a moment, with its error, and goes back to 0
// once the batch goes through; the outage is logged once when it starts and once when it ends,
// not once per attempt.
func TestLoopReportsAStallAndLogsItOnce(t *testing.T) {
	r := newFakeReader()
	boom := errors.New("write score records: broker away")
	errs := make([]error, 12)
	for i := range errs {
		errs[i] = boom
	}
	h := newRecorder(errs...)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := NewLoop(LoopConfig{Name: "scorer", BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}, r, h.handle, log, nil)
	if d, why := l.Stalled(); d != 0 || why != "" {
		t.Fatalf("idle loop reports a stall: %s %q", d, why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	r.push(1)
	sawStall := false
	for i := 0; i < 6; i++ {
		h.next(t)
		if d, why := l.Stalled(); d > 0 && strings.Contains(why, "broker away") {
			sawStall = true
		}
	}
	if !sawStall {
		t.Error("Stalled never reported the batch being retried")
	}
	for i := 0; i < 7; i++ {
		h.next(t) // the remaining failures and the success
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, commits := r.snapshot(); len(commits) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch was not committed after the failures ended")
		}
		time.Sleep(time.Millisecond)
	}
	if d, why := l.Stalled(); d != 0 {
		t.Errorf("after recovery Stalled = %s %q, want 0", d, why)
	}
	cancel()
	<-done
	out := logs.String()
	if n := strings.Count(out, "failing; retrying"); n != 1 {
		t.Errorf("%d 'failing' lines for one outage of 12 attempts, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "recovered"); n != 1 {
		t.Errorf("%d 'recovered' lines, want 1:\n%s", n, out)
	}
}
