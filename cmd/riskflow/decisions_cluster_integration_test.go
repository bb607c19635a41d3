//go:build integration

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The decision log on a cluster of its own (kafka.decisions_brokers): the api role writes the
// verdicts there and the archiver role reads them there, so every check served becomes a row of
// risk_decisions on the real ClickHouse, while the main cluster carries no decision. (The
// archiver read kafka.brokers once: decisions sent to another cluster were never archived.)
func TestDecisionsArchivedFromTheirOwnCluster(t *testing.T) {
	chAddr, db, _, conn := throwawayDatabase(t, "riskflow_dcluster")
	cfg := Default()
	stopMain, err := embeddedBroker(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stopMain()
	decisions, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer decisions.Close()
	cfg.Kafka.DecisionsBrokers = decisions.ListenAddrs()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.API.Keys = map[string]string{"app1": "secret"}
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = chAddr, db
	cfg.ClickHouse.FlushInterval = Duration(100 * time.Millisecond)
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p, err := resolveRoles([]string{"api", "archiver"}, &a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	g, _, err := a.start(ctx, p, startOptions{listen: "127.0.0.1:0", onListen: func(addr string) { listening <- addr }})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() { cancel(); _ = g.Wait() }()
	api := "http://" + <-listening

	const checks = 25
	served := 0
	for deadline := time.Now().Add(60 * time.Second); served < checks && time.Now().Before(deadline); {
		body := fmt.Sprintf(`{"app_id":"app1","phone":"1380013%04d","ip":"203.0.113.9","carrier":"CM"}`, served)
		req, _ := http.NewRequest("POST", api+"/v1/risk/check", strings.NewReader(body))
		req.SetBasicAuth("app1", "secret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			served++
		} else {
			time.Sleep(50 * time.Millisecond) // the replica is catching up (503)
		}
	}
	if served < checks {
		t.Fatalf("%d of %d checks answered 200", served, checks)
	}
	var rows uint64
	for deadline := time.Now().Add(60 * time.Second); rows < checks && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+db+".risk_decisions FINAL").Scan(&rows)
	}
	if rows != checks {
		t.Fatalf("risk_decisions holds %d rows for %d checks served", rows, checks)
	}

	// The main cluster: no decision on its decisions topic (absent, or empty).
	c := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...)}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{cfg.Kafka.DecisionsTopic}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range md.Topics {
		if tp.Error != nil {
			continue // not there: nothing was written
		}
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for _, pt := range tp.Partitions {
			req.Topics[tp.Name] = append(req.Topics[tp.Name], kafka.LastOffsetOf(pt.ID))
		}
		res, err := c.ListOffsets(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, po := range res.Topics[tp.Name] {
			if po.LastOffset > 0 {
				t.Errorf("the main cluster's %s partition %d holds %d messages", tp.Name, po.Partition, po.LastOffset)
			}
		}
	}
}
