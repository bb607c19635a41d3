//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/backtest"
	"github.com/riskflow/riskflow/scoring/console"
	"github.com/riskflow/riskflow/scoring/console/consoletest"
)

// consoleNode is one node's console served over TLS (the session cookie is Secure), and the app
// behind it.
type consoleNode struct {
	a    *app
	base string
	hc   *http.Client
}

// login opens a browser on n's console signed in as who, with the session's CSRF token set.
func (n *consoleNode) login(t testing.TB, who, secret string) *consoletest.Browser {
	t.Helper()
	b := consoletest.New(t, n.base, n.hc)
	b.CSRF = b.Login(who, secret)
	return b
}

// slowBacktest reports progress, then runs until cancelled.
type slowBacktest struct{ started chan struct{} }

func (s *slowBacktest) Backtest(ctx context.Context, draft []byte, from, to time.Time, progress func(backtest.Progress)) (*backtest.Report, error) {
	progress(backtest.Progress{Read: 4242, Compared: 4000, Changed: 3, At: from.Add(to.Sub(from) / 2)})
	close(s.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

func testWorld(t testing.TB) (cfg Config, db string) {
	t.Helper()
	_, brokers := testServices()
	chAddr, db, id, _ := throwawayDatabase(t, "riskflow_nodes")
	dir := tempDir(t)
	pack := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(pack, packs.Default(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = Default()
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = chAddr, db
	cfg.Kafka.Brokers = strings.Split(brokers, ",")
	cfg.Kafka.EventsTopic, cfg.Kafka.ScoresTopic, cfg.Kafka.DLQTopic = "nodes."+id+".events", "nodes."+id+".scores", "nodes."+id+".dlq"
	cfg.Kafka.DecisionsTopic, cfg.Kafka.ListsTopic = "nodes."+id+".decisions", "nodes."+id+".lists"
	cfg.Scoring.PhoneHashKey, cfg.Scoring.Rules = "nodes-test-key", pack
	cfg.API.AdminKeys = map[string]string{"alice": "a-secret", "bob": "b-secret"}
	return cfg, db
}

// startConsoleNode builds a node's app and its console (with bt as its backtester when not nil)
// as cmd/riskflow does, and serves the console.
func startConsoleNode(t *testing.T, ctx context.Context, cfg Config, bt console.Backtester) *consoleNode {
	t.Helper()
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.rules.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deps := a.consoleDeps()
	if bt != nil {
		deps.Backtest = bt
	}
	c, err := console.New(deps, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(c)
	t.Cleanup(ts.Close)
	return &consoleNode{a: a, base: ts.URL, hc: ts.Client()}
}

// Two nodes serving the console on one ClickHouse, as behind a load balancer: a draft saved
// through node A opens through node B, a promotion asked on A is approved (and promoted) on B,
// and a backtest running on A is listed on B as running there, with A's progress, and cancelled
// from B.
func TestConsoleStateAcrossNodes(t *testing.T) {
	cfg, _ := testWorld(t)
	cfg.API.ConsoleApprovals = 2
	ctx := context.Background()
	bt := &slowBacktest{started: make(chan struct{})}
	nodeA := startConsoleNode(t, ctx, cfg, bt)
	nodeB := startConsoleNode(t, ctx, cfg, nil)
	if nodeA.a == nil || nodeB.a == nil {
		t.Fatal("no nodes")
	}

	aliceA, aliceB := nodeA.login(t, "alice", "a-secret"), nodeB.login(t, "alice", "a-secret")
	draft := strings.Replace(string(packs.Default()), "pack: default", "pack: default # shared draft", 1)
	if draft == string(packs.Default()) {
		t.Fatal("the default pack no longer starts with `pack: default`")
	}
	if code, body, _ := aliceA.Post("/console/rules/draft", url.Values{"action": {"lint"}, "draft": {draft}}); code != http.StatusOK {
		t.Fatalf("lint on A: %d\n%s", code, body)
	}
	if _, body, _ := aliceB.Get("/console/rules/draft"); !strings.Contains(body, "# shared draft") {
		t.Error("the draft alice saved on A does not open on B")
	}

	// Asked on A, approved on B: B promotes, and the pack's version is the draft's.
	code, _, h := aliceA.Post("/console/rules/draft", url.Values{"action": {"promote"}, "draft": {draft}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "requested+by+alice") {
		t.Fatalf("request on A: %d %s", code, h.Get("Location"))
	}
	bobB := nodeB.login(t, "bob", "b-secret")
	_, body, _ := bobB.Get("/console/rules")
	m := regexp.MustCompile(`href="(/console/rules/pending/[0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the request asked on A is not listed on B:\n%s", body)
	}
	code, _, h = bobB.Post(m[1], url.Values{"decision": {"approve"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "approved+by+bob") {
		t.Fatalf("approval on B: %d %s", code, h.Get("Location"))
	}
	cur := nodeB.a.rules.Current()
	if cur.Content == nil || !strings.Contains(string(cur.Content), "# shared draft") || cur.LoadedBy == "" || !strings.HasPrefix(cur.LoadedBy, "console:alice,approved-by:bob") {
		t.Errorf("after the approval on B, B runs %s loaded by %q", cur.Version, cur.LoadedBy)
	}
	nodeA.a.rules.Tick(ctx) // A picks the promoted pack up from the shared pack file
	if v := nodeA.a.rules.Current().Version; v != cur.Version {
		t.Errorf("A runs %s, B %s", v, cur.Version)
	}
	if code, _, _ := aliceA.Get(m[1]); code != http.StatusNotFound {
		t.Errorf("the request approved on B is still open on A: %d", code)
	}

	// Started on A, shown and cancelled on B.
	code, _, h = aliceA.Post("/console/backtests", url.Values{"hours": {"6"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/backtests/") {
		t.Fatalf("backtest on A: %d %s", code, h.Get("Location"))
	}
	job := h.Get("Location")
	<-bt.started
	var p struct {
		Read  int64  `json:"read"`
		Node  string `json:"node"`
		Here  bool   `json:"here"`
		Done  bool   `json:"done"`
		Error string `json:"error"`
	}
	eventually(t, "B shows A's progress", 20*time.Second, func() error {
		_, body, _ := bobB.Get(job + "/progress")
		if err := json.Unmarshal([]byte(body), &p); err != nil || p.Read != 4242 {
			return fmt.Errorf("progress on B: %s", body)
		}
		return nil
	})
	if p.Here || p.Done || p.Node == "" {
		t.Errorf("B's view of A's run: %+v", p)
	}
	if _, body, _ := bobB.Get(job); !strings.Contains(body, `id="elsewhere"`) || !strings.Contains(body, `id="cancel"`) {
		t.Errorf("B's page of A's run says nothing of where it runs, or has no cancel:\n%s", body)
	}
	if _, body, _ := bobB.Get("/console/rules/draft"); !strings.Contains(body, job) {
		t.Error("B does not list A's run")
	}
	if code, _, h := bobB.Post(job+"/cancel", url.Values{}); code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "Cancel+requested") {
		t.Fatalf("cancel on B: %d %s", code, h.Get("Location"))
	}
	eventually(t, "A's run cancelled from B, as B sees it", 20*time.Second, func() error {
		_, body, _ := bobB.Get(job + "/progress")
		if err := json.Unmarshal([]byte(body), &p); err != nil || !p.Done {
			return fmt.Errorf("progress on B: %s", body)
		}
		return nil
	})
	if !strings.Contains(p.Error, "cancelled by bob") {
		t.Errorf("after the cancel on B: %+v", p)
	}
}

// eventually retries f until it succeeds, at most d.
func eventually(t testing.TB, what string, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two nodes on the real broker add list entries at the same time through the console's lists:
// every entry is on both nodes and blocks on both, without a restart. (Two nodes rewriting the
// shared lists file, as before the lists topic, lost 17 of 40 such entries.)
func TestConsoleListsAcrossNodes(t *testing.T) {
	cfg, _ := testWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	defer func() { cancel(); g.Wait() }()
	var nodes []*app
	for range 2 {
		a, err := newApp(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.prepareKafka(ctx); err != nil {
			t.Fatal(err)
		}
		a.startLists(ctx, &g)
		nodes = append(nodes, a)
	}
	var wg sync.WaitGroup
	for n, a := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &consoleLists{a: a}
			for i := range 20 {
				e := console.ListEntry{Action: "block", Kind: console.KindIP, Value: fmt.Sprintf("198.51.%d.%d", 100+n, i), Who: fmt.Sprint("admin", n), At: time.Now().UTC(), Why: "farm"}
				if err := l.Add(ctx, e); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for n, a := range nodes {
		eventually(t, fmt.Sprint("node ", n, " has every entry"), 20*time.Second, func() error {
			es, err := (&consoleLists{a: a}).Entries(ctx)
			if err != nil || len(es) != 40 {
				return fmt.Errorf("%d entries (%v)", len(es), err)
			}
			return nil
		})
		for _, ip := range []string{"198.51.100.19", "198.51.101.0"} {
			rc, err := a.scorer.Check(&schemas.CheckRequest{Phone: "13800138000", IP: netip.MustParseAddr(ip), AppID: "a", Carrier: "CM"})
			if err != nil || rc.Score != 900 {
				t.Errorf("node %d, %s: score %d (%v), want 900", n, ip, rc.Score, err)
			}
		}
	}
	// Removed on node 0 (a tombstone on the topic): gone from node 1 too.
	es, err := (&consoleLists{a: nodes[0]}).Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gone console.ListEntry
	for _, e := range es {
		if e.Value == "198.51.101.0" {
			gone = e
		}
	}
	if err := (&consoleLists{a: nodes[0]}).Remove(ctx, gone.ID, "admin0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removal reaches node 1", 20*time.Second, func() error {
		rc, err := nodes[1].scorer.Check(&schemas.CheckRequest{Phone: "13800138000", IP: netip.MustParseAddr("198.51.101.0"), AppID: "a", Carrier: "CM"})
		if es, _ := (&consoleLists{a: nodes[1]}).Entries(ctx); err != nil || rc.Score != 0 || len(es) != 39 {
			return fmt.Errorf("score %d, %d entries (%v)", rc.Score, len(es), err)
		}
		return nil
	})
}
