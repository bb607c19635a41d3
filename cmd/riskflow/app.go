package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/segment"
)

// app holds what every role shares. Only this package builds concrete components.
type app struct {
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	kc     consumers.Config
	scorer *scoring.Scorer
	hasher *schemas.PhoneHasher
	obs    *observer
	health *health // what /readyz reports
	// snapshotAt is when the newest feature snapshot was written or loaded (unix ns; 0 = none).
	snapshotAt atomic.Int64
	// snapLock is this process's lock of scoring.snapshot_dir (pipeline.LockSnapshots); nil
	// without snapshots.
	snapLock *pipeline.SnapshotLock
	started  time.Time // when newApp ran
	// starting is what a starting process with a port (ops or API) is doing, which /readyz's
	// start check names; nil without a port and once every part has started.
	starting atomic.Pointer[string]

	rules *rulesvc.Service      // the rule-pack lifecycle: file, PUT, rollback, rule_versions
	lists *pipeline.SharedLists // the allow/block lists: the file and kafka.lists_topic (nodes with feature state)

	// packTests bounds the pack-test runs of PUT /v1/rules and the console (nil: unbounded).
	packTests *testGate
}

// newLogger is the process's logger: level and format from c, and every phone-like number of a
// line masked (maskPhoneAttr).
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: maskPhoneAttr}
	if c.Format == "json" {
		// Durations as the text format writes them ("1m1s"): slog's JSON handler writes their
		// nanoseconds ("failing_for":61000000000), which a reader of the log has to divide.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return maskPhoneAttr(groups, a)
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// maskPhoneAttr masks the phone-like numbers of a log line's message and values (strings, errors,
// string lists): a line may show a value that came from outside — a configured address
// ("ops.listen is not used", ops.listen=…), a broker's or a server's error quoting a request — and
// a number can be anywhere. A value without one is scanned once and kept as it is.
func maskPhoneAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(schemas.MaskPhones(v.String()))
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			a.Value = slog.StringValue(schemas.MaskPhones(x.Error()))
		case []string:
			masked := make([]string, len(x))
			for i, s := range x {
				masked[i] = schemas.MaskPhones(s)
			}
			a.Value = slog.AnyValue(masked)
		}
	}
	return a
}

func newApp(cfg Config, log *slog.Logger) (*app, error) {
	return newAppWith(cfg, log, true)
}

// newAppFor is newApp for the roles of p: a process without the feature state (archiver only)
// classifies no address, and loads no geo or ASN data (half a second and their memory).
func newAppFor(cfg Config, log *slog.Logger, p plan) (*app, error) {
	return newAppWith(cfg, log, p.has(partFeed))
}

func newAppWith(cfg Config, log *slog.Logger, addressData bool) (*app, error) {
	a := &app{cfg: cfg, log: log, reg: prometheus.NewRegistry(), health: &health{}, started: time.Now(),
		packTests: newTestGate(packTestRuns, packTestWaiting)}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.obs = newObserver(a.reg)
	a.kc = a.kafkaConfig()
	a.hasher = schemas.NewPhoneHasher([]byte(cfg.Scoring.PhoneHashKey))
	s, err := buildScorerOf(cfg.Scoring, a.hasher, log, addressData)
	if err != nil {
		return nil, err
	}
	a.scorer = s
	a.rules = newRuleService(cfg, s, log, func(state string) { a.obs.breakerState("rules", state) })
	a.reg.MustRegister(newInfoCollector(s.Rules()), newRulesCollector(a.rules, s, cfg.Scoring.Rules != ""))
	return a, nil
}

// buildScorer loads segments, geo, lists and the rule pack named by the configuration.
func buildScorer(c ScoringConfig, hasher *schemas.PhoneHasher, log *slog.Logger) (*scoring.Scorer, error) {
	return buildScorerOf(c, hasher, log, true)
}

// buildScorerOf is buildScorer, without geo or ASN data unless addressData (a scorer that
// scores no event, for the rule pack it runs).
func buildScorerOf(c ScoringConfig, hasher *schemas.PhoneHasher, log *slog.Logger, addressData bool) (*scoring.Scorer, error) {
	sc, opts, err := scorerPartsOf(c, hasher, log, addressData)
	if err != nil {
		return nil, err
	}
	s, err := scoring.New(sc, opts...)
	if err != nil {
		return nil, configError{fmt.Errorf("scoring: %w", err)}
	}
	var pack *rules.Pack
	if c.Rules == "" {
		pack, err = rules.Compile(packs.Default(), s.Env())
	} else {
		pack, err = rules.CompileFile(c.Rules, s.Env())
	}
	if err != nil {
		return nil, configError{fmt.Errorf("scoring.rules: %w", err)}
	}
	s.SetPack(pack)
	// Debug: a serving process's rule-pack service loads the pack again as it starts and says so
	// (with who loaded it and whether it was recorded); two "rule pack loaded" lines read as two loads.
	log.Debug("rule pack compiled", "pack", pack.Name, "version", pack.Version, "rules", len(pack.Rules), "source", sourceName(c.Rules))
	return s, nil
}

// buildScorerWithoutPack is buildScorer without compiling any pack, neither scoring.rules nor the
// embedded default: for the commands that compile a pack of their own against its variables
// (rules lint, rules test), which must not fail on a pack they were not asked about — the default
// one does not compile with windows other than the default ones.
func buildScorerWithoutPack(c ScoringConfig, hasher *schemas.PhoneHasher, log *slog.Logger) (*scoring.Scorer, error) {
	sc, opts, err := scorerParts(c, hasher, log)
	if err != nil {
		return nil, err
	}
	s, err := scoring.New(sc, opts...)
	if err != nil {
		return nil, configError{fmt.Errorf("scoring: %w", err)}
	}
	return s, nil
}

// scorerParts loads what a scorer is built from (segments, geo, lists, provinces): build many
// scorers from one call's parts to load the files once (the geo database is tens of MB).
func scorerParts(c ScoringConfig, hasher *schemas.PhoneHasher, log *slog.Logger) (scoring.Config, []scoring.Option, error) {
	return scorerPartsOf(c, hasher, log, true)
}

// scorerPartsOf is scorerParts, without the locator (geo and ASN data) unless addressData.
func scorerPartsOf(c ScoringConfig, hasher *schemas.PhoneHasher, log *slog.Logger, addressData bool) (scoring.Config, []scoring.Option, error) {
	opts := []scoring.Option{scoring.WithPhoneHasher(hasher), scoring.WithLogger(log)}
	if c.Segments != "" {
		t, err := segment.LoadFile(c.Segments)
		if err != nil {
			return scoring.Config{}, nil, configError{fmt.Errorf("scoring.segments: %w", err)}
		}
		opts = append(opts, scoring.WithSegments(t))
	}
	if addressData {
		loc, err := buildLocator(c, log)
		if err != nil {
			return scoring.Config{}, nil, err
		}
		opts = append(opts, scoring.WithGeo(loc))
	}
	if c.Lists != "" {
		l, err := scoring.LoadLists(c.Lists)
		if err != nil {
			return scoring.Config{}, nil, configError{fmt.Errorf("scoring.lists: %w", err)}
		}
		opts = append(opts, scoring.WithLists(l))
	}
	if c.Ported != "" {
		p, err := scoring.LoadPorted(c.Ported)
		if err != nil {
			return scoring.Config{}, nil, configError{fmt.Errorf("scoring.ported: %w", err)}
		}
		opts = append(opts, scoring.WithPorted(p))
		log.Info("ported numbers loaded: carrier_mismatch follows them", "numbers", p.Len())
	}
	if c.Provinces != "" {
		p, err := scoring.LoadProvinces(c.Provinces)
		if err != nil {
			return scoring.Config{}, nil, configError{fmt.Errorf("scoring.provinces: %w", err)}
		}
		opts = append(opts, scoring.WithProvinces(p))
	}
	return c.Config, opts, nil
}

func sourceName(path string) string {
	if path == "" {
		return "embedded default"
	}
	return path
}

// locators keeps the locators built in this process by what they were built from: a Locator is
// immutable and safe for concurrent use, and `rules test` builds a scorer per test (reading the
// 60 MB City database and 32 MB of ASN data each time otherwise).
var locators struct {
	sync.Mutex
	m map[locatorKey]*geo.Locator
}

type locatorKey struct{ city, asn, idc, idcASNs, mobile, cacheDir string }

// buildLocator loads the geo databases, the ASN data and the network lists (datacenter CIDRs,
// cloud ASes, mobile carrier networks), once per process for one configuration. Whatever is
// missing turns its signals off, with a warning.
func buildLocator(c ScoringConfig, log *slog.Logger) (*geo.Locator, error) {
	key := locatorKey{c.GeoCity, c.GeoASN, c.IDCList, c.IDCASNs, c.MobileNetworks, os.Getenv("RISKFLOW_CACHE_DIR")}
	locators.Lock()
	defer locators.Unlock()
	if l, ok := locators.m[key]; ok {
		return l, nil
	}
	l, err := loadLocator(c, log)
	if err != nil {
		return nil, err
	}
	if locators.m == nil {
		locators.m = map[locatorKey]*geo.Locator{}
	}
	locators.m[key] = l
	return l, nil
}

func loadLocator(c ScoringConfig, log *slog.Logger) (*geo.Locator, error) {
	idc := geo.DefaultIDCList()
	if c.IDCList != "" {
		set, err := geo.LoadCIDRFile(c.IDCList)
		if err != nil {
			return nil, configError{fmt.Errorf("scoring.idc_list: %w", err)}
		}
		idc = set
	}
	cloud, mobile := geo.DefaultCloudList(), geo.DefaultMobileList()
	switch c.IDCASNs {
	case "":
	case "none":
		cloud = nil
	default:
		l, err := geo.LoadNetFile(c.IDCASNs)
		if err != nil {
			return nil, configError{fmt.Errorf("scoring.idc_asns: %w", err)}
		}
		cloud = l
	}
	switch c.MobileNetworks {
	case "":
	case "none":
		mobile = nil
		log.Warn("scoring.mobile_networks is none: every city-level location counts as confident, mobile carrier pools included")
	default:
		l, err := geo.LoadNetFile(c.MobileNetworks)
		if err != nil {
			return nil, configError{fmt.Errorf("scoring.mobile_networks: %w", err)}
		}
		mobile = l
	}
	opts := []geo.Option{geo.WithIDCList(idc), geo.WithCloudList(cloud), geo.WithMobileList(mobile)}

	// scoring.geo_asn: the @ip-location-db/asn CSV files (a directory, or one .csv file), or a
	// MaxMind-format ASN database (.mmdb). Default: the CSV directory deploy/local/geo.sh installs.
	asnPath, asnMMDB := c.GeoASN, ""
	if asnPath == "" {
		asnPath = defaultCachePath("geo/asn/" + geo.ASNFiles[0])
		if asnPath != "" {
			asnPath = filepath.Dir(asnPath)
		}
	}
	switch {
	case asnPath == "":
		log.Warn("no ASN data: reasons show \"no ASN data\", cloud ASes are not classified idc (the datacenter CIDR list still is), and mobile networks are recognized by their CIDRs only (run deploy/local/geo.sh install or set scoring.geo_asn)")
	case strings.HasSuffix(asnPath, ".mmdb"):
		asnMMDB = asnPath
	default:
		var t *geo.ASNTable
		var err error
		if st, serr := os.Stat(asnPath); serr == nil && st.IsDir() {
			t, err = geo.LoadASNDir(asnPath)
		} else {
			t, err = geo.LoadASNFiles(asnPath)
		}
		if err != nil {
			return nil, configError{fmt.Errorf("scoring.geo_asn: %w", err)}
		}
		v4, v6 := t.Len()
		log.Info("ASN data loaded (@ip-location-db/asn: RouteViews, NRO, DB-IP; CC BY 4.0)", "path", asnPath, "ipv4_ranges", v4, "ipv6_ranges", v6)
		opts = append(opts, geo.WithASNTable(t))
	}

	city := c.GeoCity
	if city == "" {
		city = defaultCachePath("geo/GeoLite2-City.mmdb")
	}
	if city == "" {
		if asnMMDB != "" {
			return nil, configError{fmt.Errorf("scoring.geo_asn: an ASN database (.mmdb) needs scoring.geo_city too; use the CSV ASN data without one")}
		}
		loc, err := geo.Open("", "", opts...)
		if err != nil {
			return nil, fmt.Errorf("geo: %w", err)
		}
		log.Warn("no geo database: overseas_ip, impossible_travel and geo signals are off (run deploy/local/geo.sh install or set scoring.geo_city); datacenter and mobile network lists still active")
		return loc, nil
	}
	loc, err := geo.Open(city, asnMMDB, opts...)
	if err != nil {
		return nil, configError{fmt.Errorf("scoring.geo_city: %w", err)}
	}
	info := loc.Info()
	log.Info("geo database loaded", "city", info.City.Path, "type", info.City.Type, "built", info.City.BuildTime.Format("2006-01-02"),
		"mobile_asns", info.MobileASNs, "mobile_networks", info.MobileNetworks, "cloud_asns", info.CloudASNs)
	return loc, nil
}

// defaultCachePath returns $RISKFLOW_CACHE_DIR/rel (default cache dir: the user's cache
// directory/riskflow), where deploy/local/geo.sh installs data, when it exists; else "".
func defaultCachePath(rel string) string {
	dir := os.Getenv("RISKFLOW_CACHE_DIR")
	if dir == "" {
		if c, err := os.UserCacheDir(); err == nil {
			dir = c + "/riskflow"
		}
	}
	p := dir + "/" + rel
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

func (a *app) kafkaConfig() consumers.Config {
	return a.cfg.Kafka.Config
}

// prepareKafka creates the topics riskflow needs — waiting, with backoff, for a broker that is not
// up yet rather than exiting — and, unless kafka.max_message_bytes is set, reads the broker's
// message size limit for the writers.
func (a *app) prepareKafka(ctx context.Context) error {
	err := consumers.Retry(ctx, a.log, "creating topics", 200*time.Millisecond, 5*time.Second, func(ctx context.Context) error {
		if err := consumers.EnsureTopics(ctx, a.kc, a.topics(), a.log); err != nil {
			// The log line an operator sees while the broker is away names the key to check.
			return fmt.Errorf("kafka.brokers %s: %w", strings.Join(a.kc.Brokers, ","), err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if a.cfg.Kafka.MaxMessageBytes == 0 {
		k := a.cfg.Kafka
		n, err := consumers.MaxMessageBytesOf(ctx, a.kc, k.EventsTopic, k.ScoresTopic, k.DLQTopic)
		if err != nil {
			a.log.Warn("could not read the broker's max.message.bytes; assuming the default", "bytes", n, "err", err)
		}
		a.kc.MaxMessageBytes = n
	}
	// The lists topic keeps every entry only when compacted: with time-based deletion, entries
	// older than its retention are gone from every node after a restart.
	if p, err := consumers.TopicSetting(ctx, a.kc, a.cfg.Kafka.ListsTopic, "cleanup.policy"); err != nil {
		a.log.Warn("could not read the lists topic's cleanup.policy", "topic", a.cfg.Kafka.ListsTopic, "err", err)
	} else if !strings.Contains(p, "compact") {
		a.log.Error("the lists topic is not compacted: list entries older than its retention will be lost; set cleanup.policy=compact on it",
			"topic", a.cfg.Kafka.ListsTopic, "cleanup.policy", p)
	}
	for _, t := range a.topics() {
		if t.Configs["compression.type"] != consumers.InputTopicCompression {
			continue // not read by nodes (the dead-letter topic)
		}
		if ct, err := consumers.TopicSetting(ctx, a.kc, t.Name, "compression.type"); err == nil && ct != consumers.InputTopicCompression {
			a.log.Warn("a topic nodes read is not compression.type=uncompressed: max.message.bytes bounds only a batch's compressed bytes, not what every node inflates it to; set compression.type=uncompressed on it",
				"topic", t.Name, "compression.type", ct)
		}
	}
	a.log.Info("kafka ready", "max_message_bytes", a.kc.MaxMessageBytes, "batch_bytes", a.kc.BatchBytes())
	return nil
}

func (a *app) topics() []consumers.TopicSpec {
	k := a.cfg.Kafka
	// The topics nodes read are created uncompressed, so that max.message.bytes bounds what a
	// batch inflates to in every node reading it (consumers.InputTopic).
	return []consumers.TopicSpec{consumers.InputTopic(k.EventsTopic, k.Partitions),
		consumers.ReadTopic(consumers.TopicSpec{Name: k.ScoresTopic, Partitions: k.Partitions}), {Name: k.DLQTopic, Partitions: 1},
		consumers.ReadTopic(consumers.TopicSpec{Name: k.DecisionsTopic, Partitions: k.Partitions}),
		// One partition: the lists are small, and one order of adds and removals is simplest.
		consumers.ReadTopic(consumers.TopicSpec{Name: k.ListsTopic, Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}})}
}

// restoring wraps w, a writer to one of the node's topics on the cluster of kc, so that a write
// that finds its topic deleted creates it again, with the settings EnsureTopics gave it at start
// and the partitions it had (consumers.RestoringWriter): without it a deleted risk.scores stalled every scorer until a
// restart.
func (a *app) restoring(kc consumers.Config, w *kafka.Writer) *consumers.RestoringWriter {
	spec := consumers.TopicSpec{Name: w.Topic, Partitions: a.cfg.Kafka.Partitions}
	for _, t := range a.topics() {
		if t.Name == w.Topic {
			spec = t
		}
	}
	return consumers.NewRestoringWriter(w, kc, spec, a.log)
}

// startFeed starts this process's feature-state feed — every partition of verify.events, from
// the retention window back (or from now with scoring.replay off) — and registers its readiness
// and metrics. Scorers and API replicas alike hold the full state: the consumer group divides the
// scoring, not the state, so windows do not depend on how partitions are spread over processes.
func (a *app) startFeed(ctx context.Context, g *errgroup.Group) *pipeline.Feed {
	since := time.Now()
	if a.cfg.Scoring.Replay {
		since = since.Add(-a.scorer.State().Config().Retention)
	}
	feed := pipeline.NewFeed(a.kc, a.cfg.Kafka.EventsTopic, since, a.scorer, a.log)
	feed.SetSkew(a.cfg.Scoring.FeedSkew.D())
	// Only a process that holds the state reports its size (an archiver's would read 0).
	a.reg.MustRegister(newStateCollector(a.scorer.State()))
	// Every process with the state hashes phones into what it writes (risk.scores, the decision
	// log): one keyed otherwise than its peers splits each phone's stored history, and only this
	// tells it apart (RiskflowPhoneHashKeysDiffer).
	registerInfo(a.reg, prometheus.GaugeOpts{
		Name:        "riskflow_phone_hash_key_info",
		Help:        "The scoring.phone_hash_key this process hashes phones under (scorer and api roles), as the fingerprint its feature snapshots store — not the key (value 1). Nodes of one deployment show one.",
		ConstLabels: prometheus.Labels{"fingerprint": a.scorer.KeyFingerprint()},
	})
	// So does one whose address classification data differs (another ASN table, datacenter, cloud
	// or mobile list): its share of the events gets other verdicts (RiskflowAddressDataDiffers).
	registerInfo(a.reg, prometheus.GaugeOpts{
		Name:        "riskflow_address_data_info",
		Help:        "The data this process classifies addresses with (ASN table, datacenter, cloud and mobile lists, address and device keying; scorer and api roles), as the fingerprint its feature snapshots store (value 1). Nodes of one deployment show one.",
		ConstLabels: prometheus.Labels{"fingerprint": a.scorer.ClassFingerprint()},
	})
	start := time.Now()
	snaps := a.loadSnapshot(ctx, feed)
	g.Go(func() error {
		err := feed.Follow(ctx)
		if snaps != nil {
			a.saveSnapshot(snaps, feed, "shutdown") // a clean stop leaves the newest state behind
		}
		a.releaseSnapshots()
		return err
	})
	g.Go(func() error {
		if waitFresh(ctx, feed) {
			a.log.Info("feature state caught up with Kafka", "topic", a.cfg.Kafka.EventsTopic, "applied", feed.Applied(), "took", time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
	if snaps != nil {
		g.Go(func() error {
			// The first one as soon as the state has caught up, then one every interval: a node
			// that loaded the snapshot of a long stop reported its age (RiskflowSnapshotOld) until
			// its first periodic one, and one that keeps being stopped sooner than the interval (a
			// container OOM-killed every few minutes) replayed the retention window at every start.
			if !waitFresh(ctx, feed) {
				return nil
			}
			a.saveSnapshot(snaps, feed, "caught up")
			every(ctx, a.cfg.Scoring.SnapshotInterval.D(), func() {
				if !feed.Fresh().IsZero() { // a state still catching up is not worth keeping yet
					a.saveSnapshot(snaps, feed, "periodic")
				}
			})
			return nil
		})
	}
	a.registerReplica(feed)
	a.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "riskflow_feed_deleted_unread_total",
		Help: "Events of verify.events the topic deleted (retention) before this node's feature state applied them — a snapshot older than the retention, or a node frozen or cut off from the broker for longer: missing from the state, and so from its windows.",
	}, func() float64 { return float64(feed.Deleted()) }))
	return feed
}

// loadSnapshot loads the newest usable snapshot of scoring.snapshot_dir into the (empty) feature
// state and makes the feed resume from the offsets it covers. It returns nil when snapshots are
// off. A snapshot that cannot be used is logged and skipped: the feed then replays from Kafka.
func (a *app) loadSnapshot(ctx context.Context, feed *pipeline.Feed) *pipeline.Snapshots {
	if a.cfg.Scoring.SnapshotDir == "" {
		return nil
	}
	snaps := &pipeline.Snapshots{Dir: a.cfg.Scoring.SnapshotDir, Topic: a.cfg.Kafka.EventsTopic,
		Fingerprint: a.scorer.KeyFingerprint(), Classes: a.scorer.ClassFingerprint(), State: a.scorer.State(), Log: a.log,
		MaxAge: a.scorer.State().Config().Retention, Lock: a.snapLock,
		Ends: func() (map[int]int64, error) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return consumers.EndOffsets(ctx, a.kc, a.cfg.Kafka.EventsTopic)
		},
		Times: func(offsets map[int]int64) (map[int]time.Time, error) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return consumers.MessageTimes(ctx, a.kc, a.cfg.Kafka.EventsTopic, offsets)
		},
		Oldest: func(parts []int) (map[int]time.Time, error) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return consumers.OldestTimes(ctx, a.kc, a.cfg.Kafka.EventsTopic, parts)
		}}
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "riskflow_snapshot_age_seconds",
		Help: "Age of the newest feature snapshot this node wrote or loaded; before its first, the time since the process started.",
	}, func() float64 { return a.snapshotAge(time.Now()).Seconds() }))
	// Whether snapshots can be written is told with what was loaded: a directory this node cannot
	// write to (read-only, full, a snapshot's name taken) may still hold a snapshot it loads.
	unwritable := snaps.CheckWritable()
	a.startPhase("loading the feature snapshot of scoring.snapshot_dir " + snaps.Dir + " (checked against the topic first: waits while the broker cannot answer)")
	defer a.startPhase("starting the feature state's feed")
	start := time.Now()
	offsets, written, err := snaps.Load(ctx)
	switch {
	case errors.Is(err, pipeline.ErrNoSnapshot):
		a.log.Info("no feature snapshot yet; rebuilding the state from Kafka", "scoring.snapshot_dir", snaps.Dir)
	case err != nil:
		a.log.Warn("no usable feature snapshot; rebuilding the state from Kafka", "scoring.snapshot_dir", snaps.Dir, "err", err)
	default:
		feed.StartAt(offsets)
		a.snapshotAt.Store(written.UnixNano())
		a.log.Info("feature snapshot loaded", "written", written.Format(time.RFC3339), "age", time.Since(written).Round(time.Second),
			"applied", a.scorer.State().Stats().Applied, "took", time.Since(start).Round(time.Millisecond))
	}
	if unwritable != nil {
		a.log.Error(unwritableSnapshots(err == nil, written, snaps.MaxAge), "scoring.snapshot_dir", snaps.Dir, "err", unwritable)
	}
	return snaps
}

// unwritableSnapshots says what a node that cannot write snapshots to its directory starts from
// and what its restarts will do. A snapshot loaded there is the one every restart loads again,
// until it is older than the feature retention (maxAge); the events after it are replayed, more
// at each restart. It used to say "every restart will replay from Kafka" beside "feature snapshot
// loaded".
func unwritableSnapshots(loaded bool, written time.Time, maxAge time.Duration) string {
	if !loaded {
		return "feature snapshots cannot be written here: no newer one will be; this start replays the retention window from Kafka, and so does every restart"
	}
	return fmt.Sprintf("feature snapshots cannot be written here: the one loaded stays the newest; every restart loads it again and replays what came after it from Kafka (more at each restart), until it is older than the feature retention (%s, at %s): from then on every restart replays the retention window",
		maxAge, written.Add(maxAge).UTC().Format(time.RFC3339))
}

// startPhase tells /readyz what the starting process does now (nothing without a port, or once
// started): a node loading or checking its snapshot said it was "waiting for Kafka (creating the
// topics, reading its limits)" long after the topics were there.
func (a *app) startPhase(what string) {
	if a.starting.Load() != nil {
		a.starting.Store(&what)
	}
}

// snapshotAge is how old the newest snapshot this node wrote or loaded is at now. Before it has
// one, the process's age stands in: a node whose snapshots never succeed (a read-only or missing
// volume) used to report -1 for ever, under every "snapshot too old" alert, and a node that has
// not managed one in N seconds is as far from a quick restart as one whose snapshot is N old.
func (a *app) snapshotAge(now time.Time) time.Duration {
	if at := a.snapshotAt.Load(); at != 0 {
		return now.Sub(time.Unix(0, at))
	}
	return now.Sub(a.started)
}

// releaseSnapshots releases the lock of scoring.snapshot_dir, once this process has written its
// last snapshot (or failed to start).
func (a *app) releaseSnapshots() {
	a.snapLock.Release()
}

// saveSnapshot writes a snapshot, logging the outcome.
func (a *app) saveSnapshot(snaps *pipeline.Snapshots, feed *pipeline.Feed, why string) {
	start := time.Now()
	n, err := snaps.Save(feed.Positions)
	if err != nil {
		a.log.Error("feature snapshot failed", "why", why, "err", err)
		return
	}
	a.snapshotAt.Store(time.Now().UnixNano())
	a.log.Info("feature snapshot written", "why", why, "bytes", n, "took", time.Since(start).Round(time.Millisecond))
}

// waitFresh waits until the feed has caught up once; false if ctx ended first.
func waitFresh(ctx context.Context, feed interface{ Fresh() time.Time }) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for feed.Fresh().IsZero() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// runScorer waits until the feed has rebuilt the feature state, then consumes verify.events in the
// scorer group, scoring each batch once the feed has applied every partition up to its time.
func (a *app) runScorer(ctx context.Context, feed *pipeline.Feed) error {
	k := a.cfg.Kafka
	// Registered before it waits: until the loop runs, /readyz names what it waits for.
	scoring := &laterLoop{waiting: "not running yet: waiting for the feature state and the lists to be read"}
	a.registerLoop("scorer", scoring)
	a.obs.scorerStarted(a.scorer.Rules())
	a.obs.deadLettersFrom(pipeline.ScoreReasons)
	// Every consumer group of the events topic reads all its partitions: a scorer with a mistyped
	// kafka.scorer_group scores every event a second time (ClickHouse collapses the rows, every
	// counter doubles), and only this tells it apart (RiskflowScorerGroupsDiffer).
	registerInfo(a.reg, prometheus.GaugeOpts{
		Name:        "riskflow_scorer_group_info",
		Help:        "The consumer group (kafka.scorer_group) this scorer scores its events topic in (value 1). Scorers of one topic show one.",
		ConstLabels: prometheus.Labels{"group": k.ScorerGroup, "topic": k.EventsTopic},
	})
	if !waitFresh(ctx, feed) || !waitFresh(ctx, a.lists) {
		return nil
	}
	reader := a.groupReader(a.kc, k.EventsTopic, k.ScorerGroup)
	scores := a.restoring(a.kc, consumers.NewWriter(a.kc, k.ScoresTopic))
	dlq := a.restoring(a.kc, consumers.NewWriter(a.kc, k.DLQTopic))
	defer consumers.CloseWithin(consumers.StopCloseWait, reader, scores, dlq) // a hung broker does not hold the stop
	stage := &pipeline.ScoreStage{Scorer: a.scorer, Scores: scores, DLQ: dlq, Log: a.log.With("role", "scorer"), Obs: a.obs,
		MaxMessageBytes: a.kc.BatchBytes(), Gate: feed, GateWait: a.cfg.Scoring.FeedWait.D()}
	// Staged: the next batch is scored while this one is written to risk.scores.
	loop := consumers.NewStagedLoop(consumers.LoopConfig{Name: "scorer", MaxBatch: k.ScorerBatch, MaxWait: 5 * time.Millisecond}, reader, stage, a.log, a.obs)
	scoring.set(loop)
	a.watchScoredLate(ctx)
	go a.watchGroupLag(ctx, a.kc, k.ScorerGroup, k.EventsTopic)
	a.log.Info("scorer running", "topic", k.EventsTopic, "group", k.ScorerGroup)
	return loop.Run(ctx)
}

// groupReader is a consumer-group reader of topic that logs through the node's logger and counts,
// in riskflow_consumer_deleted_unread_total{group} (0 from the start), the messages the topic
// deleted before the group read them.
func (a *app) groupReader(kc consumers.Config, topic, group string) *consumers.GroupReader {
	deleted := a.obs.deletedUnread.WithLabelValues(group)
	return consumers.NewGroupReader(kc, topic, group, consumers.WithGroupLogger(a.log),
		consumers.WithDeletedUnread(func(n int64) { deleted.Add(float64(n)) }))
}

// runArchiver: consume risk.scores into ClickHouse behind a circuit breaker. Several archivers in
// one group share the partitions; each commits only what it stored.
func (a *app) runArchiver(ctx context.Context) error {
	k, c := a.cfg.Kafka, a.cfg.ClickHouse
	a.reg.MustRegister(a.obs.archived)
	// Archivers of one consumer group share its topic's partitions: one with another database
	// stores its share there, and only this tells it apart (RiskflowArchiveDatabasesDiffer).
	db := c.Database
	if db == "" {
		db = chsink.DefaultDatabase
	}
	for _, gt := range [][2]string{{k.ArchiverGroup, k.ScoresTopic}, {k.DecisionsGroup, k.DecisionsTopic}} {
		registerInfo(a.reg, prometheus.GaugeOpts{
			Name:        "riskflow_archive_database_info",
			Help:        "The ClickHouse database (clickhouse.database) this archiver stores each consumer group's topic in (value 1). Archivers of one group show one.",
			ConstLabels: prometheus.Labels{"group": gt[0], "topic": gt[1], "database": db},
		})
	}
	a.obs.deadLettersFrom(pipeline.ArchiveReasons)
	a.obs.deadLettersFrom(pipeline.DecisionReasons) // the decision archiver's, counted from the start too
	decisionsArchived := prometheus.NewCounter(prometheus.CounterOpts{Name: "riskflow_decisions_archived_total", Help: "Decisions written to risk_decisions."})
	a.reg.MustRegister(decisionsArchived)
	store, err := openStore(ctx, c, a.log)
	if err != nil {
		return err
	}
	defer store.Close()
	sink := newMigratingSink(store, a.log)
	onState := func(state string) { a.obs.breakerState("archiver", state) }
	// named in its log lines as in riskflow_breaker_state{breaker}, so that an alert's label finds them
	breaker := pipeline.NewBreakerSink("archiver", sink, pipeline.BreakerConfig{Failures: uint32(c.BreakerFailures), OpenFor: c.BreakerOpenFor.D()}, a.log, onState)
	onState(breaker.State())
	// An idle archiver has no batch to fail: its ClickHouse is pinged as well, so that /readyz and
	// riskflow_loop_stalled_seconds say so when it is away with nothing to write — for the
	// decision archiver too, which writes to the same ClickHouse.
	archiving, deciding := &laterLoop{}, &laterLoop{}
	watched := &pingWatch{loop: archiving, now: time.Now, log: a.log.With("role", "archiver")}
	a.registerLoop("archiver", watched)
	a.registerLoop("decisions", watched.sharing(deciding))
	go watched.watchPings(ctx, archiverPingEvery, store.Ping)
	go a.watchGroupLag(ctx, a.kc, k.ArchiverGroup, k.ScoresTopic)
	go a.watchGroupLag(ctx, a.decisionsKafka(), k.DecisionsGroup, k.DecisionsTopic)
	joined := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "riskflow_archiver_joined",
		Help: "1 while this archiver is a member of its consumer groups (risk.scores' and the decisions'); 0 while it stays out of them: until its ClickHouse first answers, from when its pings have failed for kafka.stall_after until one answers again, and for a hold-off once ClickHouse has refused its writes for kafka.stall_after while answering its pings — the other archivers of the group take its partitions meanwhile.",
	})
	a.reg.MustRegister(joined)
	// The consumer groups are joined once ClickHouse has answered: an archiver that cannot reach
	// it (a wrong address or password) took its share of the partitions on joining and held them
	// without ever writing one, so that beside working archivers part of every stream stayed out
	// of ClickHouse for as long as it ran (held-out run: two archivers, one with a wrong password,
	// and half the scores never stored). Unreached, it waits, unready, naming why. Likewise an
	// archiver whose ClickHouse went away later leaves the groups once its pings have failed for
	// kafka.stall_after (when it turns unready), and joins them again at the first ping that
	// answers: it kept its partitions for as long as its ClickHouse was away, and their history
	// lagged beside archivers that could have stored it.
	//
	// So does an archiver whose ClickHouse answers its pings but refuses its writes (a read-only
	// user, a table it cannot write): once they have failed for kafka.stall_after it leaves, and
	// stays out for a hold-off (kafka.stall_after, doubling while its writes are refused each
	// time it is back, up to maxHoldOff) before it tries again. It kept its partitions for as long
	// as it ran (held-out run: one archiver of two with a read-only user, and half the scores
	// never stored).
	stallAfter := a.cfg.Kafka.StallAfter.D()
	scoreWrites, decisionWrites := &writeWatch{}, &writeWatch{}
	var holdOff time.Duration
	for pingsFailed := false; ; {
		if err := watched.waitAnswering(ctx); err != nil {
			return nil // stopped before ClickHouse answered
		}
		if pingsFailed {
			a.log.Info("ClickHouse answers again: joining the consumer groups", "group", k.ArchiverGroup, "decisions_group", k.DecisionsGroup)
		}
		mctx, leave := context.WithCancel(ctx)
		down := watched.whenDown(stallAfter)
		var refusedBy atomic.Pointer[writeWatch]
		joinedAt := time.Now()
		go func() {
			tick := time.NewTicker(min(max(stallAfter/4, 50*time.Millisecond), time.Second))
			defer tick.Stop()
			for {
				select {
				case <-down:
					a.log.Warn("ClickHouse has not answered for kafka.stall_after: leaving the consumer groups, so that other archivers take the partitions; joining again once it answers a ping (one each "+archiverPingEvery.String()+")",
						"kafka.stall_after", stallAfter, "group", k.ArchiverGroup, "decisions_group", k.DecisionsGroup)
					leave()
					return
				case <-tick.C:
					for _, w := range []*writeWatch{scoreWrites, decisionWrites} {
						if w.refused(stallAfter, watched.answeredAt()) {
							refusedBy.Store(w)
							_, why := w.failingSince()
							a.log.Warn("ClickHouse answers pings but has refused this archiver's writes for kafka.stall_after: leaving the consumer groups, so that other archivers take the partitions; trying again after a hold-off",
								"kafka.stall_after", stallAfter, "group", k.ArchiverGroup, "decisions_group", k.DecisionsGroup, "err", why)
							leave()
							return
						}
					}
				case <-mctx.Done():
					return
				}
			}
		}()
		joined.Set(1)
		err := a.archiveInGroups(mctx, watchedSink{breaker, scoreWrites}, sink, decisionWrites, archiving, deciding, decisionsArchived)
		joined.Set(0)
		archiving.unset()
		deciding.unset()
		leave()
		if err != nil || ctx.Err() != nil {
			return err
		}
		w := refusedBy.Load()
		if pingsFailed = w == nil; pingsFailed {
			holdOff = 0
			continue
		}
		since, why := w.failingSince()
		holdOff = nextHoldOff(holdOff, stallAfter, !since.IsZero() && since.Before(joinedAt))
		held := heldOut{since: since, why: why, until: time.Now().Add(holdOff), now: time.Now}
		if since.IsZero() {
			held.since = time.Now()
		}
		archiving.set(held)
		deciding.set(held)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(holdOff):
		}
		archiving.unset()
		deciding.unset()
		a.log.Info("hold-off over: joining the consumer groups again to try ClickHouse's writes", "group", k.ArchiverGroup, "decisions_group", k.DecisionsGroup)
	}
}

// archiveInGroups runs the archiver's two loops — risk.scores and the decisions — as members of
// their consumer groups until ctx is done; the groups are left when it returns.
func (a *app) archiveInGroups(ctx context.Context, breaker pipeline.Sink, sink *migratingSink, decisionWrites *writeWatch, archiving, deciding *laterLoop, decisionsArchived prometheus.Counter) error {
	k, c := a.cfg.Kafka, a.cfg.ClickHouse
	reader := a.groupReader(a.kc, k.ScoresTopic, k.ArchiverGroup)
	dlq := a.restoring(a.kc, consumers.NewWriter(a.kc, k.DLQTopic))
	defer consumers.CloseWithin(consumers.StopCloseWait, reader, dlq) // a hung broker does not hold the stop
	stage := &pipeline.ArchiveStage{Sink: breaker, DLQ: dlq, Log: a.log.With("role", "archiver"), Obs: a.obs, MaxMessageBytes: a.kc.BatchBytes()}
	// Staged: the next batch is fetched and decoded while this one is written to ClickHouse; each
	// commits, in order, once both tables acknowledged it.
	loop := consumers.NewStagedLoop(consumers.LoopConfig{
		Name: "archiver", MaxBatch: c.BatchSize, MaxWait: c.FlushInterval.D(),
		BackoffMin: 200 * time.Millisecond, BackoffMax: c.BreakerOpenFor.D(),
	}, reader, stage, a.log, a.obs)
	archiving.set(loop)
	a.log.Info("archiver running", "topic", k.ScoresTopic, "group", k.ArchiverGroup, "clickhouse", c.Addr, "database", c.Database)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.runDecisionArchiver(gctx, sink, decisionWrites, deciding, decisionsArchived) })
	g.Go(func() error { return loop.Run(gctx) })
	return g.Wait()
}

// watchScoredLate registers riskflow_scored_late_total and logs, at most every
// scoredLateLogEvery, how many events were scored beyond scoring.LateAllowance since the last
// line (scoring.Scorer.ScoredLate).
func (a *app) watchScoredLate(ctx context.Context) {
	a.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "riskflow_scored_late_total",
		Help: "Events scored more than scoring's late allowance (1 h) behind the newest event this scorer's state had applied — a backlog after an outage longer than that, a replayed recording, an app uploading late: their longest windows may miss their oldest part, so their verdicts may be lower than a backtest's.",
	}, func() float64 { return float64(a.scorer.ScoredLate()) }))
	go func() {
		var logged uint64
		every(ctx, scoredLateLogEvery, func() {
			if n := a.scorer.ScoredLate(); n > logged {
				a.log.Warn("events scored more than the late allowance behind the newest event applied: their longest windows may miss their oldest part, and their verdicts be lower than in order (riskflow_scored_late_total)",
					"events", n-logged, "late_allowance", scoring.LateAllowance, "since", scoredLateLogEvery)
				logged = n
			}
		})
	}()
}

// scoredLateLogEvery is the least time between two log lines of watchScoredLate.
const scoredLateLogEvery = time.Minute

// archiverPingEvery is how often an archiver pings its ClickHouse (pingWatch).
const archiverPingEvery = 10 * time.Second

// migratingSink is the archiver's store with its schema applied before the first write, and
// again after a write that found a table or the database missing (schemaOnce).
type migratingSink struct {
	store  *chsink.Store
	schema schemaOnce
}

func newMigratingSink(store *chsink.Store, log *slog.Logger) *migratingSink {
	return &migratingSink{store: store, schema: schemaOnce{log: log}}
}

func (m *migratingSink) WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error {
	if err := m.migrate(ctx); err != nil {
		return err
	}
	return m.written(m.store.WriteBatch(ctx, recs))
}

// written returns err of a write; one that found a table, the database or a column missing has
// the schema applied again before the next write.
func (m *migratingSink) written(err error) error {
	if chsink.SchemaBehind(err) {
		m.schema.lost(err)
	}
	return err
}

// migrate applies the schema unless it is in place (schemaOnce.ensure).
func (m *migratingSink) migrate(ctx context.Context) error {
	if err := m.schema.ensure(ctx, m.store); err != nil {
		return fmt.Errorf("migrate before first write: %w", err)
	}
	return nil
}

// runAPI takes over the API's server (serveStarting) and serves the API until ctx is done, then
// drains in-flight requests.
// serving gates /v1/risk/check, ready is /readyz (either may be nil: always).
// Its settings were checked with the role's (plan.check).
func (a *app) runAPI(ctx context.Context, sl *apiServer, serving func() error, ready func(exclude ...string) error, onListen func(addr string)) error {
	if serving == nil {
		serving = func() error { return nil }
	}
	defer sl.hs.Close() // after the drain below, a no-op; on any earlier return, the server stops
	events, closeEvents := newEventsWriter(a.kc, a.cfg.Kafka.EventsTopic)
	defer closeEvents()
	host, _ := os.Hostname()
	opts, closeInv := a.apiInvestigation(ctx)
	defer closeInv()
	if a.cfg.API.DecisionLog {
		// The decision log stops when the API does, also when the API fails (its address is
		// taken): waiting for the process's end, it kept the process from ever ending. Not with
		// ctx, though: the checks still in flight when the process is told to stop are answered
		// by the drain below, and their verdicts must still be published (stopping with ctx, the
		// log had drained its queue before they were recorded, and lost them).
		dctx, cancelLog := context.WithCancel(context.WithoutCancel(ctx))
		dl, stop := a.startDecisionLog(dctx, host)
		defer func() { cancelLog(); stop() }()
		opts = append(opts, api.WithDecisionLog(dl))
	}
	// Told to stop, the node fails /readyz first (while it still answers everything else), so a
	// load balancer probing it takes it out of rotation before its listener closes.
	var stopping atomic.Bool
	if ready == nil {
		ready = func(...string) error { return nil }
	}
	probe := ready
	ready = func(exclude ...string) error {
		err := probe(exclude...)
		switch {
		case !stopping.Load() || errors.Is(err, api.ErrUnknownCheck):
			return err
		case err != nil:
			return fmt.Errorf("%w; %v", errShuttingDown, err)
		}
		return errShuttingDown
	}
	ac := a.cfg.API.Config
	ac.NodeID = nodePrefix(host)
	srv := api.New(ac, a.scorer, &pipeline.Publisher{W: a.restoring(a.kc, events), Hasher: a.hasher},
		append([]api.Option{api.WithServing(serving), api.WithReadiness(ready), api.WithLogger(a.log.With("role", "api")), api.WithRegistry(a.reg),
			api.WithRulesAdmin(rulesAdmin{s: a.rules, persisted: a.cfg.Scoring.Rules != "", scoring: &a.cfg.Scoring, tests: a.packTests}, a.cfg.API.AdminKeys),
			api.WithRulesApproval(a.cfg.API.ConsoleApprovals), api.WithStateHealth(a.health.stateCurrent)}, append(a.metricsElsewhere(), opts...)...)...)
	hs := sl.hs
	sl.use(a.withConsole(srv))
	a.log.Info("api listening", "addr", sl.addr, "tls", a.cfg.API.TLSCert != "", "apps", len(a.cfg.API.Keys))
	if onListen != nil {
		onListen(sl.addr)
	}
	select {
	case err := <-sl.errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	stopping.Store(true)
	if d := a.cfg.API.ShutdownDelay.D(); d > 0 {
		a.log.Info("api stopping: /readyz fails while checks are still answered, then the listener closes", "api.shutdown_delay", d)
		// Each answer from now on closes its connection: a client's pooled connections, which a
		// layer-4 balancer (a Kubernetes Service) pins to this node, move to the nodes that stay.
		hs.SetKeepAlivesEnabled(false)
		select {
		case err := <-sl.errc:
			return fmt.Errorf("api: serve: %w", err)
		case <-time.After(d):
		}
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("api: drain in-flight requests: %w", err)
	}
	if err := <-sl.errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// errShuttingDown is what /readyz says of a node told to stop.
var errShuttingDown = errors.New("shutting down: this node stops taking checks (api.shutdown_delay)")

// bootID tells this process's response ids from those of every other process, including earlier
// runs on the same host: the sequence behind the prefix restarts at 1, and hostnames cut to 8
// characters collide (every pod named riskflow-api-… becomes "riskflow"). 64 random bits: with
// 32, a fleet restarting ten pods a day would give two boots one id within a few years (the
// birthday bound), and the decision log keeps one row per id.
var bootID = func() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 16)
	}
	return hex.EncodeToString(b[:])
}()

// nodePrefix is the prefix of this process's response ids: up to 8 characters of the hostname,
// for people, and the boot id, for uniqueness.
func nodePrefix(host string) string {
	h := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, strings.ToLower(host))
	if len(h) > 8 {
		h = h[:8]
	}
	return h + "-" + bootID + "-"
}

// every calls fn every d until ctx is done.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
