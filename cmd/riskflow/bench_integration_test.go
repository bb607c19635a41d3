//go:build integration

package main

import (
	"context"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/riskflow/riskflow/consumers"
)

// bench deletes the Kafka topics of its runs unless --keep, as its help says: the pipeline and
// freshness parts (and the scorer processes') left theirs on the broker after every run — three
// topics and 200,000 events for the pipeline alone —, only the decisions' and archiver's went.
func TestBenchDeletesItsTopics(t *testing.T) {
	cleanEnv(t)
	_, brokers := testServices()
	kc := consumers.Config{Brokers: []string{brokers}}
	created := regexp.MustCompile(`msg="created topic" topic=(bench\.[0-9a-z]+\.[a-z]+)`)
	for _, keep := range []bool{false, true} {
		args := append(benchOnly("pipeline", "freshness"), "--events", "2000", "--probes", "5",
			"--set", "kafka.brokers="+brokers, "--set", "log.level=info", "--keep="+map[bool]string{false: "false", true: "true"}[keep])
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		r := runCmd(t, ctx, args...)
		cancel()
		if r.code != 0 {
			t.Fatalf("keep %v: exit %d\nstdout %s\nstderr %s", keep, r.code, r.stdout, r.stderr)
		}
		var topics []string
		for _, m := range created.FindAllStringSubmatch(r.stderr, -1) {
			topics = append(topics, m[1])
		}
		if !slices.ContainsFunc(topics, func(s string) bool { return regexp.MustCompile(`\.events$`).MatchString(s) }) ||
			!slices.ContainsFunc(topics, func(s string) bool { return regexp.MustCompile(`\.fresh$`).MatchString(s) }) {
			t.Fatalf("keep %v: the runs' topics not found in the log: %q\n%s", keep, topics, r.stderr)
		}
		for _, topic := range topics {
			pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			parts, err := consumers.Partitions(pctx, kc, topic)
			cancel()
			if exists := err == nil && len(parts) > 0; exists != keep {
				t.Errorf("keep %v: topic %s exists %v (%v)", keep, topic, exists, err)
			}
		}
		if keep {
			_ = deleteTopics(context.Background(), kc, topics)
		}
	}
}
