package consumers

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Reading a group's lag, a topic's end offsets or settings again and again holds no connection
// and no goroutine once each call returned: each call's client had a transport of its own, never
// closed, and a scorer's lag, read every 10 s, grew by a connection to the broker and a dozen
// goroutines at each reading (held-out run: 63 → 77 open files in two minutes).
func TestRepeatedLooksAtTheBrokerLeaveNothingOpen(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	c := Config{Brokers: cluster.ListenAddrs()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound on the test
	defer cancel()
	for what, look := range map[string]func() error{
		"GroupLag":          func() error { _, err := GroupLag(ctx, c, "g", "events"); return err },
		"EndOffsets":        func() error { _, err := EndOffsets(ctx, c, "events"); return err },
		"TopicSetting":      func() error { _, err := TopicSetting(ctx, c, "events", "compression.type"); return err },
		"MaxMessageBytesOf": func() error { _, err := MaxMessageBytesOf(ctx, c, "events"); return err },
		"Partitions":        func() error { _, err := Partitions(ctx, c, "events"); return err },
	} {
		if err := look(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		base := settledGoroutines()
		for range 20 {
			if err := look(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		// Closed connections' goroutines end a moment after the call returned: poll, bounded.
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base+2 {
			t.Errorf("%s 20 times more: %d goroutines, %d before", what, n, base)
		}
	}
}

// settledGoroutines is the goroutine count once it stops falling.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(10 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}
