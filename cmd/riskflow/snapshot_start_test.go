package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/riskflow/riskflow/internal/syncbuf"
)

// A node whose snapshot directory it cannot write to (read-only, full, a snapshot's name taken)
// may still load the snapshot there; the start then says so, and that every restart loads that
// one again until it is older than the retention. It said "every restart will replay from Kafka"
// next to "feature snapshot loaded". (As root, a read-only directory is writable: a directory
// under .prev's name stands in for it, the same check failing.)
func TestUnwritableSnapshotDirTellsWhatLoaded(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	dir := t.TempDir()
	run := func() string {
		cfg := Default()
		cfg.Scoring.PhoneHashKey = "k"
		cfg.Kafka.Brokers = cluster.ListenAddrs()
		cfg.Kafka.MaxMessageBytes = 1 << 20
		cfg.Scoring.SnapshotDir = dir
		var logged syncbuf.Buffer
		a, err := newApp(cfg, slog.New(slog.NewTextHandler(&logged, nil)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := resolveRoles([]string{"scorer"}, &a.cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		g, _, err := a.start(ctx, p, startOptions{})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second) // a bound on the test, not a measurement
		for !strings.Contains(logged.String(), "feature state caught up") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		_ = g.Wait() // the shutdown snapshot is written (or fails) before this returns
		return logged.String()
	}
	if log := run(); !strings.Contains(log, "feature snapshot written") {
		t.Fatalf("no snapshot at the first node's stop:\n%s", log)
	}
	if err := os.Mkdir(filepath.Join(dir, "features-"+Default().Kafka.EventsTopic+".snap.prev"), 0o700); err != nil {
		t.Fatal(err)
	}
	log := run()
	if !strings.Contains(log, "feature snapshot loaded") {
		t.Fatalf("the snapshot did not load:\n%s", log)
	}
	if strings.Contains(log, "every restart will replay") || !strings.Contains(log, "cannot be written here: the one loaded stays the newest; every restart loads it again") ||
		!strings.Contains(log, "older than the feature retention") {
		t.Errorf("the start does not say that the loaded snapshot is what restarts load:\n%s", log)
	}
	// With nothing to load, every restart replays (and it says so).
	if err := os.Remove(filepath.Join(dir, "features-"+Default().Kafka.EventsTopic+".snap")); err != nil {
		t.Fatal(err)
	}
	if log := run(); !strings.Contains(log, "cannot be written here: no newer one will be; this start replays the retention window from Kafka, and so does every restart") {
		t.Errorf("with no snapshot to load:\n%s", log)
	}
}
