//go:build integration

package consumers

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/syncbuf"
)

// A process that asks for a topic another client created since it looked at the metadata (it lost
// the race: two nodes starting together) says it found the topic, not that it created it, and goes
// on as soon as the topic's partitions answer — even when the other client made fewer than its
// spec: it logged "created topic" and waited 30 s for partitions that would never come, then
// failed (and a node's start retried).
func TestEnsureTopicsThatLostTheRaceSaysSoAndGoesOn(t *testing.T) {
	c := realBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	theirs, mine := testTopic(t, c, "h3-ensure-lost-"), testTopic(t, c, "h3-ensure-won-")
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	// The other client creates it, with 2 partitions, after this process looked.
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: theirs, NumPartitions: 2, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[theirs]
	}
	if err != nil {
		t.Fatalf("create the topic as the other client: %v", err)
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	if err := createAndWait(ctx, c, []TopicSpec{{Name: theirs, Partitions: 3}, {Name: mine, Partitions: 3}}, 1, log); err != nil {
		t.Fatalf("ensure a topic another client created meanwhile: %v\n%s", err, logs)
	}
	out := logs.String()
	if strings.Contains(out, `msg="created topic" topic=`+theirs) {
		t.Errorf("says it created the topic the other client created:\n%s", out)
	}
	if !strings.Contains(out, `msg="topic already exists: another client created it meanwhile" topic=`+theirs) {
		t.Errorf("does not say the topic already existed:\n%s", out)
	}
	if !strings.Contains(out, `msg="created topic" topic=`+mine+" partitions=3") {
		t.Errorf("does not say it created the topic it did create:\n%s", out)
	}
	for topic, n := range map[string]int{theirs: 2, mine: 3} {
		if parts, err := Partitions(ctx, c, topic); err != nil || len(parts) != n {
			t.Errorf("%s after EnsureTopics: partitions %v, %v; want %d", topic, parts, err, n)
		}
	}
}

// Two processes ensuring the same new topics at once: both go on, and each topic is logged as
// created by one of them only — both said "created topic" for every topic.
func TestEnsureTopicsAtOnceOneCreatesEachTopic(t *testing.T) {
	c := realBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	for round := 0; round < 3; round++ {
		specs := []TopicSpec{{Name: testTopic(t, c, "h3-ensure-a-"), Partitions: 4}, {Name: testTopic(t, c, "h3-ensure-b-"), Partitions: 1}}
		logs := &syncbuf.Buffer{}
		log := slog.New(slog.NewTextHandler(logs, nil))
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- EnsureTopics(ctx, c, specs, log) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v\n%s", round, err, logs)
			}
		}
		out := logs.String()
		for _, s := range specs {
			if n := strings.Count(out, `msg="created topic" topic=`+s.Name+" "); n != 1 {
				t.Errorf("round %d: %s logged as created %d times, want once:\n%s", round, s.Name, n, out)
			}
		}
	}
}
