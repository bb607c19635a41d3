package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/riskflow/riskflow/pipeline"
)

// part is one piece a process may run. Roles are made of parts; a part several roles need runs
// once per process (one rule-pack service, one feature state).
type part int

const (
	partTopics   part = iota // create the topics, read the broker's message size limit
	partRules                // the rule-pack service: the pack file watched, PUT /v1/rules, rule_versions
	partFeed                 // the full feature state, fed from every partition of the events topic
	partScorer               // the scorers' consumer group: events → risk.scores and dead letters
	partArchiver             // risk.scores → ClickHouse, behind a circuit breaker
	partAPI                  // HTTP: checks, events, rules admin, /metrics, /healthz, /readyz
	partOps                  // /metrics, /healthz, /readyz on ops.listen (with the api role, /metrics only there)
	numParts
)

var partNames = [numParts]string{"topics", "rules", "feed", "scorer", "archiver", "api", "ops"}

func (p part) String() string { return partNames[p] }

// roleSpec is one role: what it does, the parts it needs and the settings it cannot start without.
type roleSpec struct {
	name  string
	doc   string
	needs []part
	check func(c *Config) []string
}

// roleTable is every role. The parts are started in part order (topics before anything reads
// them, the feed before the scorer and the API that wait for it), whatever the roles' order.
var roleTable = []roleSpec{
	{name: "scorer", doc: "scores verify.events into risk.scores in the scorers' consumer group, from the full feature state",
		needs: []part{partTopics, partRules, partFeed, partScorer}, check: needHashKey},
	{name: "archiver", doc: "stores risk.scores and the decision log (risk.decisions) in ClickHouse",
		needs: []part{partTopics, partRules, partArchiver}, check: needClickHouse},
	{name: "api", doc: "answers /v1/risk/check from its own replica of the feature state (every verdict to risk.decisions), accepts /v1/events, /v1/rules and /v1/admin",
		needs: []part{partTopics, partRules, partFeed, partAPI}, check: func(c *Config) []string {
			return append(needHashKey(c), needAPI(c)...)
		}},
}

func needHashKey(c *Config) []string {
	if c.Scoring.PhoneHashKey == "" {
		return []string{"scoring.phone_hash_key: required (RISKFLOW_SCORING_PHONE_HASH_KEY); it keys the stored phone hashes"}
	}
	return nil
}

func needClickHouse(c *Config) []string {
	if c.ClickHouse.Addr == "" {
		return []string{"clickhouse.addr: required by the archiver role (RISKFLOW_CLICKHOUSE_ADDR)"}
	}
	return nil
}

func needAPI(c *Config) []string {
	var out []string
	if len(c.API.Keys) == 0 {
		out = append(out, "api.keys: no API keys configured (RISKFLOW_API_KEYS=app_key:secret,…); refusing to serve an open API")
	}
	if c.API.Listen == "" {
		// net.Listen would pick a random port on every interface.
		out = append(out, "api.listen: required by the api role (RISKFLOW_API_LISTEN or --listen, e.g. 0.0.0.0:8080)")
	}
	return out
}

func roleNames() []string {
	out := make([]string, len(roleTable))
	for i, r := range roleTable {
		out[i] = r.name
	}
	return out
}

func findRole(name string) *roleSpec {
	for i := range roleTable {
		if roleTable[i].name == name {
			return &roleTable[i]
		}
	}
	return nil
}

// plan is a resolved set of roles: the roles, and every part they need, once.
type plan struct {
	roles []*roleSpec
	parts [numParts]bool
}

func (p plan) has(x part) bool { return p.parts[x] }

func (p plan) hasRole(name string) bool {
	for _, r := range p.roles {
		if r.name == name {
			return true
		}
	}
	return false
}

// partList names the parts to start, in start order.
func (p plan) partList() []string {
	var out []string
	for x := part(0); x < numParts; x++ {
		if p.parts[x] {
			out = append(out, x.String())
		}
	}
	return out
}

func (p plan) roleList() []string {
	out := make([]string, len(p.roles))
	for i, r := range p.roles {
		out[i] = r.name
	}
	return out
}

// parseRoles reads --roles: comma-separated role names, each once.
func parseRoles(s string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, r := range splitList(s) {
		if findRole(r) == nil {
			return nil, usagef("--roles: %q is not a role (%s)", r, strings.Join(roleNames(), ", "))
		}
		if !seen[r] {
			seen[r] = true
			names = append(names, r)
		}
	}
	if len(names) == 0 {
		return nil, usagef("--roles: at least one of %s is required", strings.Join(roleNames(), ", "))
	}
	return names, nil
}

// resolveRoles is the plan of the named roles in this configuration: the parts every role needs,
// and the ops port when ops.listen is set.
func resolveRoles(names []string, cfg *Config) (plan, error) {
	var p plan
	for _, n := range names {
		r := findRole(n)
		if r == nil {
			return p, usagef("--roles: %q is not a role (%s)", n, strings.Join(roleNames(), ", "))
		}
		if p.hasRole(n) {
			continue
		}
		p.roles = append(p.roles, r)
		for _, x := range r.needs {
			p.parts[x] = true
		}
	}
	if len(p.roles) == 0 {
		return p, usagef("--roles: at least one of %s is required", strings.Join(roleNames(), ", "))
	}
	if cfg.Ops.Listen != "" {
		p.parts[partOps] = true
	}
	return p, nil
}

// allInOne is the plan of dev and demo: every role in one process — the archiver only when
// ClickHouse is configured (the returned note says so when it is not).
func allInOne(cfg *Config) (p plan, note string) {
	names := []string{"scorer", "api"}
	if cfg.ClickHouse.Addr != "" {
		names = append(names, "archiver")
	} else {
		note = "archiver is off: clickhouse.addr is not set (RISKFLOW_CLICKHOUSE_ADDR=127.0.0.1:19000 after deploy/local/up)"
	}
	p, err := resolveRoles(names, cfg)
	if err != nil {
		panic(err) // the names are the table's own
	}
	return p, note
}

// check reports, in one error, every setting a role of the plan needs and lacks.
func (p plan) check(cfg *Config) error {
	var problems []string
	seen := map[string]bool{}
	for _, r := range p.roles {
		for _, msg := range r.check(cfg) {
			if !seen[msg] {
				seen[msg] = true
				problems = append(problems, msg)
			}
		}
	}
	if len(problems) > 0 {
		return configf("invalid configuration for roles %s:\n%s", strings.Join(p.roleList(), ","), strings.Join(problems, "\n"))
	}
	return nil
}

// startOptions are what serve, dev and demo start differently.
type startOptions struct {
	listen   string            // the API's address
	onListen func(addr string) // called once the API accepts connections; may be nil
}

// start starts the plan's parts, in part order, in one errgroup: the topics first (waiting for the
// broker, with backoff), then the rule-pack service, the feature state, and the roles' loops and
// servers. It returns the group and its context; the caller waits.
func (a *app) start(ctx context.Context, p plan, o startOptions) (*errgroup.Group, context.Context, error) {
	a.log.Info("starting", "roles", p.roleList(), "parts", p.partList())
	runCtx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	context.AfterFunc(gctx, stop)
	// failed stops what already runs (the ops port) before start reports err — or the ops
	// port's own failure (its address taken), which ended the wait for the broker.
	failed := func(err error) (*errgroup.Group, context.Context, error) {
		stop()
		if gerr := g.Wait(); gerr != nil {
			err = gerr
		}
		a.releaseSnapshots()
		return nil, nil, err
	}
	// One process per snapshot directory and topic, before anything else: a second one sharing
	// it (two roles' processes started with one configuration on one host) rotated the first's
	// snapshots out and failed its writes.
	if p.has(partFeed) && a.cfg.Scoring.SnapshotDir != "" {
		lock, err := pipeline.LockSnapshots(a.cfg.Scoring.SnapshotDir, a.cfg.Kafka.EventsTopic)
		switch {
		case errors.Is(err, pipeline.ErrSnapshotDirInUse):
			return failed(configError{fmt.Errorf("scoring.snapshot_dir: %w", err)})
		case err != nil: // a file system without locks (some network ones): run as before the lock
			a.log.Warn("scoring.snapshot_dir cannot be locked: make sure no other process uses it", "scoring.snapshot_dir", a.cfg.Scoring.SnapshotDir, "err", err)
		}
		a.snapLock = lock
	}
	var apiSrv *apiServer
	if p.has(partOps) || p.has(partAPI) {
		// The ops port, or the API's, comes first: a process waiting for the broker is alive
		// (/healthz) and says what it waits for (/readyz), instead of refusing the probes —
		// which a liveness probe answers by restarting it, over and over, while Kafka is away.
		waiting := "waiting for Kafka (creating the topics, reading its limits)"
		a.starting.Store(&waiting)
		a.health.add("start", func() error {
			if s := a.starting.Load(); s != nil {
				return errors.New(*s)
			}
			return nil
		})
		defer a.starting.Store(nil) // by then every part has registered its own checks
	}
	if p.has(partOps) {
		g.Go(func() error { return a.runOps(gctx, a.cfg.Ops.Listen) })
		if p.has(partAPI) {
			a.log.Info("/metrics is served on ops.listen only, not on the API's address; /healthz and /readyz on both", "ops.listen", a.cfg.Ops.Listen, "api.listen", o.listen)
		}
	} else if !p.has(partAPI) {
		// Off by default (two processes on one host would fight over a fixed port), so say it:
		// nothing here answers a probe or a scrape.
		a.log.Warn("no ops port: this process serves no /metrics, /healthz or /readyz; set ops.listen (e.g. 0.0.0.0:9464, or 127.0.0.1:0 for a free port)")
	}
	if p.has(partAPI) {
		// The API's address serves the ops routes until the API takes it over, and answers
		// its other routes 503 (a verify service's client fails over at once, never hangs).
		ln, err := a.listenAPI(o.listen)
		if err != nil {
			return failed(err)
		}
		apiSrv = a.serveStarting(ln)
		defer func() {
			if apiSrv != nil { // start failed before runAPI took the server over
				apiSrv.close()
			}
		}()
	}
	if p.has(partTopics) {
		if err := a.prepareKafka(gctx); err != nil {
			return failed(err)
		}
	}
	if p.has(partRules) {
		a.startPhase("loading the rule pack (scoring.rules)")
		if _, err := a.rules.Start(gctx); err != nil {
			return failed(configError{fmt.Errorf("scoring.rules: %w", err)})
		}
		g.Go(func() error { a.rules.Run(gctx); return nil })
	}
	// An API node told to stop keeps answering checks for api.shutdown_delay and its drain: its
	// feature state and lists keep following Kafka until the API has stopped, or its answers
	// would miss what happened meanwhile (a token's first use, a burst). A failing group (not
	// a signal) stops them at once.
	feedCtx, stopFeed := gctx, func() {}
	if p.has(partAPI) && a.cfg.API.ShutdownDelay.D() > 0 {
		var cancel context.CancelFunc
		feedCtx, cancel = context.WithCancel(context.WithoutCancel(gctx))
		stopFeed = cancel
		context.AfterFunc(gctx, func() {
			if ctx.Err() == nil {
				cancel()
			}
		})
	}
	var feed *pipeline.Feed
	if p.has(partFeed) {
		feed = a.startFeed(feedCtx, g) // the feature state, fed from every partition
		a.startLists(feedCtx, g)       // the lists: the file and the entries added on any node
	}
	if p.has(partScorer) {
		g.Go(func() error { return a.runScorer(gctx, feed) })
	}
	if p.has(partArchiver) {
		g.Go(func() error { return a.runArchiver(gctx) })
	}
	if p.has(partAPI) {
		if feed == nil {
			stopFeed()
			return failed(fmt.Errorf("plan %v: the api part needs the feed", p.partList())) // roleTable guarantees it
		}
		srv := apiSrv
		apiSrv = nil
		g.Go(func() error {
			defer stopFeed()
			return a.runAPI(gctx, srv, listsServing(a.lists, replicaServing(feed)), a.health.ready, o.onListen)
		})
	}
	return g, gctx, nil
}
