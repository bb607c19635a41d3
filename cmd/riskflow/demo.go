package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/loadgen"
	"github.com/riskflow/riskflow/schemas"
)

// cmdDemo starts riskflow — on an embedded broker (--mode dev, the default), or on the configured
// Kafka and ClickHouse only when told to (--mode real) — drives it with labelled traffic including
// attacks, and prints what it caught.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	var cf commonFlags
	cf.register(fs)
	lf := loadgenFlags{rate: 30, duration: 30 * time.Second, attack: 0.15, largeApp: "bigapp-gd", largeShare: 0.5}
	lf.register(fs, "how long the demo runs (wall clock); event time covers --duration × --speedup")
	speedup := fs.Float64("speedup", 20, "event time runs this many times faster than the clock: --duration 30s plays 10 min of traffic")
	mode := fs.String("mode", "dev", "dev (embedded broker, nothing written elsewhere) or real (the configured kafka.brokers, and clickhouse.addr when set)")
	keepTopics := fs.Bool("keep", false, "--mode real: keep the run's own topics (deleted when the demo ends), as bench --keep keeps its own")
	deprecatedFlag(fs, "keep-topics", "keep", stderr)
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	// Told to stop (Ctrl-C) while starting: a clean stop, as serve's and dev's, saying so.
	stoppedEarly := func(err error) error {
		if err != nil && ctx.Err() != nil {
			fmt.Fprintln(stdout, "demo: stopped (interrupted) before any traffic was sent")
			return nil
		}
		return err
	}
	switch {
	case *mode != "real" && *mode != "dev":
		return usagef("--mode: %q is not dev or real", *mode)
	case !(*speedup > 0) || math.IsInf(*speedup, 1):
		return usagef("--speedup: %v is not a positive factor", *speedup)
	}
	if err := lf.check(fs); err != nil {
		return err
	}
	if float64(lf.duration)**speedup >= math.MaxInt64 {
		return usagef("--duration %v × --speedup %v: more event time than riskflow can count (about 290 years)", lf.duration, *speedup)
	}
	cfg, err := cf.load(func(c *Config) {
		if len(c.API.Keys) == 0 {
			c.API.Keys = map[string]string{devAppKey: devSecret}
		}
		if c.Scoring.PhoneHashKey == "" {
			c.Scoring.PhoneHashKey = devHashKey
		}
		c.Scoring.Replay = false
		// No feature snapshots: the run's topics are its own and gone when it ends, and a
		// deployment's configuration names the nodes' snapshot directory, where each run left
		// its snapshot, the .prev and the lock of a topic that no longer exists.
		c.Scoring.SnapshotDir = ""
		c.Log = cf.quietLog(c.Log)
	})
	if err != nil {
		return err
	}
	// The traffic's settings are checked before anything starts: a mistyped flag is a usage
	// error at once, not after a broker, the scorer and the API were brought up.
	key, secret := firstKey(cfg.API.Keys)
	wall := lf.duration
	lf.duration = time.Duration(float64(wall) * *speedup)
	lc, err := lf.config([]string{key})
	if err != nil {
		return err
	}
	if lf.start == "" {
		lc.Start = time.Now().UTC().Add(-lc.Duration) // event time ends at about now
	}
	gen, err := loadgen.New(lc)
	if err != nil {
		return usageError{err}
	}
	log := newLogger(cfg.Log, stderr)
	real := *mode == "real"
	if real && !reachable(cfg.Kafka.Brokers[0]) {
		return fmt.Errorf("demo --mode real: Kafka at %s (kafka.brokers) does not answer (deploy/local/up, or --mode dev)", cfg.Kafka.Brokers[0])
	}
	if !real {
		cfg.ClickHouse.Addr = "" // dev mode writes nowhere but the embedded broker
	}
	// Fresh topics and groups per run — every one of them: earlier runs do not mix in, and the
	// demo's verdicts and list reads stay out of a real deployment's decision log
	// (kafka.decisions_topic, whose archivers would store them, and whose group the demo's
	// archiver joined) and lists. All on kafka.brokers, where the demo creates them.
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	topics := demoTopics(&cfg, run)
	if real {
		ch := " (ClickHouse off: clickhouse.addr is not set)"
		if cfg.ClickHouse.Addr != "" {
			ch = fmt.Sprintf(", and ClickHouse at %s, database %s", cfg.ClickHouse.Addr, cfg.ClickHouse.Database)
		}
		fmt.Fprintf(stdout, "demo: --mode real: writing to Kafka at %s (topics %s)%s\n", strings.Join(cfg.Kafka.Brokers, ","), strings.Join(topics, ", "), ch)
	} else {
		stopBroker, err := embeddedBroker(&cfg)
		if err != nil {
			return stoppedEarly(fmt.Errorf("demo: %w", err))
		}
		defer stopBroker()
		fmt.Fprintln(stdout, "demo: --mode dev: embedded broker, nothing written elsewhere (--mode real uses the configured Kafka and ClickHouse)")
	}

	a, err := newApp(cfg, log)
	if err != nil {
		return stoppedEarly(err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	listening := make(chan string, 1)
	g, gctx, err := a.startAllRoles(rctx, "127.0.0.1:0", listening)
	if err != nil {
		return stoppedEarly(fmt.Errorf("demo: %w", err))
	}
	if real {
		// The run's topics go once its nodes have stopped, also when the run fails.
		defer func() {
			stop()
			_ = g.Wait()
			if *keepTopics {
				fmt.Fprintf(stdout, "demo: kept its topics (--keep): %s\n", strings.Join(topics, ", "))
				return
			}
			if err := deleteTopics(context.WithoutCancel(ctx), a.kc, topics); err != nil {
				fmt.Fprintf(stderr, "demo: could not delete its topics %s: %v\n", strings.Join(topics, ", "), err)
				return
			}
			fmt.Fprintf(stdout, "demo: deleted its topics (%s); --keep keeps them\n", strings.Join(topics, ", "))
		}()
	}
	var addr string
	select {
	case addr = <-listening:
	case <-gctx.Done():
		return stoppedEarly(g.Wait())
	}
	// Probe a node that is ready, as a verify service behind a load balancer does: started at
	// once, the first checks met "not ready: feature replica is catching up" (503s counted as
	// errors of the run). The archiver's readiness is not the checks' (ClickHouse may be away).
	if err := waitReady(gctx, a, historyChecks...); err != nil {
		return stoppedEarly(fmt.Errorf("demo: %w", err))
	}

	var mu sync.Mutex // guards labels and sample, written by the sender, read by the prober
	labels := map[string]string{}
	sub := map[string]string{} // event id → a row of its own inside benign (the large app)
	var sample []schemas.VerifyEvent
	w := consumers.NewWriter(a.kc, cfg.Kafka.EventsTopic)
	defer w.Close()
	pub := &pipeline.Publisher{W: w, Hasher: a.hasher}
	fmt.Fprintf(stdout, "demo: %s of traffic (~%.0f events/s, %.0f%% from attack scenarios) played in %s; /v1/risk/check probed alongside\n", lc.Duration, lc.Rate, gen.Config().AttackShare*100, wall)

	probe := newProber("http://"+addr+"/v1/risk/check", key, secret)
	pctx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		probe.run(pctx, func() []schemas.VerifyEvent {
			mu.Lock()
			defer mu.Unlock()
			return sample[:len(sample):len(sample)] // elements below len are never written again
		})
	}()

	err = sendLoad(ctx, &labelledGen{gen: gen, onEvent: func(l loadgen.Labeled) {
		mu.Lock()
		labels[l.Event.EventID] = l.Label
		if !l.Attack && lc.LargeApp != "" && l.Event.AppID == lc.LargeApp {
			sub[l.Event.EventID] = l.Label + ": large app " + lc.LargeApp
		}
		if len(sample) < 2000 && l.Event.AppID == key { // the prober's key may only check its own app
			sample = append(sample, l.Event)
		}
		mu.Unlock()
	}}, *speedup, nil, io.Discard, pub.Publish)
	stopProbe()
	<-probeDone
	if err != nil {
		return err
	}

	// Collect the verdicts from risk.scores. Told to stop (Ctrl-C) before or during that, the
	// demo reports on the events scored by then, read within a few seconds (a second Ctrl-C ends
	// it at once), as loadgen and serve stop: exit 0, saying what was done.
	cctx, within := ctx, 60*time.Second
	if ctx.Err() != nil {
		cctx, within = context.WithoutCancel(ctx), demoStopGrace
	}
	verdicts, err := collectScores(cctx, a.kc, cfg.Kafka.ScoresTopic, len(labels), within)
	if err != nil && ctx.Err() == nil {
		return err
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stdout, "\ndemo: stopped (interrupted) with %d of the %d events sent scored: the report counts those\n", len(verdicts), len(labels))
		maps.DeleteFunc(labels, func(id, _ string) bool { _, ok := verdicts[id]; return !ok })
		report(stdout, labels, sub, verdicts, probe)
		return nil
	}
	report(stdout, labels, sub, verdicts, probe)
	if cfg.ClickHouse.Addr != "" {
		analystQueries(ctx, stdout, a, len(verdicts))
	} else {
		fmt.Fprintln(stdout, "\nanalyst queries: skipped (no ClickHouse: --mode real with clickhouse.addr set runs them)")
	}
	stop()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// demoStopGrace is how long a demo told to stop still reads the verdicts of the events it sent.
const demoStopGrace = 5 * time.Second

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// labelledGen lets sendLoad drive a generator while the demo keeps the labels.
type labelledGen struct {
	gen     *loadgen.Generator
	onEvent func(loadgen.Labeled)
}

func (l *labelledGen) Next() (loadgen.Labeled, bool) {
	ev, ok := l.gen.Next()
	if ok {
		l.onEvent(ev)
	}
	return ev, ok
}

func (l *labelledGen) Config() loadgen.Config { return l.gen.Config() }

// verdict is one scored event as seen on risk.scores.
type verdict struct {
	score int
	tags  []string
}

func collectScores(ctx context.Context, kc consumers.Config, topic string, want int, within time.Duration) (map[string]verdict, error) {
	var mu sync.Mutex
	out := make(map[string]verdict, want)
	tctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tail := consumers.NewTail(kc, topic, time.Time{}, func(m kafka.Message) {
		r, err := schemas.DecodeScoreRecord(m.Value)
		if err != nil {
			return
		}
		mu.Lock()
		out[r.EventID] = verdict{score: r.Score, tags: r.Tags}
		mu.Unlock()
	}, slog.New(slog.DiscardHandler))
	go tail.Follow(tctx)
	for {
		mu.Lock()
		n := len(out)
		mu.Unlock()
		if n >= want {
			break
		}
		select {
		case <-tctx.Done():
			if ctx.Err() != nil { // told to stop (Ctrl-C), not the wait run out
				return out, fmt.Errorf("demo: stopped with %d of %d events scored", n, want)
			}
			return out, fmt.Errorf("demo: only %d of %d events were scored within %s", n, want, within)
		case <-time.After(50 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(out), nil
}

// report prints detection per label; sub puts some events in a row of their own as well (shown
// after their label's row, e.g. the large app's part of benign).
func report(w io.Writer, labels, sub map[string]string, verdicts map[string]verdict, p *prober) {
	type row struct {
		events, flagged, stepUp int
		tags                    map[string]int
	}
	rows := map[string]*row{}
	add := func(label string, v verdict) {
		r := rows[label]
		if r == nil {
			r = &row{tags: map[string]int{}}
			rows[label] = r
		}
		r.events++
		if v.score >= schemas.ScoreObserve {
			r.flagged++
		}
		if v.score >= schemas.ScoreStepUp {
			r.stepUp++
		}
		for _, t := range v.tags {
			r.tags[t]++
		}
	}
	for id, label := range labels {
		add(label, verdicts[id])
		if s, ok := sub[id]; ok {
			add(s, verdicts[id])
		}
	}
	names := make([]string, 0, len(rows))
	for n := range rows {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\ndetection per scenario (%d events scored):\n", len(verdicts))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  scenario\tevents\tscore ≥ 300\tscore ≥ 600\ttop tags")
	for _, n := range names {
		r := rows[n]
		if _, inner, ok := strings.Cut(n, ": "); ok {
			n = "  └ " + inner
		}
		fmt.Fprintf(tw, "  %s\t%d\t%.1f%%\t%.1f%%\t%s\n", n, r.events, pct(r.flagged, r.events), pct(r.stepUp, r.events), topTags(r.tags, 3))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n/v1/risk/check during the run: %s\n", p.summary())
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func topTags(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	var parts []string
	for i := 0; i < len(all) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%s %d", all[i].k, all[i].v))
	}
	return strings.Join(parts, ", ")
}

// prober calls /v1/risk/check at a steady rate with recent events and records latency.
type prober struct {
	url, key, secret string
	client           *http.Client
	lats             []time.Duration
	errs             int
}

func newProber(url, key, secret string) *prober {
	return &prober{url: url, key: key, secret: secret, client: &http.Client{Timeout: time.Second}}
}

func (p *prober) run(ctx context.Context, sample func() []schemas.VerifyEvent) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	i := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		evs := sample()
		if len(evs) == 0 {
			continue
		}
		ev := evs[i%len(evs)]
		i++
		body := fmt.Sprintf(`{"phone":%q,"ip":%q,"app_id":%q,"carrier":%q,"device_id":%q}`, ev.Phone, ev.IP.String(), ev.AppID, ev.Carrier, ev.DeviceID)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.url, strings.NewReader(body))
		req.SetBasicAuth(p.key, p.secret)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := p.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				p.errs++
			}
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			p.errs++
			continue
		}
		p.lats = append(p.lats, time.Since(start))
	}
}

func (p *prober) summary() string {
	if len(p.lats) == 0 {
		return fmt.Sprintf("no successful calls (%d errors)", p.errs)
	}
	l := slices.Clone(p.lats)
	slices.Sort(l)
	q := func(f float64) time.Duration { return l[int(f*float64(len(l)-1))].Round(time.Microsecond) }
	return fmt.Sprintf("%d calls, p50 %s, p99 %s, max %s, %d errors", len(l), q(0.5), q(0.99), l[len(l)-1].Round(time.Microsecond), p.errs)
}

// analystQueries runs a few of the analyst pack's questions over the last 10 minutes of the
// database, once this run's archiver has stored the run's rows.
func analystQueries(ctx context.Context, w io.Writer, a *app, want int) {
	cfg := a.cfg
	conn, err := openStore(ctx, cfg.ClickHouse, nil)
	if err != nil {
		fmt.Fprintf(w, "\nanalyst queries: %v\n", err)
		return
	}
	defer conn.Close()
	db := cfg.ClickHouse.Database
	// Wait for this run's archiver to store the run's rows: a count of the table's last 10
	// minutes was met at once by an earlier run's rows.
	if err := waitArchived(ctx, a, want); err != nil {
		fmt.Fprintf(w, "\nanalyst queries: %v\n", err)
	}
	fmt.Fprintf(w, "\nClickHouse: every row of database %s of the last 10 minutes (an earlier run's, or other traffic, of those minutes counts too)\n", db)
	queries := []struct{ title, sql string }{
		{"verdicts of the last 10 minutes", "SELECT toString(score), count() FROM " + db + ".risk_scores FINAL WHERE scored_at >= now() - 600 GROUP BY score ORDER BY score"},
		{"top tags of the last 10 minutes", "SELECT tag, count() AS n FROM " + db + ".risk_scores FINAL ARRAY JOIN tags AS tag WHERE scored_at >= now() - 600 GROUP BY tag ORDER BY n DESC, tag LIMIT 6"},
		{"riskiest IPs of the last 10 minutes (phones at score ≥ 600)", "SELECT ip, uniqExact(phone_hash) AS phones FROM " + db + ".risk_scores FINAL WHERE scored_at >= now() - 600 AND score >= 600 GROUP BY ip ORDER BY phones DESC, ip LIMIT 5"},
	}
	for _, q := range queries {
		fmt.Fprintf(w, "\nClickHouse — %s:\n", q.title)
		rows, err := conn.Query(ctx, q.sql)
		if err != nil {
			fmt.Fprintf(w, "  query failed: %v\n", err)
			continue
		}
		for rows.Next() {
			var k string
			var n uint64
			if err := rows.Scan(&k, &n); err != nil {
				fmt.Fprintf(w, "  scan: %v\n", err)
				break
			}
			fmt.Fprintf(w, "  %-28s %d\n", k, n)
		}
		rows.Close()
	}
}

// demoTopics gives the demo run its own topics and consumer groups — events, scores, dead
// letters, decisions, lists — all on kafka.brokers, and returns the topics.
func demoTopics(cfg *Config, run string) []string {
	k := &cfg.Kafka
	for _, t := range []*string{&k.EventsTopic, &k.ScoresTopic, &k.DLQTopic, &k.DecisionsTopic, &k.ListsTopic} {
		*t += ".demo-" + run
	}
	for _, g := range []*string{&k.ScorerGroup, &k.ArchiverGroup, &k.DecisionsGroup} {
		*g += "-demo-" + run
	}
	k.DecisionsBrokers = nil
	return []string{k.EventsTopic, k.ScoresTopic, k.DLQTopic, k.DecisionsTopic, k.ListsTopic}
}

// deleteTopics deletes topics (a demo run's own) from kc's cluster.
func deleteTopics(ctx context.Context, kc consumers.Config, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Timeout: 20 * time.Second}
	resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range topics {
		if err := resp.Errors[t]; err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("%s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}
