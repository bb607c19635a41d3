package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// serveGet returns a GET of h's path: the status and the body.
func serveGet(h http.Handler) func(path string) (int, string) {
	return func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}
}

func TestOpsPortReportsStalledLoops(t *testing.T) {
	a := &app{cfg: Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	loop := &fakeLoop{}
	a.registerLoop("scorer", loop)
	get := serveGet(a.opsHandler())
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz of a healthy loop: %d %s", code, body)
	}
	*loop = fakeLoop{d: 2 * time.Minute, why: "write score records: 2000 of 2000 messages failed: [10] Message Size Too Large"}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "scorer: stalled for 2m0s") || !strings.Contains(body, "Message Size Too Large") {
		t.Errorf("readyz of a stalled loop: %d %s", code, body)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d %s", code, body)
	}
	code, body = get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, `riskflow_loop_stalled_seconds{loop="scorer"} 120`) {
		t.Errorf("metrics do not show the stall: %d\n%s", code, body)
	}
}

// A scorer's loop is created once the feature state has caught up: CI scraped a scorer whose
// /readyz had just said ready and found no riskflow_loop_stalled_seconds{loop="scorer"}. Registered
// as waiting, the loop is unready until it runs, naming why, and its series is there from the start.
func TestLoopNotRunningYetIsUnreadyAndScraped(t *testing.T) {
	a := &app{cfg: Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	scoring := &laterLoop{waiting: "not running yet: waiting for the feature state"}
	a.registerLoop("scorer", scoring)
	get := serveGet(a.opsHandler())
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "scorer: not running yet: waiting for the feature state") {
		t.Errorf("readyz before the loop runs: %d %s", code, body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, `riskflow_loop_stalled_seconds{loop="scorer"} 0`) {
		t.Errorf("metrics before the loop runs: %d\n%s", code, body)
	}
	loop := &fakeLoop{}
	scoring.set(loop)
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("readyz once the loop runs: %d %s", code, body)
	}
	*loop = fakeLoop{d: 2 * time.Minute, why: "fetch: broker away"}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "scorer: stalled for 2m0s") {
		t.Errorf("readyz of the stalled loop: %d %s", code, body)
	}
	// A loop that ran and ended (an archiver that left its groups) is not "not running yet".
	scoring.unset()
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("readyz once the loop has ended: %d %s", code, body)
	}
}

// The info metrics name the binary and the running rule pack, which changes on a reload.
func TestInfoMetrics(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.obs.RuleHits([]schemas.RuleHit{{Rule: "token_replay", Mode: "enforce"}, {Rule: "odd_hour", Mode: "shadow"}})
	rec := httptest.NewRecorder()
	a.opsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`riskflow_build_info{go_version="go`,
		`riskflow_rules_info{pack="default",version="` + a.scorer.Rules().Load().Version + `"} 1`,
		`riskflow_rule_hits_total{mode="enforce",rule="token_replay"} 1`,
		`riskflow_rule_hits_total{mode="shadow",rule="odd_hour"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// /readyz?exclude= leaves named checks out — a process running the api role with the archiver
// stays ready for its load balancer through a ClickHouse outage —, the name of a check another
// role runs is accepted (one probe configuration for every role: an api-only node answered 400 to
// /readyz?exclude=decisions), and a name no riskflow process has is a 400 listing the names.
func TestReadyzExclude(t *testing.T) {
	a := &app{cfg: Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	archiver, decisions := &fakeLoop{}, &fakeLoop{}
	a.registerLoop("archiver", archiver)
	a.registerLoop("decisions", decisions)
	a.health.add("state", func() error { return nil })
	get := serveGet(a.opsHandler())
	*archiver = fakeLoop{d: time.Minute, why: "clickhouse: connection refused"}
	*decisions = fakeLoop{d: time.Minute, why: "clickhouse: connection refused"}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "archiver: stalled") || !strings.Contains(body, "decisions: stalled") {
		t.Errorf("readyz with ClickHouse away: %d %s", code, body)
	}
	if code, body := get("/readyz?exclude=archiver"); code != http.StatusServiceUnavailable || strings.Contains(body, "archiver") || !strings.Contains(body, "decisions: stalled") {
		t.Errorf("readyz without the archiver: %d %s", code, body)
	}
	if code, body := get("/readyz?exclude=archiver&exclude=decisions"); code != http.StatusOK {
		t.Errorf("readyz without both ClickHouse loops: %d %s", code, body)
	}
	a.health.add("state", func() error { return errors.New("feature replica is 70s stale") })
	if code, body := get("/readyz?exclude=archiver&exclude=decisions"); code != http.StatusServiceUnavailable || !strings.Contains(body, "state: feature replica is 70s stale") {
		t.Errorf("readyz excluding the loops with a stale state: %d %s", code, body)
	}
	// A check whose error joins several says them on one line.
	a.health.add("state", func() error {
		return errors.Join(errors.New("feature replica is 70s stale"), errors.New("kafka: broker 1 refused"))
	})
	if code, body := get("/readyz?exclude=archiver&exclude=decisions"); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "state: feature replica is 70s stale; kafka: broker 1 refused") {
		t.Errorf("readyz with a joined error: %d %s; want one line", code, body)
	}
	code, body := get("/readyz?exclude=archivr")
	if code != http.StatusBadRequest || !strings.Contains(body, `exclude: no readiness check of that name: \"archivr\" (the checks are start, state, fresh, lists, scorer, archiver, decisions; this process runs archiver, decisions, state)`) {
		t.Errorf("readyz excluding a mistyped name: %d %s", code, body)
	}
	// A pair net/url cannot read, or a mistyped parameter, was dropped without a word: the check
	// meant to be left out was counted.
	for q, want := range map[string]string{
		"exclude=archiver;&exclude=decisions": `exclude: holds a ';'`,
		"exclude=%zz&exclude=archiver":        `exclude: \"%zz\" is not valid percent-encoding`,
		"exlude=archiver":                     `exlude: unknown query parameter (/readyz takes exclude)`,
	} {
		if code, body := get("/readyz?" + q); code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("readyz?%s: %d %s; want 400 %s", q, code, body, want)
		}
	}

	// An api-only node: the probe shared with the archivers excludes checks it does not run.
	api := &app{cfg: Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	api.health.add("start", func() error { return nil })
	api.health.add("state", func() error { return nil })
	api.health.add("lists", func() error { return nil })
	get = serveGet(api.opsHandler())
	for _, q := range []string{"exclude=decisions", "exclude=archiver&exclude=decisions", "exclude=scorer"} {
		if code, body := get("/readyz?" + q); code != http.StatusOK {
			t.Errorf("api-only node, /readyz?%s: %d %s; want 200", q, code, body)
		}
	}
	api.health.add("state", func() error { return errors.New("feature replica is catching up") })
	if code, body := get("/readyz?exclude=archiver&exclude=decisions"); code != http.StatusServiceUnavailable || !strings.Contains(body, "state: feature replica is catching up") {
		t.Errorf("api-only node catching up, excluding the archivers' checks: %d %s; want 503 naming state", code, body)
	}
	// Once caught up, a stale replica (the broker away: every node at once) fails fresh, not state:
	// the shipped load-balancer probe leaves fresh out, so a broker outage does not take every
	// node out of rotation while each can answer from its state.
	stale := &fakeReplica{lag: 0, fresh: time.Now().Add(-2 * time.Minute)}
	api2 := &app{cfg: Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	api2.health.add("state", replicaServing(stale))
	api2.health.add("fresh", replicaFresh(stale, 1000, time.Minute))
	getAPI := serveGet(api2.opsHandler())
	if code, body := getAPI("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "fresh: feature replica is 2m0s stale") || strings.Contains(body, "state:") {
		t.Errorf("api-only node, stale: %d %s; want 503 naming fresh only", code, body)
	}
	if code, body := getAPI("/readyz?exclude=fresh"); code != http.StatusOK {
		t.Errorf("api-only node, stale, probe leaving fresh out: %d %s; want 200", code, body)
	}
	*stale = fakeReplica{lag: 5000}
	if code, body := getAPI("/readyz?exclude=fresh"); code != http.StatusServiceUnavailable || !strings.Contains(body, "state: feature replica is catching up") {
		t.Errorf("api-only node catching up, probe leaving fresh out: %d %s; want 503 naming state", code, body)
	}
	if code, body := get("/readyz?exclude=decision"); code != http.StatusBadRequest || !strings.Contains(body, "this process runs start, state, lists") {
		t.Errorf("api-only node, a mistyped name: %d %s; want 400", code, body)
	}
}

// Every check a process registers is one /readyz?exclude= knows by name: add refuses any other.
func TestReadinessCheckNamesAreKnown(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("health.add took a check name missing from checkNames")
		}
	}()
	(&health{}).add("archivr", func() error { return nil })
}

// A scorer or archiver that starts while the broker is away serves its ops port at once: /healthz
// answers (a liveness probe must not restart a process that only waits) and /readyz says what it
// waits for. Before, the port opened only once the topics existed.
func TestOpsPortServesWhileWaitingForKafka(t *testing.T) {
	free := func() string { return testaddr.Free(t) }
	for _, role := range []string{"scorer", "archiver"} {
		t.Run(role, func(t *testing.T) {
			cfg := Default()
			cfg.Scoring.PhoneHashKey = "k"
			cfg.ClickHouse.Addr = free()
			cfg.Kafka.Brokers = []string{free()} // nothing listens there
			cfg.Ops.Listen = free()
			a, err := newApp(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			p, err := resolveRoles([]string{role}, &a.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			started := make(chan error, 1)
			go func() { _, _, err := a.start(ctx, p, startOptions{}); started <- err }()
			get := func(path string) (int, string) {
				resp, err := http.Get("http://" + cfg.Ops.Listen + path)
				if err != nil {
					return 0, err.Error()
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			deadline := time.Now().Add(20 * time.Second) // a bound on the test, not a measurement
			code, body := get("/healthz")
			for code != http.StatusOK && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				code, body = get("/healthz")
			}
			if code != http.StatusOK {
				t.Errorf("/healthz while waiting for Kafka: %d %s", code, body)
			}
			if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for Kafka") {
				t.Errorf("/readyz while waiting for Kafka: %d %s", code, body)
			}
			if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "riskflow_build_info") {
				t.Errorf("/metrics while waiting for Kafka: %d", code)
			}
			cancel()
			if err := <-started; err == nil {
				t.Error("start returned no error after being stopped while waiting for Kafka")
			}
			if code, _ := get("/healthz"); code != 0 {
				t.Error("the ops port still answers after start gave up")
			}
		})
	}
}

// Consumer-group lag the broker cannot answer is left out of /metrics, not left at its last
// reading (a standing 0 through an outage let the autoscaler scale the scorers down), and a
// failure that lasts is logged once; the series come back when the broker does.
func TestGroupLagLeftOutWhileUnreadable(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "ev"))
	if err != nil {
		t.Fatal(err)
	}
	var logged syncbuf.Buffer
	a := &app{cfg: Default(), log: slog.New(slog.NewTextHandler(&logged, nil)), reg: prometheus.NewRegistry(), health: &health{}}
	a.obs = newObserver(a.reg)
	a.kc = consumers.Config{Brokers: cluster.ListenAddrs(), DialTimeout: time.Second}
	ctx := context.Background()
	metrics := func() string {
		rec := httptest.NewRecorder()
		a.opsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	failed := a.readGroupLag(ctx, a.kc, "g", "ev", 0)
	if failed != 0 || !strings.Contains(metrics(), `riskflow_consumer_lag_messages{group="g",partition="1"} 0`) {
		t.Fatalf("lag of a readable group (failed %d):\n%s", failed, metrics())
	}
	cluster.Close()
	failed = a.readGroupLag(ctx, a.kc, "g", "ev", failed)
	if strings.Contains(metrics(), `riskflow_consumer_lag_messages{group="g"`) {
		t.Errorf("the broker is away, yet /metrics still shows a lag for the group:\n%s", metrics())
	}
	if strings.Contains(logged.String(), "level=WARN") {
		t.Errorf("the first failed read was logged (it often fails on topics just created):\n%s", logged.String())
	}
	failed = a.readGroupLag(ctx, a.kc, "g", "ev", failed)
	failed = a.readGroupLag(ctx, a.kc, "g", "ev", failed)
	if n := strings.Count(logged.String(), "could not read the consumer group's lag"); failed != 3 || n != 1 {
		t.Errorf("three failed reads: count %d, %d warnings; want 3 and 1:\n%s", failed, n, logged.String())
	}
}

// Snapshot age counts from the process's start until the first snapshot is written or loaded, so
// a node whose snapshots never succeed crosses RiskflowSnapshotOld's threshold (1800 s) instead of
// reporting -1 for ever; from then on it is the newest snapshot's age.
func TestSnapshotAgeBeforeTheFirst(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	a := &app{started: t0}
	if got := a.snapshotAge(t0.Add(40 * time.Minute)); got != 40*time.Minute {
		t.Errorf("no snapshot yet, 40 min after the start: age %v, want 40m", got)
	}
	a.snapshotAt.Store(t0.Add(38 * time.Minute).UnixNano())
	if got := a.snapshotAge(t0.Add(40 * time.Minute)); got != 2*time.Minute {
		t.Errorf("a snapshot written 2 min ago: age %v", got)
	}
}

// A process with the api role that starts while the broker is away listens at once on the API's
// address: /healthz answers, /readyz and every API route answer 503 saying it waits for Kafka
// (before, nothing listened: a liveness probe restarted the pod, a verify service was refused).
// Once the broker is there, the API takes the same address over and checks are answered.
func TestAPIAddressServesWhileWaitingForKafka(t *testing.T) {
	free := func() (string, int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
	}
	broker, brokerPort := free() // nothing listens there yet
	listen, _ := free()
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.Kafka.Brokers = []string{broker}
	cfg.API.Keys = map[string]string{"app1": "secret"}
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p, err := resolveRoles([]string{"api"}, &a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type started struct {
		g   interface{ Wait() error }
		err error
	}
	startc := make(chan started, 1)
	go func() { g, _, err := a.start(ctx, p, startOptions{listen: listen}); startc <- started{g, err} }()
	do := func(method, path string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, "http://"+listen+path, strings.NewReader(`{"app_id":"app1","phone":"13800138000","ip":"203.0.113.9","carrier":"CM"}`))
		req.SetBasicAuth("app1", "secret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	deadline := time.Now().Add(20 * time.Second) // a bound on the test, not a measurement
	code, body, _ := do("GET", "/healthz")
	for code != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		code, body, _ = do("GET", "/healthz")
	}
	if code != http.StatusOK {
		t.Fatalf("/healthz while waiting for Kafka: %d %s", code, body)
	}
	if code, body, _ := do("GET", "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for Kafka") {
		t.Errorf("/readyz while waiting for Kafka: %d %s", code, body)
	}
	if code, body, _ := do("GET", "/metrics"); code != http.StatusOK || !strings.Contains(body, "riskflow_build_info") {
		t.Errorf("/metrics while waiting for Kafka: %d", code)
	}
	code, body, h := do("POST", "/v1/risk/check")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for Kafka") || h.Get("Retry-After") == "" {
		t.Errorf("/v1/risk/check while waiting for Kafka: %d %s (Retry-After %q)", code, body, h.Get("Retry-After"))
	}
	select {
	case s := <-startc:
		t.Fatalf("start returned while the broker is away: %v", s.err)
	default:
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(brokerPort), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	s := <-startc
	if s.err != nil {
		t.Fatalf("start once the broker is there: %v", s.err)
	}
	deadline = time.Now().Add(30 * time.Second)
	code, body, _ = do("POST", "/v1/risk/check")
	for code != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		code, body, _ = do("POST", "/v1/risk/check")
	}
	if code != http.StatusOK || !strings.Contains(body, `"score"`) {
		t.Errorf("/v1/risk/check once the broker is there: %d %s", code, body)
	}
	if code, body, _ := do("GET", "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz once the broker is there: %d %s", code, body)
	}
	cancel()
	if err := s.g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stopping: %v", err)
	}
	if code, _, _ := do("GET", "/healthz"); code != 0 {
		t.Error("the API's address still answers after the process stopped")
	}
}

// The API's address is the one verify services reach: /metrics there showed every rule id and
// its hits to any caller. With ops.listen set, an api node serves /metrics on the ops port only
// (the API's address answers 404 saying where), while starting and once running; the probes
// answer on both.
func TestAPINodeServesMetricsOnItsOpsPortOnly(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	listen, ops := testaddr.Free(t), testaddr.Free(t)
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.API.Keys = map[string]string{"app1": "secret"}
	cfg.Ops.Listen = ops
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := serveGet(a.startingHandler())("/metrics"); code != http.StatusNotFound || !strings.Contains(body, "ops.listen ("+ops+")") {
		t.Errorf("/metrics on the API's address while starting: %d %s", code, body)
	}
	// Any method: POST is not told to use GET on an address where GET finds nothing either.
	pw := httptest.NewRecorder()
	a.startingHandler().ServeHTTP(pw, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	if pw.Code != http.StatusNotFound || pw.Header().Get("Allow") != "" || !strings.Contains(pw.Body.String(), "no route POST /metrics on the API's address") {
		t.Errorf("POST /metrics on the API's address while starting: %d Allow %q %s", pw.Code, pw.Header().Get("Allow"), pw.Body)
	}
	p, err := resolveRoles([]string{"api"}, &a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, _, err := a.start(ctx, p, startOptions{listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	get := func(addr, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second) // a bound on the test, not a measurement
	for code, _ := get(listen, "/readyz"); code != http.StatusOK && time.Now().Before(deadline); code, _ = get(listen, "/readyz") {
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get(listen, "/metrics"); code != http.StatusNotFound || !strings.Contains(body, "serves its metrics on ops.listen ("+ops+")") || strings.Contains(body, "riskflow_") {
		t.Errorf("/metrics on the API's address: %d %s", code, body)
	}
	if code, body := get(ops, "/metrics"); code != http.StatusOK || !strings.Contains(body, "riskflow_api_requests_total") || !strings.Contains(body, "riskflow_build_info") {
		t.Errorf("/metrics on the ops port: %d, the API's metrics missing", code)
	}
	for _, addr := range []string{listen, ops} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := get(addr, path); code != http.StatusOK {
				t.Errorf("%s on %s: %d %s", path, addr, code, body)
			}
		}
	}
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stopping: %v", err)
	}
}

// A scorer or archiver without ops.listen answers no probe and no scrape: it says so at start, with
// the key to set. A process with the api role serves them on the API's address and says nothing —
// unless ops.listen is set, where its /metrics then moves, which it says.
func TestNoOpsPortIsLogged(t *testing.T) {
	for _, c := range []struct {
		role    string
		ops     string
		warn    bool
		ignored bool
	}{{"scorer", "", true, false}, {"archiver", "", true, false}, {"api", "", false, false}, {"api", "127.0.0.1:0", false, true}} {
		t.Run(c.role+c.ops, func(t *testing.T) {
			nobody := testaddr.Free(t)
			cfg := Default()
			cfg.Scoring.PhoneHashKey = "k"
			cfg.ClickHouse.Addr = nobody
			cfg.Kafka.Brokers = []string{nobody} // start waits for it until cancelled
			cfg.Ops.Listen = c.ops
			var logs bytes.Buffer
			a, err := newApp(cfg, slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)))
			if err != nil {
				t.Fatal(err)
			}
			p, err := resolveRoles([]string{c.role}, &a.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // start logs its plan before it waits for anything
			_, _, _ = a.start(ctx, p, startOptions{listen: "127.0.0.1:0"})
			got := strings.Contains(logs.String(), "no ops port") && strings.Contains(logs.String(), "set ops.listen")
			if got != c.warn {
				t.Errorf("warned %v, want %v; log:\n%s", got, c.warn, logs.String())
			}
			if got := strings.Contains(logs.String(), "/metrics is served on ops.listen only"); got != c.ignored {
				t.Errorf("said /metrics moved to ops.listen: %v, want %v; log:\n%s", got, c.ignored, logs.String())
			}
		})
	}
}

// syncWriter serializes writes to w: the log is written from the process's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// kafka.decisions_brokers is the decision log's cluster for both its ends: the API writes there
// and the archiver reads (and watches its group's lag) there.
func TestDecisionsClusterIsReadWhereWritten(t *testing.T) {
	cfg := Default()
	cfg.Kafka.Brokers = []string{"main:9092"}
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.decisionsKafka().Brokers; !slices.Equal(got, []string{"main:9092"}) {
		t.Errorf("without kafka.decisions_brokers: %v", got)
	}
	a.cfg.Kafka.DecisionsBrokers = []string{"d1:9092", "d2:9092"}
	if got := a.decisionsKafka().Brokers; !slices.Equal(got, []string{"d1:9092", "d2:9092"}) {
		t.Errorf("with kafka.decisions_brokers: %v", got)
	}
	if !slices.Equal(a.kc.Brokers, []string{"main:9092"}) {
		t.Errorf("the main cluster changed: %v", a.kc.Brokers)
	}
	// That the archiver reads there: TestDecisionsArchivedFromTheirOwnCluster (integration).
}

// The feature state's size is reported by the processes that hold one: a scorer's /metrics has
// riskflow_state_keys, an archiver's has none (it exported a state of 0 keys). Likewise only an
// archiver reports riskflow_archived_total (a scorer exported 0 records stored).
func TestStateMetricsOnlyWhereTheStateIs(t *testing.T) {
	for _, c := range []struct {
		role            string
		state, archived bool
	}{{"scorer", true, false}, {"archiver", false, true}} {
		t.Run(c.role, func(t *testing.T) {
			cfg := Default()
			cfg.Scoring.PhoneHashKey = "k"
			cfg.ClickHouse.Addr = "127.0.0.1:1" // the archiver retries it; not what is measured
			stop, err := embeddedBroker(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			a, err := newApp(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			p, err := resolveRoles([]string{c.role}, &a.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			g, _, err := a.start(ctx, p, startOptions{})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			defer func() { cancel(); _ = g.Wait() }()
			exported := func(name string) bool {
				mfs, err := a.reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				return slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == name })
			}
			if has := exported("riskflow_state_keys"); has != c.state {
				t.Errorf("riskflow_state_keys exported: %v, want %v", has, c.state)
			}
			// The role's loop registers its metrics as it starts: wait for the archiver's.
			for deadline := time.Now().Add(10 * time.Second); c.archived && !exported("riskflow_archived_total") && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if has := exported("riskflow_archived_total"); has != c.archived {
				t.Errorf("riskflow_archived_total exported: %v, want %v", has, c.archived)
			}
			// A scorer counts every verdict level from its start, at 0 (a first 900 is an
			// increase rate() sees); an archiver has no riskflow_scored_total at all.
			scored := func() (levels []string) {
				for _, m := range seriesOf(t, a.reg, "riskflow_scored_total") {
					levels = append(levels, labelsOf(m)["score"])
				}
				slices.Sort(levels)
				return levels
			}
			want := []string(nil)
			if c.state {
				want = []string{"0", "300", "600", "900"}
			}
			for deadline := time.Now().Add(10 * time.Second); want != nil && !slices.Equal(scored(), want) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if got := scored(); !slices.Equal(got, want) {
				t.Errorf("riskflow_scored_total levels %q, want %q", got, want)
			}
			// Likewise every rule of the running pack, in its mode, before its first hit: an
			// alert on a shadow rule that never matches needs the series at 0.
			hitSeries := func() (series []string) {
				for _, m := range seriesOf(t, a.reg, "riskflow_rule_hits_total") {
					l := labelsOf(m)
					series = append(series, l["rule"]+"/"+l["mode"])
				}
				slices.Sort(series)
				return series
			}
			var wantHits []string
			if c.state {
				for _, r := range a.scorer.Rules().Load().Rules {
					wantHits = append(wantHits, r.ID+"/"+string(r.Mode))
				}
				slices.Sort(wantHits)
			}
			if got := hitSeries(); !slices.Equal(got, wantHits) {
				t.Errorf("riskflow_rule_hits_total series %q, want every rule of the pack %q", got, wantHits)
			}
			// The role's loop reports its retries from the start (a first retry is then an
			// increase rate() sees, and the retries panel reads 0, not nothing).
			retries := func() bool {
				return slices.ContainsFunc(seriesOf(t, a.reg, "riskflow_batch_retries_total"),
					func(m *dto.Metric) bool { return labelsOf(m)["loop"] == c.role })
			}
			for deadline := time.Now().Add(10 * time.Second); !retries() && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if !retries() {
				t.Errorf("riskflow_batch_retries_total{loop=%q} not exported", c.role)
			}
			// And every reason its stages dead-letter under, at 0: the first dead letter of a
			// series that appeared with it was no increase (held-out run: one undecodable event
			// on a real scorer, riskflow_dead_lettered_total{reason="decode"} 1 at its first
			// scrape, and rate() of it 0 — the dashboard's dead-letter panel never showed it).
			deadReasons := func() (rs []string) {
				for _, m := range seriesOf(t, a.reg, "riskflow_dead_lettered_total") {
					rs = append(rs, labelsOf(m)["reason"])
				}
				slices.Sort(rs)
				return rs
			}
			wantReasons := slices.Clone(pipeline.ScoreReasons)
			if c.archived {
				wantReasons = slices.Concat(pipeline.ArchiveReasons, pipeline.DecisionReasons)
			}
			slices.Sort(wantReasons)
			wantReasons = slices.Compact(wantReasons)
			for deadline := time.Now().Add(10 * time.Second); !slices.Equal(deadReasons(), wantReasons) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if got := deadReasons(); !slices.Equal(got, wantReasons) {
				t.Errorf("riskflow_dead_lettered_total reasons %q, want %q from the start", got, wantReasons)
			}
		})
	}
}

// riskflow_state_keys has one distinct label value per key kind: a kind added to the state
// without a name here would be reported as kind="".
func TestStateKeysNameEveryKind(t *testing.T) {
	seen := map[string]bool{}
	for k, name := range stateKindNames {
		if name == "" || seen[name] {
			t.Errorf("kind %d: label %q (empty or repeated)", k, name)
		}
		seen[name] = true
	}
}

// A rule failing at run time and a pack file the node does not run show on /metrics
// (riskflow_rule_errors_total, riskflow_rules_file_ok, riskflow_rules_file_problems_total): the
// running pack stays, and before these only a log line said so.
func TestRulesHealthMetrics(t *testing.T) {
	path := filepath.Join(tempDir(t), "rules.yaml")
	pack := "pack: p\nrules:\n  - {id: divides_by_zero, tag: broken, level: 900, when: '1 / (phone_verifies_10m - phone_verifies_10m) > 0'}\n"
	if err := os.WriteFile(path, []byte(pack), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.Scoring.Rules = path
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.rules.Start(ctx); err != nil {
		t.Fatal(err)
	}
	metrics := func() string {
		rec := httptest.NewRecorder()
		a.opsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	// Every rule of the running pack has its series from the start, at 0.
	if body := metrics(); !strings.Contains(body, "riskflow_rules_file_ok 1") || !strings.Contains(body, `riskflow_rule_errors_total{rule="divides_by_zero"} 0`) {
		t.Errorf("metrics of a healthy start:\n%s", body)
	}
	for i := range 3 {
		ev := schemas.VerifyEvent{EventID: fmt.Sprintf("e%d", i), TS: time.Now(), AppID: "a", Flow: schemas.FlowOneClickLogin,
			Phone: "13800138000", IP: netip.MustParseAddr("198.51.100.7"), Outcome: schemas.OutcomeSuccess}
		if _, err := a.scorer.Process(&ev); !errors.Is(err, schemas.ErrPartial) {
			t.Fatalf("event %d: %v, want a rule failure", i, err)
		}
	}
	if err := os.WriteFile(path, []byte("pack: p\nrules:\n  - {id: r, tag: t, level: 300, when: 'nope'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.rules.Tick(ctx)
	a.rules.Tick(ctx)
	body := metrics()
	for _, want := range []string{
		`riskflow_rule_errors_total{rule="divides_by_zero"} 3`,
		"riskflow_rules_file_ok 0",
		`riskflow_rules_file_problems_total{problem="rejected"} 1`,
		`riskflow_rules_file_problems_total{problem="unreadable"} 0`,
		`riskflow_rules_info{pack="p",`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// While the broker is away, the start-up's retry log names kafka.brokers and its address: a new
// user who did not start Kafka reads which setting to check, not only "dial tcp …: connection
// refused".
func TestWaitingForKafkaNamesTheBrokers(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	broker := testaddr.Free(t) // nothing listens there
	cfg.Kafka.Brokers = []string{broker}
	cfg.Ops.Listen = testaddr.Free(t)
	var logs syncbuf.Buffer
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := resolveRoles([]string{"scorer"}, &a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	go func() { _, _, err := a.start(ctx, p, startOptions{}); started <- err }()
	deadline := time.Now().Add(20 * time.Second) // a bound on the test, not a measurement
	for !strings.Contains(logs.String(), "creating topics failing") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-started
	if out := logs.String(); !strings.Contains(out, "creating topics failing") || !strings.Contains(out, "kafka.brokers "+broker+": ") {
		t.Errorf("the retry log does not name kafka.brokers %s:\n%s", broker, out)
	}
}

// The ops port answers what it has no route for as the API does: JSON {"code","content"} with the
// status, a 405 with Allow for its paths, a 404 for a path not in its clean form instead of a
// redirect. It answered ServeMux's plain-text "Method Not Allowed" and "404 page not found", and
// a 307 to /readyz for //readyz.
func TestOpsPortErrorsAreTheAPIs(t *testing.T) {
	a := &app{cfg: Default(), log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(), health: &health{}}
	ops := a.opsHandler()
	apiNode := api.New(api.Config{}, nil, nil)
	do := func(h http.Handler, method, target string) *http.Response {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(method, "http://node"+target, nil)
		h.ServeHTTP(rec, r)
		return rec.Result()
	}
	for _, c := range []struct {
		method, target string
		code           int
		allow, want    string
		sameAsAPI      bool
	}{
		{"POST", "/readyz", 405, "GET, HEAD", "method POST is not allowed on /readyz: use GET, HEAD", true},
		{"DELETE", "/metrics", 405, "GET, HEAD", "method DELETE is not allowed on /metrics: use GET, HEAD", true},
		{"OPTIONS", "/healthz", 405, "GET, HEAD", "method OPTIONS is not allowed on /healthz: use GET, HEAD", true},
		{"GET", "/nope", 404, "", "no route GET /nope (this is the ops port, ops.listen: GET /healthz, /readyz, /metrics;", false},
		{"GET", "//readyz", 404, "", "no route GET //readyz (this is the ops port", false},
		{"GET", "/readyz/", 404, "", "no route GET /readyz/ (this is the ops port", false},
		{"POST", "/v1/risk/check", 404, "", "no route POST /v1/risk/check (this is the ops port, ops.listen: GET /healthz, /readyz, /metrics; the API's routes are on api.listen", false},
		{"GET", "/13812345678", 404, "", `no route GET "/<phone>"`, false},
	} {
		resp := do(ops, c.method, c.target)
		b, _ := io.ReadAll(resp.Body)
		var eb schemas.ErrorBody
		err := json.Unmarshal(b, &eb)
		if resp.StatusCode != c.code || err != nil || eb.Code != c.code || !strings.HasPrefix(eb.Content, c.want) ||
			resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Allow") != c.allow || resp.Header.Get("Location") != "" {
			t.Errorf("%s %s: %d %v %q (Allow %q); want %d, Allow %q, JSON content %q", c.method, c.target, resp.StatusCode, resp.Header, b, resp.Header.Get("Allow"), c.code, c.allow, c.want)
		}
		if strings.Contains(string(b), "5678") {
			t.Errorf("%s %s: the answer shows the number: %s", c.method, c.target, b)
		}
		if c.sameAsAPI {
			ar := do(apiNode, c.method, c.target)
			ab, _ := io.ReadAll(ar.Body)
			if ar.StatusCode != resp.StatusCode || string(ab) != string(b) || ar.Header.Get("Allow") != resp.Header.Get("Allow") {
				t.Errorf("%s %s: the ops port answers %d %q (Allow %q), the API %d %q (Allow %q)", c.method, c.target,
					resp.StatusCode, b, resp.Header.Get("Allow"), ar.StatusCode, ab, ar.Header.Get("Allow"))
			}
		}
	}
	// A CONNECT to a host:port names no path: no route, as an Error (ServeMux answered it with
	// its text/plain "404 page not found").
	rec := httptest.NewRecorder()
	ops.ServeHTTP(rec, httptest.NewRequest(http.MethodConnect, "node:443", nil))
	if ct := rec.Header().Get("Content-Type"); rec.Code != 404 || ct != "application/json" || !strings.HasPrefix(rec.Body.String(), `{"code":404,"content":"no route CONNECT node:443`) {
		t.Errorf("CONNECT node:443: %d %s %q", rec.Code, ct, rec.Body)
	}
	// Its routes answer as before, HEAD too.
	for _, target := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp := do(ops, "HEAD", target); resp.StatusCode != 200 {
			t.Errorf("HEAD %s: %d", target, resp.StatusCode)
		}
	}
}

// While a starting scorer loads its feature snapshot — which is checked against the topic first,
// and waits while the broker cannot answer that — /readyz says so. It said "waiting for Kafka
// (creating the topics, reading its limits)", long after the topics were there.
func TestReadyzNamesTheSnapshotLoad(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	// Once the topics are ready, the end offsets a snapshot is checked against never come: the
	// load waits for them.
	var logged syncbuf.Buffer
	cluster.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !strings.Contains(logged.String(), "kafka ready") {
			return nil, nil, false
		}
		return nil, errors.New("not now"), true
	})
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Kafka.MaxMessageBytes = 1 << 20
	cfg.Ops.Listen = testaddr.Free(t)
	cfg.Scoring.SnapshotDir = tempDir(t)
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := resolveRoles([]string{"scorer"}, &a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	go func() {
		g, _, err := a.start(ctx, p, startOptions{})
		if err == nil {
			err = g.Wait() // the parts, the shutdown snapshot too, are done with the directory
		}
		started <- err
	}()
	defer func() { cancel(); <-started }()
	readyz := func() string {
		resp, err := http.Get("http://" + cfg.Ops.Listen + "/readyz")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(30 * time.Second) // a bound on the test, not a measurement
	body := readyz()
	for !strings.Contains(body, "feature snapshot") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		body = readyz()
	}
	if !strings.Contains(body, "loading the feature snapshot") || !strings.Contains(body, cfg.Scoring.SnapshotDir) || strings.Contains(body, "creating the topics") {
		t.Errorf("/readyz while the snapshot waits to be checked: %s", body)
	}
}

// riskflow_rule_hits_total keeps series for the running pack's rules (in their mode) alone: a
// scorer cycling through packs kept a series for every rule of every pack it ever ran.
func TestRuleHitsSeriesOfTheRunningPackOnly(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PhoneHashKey = "k"
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.obs.scorerStarted(a.scorer.Rules())
	series := func() (out []string) {
		for _, m := range seriesOf(t, a.reg, "riskflow_rule_hits_total") {
			l := labelsOf(m)
			out = append(out, fmt.Sprintf("%s/%s=%g", l["rule"], l["mode"], m.GetCounter().GetValue()))
		}
		slices.Sort(out)
		return out
	}
	for i := range 30 {
		p, err := rules.Compile(fmt.Appendf(nil, "pack: cyc\nrules:\n  - {id: r%d, tag: t, level: 300, mode: shadow, when: 'phone_verifies_10m > 1'}\n"+
			"  - {id: kept, tag: k, level: 300, when: 'phone_verifies_10m > 2'}\n", i), a.scorer.Env())
		if err != nil {
			t.Fatal(err)
		}
		a.scorer.SetPack(p)
		a.obs.RuleHits([]schemas.RuleHit{{Rule: fmt.Sprintf("r%d", i), Mode: "shadow"}, {Rule: "kept", Mode: "enforce"}})
		series()
	}
	if got, want := series(), []string{"kept/enforce=30", "r29/shadow=1"}; !slices.Equal(got, want) {
		t.Errorf("riskflow_rule_hits_total after 30 packs: %q, want %q", got, want)
	}
}

// seriesOf returns the series of the metric name that g gathers (none if it has no such metric).
func seriesOf(t *testing.T, g prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

// labelsOf returns m's labels by name.
func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}
