//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/consumers"
)

// demo --mode real runs on topics and groups of its own — every one: its verdicts went to the
// configured kafka.decisions_topic, where a real deployment's archivers would store them, and
// its archiver joined the real kafka.decisions_group — and deletes its topics when it ends (each
// run left five behind); --keep keeps them.
func TestDemoRealModeLeavesNothingBehind(t *testing.T) {
	cleanEnv(t)
	_, brokers := testServices()
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	kc := consumers.Config{Brokers: []string{brokers}}
	ctx := context.Background()
	// The deployment's own decision log and lists, there before the demo.
	decisions, lists := "it-demo-"+id+".decisions", "it-demo-"+id+".lists"
	if err := consumers.EnsureTopics(ctx, kc, []consumers.TopicSpec{{Name: decisions, Partitions: 2}, {Name: lists, Partitions: 1}}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deleteTopics(ctx, kc, []string{decisions, lists}) })
	topicsLine := regexp.MustCompile(`\(topics ([^)]+)\)`)
	for _, keep := range []bool{false, true} {
		args := []string{"demo", "--mode", "real", "--duration", "3s", "--rate", "10", "--seed", "5",
			"--set", "kafka.brokers=" + brokers, "--set", "clickhouse.addr=",
			"--set", "kafka.events_topic=it-demo-" + id + ".events", "--set", "kafka.decisions_topic=" + decisions, "--set", "kafka.lists_topic=" + lists}
		if keep {
			args = append(args, "--keep")
		}
		r := runCmd(t, ctx, args...)
		m := topicsLine.FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil || !strings.Contains(r.stdout, "detection per scenario") {
			t.Fatalf("keep %v: exit %d\nstdout %s\nstderr %s", keep, r.code, r.stdout, r.stderr)
		}
		topics := strings.Split(m[1], ", ")
		if len(topics) != 5 || !strings.Contains(m[1], decisions+".demo-") || !strings.Contains(m[1], lists+".demo-") {
			t.Errorf("keep %v: the run's topics %q; want five, its own decisions and lists among them", keep, topics)
		}
		for _, topic := range topics {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			parts, err := consumers.Partitions(pctx, kc, topic)
			cancel()
			exists := err == nil && len(parts) > 0
			if exists != keep {
				t.Errorf("keep %v: topic %s exists %v (%v)", keep, topic, exists, err)
			}
		}
		if keep {
			_ = deleteTopics(ctx, kc, topics)
		}
	}
	// The deployment's decision log holds none of the demo's verdicts.
	ends, err := consumers.EndOffsets(ctx, kc, decisions)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends {
		if end != 0 {
			t.Errorf("%s partition %d holds %d messages of the demo", decisions, p, end)
		}
	}
}
