//go:build integration

package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/schemas"
)

// Two archivers of one group, one of which loses its ClickHouse after it had reached it (its
// connection cut, new ones refused): once its pings have failed for kafka.stall_after it leaves the consumer
// groups — unready, riskflow_archiver_joined 0 — and the other archiver stores every score,
// once each; at the first ping that answers again it joins again. It used to keep its share of the
// partitions for as long as its ClickHouse was away: half of the scores stayed out of ClickHouse
// although the other archiver could have stored them.
func TestArchiverWhoseClickHouseGoesAwayLeavesTheGroup(t *testing.T) {
	chAddr, db, id, conn := throwawayDatabase(t, "riskflow_h4leave")
	_, brokers := testServices()
	kc := consumers.DefaultConfig()
	kc.Brokers = strings.Split(brokers, ",")
	scores, group := "h4leave."+id+".scores", "h4leave-archiver-"+id
	topics := []string{scores, "h4leave." + id + ".dlq", "h4leave." + id + ".decisions", "h4leave." + id + ".events", "h4leave." + id + ".lists"}
	cl := &kafka.Client{Addr: kafka.TCP(kc.Brokers...)}
	t.Cleanup(func() { _, _ = cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: topics}) })
	proxy := newHangProxy(t, chAddr)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a bound on the test
	defer cancel()
	start := func(name, ch string) (*app, *syncbuf.Buffer) {
		t.Helper()
		cfg := Default()
		cfg.Kafka.Brokers = kc.Brokers
		cfg.Kafka.EventsTopic, cfg.Kafka.ScoresTopic, cfg.Kafka.DLQTopic, cfg.Kafka.DecisionsTopic, cfg.Kafka.ListsTopic = topics[3], scores, topics[1], topics[2], topics[4]
		cfg.Kafka.Partitions = 4
		cfg.Kafka.ArchiverGroup, cfg.Kafka.DecisionsGroup = group, "h4leave-decisions-"+id
		cfg.Kafka.StallAfter = Duration(time.Second)
		cfg.Scoring.PhoneHashKey = "k"
		cfg.ClickHouse.Addr, cfg.ClickHouse.Database = ch, db
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
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".risk_scores FINAL").Scan(&n)
		return n
	}
	var rows uint64
	total := func() uint64 {
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".risk_scores").Scan(&rows)
		return rows
	}

	cut, cutLogs := start("cut", proxy.ln.Addr().String())
	_, keptLogs := start("kept", chAddr)
	poll("both archivers in the group", func() bool { return members() == 2 }, cutLogs, keptLogs)

	proxy.refuse.Store(true)
	proxy.closeAll()
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
	poll(fmt.Sprintf("%d scores stored beside an archiver whose ClickHouse went away", n), func() bool { return stored() == n }, cutLogs, keptLogs)
	if m := members(); m != 1 {
		t.Errorf("archiver group has %d members with one archiver's ClickHouse away; want 1", m)
	}
	if v := gaugeValue(t, cut.reg, "riskflow_archiver_joined"); v != 0 {
		t.Errorf("riskflow_archiver_joined of the archiver whose ClickHouse is away: %v, want 0", v)
	}
	if err := cut.health.ready(); err == nil || !strings.Contains(err.Error(), "archiver") {
		t.Errorf("readiness of the archiver whose ClickHouse is away: %v, want the archiver named", err)
	}

	proxy.refuse.Store(false)
	poll("the archiver joins again once its ClickHouse answers", func() bool {
		return members() == 2 && gaugeValue(t, cut.reg, "riskflow_archiver_joined") == 1
	}, cutLogs, keptLogs)
	if got := stored(); got != n {
		t.Errorf("%d of %d scores stored", got, n)
	}
	if total() > n {
		t.Logf("%d rows before merges for %d scores (a batch in hand when the archiver left is written again by the new owner)", rows, n)
	}
}

// gaugeValue is the value of the metric name (without labels) in reg, or -1 when absent.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
