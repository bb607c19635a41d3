package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/internal/testaddr"
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
	dir := tempDir(t)
	run := func() string {
		_, logged, stop := startScorerOn(t, cluster.ListenAddrs(), dir, 0)
		deadline := time.Now().Add(30 * time.Second) // a bound on the test, not a measurement
		for !strings.Contains(logged.String(), "feature state caught up") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		stop() // the shutdown snapshot is written (or fails) before this returns
		return logged.String()
	}
	if log := run(); !strings.Contains(log, "feature snapshot written") {
		t.Fatalf("no snapshot at the first node's stop:\n%s", log)
	}
	// The first node wrote two (once caught up, at its stop): the older one, .prev, makes way.
	prev := filepath.Join(dir, "features-"+Default().Kafka.EventsTopic+".snap.prev")
	if err := os.Remove(prev); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.Mkdir(prev, 0o700); err != nil {
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

// A node writes its first snapshot once its state has caught up, not a whole
// scoring.snapshot_interval later: one that loaded the snapshot of a long stop reported that
// snapshot's age (riskflow_snapshot_age_seconds, RiskflowSnapshotOld) until then, and one stopped
// sooner than the interval every time (a container OOM-killed every few minutes) replayed the
// retention window at each start, never having written one.
func TestFirstSnapshotOnceCaughtUp(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	dir := tempDir(t)
	a, logged, stop := startScorerOn(t, cluster.ListenAddrs(), dir, time.Hour)
	snap := filepath.Join(dir, "features-"+a.cfg.Kafka.EventsTopic+".snap")
	deadline := time.Now().Add(30 * time.Second) // a bound on the test, not a measurement
	for time.Now().Before(deadline) {
		if _, err := os.Stat(snap); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, statErr := os.Stat(snap)
	age := a.snapshotAge(time.Now())
	started := time.Since(a.started)
	stop()
	if statErr != nil {
		t.Fatalf("no snapshot written while running (snapshot_interval 1h): %v\n%s", statErr, logged.String())
	}
	if !strings.Contains(logged.String(), `why="caught up"`) {
		t.Errorf("the first snapshot is not logged as written once caught up:\n%s", logged.String())
	}
	if age > started {
		t.Errorf("snapshot age %s after the first snapshot, more than the process's age %s", age, started)
	}
}

// startScorerOn starts a scorer on brokers snapshotting into dir (every interval; 0: the default)
// and returns it, its log, and a stop that waits for it to end (its shutdown snapshot written).
func startScorerOn(t *testing.T, brokers []string, dir string, interval time.Duration) (*app, *syncbuf.Buffer, func()) {
	t.Helper()
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.MaxMessageBytes = 1 << 20
	cfg.Scoring.SnapshotDir = dir
	if interval > 0 {
		cfg.Scoring.SnapshotInterval = Duration(interval)
	}
	logged := &syncbuf.Buffer{}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(logged, nil)))
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
		cancel()
		t.Fatal(err)
	}
	return a, logged, func() { cancel(); _ = g.Wait() }
}

// A process that hashes phones into what it writes (the scorer's risk.scores, the api's decision
// log) says under which key, as the fingerprint its snapshots store: a scorer started with another
// scoring.phone_hash_key than its peers joined their group, scored its share of the partitions
// and wrote those phones' hashes under its own key, splitting each phone's history in ClickHouse
// (held-out run: 7 of 55 farm numbers stored under two hashes), and nothing in its /readyz or
// /metrics told it from its peers (alert RiskflowPhoneHashKeysDiffer). Likewise the address
// classification data it scores with (RiskflowAddressDataDiffers).
func TestScorerSaysWhichPhoneHashKeyItWritesUnder(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	a, _, stop := startScorerOn(t, cluster.ListenAddrs(), tempDir(t), time.Hour)
	_, body := serveGet(a.opsHandler())("/metrics")
	stop()
	for _, want := range []string{
		`riskflow_phone_hash_key_info{fingerprint="` + a.scorer.KeyFingerprint() + `"} 1`,
		`riskflow_address_data_info{fingerprint="` + a.scorer.ClassFingerprint() + `"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "another key"
	other, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if other.scorer.KeyFingerprint() == a.scorer.KeyFingerprint() {
		t.Errorf("two keys, one fingerprint %s", a.scorer.KeyFingerprint())
	}
	// Another datacenter list: a scorer given one (held-out run: 112.0.0.0/8 on one of three)
	// scored 178 of 1,155 events 600 where its peers gave 300, with the same rule pack and key.
	cfg = Default()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.Scoring.IDCList = filepath.Join(tempDir(t), "idc.txt")
	if err := os.WriteFile(cfg.Scoring.IDCList, []byte("112.0.0.0/8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if other, err = newApp(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if other.scorer.ClassFingerprint() == a.scorer.ClassFingerprint() {
		t.Errorf("two datacenter lists, one fingerprint %s", a.scorer.ClassFingerprint())
	}
	// The archiver hashes no phone and classifies no address: it has no such series (it would
	// otherwise show as a third key).
	ar := &app{cfg: Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	if _, body := serveGet(ar.opsHandler())("/metrics"); strings.Contains(body, "riskflow_phone_hash_key_info") || strings.Contains(body, "riskflow_address_data_info") {
		t.Errorf("a process without the state reports a key or address data")
	}
}

// An archiver says which database it stores each consumer group's stream in: one started with
// another clickhouse.database in the group of its peers took its share of risk.scores' partitions
// and stored them there (held-out run: 84 of 337 scores in h2_r1x, 253 in h2_r1), ready and
// archiving like the others, and nothing told it apart (alert RiskflowArchiveDatabasesDiffer).
func TestArchiverSaysWhichDatabaseItStoresIn(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := Default()
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Kafka.MaxMessageBytes = 1 << 20
	cfg.ClickHouse.Addr = testaddr.Free(t) // nothing answers: the archiver waits, unready
	cfg.ClickHouse.Database = "history_b"
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p, err := resolveRoles([]string{"archiver"}, &a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _, _, _ = a.start(ctx, p, startOptions{}) }()
	defer func() { cancel(); <-done }()
	want := []string{
		`riskflow_archive_database_info{database="history_b",group="` + cfg.Kafka.ArchiverGroup + `",topic="` + cfg.Kafka.ScoresTopic + `"} 1`,
		`riskflow_archive_database_info{database="history_b",group="` + cfg.Kafka.DecisionsGroup + `",topic="` + cfg.Kafka.DecisionsTopic + `"} 1`,
	}
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) { // a bound on the test
		if _, body = serveGet(a.opsHandler())("/metrics"); strings.Contains(body, want[0]) && strings.Contains(body, want[1]) {
			break
		}
	}
	if !strings.Contains(body, want[0]) || !strings.Contains(body, want[1]) {
		t.Fatalf("metrics lack %s", strings.Join(want, " or "))
	}
}

// A scorer says which consumer group it scores its events topic in: one started with a mistyped
// kafka.scorer_group reads every partition in a group of its own and scores every event a second
// time — ClickHouse collapses the rows, every counter doubles, and nothing told it apart (alert
// RiskflowScorerGroupsDiffer).
func TestScorerSaysWhichGroupItScoresIn(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	a, _, stop := startScorerOn(t, cluster.ListenAddrs(), tempDir(t), time.Hour)
	defer stop()
	want := `riskflow_scorer_group_info{group="` + a.cfg.Kafka.ScorerGroup + `",topic="` + a.cfg.Kafka.EventsTopic + `"} 1`
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) { // a bound on the test
		if _, body = serveGet(a.opsHandler())("/metrics"); strings.Contains(body, want) {
			return
		}
	}
	t.Fatalf("metrics lack %s", want)
}

// An archiver-only process (serve --roles archiver) classifies no address: it loads no geo or ASN
// data, which took half a second of its start and their memory for nothing. A process with the
// feature state (scorer, api) still does.
func TestArchiverOnlyLoadsNoAddressData(t *testing.T) {
	for roles, wantData := range map[string]bool{"archiver": false, "scorer": true, "scorer,archiver": true} {
		cfg := Default()
		cfg.Scoring.PhoneHashKey = "k"
		cfg.ClickHouse.Addr = "127.0.0.1:1"
		p, err := resolveRoles(strings.Split(roles, ","), &cfg)
		if err != nil {
			t.Fatal(err)
		}
		logged := &syncbuf.Buffer{}
		a, err := newAppFor(cfg, slog.New(slog.NewTextHandler(logged, nil)), p)
		if err != nil {
			t.Fatalf("%s: %v", roles, err)
		}
		// A scorer without a locator fingerprints its address data as "none".
		if hasData := !strings.HasSuffix(a.scorer.ClassFingerprint(), "none"); hasData != wantData {
			t.Errorf("--roles %s: address data fingerprint %q, want address data loaded %v", roles, a.scorer.ClassFingerprint(), wantData)
		}
		if !wantData && (strings.Contains(logged.String(), "geo") || strings.Contains(logged.String(), "ASN")) {
			t.Errorf("--roles %s logs about geo or ASN data it does not use:\n%s", roles, logged.String())
		}
	}
}
