//go:build integration

package grafana

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/twmb/franz-go/pkg/kfake"

	promrules "github.com/riskflow/riskflow/deploy/prometheus"
	"github.com/riskflow/riskflow/internal/testaddr"
)

// Every metric a dashboard panel or an alert names is on the /metrics of a running riskflow:
// the test builds the binary and starts each role as its own process on an embedded
// Kafka-protocol broker — an api node (/metrics on api.listen), a scorer and an archiver on
// the real ClickHouse (RISKFLOW_CLICKHOUSE_ADDR, default 127.0.0.1:19000), both with
// ops.listen, and a second archiver whose ClickHouse goes away once it reached it, so the failure metrics
// (retries, the open breaker, a stalled loop) exist too — sends checks, events and one
// undecodable message, and scrapes them all until every name has appeared. The Go and process
// collectors' metrics must be on every process.
func TestMetricsReferencedExist(t *testing.T) {
	refs := referencedMetrics(t)
	// And every label value a matcher asks for (route="check", state="open", score=~"600|900"):
	// a value no process exports matches nothing, and the panel or alert stays empty.
	for k, where := range referencedLabelValues(t) {
		refs[k] = append(refs[k], where...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	bin := filepath.Join(t.TempDir(), "riskflow")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/riskflow")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]

	chAddr := os.Getenv("RISKFLOW_CLICKHOUSE_ADDR")
	if chAddr == "" {
		chAddr = "127.0.0.1:19000"
	}
	db := fmt.Sprintf("riskflow_metrics_%d", time.Now().UnixNano()%1e9)
	defer dropDatabase(db)
	defer dropDatabase(db + "_down")
	down := startCutProxy(t, chAddr)

	common := []string{"--set", "kafka.brokers=" + broker, "--set", "scoring.phone_hash_key=metrics-test-key",
		"--set", "log.level=warn", "--set", "kafka.stall_after=1s"}
	apiAddr := testaddr.Free(t)
	pack, err := filepath.Abs(filepath.Join("..", "..", "rules", "packs", "default", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	roles := []*process{
		{role: "api", metrics: apiAddr, args: []string{"serve", "--roles", "api", "--listen", apiAddr, "--set", "api.keys=app1:secret1"}},
		// With a pack file (riskflow_rules_file_ok exists only then): the default pack's, read only.
		{role: "scorer", args: []string{"serve", "--roles", "scorer", "--set", "scoring.snapshot_dir=" + t.TempDir(),
			"--set", "scoring.rules=" + pack}},
		{role: "archiver", args: []string{"serve", "--roles", "archiver", "--set", "clickhouse.addr=" + chAddr, "--set", "clickhouse.database=" + db}},
		// Through a proxy the test cuts once the archiver is ready: an archiver joins its consumer
		// groups only after its ClickHouse answered, so one that never reached it opens no breaker.
		{role: "archiver (ClickHouse down)", args: []string{"serve", "--roles", "archiver", "--set", "clickhouse.addr=" + down.addr(),
			"--set", "clickhouse.database=" + db + "_down",
			"--set", "kafka.archiver_group=riskflow-archiver-down", "--set", "clickhouse.breaker_open_for=1s", "--set", "clickhouse.flush_interval=100ms"}},
	}
	for _, p := range roles {
		if p.metrics == "" {
			p.metrics = testaddr.Free(t)
			p.args = append(p.args, "--set", "ops.listen="+p.metrics)
		}
		p.start(ctx, t, bin, append(p.args, common...))
	}
	for _, p := range roles {
		p.waitHealthy(ctx, t)
	}
	roles[3].waitReady(ctx, t) // it reached ClickHouse and joined its groups: now it loses it
	down.cut()
	// The API's address answers /healthz while the process waits for the broker; it takes
	// traffic once /readyz says so.
	roles[0].waitReady(ctx, t)
	// Probed once the API serves, as a kubelet keeps doing: /healthz answered while the process
	// waited for the broker is the start-up handler's, which counts no request, so the route an
	// alert's exclusion names (route!~"healthz|readyz") showed up or not by the timing of the start.
	roles[0].waitHealthy(ctx, t)

	// Traffic: events through the API (the scorer scores them, the archivers store them), checks,
	// a refused request, and an undecodable message for the dead-letter topic.
	now := time.Now().UTC()
	var events []string
	for i := range 5 {
		events = append(events, fmt.Sprintf(`{"event_id":"m-%d","ts":%q,"app_id":"app1","flow":"one_click_login","phone":"1380013%04d","ip":"117.136.1.%d","carrier":"CM","outcome":"success"}`,
			i, now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339), i, i+1))
	}
	// One from a datacenter address, so that rules hit (riskflow_rule_hits_total).
	events = append(events, fmt.Sprintf(`{"event_id":"m-dc","ts":%q,"app_id":"app1","flow":"one_click_login","phone":"13800139999","ip":"47.92.10.20","carrier":"CM","outcome":"success"}`, now.Format(time.RFC3339)))
	post(ctx, t, apiAddr, "/v1/events", "["+strings.Join(events, ",")+"]", http.StatusAccepted)
	for i := range 3 {
		post(ctx, t, apiAddr, "/v1/risk/check", fmt.Sprintf(`{"phone":"1380013%04d","ip":"117.136.1.9","app_id":"app1"}`, i), http.StatusOK)
	}
	post(ctx, t, apiAddr, "/v1/risk/check", `{"phone":"12","ip":"x","app_id":"app1"}`, http.StatusBadRequest)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	produce := exec.CommandContext(ctx, bin, append(append([]string{"produce", "--raw"}, common...), bad)...)
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("riskflow produce --raw: %v\n%s", err, out)
	}

	// Scrape until every referenced metric has shown up somewhere.
	var missing []string
	found := map[string][]string{} // metric → roles
	deadline := time.Now().Add(90 * time.Second)
	for {
		found = map[string][]string{}
		for _, p := range roles {
			for name := range scrape(ctx, p.metrics) {
				found[name] = append(found[name], p.role)
			}
		}
		missing = missing[:0]
		for m := range refs {
			if len(found[m]) == 0 {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	// The processes did their jobs: the archiver stored the events in the real ClickHouse, the
	// other one opened its breaker.
	for _, w := range []struct {
		p      *process
		sample string
		ok     func(float64) bool
	}{
		{roles[2], "riskflow_archived_total", func(v float64) bool { return v >= 5 }},
		{roles[3], `riskflow_breaker_state{breaker="archiver",state="open"}`, func(v float64) bool { return v == 1 }},
		{roles[1], `riskflow_scored_total{score="0"}`, func(v float64) bool { return v >= 1 }},
	} {
		var v float64
		for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			if v = sampleValue(ctx, w.p.metrics, w.sample); w.ok(v) {
				break
			}
		}
		if !w.ok(v) {
			t.Errorf("%s: %s = %v\n%s", w.p.role, w.sample, v, w.p.log.String())
		}
	}

	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is used by %s but no riskflow process exposes it", m, strings.Join(refs[m], "; "))
	}
	names := make([]string, 0, len(refs))
	for m := range refs {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		if slices.Contains(promrules.CollectorMetrics, m) && len(found[m]) != len(roles) {
			t.Errorf("%s is on %q only; every process should expose it", m, found[m])
		}
		t.Logf("%-45s %s", m, strings.Join(found[m], ", "))
	}
	for _, p := range roles {
		p.stop(t)
	}
}

// literalAlternatives matches a regexp matcher's value that is a list of literal values
// (600|900); other regexps (5..) are not checked value by value.
var literalAlternatives = regexp.MustCompile(`^[A-Za-z0-9_:-]+(\|[A-Za-z0-9_:-]+)*$`)

// referencedLabelValues maps "metric|label=value" to where a matcher of the dashboards or
// alerts asks for it, and "metric|label" to where an aggregation keeps label (`by`); job and
// instance are the scrape's, not riskflow's.
func referencedLabelValues(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(expr, where string) {
		e, err := parser.ParseExpr(strings.ReplaceAll(expr, "$__rate_interval", "1m"))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if agg, ok := n.(*parser.AggregateExpr); ok && !agg.Without {
				// Every label a `by` keeps must be one the metrics under it have: a label they
				// lack (renamed in the code) folds every series into one, and a legend or an
				// alert's $labels that shows it is left empty.
				parser.Inspect(agg.Expr, func(n parser.Node, _ []parser.Node) error {
					if vs, ok := n.(*parser.VectorSelector); ok {
						for _, g := range agg.Grouping {
							if g != "le" && g != "job" && g != "instance" {
								k := vs.Name + "|" + g
								out[k] = append(out[k], where)
							}
						}
					}
					return nil
				})
				return nil
			}
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" || m.Name == "job" || m.Name == "instance" {
					continue
				}
				var values []string
				// The values an exclusion names too (route!~"healthz|readyz", loop!="scorer"): one
				// no process exports excludes nothing, and the alert counts what it meant to leave
				// out (a renamed probe route's 503s in RiskflowAPIErrors).
				switch {
				case m.Type == labels.MatchEqual || m.Type == labels.MatchNotEqual:
					values = []string{m.Value}
				case (m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp) && literalAlternatives.MatchString(m.Value):
					values = strings.Split(m.Value, "|")
				}
				for _, v := range values {
					k := vs.Name + "|" + m.Name + "=" + v
					out[k] = append(out[k], where)
				}
			}
			return nil
		})
	}
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Expr != "" {
			add(q.Expr, "dashboard "+q.Name())
		}
	}
	f, err := promrules.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			add(r.Expr, "alert "+r.Alert)
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d label values referenced: %v", len(out), out)
	}
	return out
}

// referencedMetrics maps each metric the dashboards and alerts name to where.
func referencedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		for _, m := range promrules.MetricNames(q.Expr) {
			refs[m] = append(refs[m], "dashboard "+q.Name())
		}
	}
	f, err := promrules.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			for _, m := range promrules.MetricNames(r.Expr) {
				refs[m] = append(refs[m], "alert "+r.Alert)
			}
		}
	}
	if len(refs) < 15 {
		t.Fatalf("only %d metrics referenced", len(refs))
	}
	return refs
}

type process struct {
	role, metrics string
	args          []string
	cmd           *exec.Cmd
	log           bytes.Buffer
	done          chan struct{}
}

func (p *process) start(ctx context.Context, t *testing.T, bin string, args []string) {
	t.Helper()
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", p.role, err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
}

func (p *process) waitHealthy(ctx context.Context, t *testing.T) { p.wait200(ctx, t, "/healthz") }

func (p *process) waitReady(ctx context.Context, t *testing.T) { p.wait200(ctx, t, "/readyz") }

// wait200 waits up to a minute for path to answer 200 on the process's metrics address.
func (p *process) wait200(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %s", p.role, p.log.String())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.metrics+path, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %s 200 on %s: %s", p.role, path, p.metrics, p.log.String())
}

func (p *process) stop(t *testing.T) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Logf("%s did not stop on SIGTERM in 15 s", p.role)
	}
}

var labelPairRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// scrape returns the sample names on addr's /metrics, each label value of a sample as
// "name|label=value" and each label name as "name|label" (nil when it does not answer).
func scrape(ctx context.Context, addr string) map[string]bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		out[name] = true
		if i, j := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}'); i >= 0 && j > i {
			for _, kv := range labelPairRE.FindAllStringSubmatch(line[i+1:j], -1) {
				out[name+"|"+kv[1]+"="+kv[2]] = true
				out[name+"|"+kv[1]] = true
			}
		}
	}
	return out
}

// sampleValue is the value of one sample (name with its labels, as exposed) on addr's /metrics,
// -1 when it is not there.
func sampleValue(ctx context.Context, addr, sample string) float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

func post(ctx context.Context, t *testing.T, addr, path, body string, want int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	req.SetBasicAuth("app1", "secret1")
	req.Header.Set("Content-Type", "application/json")
	for attempt := 0; ; attempt++ {
		resp, err := http.DefaultClient.Do(req.Clone(ctx))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			// 503 while the replica catches up; anything else is wrong
			if resp.StatusCode != http.StatusServiceUnavailable || attempt > 100 {
				t.Fatalf("POST %s: %d %s, want %d", path, resp.StatusCode, b, want)
			}
		} else if attempt > 100 {
			t.Fatalf("POST %s: %v", path, err)
		}
		req.Body = io.NopCloser(strings.NewReader(body))
		time.Sleep(100 * time.Millisecond)
	}
}

func dropDatabase(db string) {
	addr := os.Getenv("RISKFLOW_CLICKHOUSE_HTTP")
	if addr == "" {
		addr = "127.0.0.1:18123"
	}
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("DROP DATABASE IF EXISTS "+db))
	if err == nil {
		resp.Body.Close()
	}
}

// cutProxy forwards TCP connections to a target until cut, which closes its listener and every
// connection it forwards: a server that was reached and then went away.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // cut
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
