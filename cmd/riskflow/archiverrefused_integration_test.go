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

// Two archivers of one group, one of which has a ClickHouse that answers its pings but refuses
// every write (held-out run: an archiver whose clickhouse.username is a read-only user; here a
// table missing a column): once its writes have failed for kafka.stall_after it leaves the
// consumer groups — unready, saying why, riskflow_archiver_joined 0 — and the other archiver
// stores every score; it joins again later, and stays once its writes go through. It used to
// keep its share of the partitions for as long as it ran (its pings answered, so it never left):
// half of the scores stayed out of ClickHouse beside an archiver that could have stored them.
func TestArchiverWhoseWritesAreRefusedLeavesTheGroup(t *testing.T) {
	chAddr, db, conn, _ := migratedDatabase(t, "riskflow_h1refused")
	_, refusedDB, refusedConn, _ := migratedDatabase(t, "riskflow_h1refused")
	id := strings.TrimPrefix(db, "riskflow_h1refused_")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound on the test
	defer cancel()
	if err := refusedConn.Exec(ctx, "ALTER TABLE "+refusedDB+".verify_events DROP COLUMN ex_id"); err != nil {
		t.Fatal(err)
	}
	_, brokers := testServices()
	kc := consumers.DefaultConfig()
	kc.Brokers = strings.Split(brokers, ",")
	scores, group := "h1refused."+id+".scores", "h1refused-archiver-"+id
	topics := []string{scores, "h1refused." + id + ".dlq", "h1refused." + id + ".decisions", "h1refused." + id + ".events", "h1refused." + id + ".lists"}
	cl := &kafka.Client{Addr: kafka.TCP(kc.Brokers...)}
	t.Cleanup(func() { _, _ = cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: topics}) })

	start := func(name, database string) (*app, *syncbuf.Buffer) {
		t.Helper()
		cfg := Default()
		cfg.Kafka.Brokers = kc.Brokers
		cfg.Kafka.EventsTopic, cfg.Kafka.ScoresTopic, cfg.Kafka.DLQTopic, cfg.Kafka.DecisionsTopic, cfg.Kafka.ListsTopic = topics[3], scores, topics[1], topics[2], topics[4]
		cfg.Kafka.Partitions = 4
		cfg.Kafka.ArchiverGroup, cfg.Kafka.DecisionsGroup = group, "h1refused-decisions-"+id
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
		actx, stop := context.WithCancel(ctx)
		g, _, err := a.start(actx, p, startOptions{})
		if err != nil {
			stop()
			t.Fatal(err)
		}
		t.Cleanup(func() { stop(); _ = g.Wait() })
		return a, logs
	}
	poll := func(what string, cond func() bool, logs ...*syncbuf.Buffer) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				var l []string
				for _, b := range logs {
					l = append(l, b.String())
				}
				t.Fatalf("%s: never; logs:\n%s", what, strings.Join(l, "\n---\n"))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	members := func() int {
		resp, err := cl.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err != nil || len(resp.Groups) != 1 || resp.Groups[0].Error != nil {
			return -1
		}
		return len(resp.Groups[0].Members)
	}
	stored := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".verify_events FINAL").Scan(&n)
		return n
	}

	refused, refusedLogs := start("refused", refusedDB)
	_, keptLogs := start("kept", db)
	poll("both archivers in the group", func() bool { return members() == 2 }, refusedLogs, keptLogs)

	w := consumers.NewWriter(kc, scores)
	defer w.Close()
	const n = 400
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
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	poll("the refused archiver unready, naming its refused writes", func() bool {
		err := refused.health.ready()
		return err != nil && strings.Contains(err.Error(), "archiver") && strings.Contains(err.Error(), "ex_id")
	}, refusedLogs)
	poll(fmt.Sprintf("%d scores stored beside an archiver whose writes are refused", n), func() bool { return stored() == n }, refusedLogs, keptLogs)
	if !strings.Contains(refusedLogs.String(), "leaving the consumer groups") {
		t.Errorf("the refused archiver's log does not say it left the groups:\n%s", refusedLogs.String())
	}

	// Its table mended, it joins again and stays.
	if err := refusedConn.Exec(ctx, "ALTER TABLE "+refusedDB+".verify_events ADD COLUMN ex_id String"); err != nil {
		t.Fatal(err)
	}
	poll("the archiver joins again and its writes go through", func() bool {
		return members() == 2 && gaugeValue(t, refused.reg, "riskflow_archiver_joined") == 1 && refused.health.ready() == nil
	}, refusedLogs, keptLogs)
}
