package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
)

// Duration is a time.Duration written as "10ms", "5s", "24h" in YAML and env vars.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %s is not a duration like 10ms, 5s, 1h", n.Line, schemas.Excerpt(n.Value, 64))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is riskflow's one configuration: a YAML file, every key overridable by an environment
// variable named RISKFLOW_<SECTION>_<KEY> (RISKFLOW_KAFKA_BROKERS=a:9092,b:9092,
// RISKFLOW_API_KEYS=app1:secret1,app2:secret2) and by --set section.key=value flags.
type Config struct {
	Kafka      KafkaConfig      `yaml:"kafka"`
	ClickHouse ClickHouseConfig `yaml:"clickhouse"`
	API        APIConfig        `yaml:"api"`
	Scoring    ScoringConfig    `yaml:"scoring"`
	Ops        OpsConfig        `yaml:"ops"`
	Log        LogConfig        `yaml:"log"`
}

// OpsConfig is the operations port of processes without the api role (the api role serves the
// same endpoints on its own port).
type OpsConfig struct {
	// Listen serves /metrics, /healthz and /readyz of a scorer or archiver process; "" = off.
	Listen string `yaml:"listen"`
}

// KafkaConfig is the broker (package consumers' Config: brokers, batch_timeout,
// max_message_bytes) and the topics and groups.
type KafkaConfig struct {
	consumers.Config `yaml:",inline"`
	EventsTopic      string `yaml:"events_topic"`
	ScoresTopic      string `yaml:"scores_topic"`
	DLQTopic         string `yaml:"dlq_topic"`
	// DecisionsTopic carries every verdict /v1/risk/check served (the decision log).
	DecisionsTopic string `yaml:"decisions_topic"`
	// DecisionsGroup is the archivers' consumer group on DecisionsTopic.
	DecisionsGroup string `yaml:"decisions_group"`
	// ListsTopic carries the allow/block entries added through the console (compacted, one
	// message per entry); every node with feature state applies all of it.
	ListsTopic string `yaml:"lists_topic"`
	// DecisionsBrokers are the brokers the API's decision log writes to (default: Brokers).
	DecisionsBrokers []string `yaml:"decisions_brokers"`
	Partitions       int      `yaml:"partitions"`
	ScorerGroup      string   `yaml:"scorer_group"`
	ArchiverGroup    string   `yaml:"archiver_group"`
	ScorerBatch      int      `yaml:"scorer_batch"`
	// StallAfter is how long a consumer loop may fail to move on (broker away, one batch retried)
	// before /readyz reports it.
	StallAfter Duration `yaml:"stall_after"`
}

// ClickHouseConfig is the history store (package chsink's Config: addr, database, username,
// password, dial_timeout, write_timeout, compression), the archiver's batches, and the breakers of
// the archiver's writes, the console's reads and writes and the rule-pack history's; an empty
// addr turns the archiver off.
type ClickHouseConfig struct {
	chsink.Config   `yaml:",inline"`
	BatchSize       int      `yaml:"batch_size"`
	FlushInterval   Duration `yaml:"flush_interval"`
	BreakerFailures int      `yaml:"breaker_failures"`
	BreakerOpenFor  Duration `yaml:"breaker_open_for"`
}

// APIConfig is the HTTP server: package api's Config (keys, max_body_bytes, rate_per_app,
// events_rate_per_app, auth_failures_per_minute) and where and how it listens.
type APIConfig struct {
	api.Config  `yaml:",inline"`
	Listen      string            `yaml:"listen"`
	AdminKeys   map[string]string `yaml:"admin_keys"`
	TLSCert     string            `yaml:"tls_cert"`
	TLSKey      string            `yaml:"tls_key"`
	ReadyMaxLag int64             `yaml:"ready_max_lag"`
	// ConsoleApprovals is how many admins a promotion in the console takes: 1, or 2 (another admin
	// approves what one requested).
	ConsoleApprovals int `yaml:"console_approvals"`
	// MaxStaleness is how old an API replica's state may grow (the broker away) before /readyz
	// fails; checks are still answered from it.
	MaxStaleness Duration `yaml:"max_staleness"`
	// DecisionLog publishes every verdict served to kafka.decisions_topic; DecisionQueue bounds
	// the verdicts waiting for Kafka (beyond it they are dropped and counted, never waited for).
	DecisionLog   bool `yaml:"decision_log"`
	DecisionQueue int  `yaml:"decision_queue"`
	// ShutdownDelay is how long a node told to stop (SIGTERM) keeps serving with /readyz failing
	// before it closes its listener and drains: the time a load balancer needs to notice and
	// send the checks elsewhere. 0: the listener closes at once.
	ShutdownDelay Duration `yaml:"shutdown_delay"`
	// MaxConnAge is how long a client connection is kept alive: the first answer after it closes
	// the connection (Connection: close), so that a client's pooled connections, which a layer-4
	// balancer (a Kubernetes Service) pins to one node for as long as they live, spread over the
	// nodes added since. 0: kept for as long as they are used.
	MaxConnAge Duration `yaml:"max_conn_age"`
}

// ScoringConfig is the scorer's data and rules; package scoring's Config (windows,
// max_entries_per_key) is embedded.
type ScoringConfig struct {
	scoring.Config `yaml:",inline"`
	Rules          string   `yaml:"rules"`
	ReloadInterval Duration `yaml:"reload_interval"`
	Segments       string   `yaml:"segments"`
	Lists          string   `yaml:"lists"`
	Provinces      string   `yaml:"provinces"`
	GeoCity        string   `yaml:"geo_city"`
	GeoASN         string   `yaml:"geo_asn"`
	IDCList        string   `yaml:"idc_list"`
	IDCASNs        string   `yaml:"idc_asns"`
	MobileNetworks string   `yaml:"mobile_networks"`
	Ported         string   `yaml:"ported"`
	PhoneHashKey   string   `yaml:"phone_hash_key"`
	Replay         bool     `yaml:"replay"`
	// FeedWait bounds how long a scorer waits, before scoring a batch, for its full-state feed to
	// apply every partition up to the batch's time.
	FeedWait Duration `yaml:"feed_wait"`
	// FeedSkew is how far apart messages of one time may reach different partitions: a scorer
	// trusts an idle partition to hold nothing older than a batch only that long after the batch.
	FeedSkew Duration `yaml:"feed_skew"`
	// SnapshotDir keeps snapshots of the feature state so a restart replays only what came after
	// the newest one; "" = no snapshots (every start replays the retention window).
	SnapshotDir      string   `yaml:"snapshot_dir"`
	SnapshotInterval Duration `yaml:"snapshot_interval"`
}

// LogConfig is the logger.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default is the configuration for a local single-node setup (deploy/local ports).
// Each package's section starts from its own DefaultConfig.
func Default() Config {
	kafka := consumers.DefaultConfig()
	kafka.Brokers = []string{"127.0.0.1:19092"}
	return Config{
		Kafka: KafkaConfig{
			Config: kafka, EventsTopic: "verify.events", ScoresTopic: "risk.scores",
			DLQTopic: "verify.events.dlq", DecisionsTopic: "risk.decisions", DecisionsGroup: "riskflow-decisions", ListsTopic: "risk.lists", Partitions: 4, ScorerGroup: "riskflow-scorer",
			ArchiverGroup: "riskflow-archiver", ScorerBatch: 2000,
			StallAfter: Duration(30 * time.Second),
		},
		ClickHouse: ClickHouseConfig{
			// Archiver batches, measured with `riskflow bench` (README, Performance): 100,000 records
			// per INSERT while catching up (fewer, larger parts and rollup states for the server to
			// merge), and a batch goes out at most 500 ms after its first record once caught up.
			Config: chsink.DefaultConfig(), BatchSize: 100_000, FlushInterval: Duration(500 * time.Millisecond),
			BreakerFailures: 3, BreakerOpenFor: Duration(5 * time.Second),
		},
		API: APIConfig{Config: api.DefaultConfig(), Listen: "127.0.0.1:8080", ConsoleApprovals: 1, ReadyMaxLag: 1000, MaxStaleness: Duration(time.Minute), MaxConnAge: Duration(5 * time.Minute),
			DecisionLog: true, DecisionQueue: 10_000},
		Scoring: ScoringConfig{
			Config:         scoring.DefaultConfig(), // windows 1m, 10m, 1h, 24h; 1024 entries per key
			ReloadInterval: Duration(5 * time.Second), Replay: true, FeedWait: Duration(2 * time.Second),
			FeedSkew:         Duration(consumers.DefaultSkew),
			SnapshotInterval: Duration(5 * time.Minute),
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// namedByPhone refuses a topic, group or database name holding a phone number (unechoed): such a
// name is written where riskflow's masks do not reach — Kafka's and ClickHouse's metadata, the
// snapshot files' names on disk, /metrics labels.
const namedByPhone = "holds a phone number: the name is written in plaintext in Kafka's or ClickHouse's metadata, snapshot file names and /metrics labels; choose another"

// Validate reports every problem at once, each naming the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, fmt.Errorf(key+": "+format, args...)) }
	section := func(name string, err error) {
		if err == nil {
			return
		}
		list := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		for _, e := range list {
			errs = append(errs, fmt.Errorf("%s.%w", name, e))
		}
	}
	// The packages' own keys, checked by the packages.
	section("kafka", c.Kafka.Config.Validate())
	section("api", c.API.Config.Validate())
	section("scoring", c.Scoring.Config.Validate())
	if c.ClickHouse.Addr != "" {
		section("clickhouse", c.ClickHouse.Config.Validate())
	}
	for _, b := range c.Kafka.DecisionsBrokers {
		if !hostPort(b) {
			bad("kafka.decisions_brokers", "%s is not host:port", schemas.Excerpt(b, 64))
		}
	}
	for _, t := range []struct{ k, v string }{{"kafka.events_topic", c.Kafka.EventsTopic}, {"kafka.scores_topic", c.Kafka.ScoresTopic}, {"kafka.dlq_topic", c.Kafka.DLQTopic}, {"kafka.decisions_topic", c.Kafka.DecisionsTopic}, {"kafka.decisions_group", c.Kafka.DecisionsGroup}, {"kafka.lists_topic", c.Kafka.ListsTopic}, {"kafka.scorer_group", c.Kafka.ScorerGroup}, {"kafka.archiver_group", c.Kafka.ArchiverGroup}} {
		if t.v == "" {
			bad(t.k, "must not be empty")
		}
		if schemas.ContainsPhone(t.v) {
			bad(t.k, namedByPhone)
		}
	}
	// Each stream its own topic, each consumer its own group: decisions written to verify.events
	// were dead-lettered by the scorers as events, and their archiver read events as decisions.
	for _, names := range [][]struct{ k, v string }{
		{{"kafka.events_topic", c.Kafka.EventsTopic}, {"kafka.scores_topic", c.Kafka.ScoresTopic}, {"kafka.dlq_topic", c.Kafka.DLQTopic},
			{"kafka.decisions_topic", c.Kafka.DecisionsTopic}, {"kafka.lists_topic", c.Kafka.ListsTopic}},
		{{"kafka.scorer_group", c.Kafka.ScorerGroup}, {"kafka.archiver_group", c.Kafka.ArchiverGroup}, {"kafka.decisions_group", c.Kafka.DecisionsGroup}},
	} {
		for i, a := range names {
			for _, b := range names[:i] {
				if a.v != "" && a.v == b.v {
					bad(a.k, "%s is also %s: each needs its own", schemas.Excerpt(a.v, 64), b.k)
				}
			}
		}
	}
	if c.Kafka.Partitions < 1 || c.Kafka.Partitions > 1024 {
		bad("kafka.partitions", "%d is outside 1..1024", c.Kafka.Partitions)
	}
	if c.Kafka.ScorerBatch < 1 || c.Kafka.ScorerBatch > 10000 {
		bad("kafka.scorer_batch", "%d is outside 1..10000", c.Kafka.ScorerBatch)
	}
	if c.Kafka.StallAfter.D() <= 0 {
		bad("kafka.stall_after", "%s: must be positive", c.Kafka.StallAfter.D())
	}
	if c.ClickHouse.Addr != "" {
		if c.ClickHouse.Database == "" {
			bad("clickhouse.database", "must not be empty")
		}
		if schemas.ContainsPhone(c.ClickHouse.Database) {
			bad("clickhouse.database", namedByPhone)
		}
		if c.ClickHouse.BatchSize < 1 {
			bad("clickhouse.batch_size", "must be at least 1")
		}
		if c.ClickHouse.BreakerFailures < 1 {
			bad("clickhouse.breaker_failures", "must be at least 1")
		}
		if c.ClickHouse.FlushInterval.D() <= 0 {
			bad("clickhouse.flush_interval", "%s: must be positive", c.ClickHouse.FlushInterval.D())
		}
		if c.ClickHouse.BreakerOpenFor.D() <= 0 {
			bad("clickhouse.breaker_open_for", "%s: must be positive", c.ClickHouse.BreakerOpenFor.D())
		}
	}
	if c.API.Listen != "" && !hostPort(c.API.Listen) {
		bad("api.listen", "%s is not host:port (e.g. 127.0.0.1:8080 or :8080)", schemas.Excerpt(c.API.Listen, 64))
	}
	if c.Ops.Listen != "" && !hostPort(c.Ops.Listen) {
		bad("ops.listen", "%s is not host:port (e.g. 0.0.0.0:9464)", schemas.Excerpt(c.Ops.Listen, 64))
	}
	if c.API.MaxStaleness.D() <= 0 {
		bad("api.max_staleness", "%s: must be positive", c.API.MaxStaleness.D())
	}
	if c.API.MaxConnAge.D() < 0 || c.API.MaxConnAge.D() > 24*time.Hour {
		bad("api.max_conn_age", "%s is outside 0..24h", c.API.MaxConnAge.D())
	}
	if c.API.ShutdownDelay.D() < 0 || c.API.ShutdownDelay.D() > 5*time.Minute {
		bad("api.shutdown_delay", "%s is outside 0..5m", c.API.ShutdownDelay.D())
	}
	if c.API.ReadyMaxLag < 0 {
		bad("api.ready_max_lag", "must not be negative")
	}
	if c.API.DecisionQueue < 1 || c.API.DecisionQueue > 10_000_000 {
		bad("api.decision_queue", "%d is outside 1..10000000", c.API.DecisionQueue)
	}
	if c.API.ConsoleApprovals < 1 || c.API.ConsoleApprovals > 2 {
		bad("api.console_approvals", "%d is not 1 or 2", c.API.ConsoleApprovals)
	} else if c.API.ConsoleApprovals == 2 && len(c.API.AdminKeys) == 1 {
		// The one admin's requests would wait for ever: no pack could be promoted or rolled back
		// through the console or the API (both refuse one admin alone).
		bad("api.console_approvals", "2 takes a second admin to approve every promotion and rollback, and api.admin_keys names one admin: name another, or set 1")
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		bad("api.tls_cert", "tls_cert and tls_key go together")
	}
	for _, k := range slices.Sorted(maps.Keys(c.API.AdminKeys)) {
		if k == "" || c.API.AdminKeys[k] == "" {
			bad("api.admin_keys", "admin name and secret must both be non-empty")
		} else if why := api.SecretFlaw(c.API.AdminKeys[k]); why != "" && schemas.CheckID("admin", k, schemas.MaxAppIDLen) == nil {
			bad("api.admin_keys", "the secret of %s %s", schemas.Excerpt(k, 40), why)
		}
		if _, clash := c.API.Keys[k]; clash {
			bad("api.admin_keys", "%s is also an app key: keep admin and app credentials apart", schemas.Excerpt(k, 64))
		}
		// An admin name is recorded in plaintext as who labelled, loaded a pack or listed an
		// entry (labels.labeled_by, rule_versions.loaded_by, rule_loads, console_state, the lists
		// topic): checked as label --by is, and as an app key is (a phone number, a control
		// character, blank). The name is not shown: it may be the number.
		if err := schemas.CheckID("admin", k, schemas.MaxAppIDLen); k != "" && err != nil {
			fe, _ := schemas.AsFieldError(err)
			bad("api.admin_keys", "an admin name %s: it is recorded as who labelled, loaded a pack or listed an entry", fe.Reason)
		} else if strings.Contains(k, ":") {
			// HTTP Basic ends the user name at the first colon (RFC 7617): the admin could log
			// into the console and have every /v1/rules and /v1/admin request refused.
			bad("api.admin_keys", "admin name %s holds ':', which HTTP Basic cannot carry in a user name (its /v1/rules and /v1/admin requests would all be refused)", schemas.Excerpt(k, 64))
		}
	}
	if c.Scoring.FeedWait.D() <= 0 || c.Scoring.FeedWait.D() > time.Minute {
		bad("scoring.feed_wait", "%s is outside (0, 1m]", c.Scoring.FeedWait.D())
	}
	if c.Scoring.FeedSkew.D() < 0 || c.Scoring.FeedSkew.D() > c.Scoring.FeedWait.D() {
		bad("scoring.feed_skew", "%s is outside [0, scoring.feed_wait]", c.Scoring.FeedSkew.D())
	}
	if c.Scoring.ReloadInterval.D() <= 0 {
		// The pack and lists files are polled with a ticker, which panics on 0 (the node crashed
		// at start with scoring.lists set).
		bad("scoring.reload_interval", "%s: must be positive", c.Scoring.ReloadInterval.D())
	}
	if c.Scoring.SnapshotInterval.D() < time.Second {
		bad("scoring.snapshot_interval", "%s is below 1s", c.Scoring.SnapshotInterval.D())
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%s is not debug, info, warn or error", schemas.Excerpt(c.Log.Level, 64))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%s is not text or json", schemas.Excerpt(c.Log.Format, 64))
	}
	// Counts and values are shown as given (kafka.partitions: 13812348000 is outside 1..1024);
	// one that reads as a phone number is masked, as in every error riskflow prints.
	for i, err := range errs {
		errs[i] = maskedError(err)
	}
	return errors.Join(errs...)
}

// maskedError is err with a phone number its message shows masked (err itself when it shows none).
func maskedError(err error) error {
	if msg := err.Error(); schemas.MaskPhones(msg) != msg {
		return errors.New(schemas.MaskPhones(msg))
	}
	return err
}

// hostPort reports whether s is host:port with a numeric port (the host may be empty: ":8080").
func hostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// scriptEnv are RISKFLOW_ variables that are not configuration keys: read by flags (config file,
// roles), by the deploy/local scripts (ports, directories), by the Makefile and by tests. Any
// other RISKFLOW_ variable that is not a key is an error, as an unknown YAML key is: a misspelled
// RISKFLOW_API_KESY must not leave the API without its keys unnoticed.
var scriptEnv = map[string]bool{
	"RISKFLOW_CONFIG": true, "RISKFLOW_ROLES": true,
	"RISKFLOW_CACHE_DIR": true, "RISKFLOW_LOCAL_DIR": true, "RISKFLOW_CHDB_VENV": true,
	"RISKFLOW_KAFKA_PORT": true, "RISKFLOW_KAFKA_CONTROLLER_PORT": true, "RISKFLOW_KAFKA_START_TIMEOUT": true, "RISKFLOW_KAFKA_CPU": true,
	"RISKFLOW_CLICKHOUSE_PORT": true, "RISKFLOW_CLICKHOUSE_HTTP_PORT": true, "RISKFLOW_CLICKHOUSE_HTTP": true,
	"RISKFLOW_GEO_CITY": true, "RISKFLOW_GEO_ASN": true, "RISKFLOW_BACKTEST_OLD_PACK": true, "RISKFLOW_BENCH_EVENTS": true, "RISKFLOW_BACKTEST_EVENTS": true, "RISKFLOW_CROSS_DUMP": true, "RISKFLOW_CROSS_DATABASE": true, "RISKFLOW_CROSS_NOW": true,
	"RISKFLOW_MEM_PHONES":       true,                                      // scoring/features memory test
	"RISKFLOW_BENCH_CONSOLE_DB": true, "RISKFLOW_BENCH_CONSOLE_ROWS": true, // make console-bench (README: Console, speed)
	"RISKFLOW_CHROMIUM": true, "RISKFLOW_CONSOLE_SCREENSHOTS": true, // the console's browser test (deploy/local/chromium.sh, make browser)
}

// LoadConfig reads path (if non-empty) over Default(), then env vars, then --set overrides.
// Every error names the key (and the file line or the variable) it is about.
func LoadConfig(path string, environ []string, sets []string) (Config, error) {
	c, _, err := loadConfig(path, environ, sets)
	return c, err
}

// maxConfigBytes bounds a configuration file and a file named by a RISKFLOW_*_FILE variable.
const maxConfigBytes = 16 << 20

// readConfigFile reads path, refusing past maxConfigBytes: --config /dev/zero (or a _FILE variable
// naming it) was read until the kernel killed the process, at 12 GB.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err // a *PathError: "read PATH: …"
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("%s holds more than %d MiB: not a riskflow configuration", path, maxConfigBytes>>20)
	}
	return b, nil
}

// loadConfig is LoadConfig that also says where each key it set came from ("c.yaml line 4",
// "env RISKFLOW_KAFKA_PARTITIONS", "--set"), so that Validate's errors can name it too.
func loadConfig(path string, environ []string, sets []string) (Config, map[string]string, error) {
	c := Default()
	keys := configKeys()
	origins := map[string]string{}
	if path != "" {
		b, err := readConfigFile(path)
		if err != nil {
			return c, origins, fmt.Errorf("read config: %w", err)
		}
		doc, err := parseConfigYAML(b)
		if err != nil {
			return c, origins, fmt.Errorf("config %s: %w", path, err)
		}
		if err := keys.checkYAML(doc); err != nil {
			return c, origins, fmt.Errorf("config %s: %w", path, err)
		}
		if err := keys.decodeYAML(doc, &c); err != nil {
			return c, origins, fmt.Errorf("config %s: %w", path, err)
		}
		for key, line := range yamlKeyLines(doc) {
			origins[key] = fmt.Sprintf("%s line %d", path, line)
		}
	}
	if err := keys.applyEnv(&c, environ, origins); err != nil {
		return c, origins, err
	}
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		if !ok {
			// Only the key-like start is shown: "api.keys:app1:secret1" holds a secret after it.
			return c, origins, fmt.Errorf("--set %s…: expected section.key=value (no \"=\" given; the rest is not shown)", keyPrefix(s))
		}
		if _, known := keys.paths[key]; !known {
			if near := keys.suggestPath(key); near != "" {
				return c, origins, fmt.Errorf("--set %s: unknown key (did you mean %s?)", key, near)
			}
			return c, origins, fmt.Errorf("--set %s: unknown key (known: %s)", key, strings.Join(keys.sorted(), ", "))
		}
		if err := setKey(&c, key, val); err != nil {
			return c, origins, fmt.Errorf("--set %s: %w", key, err)
		}
		origins[key] = "--set"
	}
	return c, origins, nil
}

// keyPrefix is the start of s that looks like a key (letters, digits, _ and .), at most 64 bytes.
func keyPrefix(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.')
	})
	if i < 0 {
		i = len(s)
	}
	return s[:min(i, 64)]
}

// applyEnv sets the keys named by RISKFLOW_<SECTION>_<KEY> variables, or read from the file named
// by RISKFLOW_<SECTION>_<KEY>_FILE (secrets mounted as files; one trailing newline is dropped). A
// RISKFLOW_ variable that is neither, nor one of scriptEnv, is an error naming the closest key.
func (k keyIndex) applyEnv(c *Config, environ []string, origins map[string]string) error {
	var errs []error
	set := map[string]string{} // key → the variable that set it
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "RISKFLOW_") || scriptEnv[name] {
			continue
		}
		origin := "env " + name
		path, ok := k.byEnv[name]
		if !ok {
			base, isFile := strings.CutSuffix(name, "_FILE")
			if path, ok = k.byEnv[base]; !ok || !isFile {
				errs = append(errs, fmt.Errorf("env %s: not a configuration key%s", name, k.suggestEnv(name)))
				continue
			}
			file := val
			b, err := readConfigFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("env %s (%s): %w", name, path, err))
				continue
			}
			// A byte-order mark (Notepad's "UTF-8") is not the value's: it had become part of the
			// first app key of a keys file (that app's every request refused) or of the phone-hash
			// key (every number hashed unlike the other nodes').
			val = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(string(b), "\ufeff"), "\n"), "\r")
			if val == "" {
				origin = fmt.Sprintf("env %s: %s%s", name, schemas.MaskPhones(file), emptyFileNote)
			}
		}
		if other, dup := set[path]; dup {
			errs = append(errs, fmt.Errorf("env %s: %s is also set by %s; set one", name, path, other))
			continue
		}
		set[path] = name
		origins[path] = origin
		if err := setKey(c, path, val); err != nil {
			errs = append(errs, fmt.Errorf("env %s (%s): %w", name, path, err))
		}
	}
	return errors.Join(errs...)
}

// suggestEnv names the key variable closest to a misspelled one, if any is close.
func (k keyIndex) suggestEnv(name string) string {
	best, bestD := "", 4
	for env := range k.byEnv {
		if d := editDistance(name, env); d < bestD || d == bestD && env < best {
			best, bestD = env, d
		}
	}
	if best == "" {
		return " (RISKFLOW_<SECTION>_<KEY>, e.g. RISKFLOW_KAFKA_BROKERS; see riskflow --help)"
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// suggestPath names the key closest to a misspelled section.key, or "" when none is close.
func (k keyIndex) suggestPath(key string) string {
	best, bestD := "", 3
	for path := range k.paths {
		if d := editDistance(key, path); d < bestD || d == bestD && path < best {
			best, bestD = path, d
		}
	}
	return best
}

// yamlKeyLines maps each section.key of a config document to its line.
func yamlKeyLines(doc *yaml.Node) map[string]int {
	lines := map[string]int{}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return lines
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		sec, body := doc.Content[i], doc.Content[i+1]
		if body.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(body.Content); j += 2 {
			lines[sec.Value+"."+body.Content[j].Value] = body.Content[j].Line
		}
	}
	return lines
}

// emptyFileNote ends the origin of a key set from an empty RISKFLOW_*_FILE file ("env
// RISKFLOW_API_KEYS_FILE: /run/secrets/keys is an empty file"): an empty value is a setting like
// any other (a ClickHouse password may be ""), but a role that needs the key said it was
// "required (RISKFLOW_API_KEYS)", naming a variable the operator had not set, not the file
// that was empty (withEmptyFiles).
const emptyFileNote = " is an empty file"

// withEmptyFiles adds to each line of err that starts with a key set from an empty file the
// variable and the file that set it, as withOrigins does; err stays a configError if it was one.
func withEmptyFiles(err error, origins map[string]string) error {
	empty := map[string]string{}
	for key, from := range origins {
		if strings.HasSuffix(from, emptyFileNote) {
			empty[key] = from
		}
	}
	if err == nil || len(empty) == 0 {
		return err
	}
	if errors.As(err, new(configError)) {
		return configError{withOrigins(err, empty)}
	}
	return withOrigins(err, empty)
}

// withOrigins adds to each line of a validation error that starts with a key the place that set
// it: "kafka.partitions: -1 is outside 1..1024 (c.yaml line 2)". A key left at its default, or a
// line about no single key, is left as it is.
func withOrigins(err error, origins map[string]string) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		key, _, ok := strings.Cut(l, ": ")
		if from, set := origins[key]; ok && set {
			lines[i] = l + " (" + from + ")"
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeYAML decodes each key of a checked config document into its field, so that a value of the
// wrong shape is reported with its key and line ("kafka.brokers: expected a list") rather than
// with Go type names.
func (k keyIndex) decodeYAML(doc *yaml.Node, c *Config) error {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	var errs []error
	for i := 0; i+1 < len(doc.Content); i += 2 {
		sec, body := doc.Content[i], doc.Content[i+1]
		if body.Kind != yaml.MappingNode {
			continue // "kafka:" alone (checkYAML refused other shapes)
		}
		for j := 0; j+1 < len(body.Content); j += 2 {
			key, val := body.Content[j], body.Content[j+1]
			path := sec.Value + "." + key.Value
			f := k.field(c, path)
			if f.Kind() == reflect.Slice && isDuration(f.Type().Elem()) {
				// Parsed here: yaml.v3 would read a bare 5 as 5 ns.
				if val.Kind != yaml.SequenceNode {
					errs = append(errs, fmt.Errorf("line %d: %s: %s", val.Line, path, yamlValueError(f.Type(), val, nil)))
					continue
				}
				out := reflect.MakeSlice(f.Type(), len(val.Content), len(val.Content))
				bad := false
				for i, e := range val.Content {
					d, err := time.ParseDuration(e.Value)
					if e.Kind != yaml.ScalarNode || err != nil {
						errs = append(errs, fmt.Errorf("line %d: %s: %s", e.Line, path, yamlValueError(f.Type(), val, err)))
						bad = true
						break
					}
					out.Index(i).SetInt(int64(d))
				}
				if !bad {
					f.Set(out)
				}
				continue
			}
			if isDuration(f.Type()) {
				// Parsed here for both duration types: yaml.v3 would read a bare 5 as 5 ns.
				d, err := time.ParseDuration(val.Value)
				if val.Kind != yaml.ScalarNode || err != nil {
					errs = append(errs, fmt.Errorf("line %d: %s: %s", val.Line, path, yamlValueError(f.Type(), val, err)))
					continue
				}
				f.SetInt(int64(d))
				continue
			}
			if (f.Kind() == reflect.Int || f.Kind() == reflect.Int64) && val.ShortTag() != "!!int" {
				// yaml.v3 truncates 1.5 into an int; a count given as a fraction is a mistake.
				errs = append(errs, fmt.Errorf("line %d: %s: %s", val.Line, path, yamlValueError(f.Type(), val, nil)))
				continue
			}
			if f.Kind() == reflect.Map && f.Type().Elem().Kind() == reflect.Struct && val.Kind == yaml.MappingNode {
				// yaml.v3 skips a key the entry's struct lacks: a misspelt override was ignored.
				if err := checkEntries(path, val, f.Type().Elem()); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if f.Kind() == reflect.Map && f.Type().Elem().Kind() == reflect.String && val.Kind == yaml.MappingNode {
				// api.keys, admin_keys, previous_keys: an entry whose secret is a list or a map is
				// named, without its value; the decoder's error for the whole map named no entry.
				if err := checkStringEntries(path, val); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if err := val.Decode(f.Addr().Interface()); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %s: %s", val.Line, path, yamlValueError(f.Type(), val, err)))
			}
		}
	}
	return errors.Join(errs...)
}

// checkStringEntries names every entry of a map of strings (name → secret) whose value is not a
// single value.
func checkStringEntries(path string, m *yaml.Node) error {
	var errs []error
	for i := 0; i+1 < len(m.Content); i += 2 {
		if v := m.Content[i+1]; v.Kind != yaml.ScalarNode && v.Kind != yaml.AliasNode {
			errs = append(errs, fmt.Errorf("line %d: %s: expected a string, got %s", v.Line, shownKey(path+"."+m.Content[i].Value), yamlKind(v)))
		}
	}
	return errors.Join(errs...)
}

// checkEntries names every key of a map-of-settings value (api.app_limits: app → its rates) that
// the entry's struct t has no yaml key for, that is given twice, or whose value is not of its
// type, and every entry that is not keys.
func checkEntries(path string, m *yaml.Node, t reflect.Type) error {
	var known []string
	types := map[string]reflect.Type{} // key → what its value decodes into
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			known = append(known, name)
			ft := t.Field(i).Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			types[name] = ft
		}
	}
	slices.Sort(known)
	errs := []error{duplicateKeys(m, path+".")}
	for i := 0; i+1 < len(m.Content); i += 2 {
		entry, body := m.Content[i], m.Content[i+1]
		name := path + "." + entry.Value
		if body.Kind != yaml.MappingNode {
			if body.Kind != yaml.ScalarNode || body.Tag != "!!null" {
				errs = append(errs, fmt.Errorf("line %d: %s: expected keys (%s), got %s", body.Line, shownKey(name), strings.Join(known, ", "), yamlKind(body)))
			}
			continue
		}
		errs = append(errs, duplicateKeys(body, name+"."))
		for j := 0; j+1 < len(body.Content); j += 2 {
			key, val := body.Content[j], body.Content[j+1]
			ft, ok := types[key.Value]
			if !ok {
				errs = append(errs, fmt.Errorf("line %d: %s: unknown key (known: %s)", key.Line, shownKey(name+"."+key.Value), strings.Join(known, ", ")))
				continue
			}
			// A value of the wrong kind ("20k", a list) is named with its key: the decoder's
			// error for the whole map named neither the entry nor the rate.
			if err := val.Decode(reflect.New(ft).Interface()); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %s: %s", val.Line, shownKey(name+"."+key.Value), yamlValueError(ft, val, err)))
			}
		}
	}
	return errors.Join(errs...)
}

// yamlValueError says what a key takes and what it was given.
func yamlValueError(t reflect.Type, n *yaml.Node, err error) string {
	got := yamlKind(n)
	switch {
	case isDuration(t):
		return fmt.Sprintf("%s is not a duration like 10ms, 5s, 1h", got)
	case t.Kind() == reflect.Slice && isDuration(t.Elem()):
		if n.Kind == yaml.SequenceNode {
			for _, e := range n.Content {
				if _, perr := time.ParseDuration(e.Value); perr != nil {
					return fmt.Sprintf("%s is not a duration like 10ms, 5s, 1h", schemas.Excerpt(e.Value, 64))
				}
			}
		}
		return fmt.Sprintf("expected a list of durations like [1m, 1h], got %s", got)
	case t.Kind() == reflect.Slice:
		return fmt.Sprintf("expected a list like [a, b] (or one \"- item\" per line), got %s", got)
	case t.Kind() == reflect.Map:
		if n.Kind == yaml.ScalarNode {
			// Not quoted: the maps are api.keys and api.admin_keys, and "keys: app1:secret1" on one
			// line is a single value holding a secret.
			return "expected key: value pairs (one \"name: secret\" per line), got a single value"
		}
		return fmt.Sprintf("expected key: value pairs, got %s", got)
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return fmt.Sprintf("%s is not an integer", got)
	case t.Kind() == reflect.Float64:
		return fmt.Sprintf("%s is not a number", got)
	case t.Kind() == reflect.Bool:
		return fmt.Sprintf("%s is not true or false", got)
	case t.Kind() == reflect.String:
		return fmt.Sprintf("expected a string, got %s", got)
	}
	return err.Error()
}

type keyIndex struct {
	paths map[string][]int // "kafka.brokers" → field index path
	byEnv map[string]string
}

// parseConfigYAML parses a config file: one YAML document. A second document ("---") would
// otherwise be ignored without a word, its settings lost.
func parseConfigYAML(b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	// yaml.v3's messages may quote the file: an alias's name ("unknown anchor 'b138-1234-5678'
	// referenced").
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, tabHint(b, maskedError(err))
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, fmt.Errorf("line %d: a second YAML document (after ---): the configuration is one document", next.Line)
	case !errors.Is(err, io.EOF):
		return nil, maskedError(err)
	}
	return &doc, nil
}

// yamlErrLine finds the line a yaml.v3 syntax error names ("yaml: line 2: found character …").
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): `)

// tabHint adds to a YAML syntax error on a line indented with a tab what yaml.v3 leaves unsaid
// ("found character that cannot start any token"): YAML indents with spaces only.
func tabHint(b []byte, err error) error {
	m := yamlErrLine.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	n, _ := strconv.Atoi(m[1])
	lines := bytes.Split(b, []byte("\n"))
	if n < 1 || n > len(lines) {
		return err
	}
	indent := lines[n-1][:len(lines[n-1])-len(bytes.TrimLeft(lines[n-1], " \t"))]
	if bytes.IndexByte(indent, '\t') < 0 {
		return err
	}
	return fmt.Errorf("%w (line %d is indented with a tab: YAML indents with spaces only)", err, n)
}

// checkYAML names every key of a config document that is not a config key, or that is given
// twice, as section.key with its line (yaml.v3's own message names Go types, not keys), and a
// document that is not sections of keys.
func (k keyIndex) checkYAML(doc *yaml.Node) error {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == 0 || (doc.Kind == yaml.ScalarNode && doc.Tag == "!!null") {
		return nil // empty file, or comments only
	}
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected sections of keys (kafka:, api:, scoring:, …), got %s", doc.Line, yamlKind(doc))
	}
	sections := map[string]bool{}
	for p := range k.paths {
		sec, _, _ := strings.Cut(p, ".")
		sections[sec] = true
	}
	errs := []error{duplicateKeys(doc, "")}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		sec, body := doc.Content[i], doc.Content[i+1]
		if !sections[sec.Value] {
			errs = append(errs, fmt.Errorf("line %d: %s: unknown section (known: %s)", sec.Line, shownKey(sec.Value), strings.Join(sortedKeys(sections), ", ")))
			continue
		}
		if body.Kind != yaml.MappingNode {
			if body.Kind != yaml.ScalarNode || body.Tag != "!!null" { // "kafka:" alone is fine
				errs = append(errs, fmt.Errorf("line %d: %s: expected section keys (%s.key: value), got %s", body.Line, sec.Value, sec.Value, yamlKind(body)))
			}
			continue
		}
		for j := 0; j+1 < len(body.Content); j += 2 {
			key := body.Content[j]
			path := sec.Value + "." + key.Value
			if _, ok := k.paths[path]; !ok {
				if near := k.suggestPath(path); near != "" {
					errs = append(errs, fmt.Errorf("line %d: %s: unknown key (did you mean %s?)", key.Line, shownKey(path), near))
					continue
				}
				errs = append(errs, fmt.Errorf("line %d: %s: unknown key (known in %s: %s)", key.Line, shownKey(path), sec.Value, strings.Join(k.section(sec.Value), ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// duplicateKeys names every section, key in a section, and name in a map key (an app of api.keys,
// an admin of api.admin_keys) given twice: only the last would count, and which one an operator
// meant is not for riskflow to guess. The values (secrets) are not shown.
func duplicateKeys(m *yaml.Node, prefix string) error {
	var errs []error
	first := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		name := prefix + key.Value
		if line, seen := first[key.Value]; seen {
			errs = append(errs, fmt.Errorf("line %d: %s: given twice (first at line %d)", key.Line, shownKey(name), line))
		} else {
			first[key.Value] = key.Line
		}
		if val.Kind == yaml.MappingNode {
			errs = append(errs, duplicateKeys(val, name+"."))
		}
	}
	return errors.Join(errs...)
}

// shownKey is a key of a config file as an error shows it: as it is when it looks like a key
// (a letter, then letters, digits, '_', '.', '-'), quoted with escapes otherwise — a key of the
// file may hold a control character or a second line, and one starting with a digit would join
// the line number before it ("line 1: 0000000000" reads as a phone number) — and a phone number
// in it masked either way.
func shownKey(s string) string {
	if len(s) > 0 && len(s) <= 64 && unicode.IsLetter(rune(s[0])) && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == "" {
		return schemas.MaskPhones(s)
	}
	return schemas.Excerpt(s, 64)
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return schemas.Excerpt(n.Value, 64)
	case yaml.MappingNode:
		return "a map"
	}
	return "something else"
}

// section lists the keys of one section, without the section prefix.
func (k keyIndex) section(sec string) []string {
	var out []string
	for _, p := range k.sorted() {
		if rest, ok := strings.CutPrefix(p, sec+"."); ok {
			out = append(out, rest)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (k keyIndex) sorted() []string {
	out := make([]string, 0, len(k.paths))
	for p := range k.paths {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// configKeys lists every leaf key of Config with its env var name. A section's embedded package
// Config, and a struct inside it, tagged yaml ",inline" contribute their keys to the section;
// fields tagged yaml:"-" are not keys.
func configKeys() keyIndex {
	k := keyIndex{paths: map[string][]int{}, byEnv: map[string]string{}}
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		sec := t.Field(i)
		var walk func(st reflect.Type, idx []int)
		walk = func(st reflect.Type, idx []int) {
			for j := 0; j < st.NumField(); j++ {
				f := st.Field(j)
				name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				at := append(append([]int(nil), idx...), j)
				if opts == "inline" && f.Type.Kind() == reflect.Struct {
					walk(f.Type, at)
					continue
				}
				if name == "" || name == "-" || !f.IsExported() {
					continue
				}
				path := sec.Tag.Get("yaml") + "." + name
				k.paths[path] = at
				k.byEnv["RISKFLOW_"+strings.ToUpper(strings.ReplaceAll(path, ".", "_"))] = path
			}
		}
		walk(sec.Type, []int{i})
	}
	return k
}

var (
	durationType    = reflect.TypeOf(Duration(0))
	stdDurationType = reflect.TypeOf(time.Duration(0)) // the packages' own configs
)

func isDuration(t reflect.Type) bool { return t == durationType || t == stdDurationType }

// field is the settable field of c that path names.
func (k keyIndex) field(c *Config, path string) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.paths[path])
}

// setKey parses val into the field named by path. Lists and maps take three forms: JSON ([..],
// {..}), one entry per line (what a *_FILE variable's file holds; commas are then part of the
// values), or comma-separated on one line (lists a,b; maps k:v,k:v).
func setKey(c *Config, path, val string) error {
	f := configKeys().field(c, path)
	val = strings.TrimSpace(val)
	switch {
	case isDuration(f.Type()):
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%s is not a duration like 10ms, 5s, 1h", schemas.Excerpt(val, 64))
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(val)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return fmt.Errorf("%s is not an integer", schemas.Excerpt(val, 64))
		}
		f.SetInt(n)
	case f.Kind() == reflect.Float64:
		n, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return fmt.Errorf("%s is not a number", schemas.Excerpt(val, 64))
		}
		f.SetFloat(n)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%s is not true or false", schemas.Excerpt(val, 64))
		}
		f.SetBool(b)
	case f.Kind() == reflect.Slice && isDuration(f.Type().Elem()):
		parts := splitEntries(val)
		out := reflect.MakeSlice(f.Type(), len(parts), len(parts))
		for i, p := range parts {
			d, err := time.ParseDuration(p)
			if err != nil {
				return fmt.Errorf("%s is not a duration", schemas.Excerpt(p, 64))
			}
			out.Index(i).SetInt(int64(d))
		}
		f.Set(out)
	case f.Kind() == reflect.Slice && strings.HasPrefix(val, "["):
		var out []string
		if err := json.Unmarshal([]byte(val), &out); err != nil {
			// Not the decoder's message ("cannot unmarshal number into Go value of type string"),
			// nor a byte of the value it would quote ("invalid character 's'").
			var te *json.UnmarshalTypeError
			var se *json.SyntaxError
			switch {
			case errors.As(err, &te):
				return fmt.Errorf("not a JSON list of strings: an entry is a JSON %s", te.Value)
			case errors.As(err, &se):
				return fmt.Errorf("not a JSON list of strings: invalid JSON at byte %d", se.Offset)
			}
			return errors.New(`not a JSON list of strings like ["a", "b"]`)
		}
		f.Set(reflect.ValueOf(out))
	case f.Kind() == reflect.Slice:
		f.Set(reflect.ValueOf(splitEntries(val)))
	case f.Kind() == reflect.Map && f.Type().Elem().Kind() == reflect.Struct:
		// api.app_limits: {"big":{"rate_per_app":20000}} — JSON, read as the YAML it also is, so
		// that the entries' keys are the file's; a key the entry lacks is an error.
		out := reflect.New(f.Type())
		dec := yaml.NewDecoder(strings.NewReader(val))
		dec.KnownFields(true)
		if err := dec.Decode(out.Interface()); err != nil {
			var doc yaml.Node
			if yerr := yaml.Unmarshal([]byte(val), &doc); yerr == nil && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
				if cerr := checkEntries(path, doc.Content[0], f.Type().Elem()); cerr != nil {
					return cerr
				}
			}
			return fmt.Errorf("not a JSON object of objects like {\"app\": {\"rate_per_app\": 100}}: %s", schemas.Excerpt(err.Error(), 200))
		}
		f.Set(out.Elem())
	case f.Kind() == reflect.Map && strings.HasPrefix(val, "{"):
		m := map[string]string{}
		if err := json.Unmarshal([]byte(val), &m); err != nil {
			// Not the decoder's message: "invalid character 's'" quotes a byte of the value, which
			// in api.keys is a secret's.
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("not a JSON object of strings: invalid JSON at byte %d", se.Offset)
			}
			return errors.New("not a JSON object of strings (name: secret, both strings)")
		}
		f.Set(reflect.ValueOf(m))
	case f.Kind() == reflect.Map:
		m := map[string]string{}
		entries := splitEntries(val)
		for i, p := range entries {
			k, v, ok := strings.Cut(p, ":")
			if !ok {
				// The entry is not shown: api.keys' "app1=secret1" or "app1secret1" holds a secret.
				return fmt.Errorf("entry %d of %d has no \":\": want key:value entries (app1:secret1,app2:secret2)", i+1, len(entries))
			}
			// "app1: secret1", as YAML writes an entry (and a keys file's lines are written): the
			// space is not the secret's, which had been " secret1" — every request of the app,
			// sending secret1, refused as a wrong secret.
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if _, dup := m[k]; dup {
				// "a:S1,a:S2" kept the last secret silently; which one was meant is not riskflow's
				// to guess (the secrets are not shown).
				return fmt.Errorf("entry %d of %d names %s again: each key once", i+1, len(entries), schemas.Excerpt(k, 40))
			}
			m[k] = v
		}
		f.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// splitEntries splits a list or map value: by lines when it has several, else by commas.
func splitEntries(s string) []string {
	if !strings.Contains(s, "\n") {
		return splitList(s)
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
