package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/riskflow/riskflow/schemas"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(tempDir(t), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() does not validate:\n%v", err)
	}
	// With ClickHouse on, the ClickHouse defaults validate too.
	c.ClickHouse.Addr = "127.0.0.1:19000"
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() with clickhouse.addr does not validate:\n%v", err)
	}
}

func TestLoadConfigNoSources(t *testing.T) {
	c, err := LoadConfig("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("no file, env or --set: %+v, want Default()", c)
	}
}

func TestLoadConfigYAML(t *testing.T) {
	p := writeFile(t, "riskflow.yaml", `
# comments are fine
kafka:
  brokers: [k1:9092, k2:9092]
  partitions: 12
  batch_timeout: 10ms
clickhouse:
  addr: 127.0.0.1:19000
  breaker_open_for: 30s
api:
  listen: 0.0.0.0:8080
  keys:
    app1: s1
    app2: "s:2"
  rate_per_app: 2000
scoring:
  windows: [1m, 1h]
  replay: false
log:
  format: json
`)
	c, err := LoadConfig(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("file config does not validate: %v", err)
	}
	d := Default()
	checks := []struct {
		key       string
		got, want any
	}{
		{"kafka.brokers", c.Kafka.Brokers, []string{"k1:9092", "k2:9092"}},
		{"kafka.partitions", c.Kafka.Partitions, 12},
		{"kafka.batch_timeout", c.Kafka.BatchTimeout, 10 * time.Millisecond},
		{"kafka.events_topic (default)", c.Kafka.EventsTopic, d.Kafka.EventsTopic},
		{"clickhouse.addr", c.ClickHouse.Addr, "127.0.0.1:19000"},
		{"clickhouse.breaker_open_for", c.ClickHouse.BreakerOpenFor.D(), 30 * time.Second},
		{"clickhouse.batch_size (default)", c.ClickHouse.BatchSize, d.ClickHouse.BatchSize},
		{"api.keys", c.API.Keys, map[string]string{"app1": "s1", "app2": "s:2"}},
		{"api.rate_per_app", c.API.RatePerApp, 2000.0},
		{"scoring.windows", c.Scoring.Windows, []time.Duration{time.Minute, time.Hour}},
		{"scoring.replay", c.Scoring.Replay, false},
		{"log.format", c.Log.Format, "json"},
		{"log.level (default)", c.Log.Level, "info"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
}

func TestLoadConfigEmptyFile(t *testing.T) {
	for _, content := range []string{"", "# nothing configured\n", "kafka:\n"} {
		c, err := LoadConfig(writeFile(t, "empty.yaml", content), nil, nil)
		if err != nil {
			t.Errorf("%q: %v", content, err)
			continue
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%q: %v", content, err)
		}
	}
}

// A configuration file saved with a byte-order mark and CRLF line ends (Notepad's "UTF-8") loads
// as without them, its keys' lines counted as written: as for a RISKFLOW_*_FILE file, the mark is
// not the first key's (yaml.v3 drops it; this pins that the loader relies on it rightly).
func TestLoadConfigFileWithABOM(t *testing.T) {
	p := writeFile(t, "bom.yaml", "\ufeffkafka:\r\n  brokers: [k9:9092]\r\n")
	_, origins, err := loadConfig(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origins["kafka.brokers"] != p+" line 2" {
		t.Errorf("kafka.brokers from a file with a BOM: origin %q, want line 2", origins["kafka.brokers"])
	}
	c, err := LoadConfig(writeFile(t, "bom2.yaml", "\ufeffkafka:\n  brokers: [k9:9092]\n"), nil, nil)
	if err != nil || !slices.Equal(c.Kafka.Brokers, []string{"k9:9092"}) {
		t.Errorf("kafka.brokers from a file with a BOM: %v, %v", c.Kafka.Brokers, err)
	}
	if _, err := LoadConfig(writeFile(t, "bom3.yaml", "\ufeffkafak:\n  brokers: [k9:9092]\n"), nil, nil); err == nil ||
		!strings.Contains(err.Error(), "line 1: kafak: unknown section") {
		t.Errorf("an unknown section after a BOM: %v, want it named without the mark", err)
	}
}

// A configuration file, or a file a RISKFLOW_*_FILE variable names, larger than any configuration
// is refused at 16 MiB, read no further: --config /dev/zero was read until the kernel killed the
// process at 12 GB.
func TestLoadConfigRefusesAnOversizedFile(t *testing.T) {
	big := writeFile(t, "big.yaml", "# "+strings.Repeat("x", maxConfigBytes)+"\n")
	want := big + " holds more than 16 MiB: not a riskflow configuration"
	if _, err := LoadConfig(big, nil, nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("--config: %v, want %q", err, want)
	}
	if _, err := LoadConfig("", []string{"RISKFLOW_SCORING_PHONE_HASH_KEY_FILE=" + big}, nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("_FILE: %v, want %q", err, want)
	}
}

// A directory given as the configuration file, or named by a RISKFLOW_*_FILE variable, is said to
// be one, its path once: it read "read config: read /tmp: read /tmp: is a directory".
func TestLoadConfigDirectory(t *testing.T) {
	dir := tempDir(t)
	want := dir + " is a directory, not a file"
	if _, err := LoadConfig(dir, nil, nil); err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), dir) != 1 {
		t.Errorf("--config: %v, want %q, the path once", err, want)
	}
	if _, err := LoadConfig("", []string{"RISKFLOW_SCORING_PHONE_HASH_KEY_FILE=" + dir}, nil); err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), dir) != 1 {
		t.Errorf("_FILE: %v, want %q, the path once", err, want)
	}
}

// A misspelled YAML key names the closest known key, as --set and env do (the README: "errors
// naming the closest key"); one close to none lists its section's keys.
func TestLoadConfigYAMLUnknownKeys(t *testing.T) {
	p := writeFile(t, "bad.yaml", `kafka:
  brokers: [k1:9092]
  colour: red
kafak:
  partitions: 3
api:
  keys: {app1: s1}
  listne: ":8080"
`)
	_, err := LoadConfig(p, nil, nil)
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	msg := err.Error()
	for _, want := range []string{p, "line 3: kafka.colour: unknown key (known in kafka: ", "line 4: kafak: unknown section", "line 8: api.listne: unknown key (did you mean api.listen?)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
}

// yaml.v3's own messages quote the file (an alias's name); a phone number in what they quote is
// masked, as in the errors riskflow writes (found by a mutation harness over FuzzLoadConfig's seeds).
func TestLoadConfigYAMLErrorMasksAPhone(t *testing.T) {
	p := writeFile(t, "alias.yaml", "kafka:\n  brokers: &b [x, *b138-1234-5678]\n")
	_, err := LoadConfig(p, nil, nil)
	if err == nil {
		t.Fatal("an unknown alias accepted")
	}
	msg := strings.ReplaceAll(err.Error(), p, "FILE")
	if want := "config FILE: yaml: unknown anchor 'b" + schemas.PhoneMask + "' referenced"; msg != want {
		t.Errorf("error %q, want %q", msg, want)
	}
}

// api.app_limits gives an app key rates of its own; a misspelt rate in an entry was skipped by
// the YAML decoder, and the app ran at the section's rate with nothing said.
func TestLoadConfigAppLimits(t *testing.T) {
	p := writeFile(t, "limits.yaml", `api:
  keys: {small: s1, big: s2}
  rate_per_app: 100
  app_limits:
    big: {rate_per_app: 20000, events_per_app: 0}
`)
	c, err := LoadConfig(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := c.API.AppLimits["big"]
	if big.RatePerApp == nil || *big.RatePerApp != 20000 || big.EventsPerApp == nil || *big.EventsPerApp != 0 || big.EventsRatePerApp != nil {
		t.Errorf("app_limits.big = %+v, want rate_per_app 20000, events_per_app 0, events_rate_per_app the section's", big)
	}
	p = writeFile(t, "typo.yaml", `api:
  keys: {small: s1, big: s2}
  app_limits:
    big: {rate_per_app: 20000}
    small: {rate_per_ap: 3}
    other: 5
`)
	_, err = LoadConfig(p, nil, nil)
	for _, want := range []string{
		"line 5: api.app_limits.small.rate_per_ap: unknown key (known: events_per_app, events_rate_per_app, rate_per_app)",
		"line 6: api.app_limits.other: expected keys (events_per_app, events_rate_per_app, rate_per_app), got",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadConfig: %v\nwant %q", err, want)
		}
	}
	p = writeFile(t, "twice.yaml", `api:
  keys: {big: s2}
  app_limits:
    big: {rate_per_app: 1, rate_per_app: 2}
`)
	if _, err = LoadConfig(p, nil, nil); err == nil || !strings.Contains(err.Error(), "line 4: api.app_limits.big.rate_per_app: given twice") {
		t.Errorf("a rate given twice: %v", err)
	}
	// The same through --set and the environment (JSON).
	p = writeFile(t, "keys.yaml", "api:\n  keys: {big: s2}\n")
	if c, err = LoadConfig(p, nil, []string{`api.app_limits={"big": {"rate_per_app": 7}}`}); err != nil || c.API.AppLimits["big"].RatePerApp == nil || *c.API.AppLimits["big"].RatePerApp != 7 {
		t.Errorf("--set api.app_limits: %v", err)
	}
	if _, err = LoadConfig(p, nil, []string{`api.app_limits={"big": {"rate_pr_app": 7}}`}); err == nil || !strings.Contains(err.Error(), "api.app_limits.big.rate_pr_app: unknown key") {
		t.Errorf("--set api.app_limits with a misspelt rate: %v", err)
	}
	if _, err = LoadConfig(p, []string{`RISKFLOW_API_APP_LIMITS={"big": {"events_per_ap": 7}}`}, nil); err == nil || !strings.Contains(err.Error(), "api.app_limits.big.events_per_ap: unknown key") {
		t.Errorf("RISKFLOW_API_APP_LIMITS with a misspelt rate: %v", err)
	}
	p = writeFile(t, "unknownapp.yaml", `api:
  keys: {small: s1}
  app_limits:
    big: {rate_per_app: 20000}
`)
	if c, err = LoadConfig(p, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err = c.Validate(); err == nil || !strings.Contains(err.Error(), `api.app_limits: "big" is not in keys`) {
		t.Errorf("limits for an app key not configured: %v", err)
	}
}

func TestLoadConfigYAMLBadValues(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"kafka:\n  batch_timeout: 5\n", `"5" is not a duration`},
		{"kafka:\n  partitions: many\n", "many"},
		{"kafka: [a, b]\n", "line 1: kafka: expected section keys"},
		{"log: loud\n", `log: expected section keys (log.key: value), got "loud"`},
		{"kafka:\n  brokers: [a:1\n", "yaml"},
		{"scoring:\n  windows: [1m, soon]\n", `"soon" is not a duration`},
	}
	for _, c := range cases {
		_, err := LoadConfig(writeFile(t, "c.yaml", c.yaml), nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.yaml, err, c.want)
		}
	}
	if _, err := LoadConfig(filepath.Join(tempDir(t), "missing.yaml"), nil, nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadConfigEnv(t *testing.T) {
	env := []string{
		"PATH=/usr/bin",
		"RISKFLOW_KAFKA_BROKERS=a:1,b:2",
		"RISKFLOW_API_KEYS=x:y,z:w",
		"RISKFLOW_KAFKA_BATCH_TIMEOUT=10ms",
		"RISKFLOW_CLICKHOUSE_BREAKER_OPEN_FOR=2s",
		"RISKFLOW_CLICKHOUSE_FLUSH_INTERVAL=200ms",
		"RISKFLOW_SCORING_WINDOWS=1m, 10m ,1h",
		"RISKFLOW_API_RATE_PER_APP=2.5",
		"RISKFLOW_API_MAX_BODY_BYTES=2048",
		"RISKFLOW_SCORING_REPLAY=false",
		"RISKFLOW_KAFKA_EVENTS_TOPIC= it.events ",
		"RISKFLOW_KAFKA_PORT=19092", // used by deploy scripts, not a config key
		"RISKFLOW_CACHE_DIR=/tmp/x",
		"KAFKA_BROKERS=ignored:1",
	}
	c, err := LoadConfig("", env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("env config does not validate: %v", err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"kafka.brokers", c.Kafka.Brokers, []string{"a:1", "b:2"}},
		{"api.keys", c.API.Keys, map[string]string{"x": "y", "z": "w"}},
		{"kafka.batch_timeout", c.Kafka.BatchTimeout, 10 * time.Millisecond},
		{"clickhouse.breaker_open_for", c.ClickHouse.BreakerOpenFor.D(), 2 * time.Second},
		{"clickhouse.flush_interval", c.ClickHouse.FlushInterval.D(), 200 * time.Millisecond},
		{"scoring.windows", c.Scoring.Windows, []time.Duration{time.Minute, 10 * time.Minute, time.Hour}},
		{"api.rate_per_app", c.API.RatePerApp, 2.5},
		{"api.max_body_bytes", c.API.MaxBodyBytes, int64(2048)},
		{"scoring.replay", c.Scoring.Replay, false},
		{"kafka.events_topic", c.Kafka.EventsTopic, "it.events"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.key, ch.got, ch.want)
		}
	}
}

func TestLoadConfigEnvBadValue(t *testing.T) {
	cases := map[string]string{
		"RISKFLOW_KAFKA_PARTITIONS=many":        "RISKFLOW_KAFKA_PARTITIONS",
		"RISKFLOW_KAFKA_BATCH_TIMEOUT=5":        "RISKFLOW_KAFKA_BATCH_TIMEOUT",
		"RISKFLOW_API_KEYS=app1":                `RISKFLOW_API_KEYS (api.keys): entry 1 of 1 has no ":"`,
		"RISKFLOW_API_KEYS=a:b,app2=s3cr3t":     `entry 2 of 2 has no ":"`,
		"RISKFLOW_API_KEYS=appa:S1,appa:S2":     `RISKFLOW_API_KEYS (api.keys): entry 2 of 2 names "appa" again`,
		"RISKFLOW_API_ADMIN_KEYS=x:1,y:2,x:3":   `entry 3 of 3 names "x" again`,
		"RISKFLOW_SCORING_REPLAY=maybe":         "RISKFLOW_SCORING_REPLAY",
		"RISKFLOW_API_RATE_PER_APP=fast":        "RISKFLOW_API_RATE_PER_APP",
		"RISKFLOW_SCORING_WINDOWS=1m,sometimes": `"sometimes" is not a duration`,
	}
	for kv, want := range cases {
		_, err := LoadConfig("", []string{kv}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", kv, err, want)
		}
	}
	// A malformed map entry may be a secret with its separator mistyped: it is not echoed.
	for _, set := range []string{"api.keys=app2=s3cr3t", "api.admin_keys=lead:x,s3cr3t", "api.keys=a:s3cr3t,a:s3cr3t2"} {
		_, err := LoadConfig("", nil, []string{set})
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("--set %s: error %v; want one that does not show the secret", set, err)
		}
	}
}

func TestLoadConfigSet(t *testing.T) {
	c, err := LoadConfig("", nil, []string{"kafka.brokers=127.0.0.1:9092", "api.keys=a:b", "kafka.scorer_batch=50", "log.level=debug"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Kafka.Brokers, []string{"127.0.0.1:9092"}) || c.API.Keys["a"] != "b" || c.Kafka.ScorerBatch != 50 || c.Log.Level != "debug" {
		t.Errorf("--set not applied: %+v", c)
	}

	_, err = LoadConfig("", nil, []string{"kafka.colour=red"})
	if err == nil || !strings.Contains(err.Error(), "--set kafka.colour: unknown key") || !strings.Contains(err.Error(), "kafka.brokers") {
		t.Errorf("unknown --set key: %v; want it named, with the known keys listed", err)
	}
	// A misspelled key is answered with the closest one, not with all 70 keys to read through.
	_, err = LoadConfig("", nil, []string{"api.listn=127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "--set api.listn: unknown key (did you mean api.listen?)") || strings.Contains(err.Error(), "kafka.brokers") {
		t.Errorf("misspelled --set key: %v; want the closest key named", err)
	}
	_, err = LoadConfig("", nil, []string{"kafka.partitions"})
	if err == nil || !strings.Contains(err.Error(), "section.key=value") {
		t.Errorf("--set without =: %v", err)
	}
	// Malformed JSON: the error quotes no byte of the secrets.
	for _, arg := range []string{`api.keys={"app1":Qs3cret}`, `api.keys={"app1":"Qs3cret"`, `api.keys={"app1":7}`} {
		_, err = LoadConfig("", nil, []string{arg})
		if err == nil || !strings.Contains(err.Error(), "not a JSON object of strings") || strings.Contains(err.Error(), "Q") {
			t.Errorf("--set %s: %v; want it refused without quoting the value", arg, err)
		}
	}
	// A list given as JSON that is not one of strings is named in the decoders' terms, not
	// encoding/json's ("cannot unmarshal number into Go value of type string"), quoting no byte.
	for arg, want := range map[string]string{
		`kafka.brokers=["a:9092",7]`:  "--set kafka.brokers: not a JSON list of strings: an entry is a JSON number",
		`kafka.brokers=["a:9092",{}]`: "an entry is a JSON object",
		`kafka.brokers=["a:9092",Qx]`: "not a JSON list of strings: invalid JSON at byte",
		`kafka.brokers=["a:9092"`:     "not a JSON list of strings: invalid JSON at byte 9",
	} {
		_, err = LoadConfig("", nil, []string{arg})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go value") || strings.Contains(err.Error(), "Q") {
			t.Errorf("--set %s: %v; want %q", arg, err, want)
		}
	}
	// A colon typed for the "=" leaves a secret in the argument: the error names the key only.
	for _, arg := range []string{"api.keys:app1:s3cret-one", "api.admin_keys alice:s3cret-one"} {
		_, err = LoadConfig("", nil, []string{arg})
		if err == nil || !strings.Contains(err.Error(), "section.key=value") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("--set %s: %v; want the key without the secret", arg, err)
		}
	}
	_, err = LoadConfig("", nil, []string{"kafka.partitions=lots"})
	if err == nil || !strings.Contains(err.Error(), "--set kafka.partitions") {
		t.Errorf("bad --set value: %v", err)
	}
}

// Precedence: file < env < --set.
func TestLoadConfigPrecedence(t *testing.T) {
	p := writeFile(t, "c.yaml", "kafka:\n  partitions: 2\n  scorer_batch: 20\n  dlq_topic: from-file\n")
	env := []string{"RISKFLOW_KAFKA_PARTITIONS=3", "RISKFLOW_KAFKA_SCORER_BATCH=30"}
	c, err := LoadConfig(p, env, []string{"kafka.partitions=4"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.Partitions != 4 || c.Kafka.ScorerBatch != 30 || c.Kafka.DLQTopic != "from-file" {
		t.Errorf("partitions %d (want --set 4), scorer_batch %d (want env 30), dlq_topic %q (want file)", c.Kafka.Partitions, c.Kafka.ScorerBatch, c.Kafka.DLQTopic)
	}
}

// Every leaf of Config is a key: it has a YAML name, an env var, and takes a value from a string.
func TestEveryKeyIsSettable(t *testing.T) {
	keys := configKeys()
	if len(keys.paths) < 30 {
		t.Fatalf("only %d keys found", len(keys.paths))
	}
	sample := map[reflect.Kind]string{reflect.String: "x", reflect.Int: "7", reflect.Int64: "7", reflect.Float64: "1.5", reflect.Bool: "true", reflect.Map: "k:v", reflect.Slice: "h:1"}
	for path, idx := range keys.paths {
		sec, key, _ := strings.Cut(path, ".")
		if sec == "" || key == "" {
			t.Errorf("key %q lacks a yaml name", path)
			continue
		}
		env := "RISKFLOW_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
		if keys.byEnv[env] != path {
			t.Errorf("%s has no env var %s", path, env)
		}
		c := Default()
		f := reflect.ValueOf(&c).Elem().FieldByIndex(idx)
		val, ok := sample[f.Kind()]
		if isDuration(f.Type()) || (f.Kind() == reflect.Slice && isDuration(f.Type().Elem())) {
			val, ok = "5m", true
		}
		if f.Kind() == reflect.Map && f.Type().Elem().Kind() == reflect.Struct {
			val = `{"k": {}}` // api.app_limits: an app key's settings
		}
		if !ok {
			t.Errorf("%s: no sample for %s", path, f.Type())
			continue
		}
		if err := setKey(&c, path, val); err != nil {
			t.Errorf("set %s=%s: %v", path, val, err)
		}
		if f.IsZero() {
			t.Errorf("set %s=%s left it zero", path, val)
		}
	}
}

// A negative span is refused naming the key and the value, for every duration key: four said
// only 'must be positive' ('kafka.stall_after: must be positive'), leaving the user to find what
// was set where.
func TestValidateNamesANegativeDurationsValue(t *testing.T) {
	c := Default()
	c.ClickHouse.Addr = "127.0.0.1:19000"
	neg := -1500 * time.Millisecond
	for _, d := range []*Duration{&c.Kafka.StallAfter, &c.ClickHouse.FlushInterval, &c.ClickHouse.BreakerOpenFor, &c.API.MaxStaleness,
		&c.API.ShutdownDelay, &c.API.MaxConnAge, &c.Scoring.ReloadInterval, &c.Scoring.FeedWait, &c.Scoring.FeedSkew, &c.Scoring.SnapshotInterval} {
		*d = Duration(neg)
	}
	for _, d := range []*time.Duration{&c.Kafka.BatchTimeout, &c.ClickHouse.DialTimeout, &c.ClickHouse.WriteTimeout} {
		*d = neg
	}
	c.Scoring.Windows = []time.Duration{neg}
	err := c.Validate()
	if err == nil {
		t.Fatal("negative durations validated")
	}
	for _, k := range []string{"kafka.stall_after", "kafka.batch_timeout", "clickhouse.flush_interval", "clickhouse.breaker_open_for",
		"clickhouse.dial_timeout", "clickhouse.write_timeout", "api.max_staleness", "api.shutdown_delay", "api.max_conn_age",
		"scoring.reload_interval", "scoring.feed_wait", "scoring.feed_skew", "scoring.snapshot_interval", "scoring.windows"} {
		found := false
		for _, l := range strings.Split(err.Error(), "\n") {
			if strings.HasPrefix(l, k+": ") {
				found = true
				if !strings.Contains(l, neg.String()) {
					t.Errorf("%q does not name the value %s", l, neg)
				}
			}
		}
		if !found {
			t.Errorf("no line starts with %s:\n%s", k, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Kafka.Brokers = []string{"no-port", "ok:9092"}
	c.Kafka.EventsTopic = ""
	c.Kafka.ArchiverGroup = ""
	c.Kafka.Partitions = 0
	c.Kafka.ScorerBatch = 20000
	c.Kafka.BatchTimeout = 2 * time.Second
	c.ClickHouse.Addr = "127.0.0.1:19000"
	c.ClickHouse.Database = ""
	c.ClickHouse.BatchSize = 0
	c.ClickHouse.BreakerFailures = 0
	c.ClickHouse.FlushInterval = 0
	c.ClickHouse.BreakerOpenFor = Duration(-time.Second)
	c.API.Listen = "8080"
	c.API.MaxBodyBytes = 10
	c.API.RatePerApp = -1
	c.API.TLSCert = "cert.pem"
	c.API.Keys = map[string]string{"app": ""}
	c.API.ReadyMaxLag = -5
	c.Scoring.Windows = []time.Duration{30 * time.Second, 90 * time.Second}
	c.Scoring.ReloadInterval = 0 // a panic of the lists file's ticker, not a config error
	c.Log.Level = "verbose"
	c.Log.Format = "xml"
	err := c.Validate()
	if err == nil {
		t.Fatal("a config full of mistakes validated")
	}
	keys := []string{
		"kafka.brokers", "kafka.events_topic", "kafka.archiver_group", "kafka.partitions", "kafka.scorer_batch",
		"kafka.batch_timeout", "clickhouse.database", "clickhouse.batch_size", "clickhouse.breaker_failures",
		"clickhouse.flush_interval", "clickhouse.breaker_open_for", "api.listen", "api.max_body_bytes",
		"api.rate_per_app", "api.tls_cert", "api.keys", "api.ready_max_lag", "scoring.windows", "scoring.reload_interval", "log.level", "log.format",
	}
	lines := strings.Split(err.Error(), "\n")
	for _, k := range keys {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, k+": ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no line starts with %s:\n%s", k, err)
		}
	}
	for _, want := range []string{`"no-port" is not host:port`, "30s must be whole minutes", "1m30s must be whole minutes", `"verbose"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(err.Error(), `"ok:9092"`) {
		t.Error("a valid broker was reported")
	}

	// Without clickhouse.addr the archiver settings are not checked.
	c = Default()
	c.ClickHouse.BatchSize = 0
	if err := c.Validate(); err != nil {
		t.Errorf("clickhouse settings checked without clickhouse.addr: %v", err)
	}
	c.Scoring.Windows = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "scoring.windows: at least one") {
		t.Errorf("no windows: %v", err)
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1h30m\n"), &v); err != nil || v.D.D() != 90*time.Minute {
		t.Fatalf("decode: %v %v", v.D.D(), err)
	}
	b, err := yaml.Marshal(v)
	if err != nil || strings.TrimSpace(string(b)) != "d: 1h30m0s" {
		t.Errorf("encode: %q %v", b, err)
	}
	if err := yaml.Unmarshal([]byte("d: 10\n"), &v); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad duration: %v", err)
	}
}

// The configuration shipped in the Kubernetes ConfigMap loads and validates.
func TestKubernetesConfigMapLoads(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes/riskflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&cm); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tempDir(t), "riskflow.yaml")
	if err := os.WriteFile(p, []byte(cm.Data["riskflow.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(p, nil, nil)
	if err != nil {
		t.Fatalf("the ConfigMap's riskflow.yaml: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the ConfigMap's riskflow.yaml: %v", err)
	}
	if cfg.Ops.Listen == "" || cfg.Scoring.SnapshotDir == "" {
		t.Errorf("ops.listen %q, scoring.snapshot_dir %q: both should be set in the shipped manifest", cfg.Ops.Listen, cfg.Scoring.SnapshotDir)
	}
}

// Every RISKFLOW_ variable the shipped Dockerfile, compose file and Kubernetes manifest set is one
// the program knows: an unknown one stops every container at start (config error, exit 2).
func TestShippedEnvironmentIsKnown(t *testing.T) {
	name := regexp.MustCompile(`RISKFLOW_[A-Z0-9_]+`)
	for _, f := range []string{"../../Dockerfile", "../../deploy/compose/docker-compose.yml", "../../deploy/kubernetes/riskflow.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, v := range name.FindAllString(line, -1) {
				seen++
				if _, err := LoadConfig("", []string{v + "=x"}, nil); err != nil && strings.Contains(err.Error(), "not a configuration key") {
					t.Errorf("%s sets %s: %v", f, v, err)
				}
			}
		}
		if seen == 0 {
			t.Errorf("%s sets no RISKFLOW_ variable: the test reads the wrong file", f)
		}
	}
}

// The image sets no configuration key through its environment: a variable outranks the config
// file, so a mounted file's scoring.geo_city (or any key) would be silently ignored. Its data is
// found as defaults under RISKFLOW_CACHE_DIR instead.
func TestImageEnvironmentSetsNoConfigKey(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`RISKFLOW_[A-Z0-9_]+=`)
	seen := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.Contains(line, "RUN ") {
			continue
		}
		for _, v := range name.FindAllString(line, -1) {
			v = strings.TrimSuffix(v, "=")
			seen++
			if !scriptEnv[v] {
				t.Errorf("Dockerfile sets %s: it would override the same key of a mounted config file", v)
			}
		}
	}
	if seen == 0 {
		t.Error("Dockerfile sets no RISKFLOW_ variable: how does the binary find the image's geo data?")
	}
	// The data lands where defaultCachePath looks under that directory.
	if !strings.Contains(string(b), "COPY --from=geo /cache/geo /usr/share/riskflow/geo") || !strings.Contains(string(b), "RISKFLOW_CACHE_DIR=/usr/share/riskflow") {
		t.Error("Dockerfile: the geo data is no longer at $RISKFLOW_CACHE_DIR/geo")
	}
}

// A value of the wrong shape in the file names its key and line, in words rather than Go types.
func TestLoadConfigYAMLErrorsNameTheKey(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"kafka:\n  brokers: k1:9092\n", `line 2: kafka.brokers: expected a list like [a, b] (or one "- item" per line), got "k1:9092"`},
		{"kafka:\n  batch_timeout: soon\n", `line 2: kafka.batch_timeout: "soon" is not a duration like 10ms, 5s, 1h`},
		{"scoring:\n  windows: 1m\n", "line 2: scoring.windows: expected a list of durations"},
		{"scoring:\n  windows: [1m, soon]\n", `line 2: scoring.windows: "soon" is not a duration`},
		{"api:\n  keys: [a, b]\n", "line 2: api.keys: expected key: value pairs, got a list"},
		{"kafka:\n  partitions: 1.5\n", `line 2: kafka.partitions: "1.5" is not an integer`},
		{"scoring:\n  replay: maybe\n", `line 2: scoring.replay: "maybe" is not true or false`},
		{"api:\n  rate_per_app: fast\n", `line 2: api.rate_per_app: "fast" is not a number`},
	}
	for _, c := range cases {
		_, err := LoadConfig(writeFile(t, "c.yaml", c.yaml), nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v\nwant it to contain %q", c.yaml, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "[]string") || strings.Contains(err.Error(), "main.") || strings.Contains(err.Error(), "!!") {
			t.Errorf("%q: error names Go or YAML types: %v", c.yaml, err)
		}
	}
	// A map written on one line is a single value: its text (a secret) is not quoted back.
	for _, y := range []string{"api:\n  keys: app1:s3cret-one\n", "api:\n  admin_keys: alice:s3cret-one\n", "api:\n  keys: s3cret-one\n"} {
		_, err := LoadConfig(writeFile(t, "c.yaml", y), nil, nil)
		if err == nil || !strings.Contains(err.Error(), "expected key: value pairs") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error %v\nwant it to say key: value pairs without the value", y, err)
		}
	}
	// Every bad key is reported at once.
	_, err := LoadConfig(writeFile(t, "c.yaml", "kafka:\n  brokers: k1\n  partitions: x\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "kafka.brokers") || !strings.Contains(err.Error(), "kafka.partitions") {
		t.Errorf("two bad keys: %v", err)
	}
}

func TestLoadConfigEnvUnknown(t *testing.T) {
	_, err := LoadConfig("", []string{"RISKFLOW_KAFKA_BROKER=a:1", "RISKFLOW_FROBNICATE=1", "RISKFLOW_LOCAL_DIR=/x"}, nil)
	if err == nil {
		t.Fatal("misspelled variables accepted")
	}
	for _, want := range []string{"env RISKFLOW_KAFKA_BROKER: not a configuration key (did you mean RISKFLOW_KAFKA_BROKERS?)", "env RISKFLOW_FROBNICATE: not a configuration key (RISKFLOW_<SECTION>_<KEY>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "LOCAL_DIR") {
		t.Errorf("a deploy script's variable was refused: %v", err)
	}
	// _FILE belongs to keys only.
	if _, err := LoadConfig("", []string{"RISKFLOW_KAFKA_BROKER_FILE=/x"}, nil); err == nil {
		t.Error("RISKFLOW_KAFKA_BROKER_FILE accepted")
	}
}

// Secrets come from files (RISKFLOW_X_FILE, as mounted by Kubernetes or Docker secrets), and maps
// and lists whose values hold commas are settable one entry per line or as JSON.
func TestLoadConfigEnvFilesAndCommas(t *testing.T) {
	keys := writeFile(t, "keys", "# app: secret\napp1:se,cret:1\napp2:plain\n")
	hash := writeFile(t, "hash", "k3y,with,commas\n")
	c, err := LoadConfig("", []string{"RISKFLOW_API_KEYS_FILE=" + keys, "RISKFLOW_SCORING_PHONE_HASH_KEY_FILE=" + hash,
		`RISKFLOW_API_ADMIN_KEYS={"lead":"a,b","ops":"c"}`, `RISKFLOW_KAFKA_BROKERS=["k1:9092","k2:9092"]`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"app1": "se,cret:1", "app2": "plain"}; !reflect.DeepEqual(c.API.Keys, want) {
		t.Errorf("api.keys from a file = %v, want %v", c.API.Keys, want)
	}
	if c.Scoring.PhoneHashKey != "k3y,with,commas" {
		t.Errorf("scoring.phone_hash_key from a file = %q (one trailing newline dropped, commas kept)", c.Scoring.PhoneHashKey)
	}
	if want := map[string]string{"lead": "a,b", "ops": "c"}; !reflect.DeepEqual(c.API.AdminKeys, want) {
		t.Errorf("api.admin_keys from JSON = %v", c.API.AdminKeys)
	}
	if !slices.Equal(c.Kafka.Brokers, []string{"k1:9092", "k2:9092"}) {
		t.Errorf("kafka.brokers from JSON = %v", c.Kafka.Brokers)
	}
	// An entry written as YAML writes it, "name: secret": the spaces around the colon are not the
	// name's or the secret's (the secret had been " secret3", and the app's requests refused).
	spaced := writeFile(t, "spaced", "app3: secret3\napp4 :\tsecret4\n")
	if c, err := LoadConfig("", []string{"RISKFLOW_API_KEYS_FILE=" + spaced, "RISKFLOW_API_ADMIN_KEYS=lead: s5, ops :s6"}, nil); err != nil {
		t.Error(err)
	} else {
		if want := map[string]string{"app3": "secret3", "app4": "secret4"}; !reflect.DeepEqual(c.API.Keys, want) {
			t.Errorf("api.keys from \"name: secret\" lines = %q, want %q", c.API.Keys, want)
		}
		if want := map[string]string{"lead": "s5", "ops": "s6"}; !reflect.DeepEqual(c.API.AdminKeys, want) {
			t.Errorf("api.admin_keys from \"name: secret, …\" = %q, want %q", c.API.AdminKeys, want)
		}
	}
	// A file saved with a byte-order mark and CRLF line ends (Notepad): neither is the values'.
	bom := writeFile(t, "bom", "\ufeffapp5:secret5\r\napp6:secret6\r\n")
	bomHash := writeFile(t, "bomhash", "\ufeffk3y-0123456789abcdef\r\n")
	if c, err := LoadConfig("", []string{"RISKFLOW_API_KEYS_FILE=" + bom, "RISKFLOW_SCORING_PHONE_HASH_KEY_FILE=" + bomHash}, nil); err != nil {
		t.Error(err)
	} else {
		if want := map[string]string{"app5": "secret5", "app6": "secret6"}; !reflect.DeepEqual(c.API.Keys, want) {
			t.Errorf("api.keys from a file with a BOM = %q, want %q", c.API.Keys, want)
		}
		if c.Scoring.PhoneHashKey != "k3y-0123456789abcdef" {
			t.Errorf("scoring.phone_hash_key from a file with a BOM = %q", c.Scoring.PhoneHashKey)
		}
	}
	// The same key twice, a missing file, broken JSON: errors naming the variable, without values.
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"RISKFLOW_API_KEYS=a:b", "RISKFLOW_API_KEYS_FILE=" + keys}, "api.keys is also set by"},
		{[]string{"RISKFLOW_API_KEYS_FILE=/nonexistent/keys"}, "env RISKFLOW_API_KEYS_FILE (api.keys): open /nonexistent/keys"},
		{[]string{`RISKFLOW_API_KEYS={"a":"sec`}, "env RISKFLOW_API_KEYS (api.keys): not a JSON object"},
	} {
		_, err := LoadConfig("", c.env, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.env, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "sec") {
			t.Errorf("%v: the error echoes a secret: %v", c.env, err)
		}
	}
}

// The sections embed their packages' configs: the packages' keys are keys like any other, and
// their checks name the key with its section.
func TestPackageKeys(t *testing.T) {
	c, err := LoadConfig("", []string{"RISKFLOW_CLICKHOUSE_DIAL_TIMEOUT=2s", "RISKFLOW_KAFKA_MAX_MESSAGE_BYTES=2000000"}, []string{"api.max_body_bytes=4096", "clickhouse.addr=ch:9000"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClickHouse.DialTimeout != 2*time.Second || c.Kafka.MaxMessageBytes != 2_000_000 || c.API.MaxBodyBytes != 4096 || c.ClickHouse.Config.Addr != "ch:9000" {
		t.Errorf("package keys not set: %+v %+v %+v", c.ClickHouse.Config, c.Kafka.Config, c.API.Config)
	}
	keys := configKeys()
	for _, k := range []string{"kafka.brokers", "kafka.batch_timeout", "clickhouse.addr", "clickhouse.write_timeout", "clickhouse.compression", "api.keys", "api.auth_failures_per_minute", "scoring.windows", "scoring.max_entries_per_key"} {
		if _, ok := keys.paths[k]; !ok {
			t.Errorf("%s is not a key", k)
		}
	}
	for _, k := range []string{"kafka.client_id", "kafka.batch_size", "api.node_id", "api.burst", "kafka.config", "api.config", "scoring.retention", "scoring.distinct_cap", "scoring.state"} {
		if _, ok := keys.paths[k]; ok {
			t.Errorf("%s is a key; the program sets it", k)
		}
	}
	_, err = LoadConfig(writeFile(t, "c.yaml", "clickhouse:\n  write_timeout: 5\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), `line 2: clickhouse.write_timeout: "5" is not a duration`) {
		t.Errorf("bad package duration: %v", err)
	}
	c = Default()
	c.ClickHouse.Addr = "nohost"
	c.Kafka.MaxMessageBytes = 10
	c.Scoring.State.MaxEntriesPerKey = -1
	err = c.Validate()
	for _, want := range []string{`clickhouse.addr: "nohost": must be host:port`, "kafka.max_message_bytes: 10 is below", "scoring.max_entries_per_key: -1 is outside"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

// Every key a configuration may already use is still a key (moving keys into the packages'
// configs must not drop one).
func TestNoKeyLost(t *testing.T) {
	keys := configKeys()
	for _, k := range strings.Fields(`
		kafka.brokers kafka.events_topic kafka.scores_topic kafka.dlq_topic kafka.partitions kafka.scorer_group
		kafka.archiver_group kafka.scorer_batch kafka.batch_timeout kafka.max_message_bytes kafka.stall_after
		clickhouse.addr clickhouse.database clickhouse.username clickhouse.password clickhouse.batch_size
		clickhouse.flush_interval clickhouse.breaker_failures clickhouse.breaker_open_for
		api.listen api.keys api.admin_keys api.max_body_bytes api.rate_per_app api.events_rate_per_app
		api.auth_failures_per_minute api.trusted_proxies api.tls_cert api.tls_key api.ready_max_lag api.max_staleness api.shutdown_delay ops.listen
		scoring.rules scoring.reload_interval scoring.segments scoring.lists scoring.provinces scoring.geo_city
		scoring.geo_asn scoring.idc_list scoring.windows scoring.max_entries_per_key scoring.phone_hash_key
		scoring.replay scoring.feed_wait scoring.snapshot_dir scoring.snapshot_interval log.level log.format`) {
		if _, ok := keys.paths[k]; !ok {
			t.Errorf("%s is no longer a key", k)
		}
	}
}

// A file whose settings would be dropped or picked between without a word is refused: a second
// document, a section or key given twice, a document that is not sections of keys.
func TestLoadConfigYAMLShapeErrors(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"kafka:\n  partitions: 3\n---\napi:\n  listen: \":9\"\n", "line 3: a second YAML document"},
		{"kafka:\n  partitions: 3\napi:\n  listen: \":9\"\nkafka:\n  brokers: [a:1]\n", "line 5: kafka: given twice (first at line 1)"},
		{"kafka:\n  partitions: 3\n  partitions: 5\n", "line 3: kafka.partitions: given twice (first at line 2)"},
		// An app or admin named twice: yaml.v3 refused the map, and the error read "api.keys: expected
		// key: value pairs, got something else", naming neither the name nor its line.
		{"api:\n  keys:\n    app1: s1\n    app2: s2\n    app1: s3\n", "line 5: api.keys.app1: given twice (first at line 3)"},
		{"api:\n  admin_keys:\n    lead: s1\n    lead: s2\n", "line 4: api.admin_keys.lead: given twice (first at line 3)"},
		{"- kafka\n- api\n", "line 1: expected sections of keys (kafka:, api:, scoring:, …), got a list"},
		{"just a string\n", `line 1: expected sections of keys (kafka:, api:, scoring:, …), got "just a string"`},
		// yaml.v3 says only "found character that cannot start any token".
		{"kafka:\n\tpartitions: 3\n", "line 2 is indented with a tab: YAML indents with spaces only"},
		{"kafka:\n  partitions: 3\napi:\n \tlisten: \":9\"\n", "line 4 is indented with a tab"},
	}
	for _, c := range cases {
		_, err := LoadConfig(writeFile(t, "c.yaml", c.yaml), nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v\nwant it to contain %q", c.yaml, err, c.want)
		}
	}
	// Reported together with the file's other problems.
	_, err := LoadConfig(writeFile(t, "c.yaml", "kafka:\n  colour: red\n  partitions: 3\n  partitions: 4\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "kafka.colour: unknown key") || !strings.Contains(err.Error(), "kafka.partitions: given twice") {
		t.Errorf("unknown and repeated keys: %v", err)
	}
	// A document marker alone, or a leading "---", is still one document.
	for _, ok := range []string{"---\nkafka:\n  partitions: 3\n", "---\n", "kafka:\n  partitions: 3\n...\n"} {
		if _, err := LoadConfig(writeFile(t, "c.yaml", ok), nil, nil); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// Every command line the shipped Dockerfile, compose file and Kubernetes manifest give the binary
// names a command and flags it has, with values its flags take: a mistyped flag stops the
// container at start (usage error, exit 2) where only a deployment would find it.
func TestShippedCommandLinesParse(t *testing.T) {
	cleanEnv(t)
	type cmdline struct {
		where string
		args  []string
	}
	var lines []cmdline

	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(df), "\n") {
		if rest, ok := strings.CutPrefix(l, "CMD "); ok {
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil {
				t.Fatalf("Dockerfile CMD is not the exec form: %v", err)
			}
			lines = append(lines, cmdline{"Dockerfile CMD", args})
			// The image's default command serves the API on the port it EXPOSEs, on every
			// interface: api.listen's loopback default is out of reach from outside a container.
			if i := slices.Index(args, "--listen"); i < 0 || i+1 == len(args) || !strings.HasPrefix(args[i+1], "0.0.0.0:") || !strings.Contains(string(df), "EXPOSE "+strings.TrimPrefix(args[i+1], "0.0.0.0:")) {
				t.Errorf("Dockerfile CMD %q: want --listen 0.0.0.0:PORT with that PORT EXPOSEd", args)
			}
		}
	}

	var compose struct {
		Services map[string]struct {
			Build   any      `yaml:"build"`
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	cb, err := os.ReadFile("../../deploy/compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(cb, &compose); err != nil {
		t.Fatal(err)
	}
	for name, s := range compose.Services {
		if s.Build != nil && s.Command != nil { // riskflow's image; the others are Kafka's and ClickHouse's
			lines = append(lines, cmdline{"compose service " + name, s.Command})
		}
	}

	type container struct {
		Name    string   `yaml:"name"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
	}
	kb, err := os.ReadFile("../../deploy/kubernetes/riskflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(kb))
	for {
		var m struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						InitContainers []container `yaml:"initContainers"`
						Containers     []container `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		for _, c := range append(m.Spec.Template.Spec.InitContainers, m.Spec.Template.Spec.Containers...) {
			if c.Command != nil {
				t.Errorf("%s %s, container %s: command replaces the image's entrypoint (the binary); give args", m.Kind, m.Metadata.Name, c.Name)
			}
			lines = append(lines, cmdline{m.Kind + " " + m.Metadata.Name + ", container " + c.Name, c.Args})
		}
	}
	if len(lines) < 6 {
		t.Fatalf("found %d command lines; the test reads the wrong files", len(lines))
	}
	// The config file a command line names is the one the manifest mounts: a stand-in here.
	cm := writeFile(t, "riskflow.yaml", "")
	for _, l := range lines {
		args := slices.Clone(l.args)
		for i, a := range args {
			if a == "/etc/riskflow/riskflow.yaml" {
				args[i] = cm
			}
		}
		if len(args) == 0 || args[0] == "help" {
			t.Errorf("%s: no command: %q", l.where, l.args)
			continue
		}
		// --help after the flags: every flag before it must exist and take its value; help exits 0.
		r := runCmd(t, context.Background(), append(args, "--help")...)
		if r.code != 0 {
			t.Errorf("%s: %q does not parse (exit %d):\n%s", l.where, l.args, r.code, r.stderr)
		}
	}
}

// Every RISKFLOW_ variable the repository's code, tests, scripts, Makefile and CI read is a
// configuration key or in scriptEnv: one missing there makes every riskflow command run in the
// same shell (a benchmark's documented `RISKFLOW_X=… make …`) refuse to start.
func TestEnvReadByScriptsAndTestsIsKnown(t *testing.T) {
	root := "../.."
	read := regexp.MustCompile(`(?:Getenv|LookupEnv)\("(RISKFLOW_[A-Z0-9_]+)"\)`)
	anywhere := regexp.MustCompile(`RISKFLOW_[A-Z0-9_]+`)
	names := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == ".git" || rel == ".local" || rel == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		var re *regexp.Regexp
		switch {
		case strings.HasSuffix(rel, ".go"):
			re = read
		case rel == "Makefile" || rel == filepath.Join(".ci", "run") || strings.HasPrefix(rel, filepath.Join("deploy", "local")+string(filepath.Separator)):
			re = anywhere
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names[m[len(m)-1]] = rel
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("found %d variables: the test reads the wrong tree", len(names))
	}
	for name, where := range names {
		if _, err := LoadConfig("", []string{name + "=1"}, nil); err != nil && strings.Contains(err.Error(), "not a configuration key") {
			t.Errorf("%s reads %s, which riskflow refuses: add it to scriptEnv", where, name)
		}
	}
}

// The compose file's ClickHouse gets a password (its image gives the user "default" no network
// access without one), and every riskflow service that talks to it sends that password.
func TestComposeClickHousePassword(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile("../../deploy/compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	var password string
	for _, s := range compose.Services {
		if strings.HasPrefix(s.Image, "clickhouse/") {
			password = s.Environment["CLICKHOUSE_PASSWORD"]
		}
	}
	if password == "" {
		t.Fatal("the clickhouse service sets no CLICKHOUSE_PASSWORD: riskflow could not log in over the network")
	}
	n := 0
	for name, s := range compose.Services {
		if s.Environment["RISKFLOW_CLICKHOUSE_ADDR"] == "" {
			continue
		}
		n++
		if got := s.Environment["RISKFLOW_CLICKHOUSE_PASSWORD"]; got != password {
			t.Errorf("service %s: RISKFLOW_CLICKHOUSE_PASSWORD %q, want the server's %q", name, got, password)
		}
	}
	if n < 2 {
		t.Errorf("%d services talk to ClickHouse; want migrate and riskflow", n)
	}
}

// Each stream has its own topic and each consumer its own group: the decision log written to
// verify.events was dead-lettered by the scorers as events, and its archiver read events as
// decisions. A clash names both keys.
func TestTopicsAndGroupsDistinct(t *testing.T) {
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Kafka.DecisionsTopic = c.Kafka.EventsTopic }, `kafka.decisions_topic: "verify.events" is also kafka.events_topic`},
		{func(c *Config) { c.Kafka.DecisionsTopic = c.Kafka.ScoresTopic }, `kafka.decisions_topic: "risk.scores" is also kafka.scores_topic`},
		{func(c *Config) { c.Kafka.ListsTopic = c.Kafka.DecisionsTopic }, `kafka.lists_topic: "risk.decisions" is also kafka.decisions_topic`},
		{func(c *Config) { c.Kafka.ScoresTopic = c.Kafka.EventsTopic }, `kafka.scores_topic: "verify.events" is also kafka.events_topic`},
		{func(c *Config) { c.Kafka.DecisionsGroup = c.Kafka.ArchiverGroup }, `kafka.decisions_group: "riskflow-archiver" is also kafka.archiver_group`},
	} {
		cfg := Default()
		c.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

// The tools whose output is the point log at warn by default, and at the level asked when
// log.level is set anywhere (they forced warn over --set log.level=debug).
func TestQuietLogGivesWayToASetLevel(t *testing.T) {
	cleanEnv(t)
	for sets, want := range map[string]string{"": "warn", "log.level=debug": "debug", "log.level=info": "info"} {
		var cf commonFlags
		if sets != "" {
			cf.sets = multiFlag{sets}
		}
		cfg, err := cf.load(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.quietLog(cfg.Log).Level; got != want {
			t.Errorf("--set %q: level %q, want %q", sets, got, want)
		}
	}
}

// An admin name is recorded as who did what — labels.labeled_by ("api:<name>"),
// rule_versions.loaded_by and rule_loads ("console:<name>"), console_state, the lists topic's
// entries — in plaintext: a name holding a phone number (a number used as a user name) is refused
// as an app key holding one is, without being echoed. It was accepted, and POST /v1/admin/labels
// by admin 13800139990 stored labeled_by "api:13800139990" in ClickHouse (held-out run).
func TestAdminNameHoldingAPhoneRefused(t *testing.T) {
	for _, name := range []string{"13800139990", "+86 138 0013 9990", "lead-138-0013-9990", "１３８００１３９９９０"} {
		c := Default()
		c.API.AdminKeys = map[string]string{name: "s3cret", "lead": "other"}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "api.admin_keys: ") || !strings.Contains(err.Error(), "phone number") {
			t.Errorf("admin name %q: %v; want api.admin_keys refused for holding a phone number", name, err)
			continue
		}
		if strings.Contains(err.Error(), "9990") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("admin name %q: the error echoes the name or its secret: %v", name, err)
		}
	}
	c := Default()
	c.API.AdminKeys = map[string]string{"lead": "s3cret", "ops-2": "other", "zhang.san": "x"}
	if err := c.Validate(); err != nil {
		t.Errorf("ordinary admin names refused: %v", err)
	}
}

// With api.console_approvals 2 every promotion and rollback waits for a second admin: a node whose
// api.admin_keys named one admin started, and its one admin's every request waited for ever (the
// console and the API refuse one admin alone). Refused at start; without admins (no console, the
// configuration of a scorer) or with two it stands.
func TestTwoApprovalsNeedTwoAdmins(t *testing.T) {
	c := Default()
	c.API.ConsoleApprovals = 2
	c.API.AdminKeys = map[string]string{"lead": "s3cret"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "api.console_approvals: 2 takes a second admin") {
		t.Errorf("two approvals with one admin: %v", err)
	}
	for _, admins := range []map[string]string{nil, {"lead": "s3cret", "ops": "other"}} {
		c.API.AdminKeys = admins
		if err := c.Validate(); err != nil {
			t.Errorf("two approvals with %d admins: %v", len(admins), err)
		}
	}
}

// A topic, consumer group or database name is written in plaintext where riskflow's masks do not
// reach: Kafka's and ClickHouse's metadata, the snapshot files' names on disk
// (features-<events topic>.snap) and /metrics labels (riskflow_consumer_lag_messages{group=…}):
// --set kafka.scorer_group=h1p-13957240102 showed the number in every scrape (held-out run). One
// holding a phone number is refused at start, unechoed.
func TestNamesHoldingAPhoneRefused(t *testing.T) {
	set := map[string]func(*Config, string){
		"kafka.events_topic":    func(c *Config, v string) { c.Kafka.EventsTopic = v },
		"kafka.scores_topic":    func(c *Config, v string) { c.Kafka.ScoresTopic = v },
		"kafka.dlq_topic":       func(c *Config, v string) { c.Kafka.DLQTopic = v },
		"kafka.decisions_topic": func(c *Config, v string) { c.Kafka.DecisionsTopic = v },
		"kafka.lists_topic":     func(c *Config, v string) { c.Kafka.ListsTopic = v },
		"kafka.scorer_group":    func(c *Config, v string) { c.Kafka.ScorerGroup = v },
		"kafka.archiver_group":  func(c *Config, v string) { c.Kafka.ArchiverGroup = v },
		"kafka.decisions_group": func(c *Config, v string) { c.Kafka.DecisionsGroup = v },
		"clickhouse.database":   func(c *Config, v string) { c.ClickHouse.Database = v },
	}
	for key, f := range set {
		for _, v := range []string{"h1p-13957240102", "t.139.5724.0102", "１３９５７２４０１０２"} {
			c := Default()
			c.ClickHouse.Addr = "127.0.0.1:9000"
			f(&c, v)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), key+": ") || !strings.Contains(err.Error(), "phone number") {
				t.Errorf("%s=%q: %v; want it refused for holding a phone number", key, v, err)
				continue
			}
			if strings.Contains(err.Error(), "0102") || strings.Contains(err.Error(), "０１０２") {
				t.Errorf("%s=%q: the error echoes the name: %v", key, v, err)
			}
		}
	}
	c := Default()
	c.ClickHouse.Addr = "127.0.0.1:9000"
	c.Kafka.EventsTopic, c.Kafka.ScorerGroup, c.ClickHouse.Database = "prod-2026.verify.events", "riskflow-scorer-20261207", "riskflow_v2"
	if err := c.Validate(); err != nil {
		t.Errorf("ordinary names refused: %v", err)
	}
}

// HTTP Basic ends the user name at its first colon (RFC 7617): an app key or an admin name
// holding one started, and every request naming it was refused as a wrong secret ("ops:cn" and
// "ops:cn-secret" is user "ops"); the admin could log into the console but not use /v1/rules or
// /v1/admin. Both are refused at start, named.
func TestCredentialNamesWithAColonRefused(t *testing.T) {
	c := Default()
	c.API.Keys = map[string]string{"shop:cn": "s3cret"}
	c.API.AdminKeys = map[string]string{"ops:cn": "other"}
	err := c.Validate()
	if err == nil {
		t.Fatal("an app key and an admin name with a colon accepted")
	}
	for _, want := range []string{`app key "shop:cn" holds ':'`, `api.admin_keys: admin name "ops:cn" holds ':'`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "other") {
		t.Errorf("the error shows a secret: %v", err)
	}
}

// A configuration's errors show the values and keys they are about through schemas.Excerpt: a
// phone number in them masked, a control character escaped. They showed them as written (%q, or
// bare for a key), so that a topic, a listen address or a key holding a number printed it, and a
// quoted key holding an escape sequence or a newline reached the terminal as such (found by
// FuzzLoadConfig).
func TestConfigErrorsMaskNumbersAndEscapeKeys(t *testing.T) {
	for doc, want := range map[string]string{
		"\"13812348000\": x\n":                                                       `line 1: "<phone>": unknown section`,
		"kafka:\n  \"tel:13812348000\": 1\n":                                         `line 2: "kafka.tel:<phone>": unknown key`,
		"kafka: 13812348000\n":                                                       `line 1: kafka: expected section keys (kafka.key: value), got "<phone>"`,
		"kafka:\n  \"x\\e[31m\\ny\": 1\n":                                            `line 2: "kafka.x\x1b[31m\ny": unknown key`,
		"kafka:\n  partitions: 13812348000.5\n":                                      `line 2: kafka.partitions: "<phone>.5" is not an integer`,
		"kafka:\n  decisions_brokers: [\"+86 138 1234 8000\"]\n":                     `kafka.decisions_brokers: "<phone>" is not host:port`,
		"kafka:\n  events_topic: \"13812348000\"\n  scores_topic: \"13812348000\"\n": `kafka.scores_topic: "<phone>" is also kafka.events_topic`,
		"log:\n  level: \"138-1234-8000\"\n":                                         `log.level: "<phone>" is not debug`,
		"scoring:\n  windows: [1m, \"13812348000\"]\n":                               `scoring.windows: "<phone>" is not a duration`,
		"0000000000: x\n":                                                            `line 1: "0000000000": unknown section`,
		"kafka:\n  partitions: 13812348000\n":                                        `kafka.partitions: <phone> is outside 1..1024`,
	} {
		path := writeFile(t, "c.yaml", doc)
		c, err := LoadConfig(path, nil, nil)
		if err == nil {
			err = c.Validate()
		}
		// The file's path is left out of the check: the temporary directory's random digits
		// ("…Keys1419680934/001/c.yaml") may read as a number themselves.
		if err == nil {
			t.Errorf("%q: no error, want %q", doc, want)
			continue
		}
		if msg := strings.ReplaceAll(err.Error(), path, "FILE"); !strings.Contains(msg, want) || schemas.MaskPhones(msg) != msg {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}

// A rate of api.app_limits given as something else than a number is named with its app and key,
// as api.rate_per_app is: the whole map's decoding error said "api.app_limits: expected key:
// value pairs, got something else" — of a map of key: value pairs — and named neither.
func TestLoadConfigAppLimitsOfTheWrongType(t *testing.T) {
	p := writeFile(t, "wrongtype.yaml", `api:
  keys: {small: s1, big: s2}
  app_limits:
    big: {rate_per_app: 20k}
    small:
      events_per_app: [1, 2]
`)
	_, err := LoadConfig(p, nil, nil)
	for _, want := range []string{
		`line 4: api.app_limits.big.rate_per_app: "20k" is not a number`,
		`line 6: api.app_limits.small.events_per_app: a list is not a number`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadConfig: %v\nwant %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "got something else") {
		t.Errorf("LoadConfig: %v\nwant no \"got something else\"", err)
	}
	// The same through --set and the environment (JSON).
	p = writeFile(t, "keys.yaml", "api:\n  keys: {big: s2}\n")
	if _, err = LoadConfig(p, nil, []string{`api.app_limits={"big": {"rate_per_app": "7"}}`}); err == nil || !strings.Contains(err.Error(), `api.app_limits.big.rate_per_app: "7" is not a number`) {
		t.Errorf("--set api.app_limits with a rate as a string: %v", err)
	}
	if _, err = LoadConfig(p, []string{`RISKFLOW_API_APP_LIMITS={"big": {"events_rate_per_app": true}}`}, nil); err == nil || !strings.Contains(err.Error(), `api.app_limits.big.events_rate_per_app: "true" is not a number`) {
		t.Errorf("RISKFLOW_API_APP_LIMITS with a rate as a boolean: %v", err)
	}
}

// An app's or admin's secret given as a list or a map is named with its entry (and not shown); a
// map where a number or a list belongs is called a map. The file said "api.keys: expected key:
// value pairs, got something else" of a map of key: value pairs, and "api.rate_per_app: something
// else is not a number".
func TestLoadConfigNamesTheEntryOfASecretOfTheWrongKind(t *testing.T) {
	for yml, want := range map[string]string{
		"api:\n  keys:\n    app1: s1\n    app2: [s3cret]\n":  "line 4: api.keys.app2: expected a string, got a list",
		"api:\n  admin_keys:\n    lead: {s3cret: 1}\n":       "line 3: api.admin_keys.lead: expected a string, got a map",
		"api:\n  keys: {app1: s1}\n  rate_per_app: {a: 1}\n": "line 3: api.rate_per_app: a map is not a number",
		"kafka:\n  brokers: {a: 1}\n":                        "line 2: kafka.brokers: expected a list like [a, b] (or one \"- item\" per line), got a map",
	} {
		_, err := LoadConfig(writeFile(t, "c.yaml", yml), nil, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v\nwant %q", yml, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "something else")) {
			t.Errorf("%q: %v\nwant neither the secret nor \"something else\"", yml, err)
		}
	}
}

// A secret written as a YAML block scalar keeps its trailing newline, which no client sends: the
// node started and refused every request of the app, every login of the admin. Refused at start,
// naming the app or admin and not the secret.
func TestLoadConfigRefusesSecretsWithANewline(t *testing.T) {
	y := writeFile(t, "riskflow.yaml", "api:\n  keys:\n    app1: |\n      s3cret-one\n  admin_keys:\n    lead: |\n      s3cret-two\n")
	c, err := LoadConfig(y, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, want := range []string{`api.keys: the secret of "app1" begins or ends with a space or a newline`, `api.admin_keys: the secret of "lead" begins or ends`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadConfig = %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows a secret: %v", err)
	}
}
