//go:build integration

package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/schemas"
)

// archiverGroup is what the tests of archivers sharing one consumer group use: topics and groups
// of their own (PREFIX.ID.scores …, PREFIX-archiver-ID), deleted at the end; archivers started as
// `serve --roles archiver` starts them, quick to give up on a ClickHouse (kafka.stall_after 1 s);
// a poll that shows their logs when it gives up; the group's member count; score records
// written to the scores topic.
type archiverGroup struct {
	t                 *testing.T
	ctx               context.Context
	kc                consumers.Config
	cl                *kafka.Client
	scores, dlq       string
	decisions, events string
	lists             string
	group, decGroup   string
}

func newArchiverGroup(ctx context.Context, t *testing.T, prefix, id string) *archiverGroup {
	t.Helper()
	_, brokers := testServices()
	kc := consumers.DefaultConfig()
	kc.Brokers = strings.Split(brokers, ",")
	topic := func(name string) string { return prefix + "." + id + "." + name }
	g := &archiverGroup{t: t, ctx: ctx, kc: kc, cl: &kafka.Client{Addr: kafka.TCP(kc.Brokers...)},
		scores: topic("scores"), dlq: topic("dlq"), decisions: topic("decisions"), events: topic("events"), lists: topic("lists"),
		group: prefix + "-archiver-" + id, decGroup: prefix + "-decisions-" + id}
	t.Cleanup(func() {
		_, _ = g.cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{g.scores, g.dlq, g.decisions, g.events, g.lists}})
	})
	return g
}

// start runs an archiver named name on ClickHouse chAddr, database, until the test ends.
func (g *archiverGroup) start(name, chAddr, database string) (*app, *syncbuf.Buffer) {
	t := g.t
	t.Helper()
	cfg := Default()
	cfg.Kafka.Brokers = g.kc.Brokers
	cfg.Kafka.EventsTopic, cfg.Kafka.ScoresTopic, cfg.Kafka.DLQTopic, cfg.Kafka.DecisionsTopic, cfg.Kafka.ListsTopic = g.events, g.scores, g.dlq, g.decisions, g.lists
	cfg.Kafka.Partitions = 4
	cfg.Kafka.ArchiverGroup, cfg.Kafka.DecisionsGroup = g.group, g.decGroup
	cfg.Kafka.StallAfter = Duration(time.Second)
	cfg.Scoring.PhoneHashKey = "k"
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = chAddr, database
	cfg.ClickHouse.FlushInterval = Duration(100 * time.Millisecond)
	cfg.ClickHouse.BreakerOpenFor = Duration(time.Second)
	logs := &syncbuf.Buffer{}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(logs, nil)).With("node", name))
	if err != nil {
		t.Fatal(err)
	}
	p, err := resolveRoles([]string{"archiver"}, &a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(g.ctx)
	eg, _, err := a.start(actx, p, startOptions{})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); _ = eg.Wait() })
	return a, logs
}

// poll waits until cond holds; it fails the test with the logs given when the test's context ends.
func (g *archiverGroup) poll(what string, cond func() bool, logs ...*syncbuf.Buffer) {
	g.t.Helper()
	for !cond() {
		select {
		case <-g.ctx.Done():
			var l []string
			for _, b := range logs {
				l = append(l, b.String())
			}
			g.t.Fatalf("%s: never; logs:\n%s", what, strings.Join(l, "\n---\n"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// members is the number of members of the archivers' group, -1 when it cannot be read.
func (g *archiverGroup) members() int {
	resp, err := g.cl.DescribeGroups(g.ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{g.group}})
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].Error != nil {
		return -1
	}
	return len(resp.Groups[0].Members)
}

// writeScores writes n score records (events e0 … e(n-1) of app1, one phone each) to the scores topic.
func (g *archiverGroup) writeScores(n int) {
	t := g.t
	t.Helper()
	w := consumers.NewWriter(g.kc, g.scores)
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		rec := schemas.ScoreRecord{
			EventID: fmt.Sprintf("e%d", i), TS: time.Now().UTC().Truncate(time.Second), AppID: "app1", Flow: "one_click_login",
			PhoneHash: fmt.Sprintf("%064x", i), PhoneMasked: "1381234****", PhoneSegment: "1381234", IP: "1.2.3.4",
			Outcome: "success", RulesVersion: "v1", ScoredAt: time.Now().UTC(),
		}
		v, err := rec.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: []byte(rec.PhoneHash), Value: v}
	}
	if err := w.WriteMessages(g.ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}
