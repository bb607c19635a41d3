//go:build integration

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
)

var (
	kafkaAddr = envOr("RISKFLOW_KAFKA_BROKERS", "127.0.0.1:19092")
	chAddr    = envOr("RISKFLOW_CLICKHOUSE_ADDR", "127.0.0.1:19000")
	repoRoot  = func() string {
		_, f, _, _ := runtime.Caller(0)
		return filepath.Clean(filepath.Join(filepath.Dir(f), "..", ".."))
	}()
	binary string
)

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func TestMain(m *testing.M) {
	for _, addr := range []string{kafkaAddr, chAddr} {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "integration tests need Kafka at %s and ClickHouse at %s: run deploy/local/up (%v)\n", kafkaAddr, chAddr, err)
			os.Exit(1)
		}
		c.Close()
	}
	dir, err := os.MkdirTemp("", "riskflow-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "riskflow")
	build := exec.Command("go", "build", "-o", binary, "./cmd/riskflow")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build riskflow: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one isolated riskflow deployment: its own topics, groups and ClickHouse database.
type env struct {
	t      *testing.T
	id     string
	events string
	scores string
	dlq    string
	// decisions is the decision log's topic (each env its own, as its own consumer group).
	decisions string
	db        string
	ch        driver.Conn
	vars      []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	e := &env{t: t, id: id, events: "it." + id + ".events", scores: "it." + id + ".scores", dlq: "it." + id + ".dlq",
		decisions: "it." + id + ".decisions", db: "riskflow_it_" + id}
	e.vars = []string{
		"RISKFLOW_KAFKA_BROKERS=" + kafkaAddr,
		"RISKFLOW_KAFKA_EVENTS_TOPIC=" + e.events,
		"RISKFLOW_KAFKA_SCORES_TOPIC=" + e.scores,
		"RISKFLOW_KAFKA_DLQ_TOPIC=" + e.dlq,
		"RISKFLOW_KAFKA_DECISIONS_TOPIC=" + e.decisions,
		"RISKFLOW_KAFKA_DECISIONS_GROUP=it-decisions-" + id,
		"RISKFLOW_KAFKA_SCORER_GROUP=it-scorer-" + id,
		"RISKFLOW_KAFKA_ARCHIVER_GROUP=it-archiver-" + id,
		"RISKFLOW_CLICKHOUSE_ADDR=" + chAddr,
		"RISKFLOW_CLICKHOUSE_DATABASE=" + e.db,
		"RISKFLOW_CLICKHOUSE_BREAKER_OPEN_FOR=2s",
		"RISKFLOW_CLICKHOUSE_FLUSH_INTERVAL=200ms",
		"RISKFLOW_SCORING_PHONE_HASH_KEY=it-key-" + id,
		"RISKFLOW_API_KEYS=it-app:it-secret",
		"RISKFLOW_LOG_LEVEL=info",
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	e.ch = conn
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+e.db)
		conn.Close()
	})
	kc := consumers.Config{Brokers: []string{kafkaAddr}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := consumers.EnsureTopics(ctx, kc, []consumers.TopicSpec{{Name: e.events, Partitions: 4}, {Name: e.scores, Partitions: 4}, {Name: e.dlq, Partitions: 1}, {Name: e.decisions, Partitions: 4}}, discardLogger()); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	return e
}

// proc is a running riskflow process.
type proc struct {
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan struct{}
}

// start runs `riskflow serve --roles roles` with the env's configuration.
func (e *env) start(roles string, extra ...string) *proc {
	e.t.Helper()
	args := append([]string{"serve", "--roles", roles}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), e.vars...)
	buf := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = buf, buf // one writer: os/exec then copies both through one goroutine
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start riskflow %s: %v", roles, err)
	}
	p := &proc{cmd: cmd, log: buf, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if e.t.Failed() {
			e.t.Logf("riskflow %s log (tail):\n%s", roles, tail(buf, 60))
		}
	})
	return p
}

// stop signals the process and waits for it (SIGKILL after 15 s).
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitExit waits for the process, signalled already, to end; the test fails if it has not
// within d.
func (p *proc) waitExit(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("the node did not stop within %s of its signal", d)
	}
}

// writer produces raw messages to the env's events topic.
func (e *env) writer() *kafka.Writer {
	w := consumers.NewWriter(consumers.Config{Brokers: []string{kafkaAddr}}, e.events)
	e.t.Cleanup(func() { w.Close() })
	return w
}

// event builds a valid VerifyEvent JSON for index i (distinct phones, a few shared IPs).
func event(i int, ts time.Time) []byte {
	ev := map[string]any{
		"event_id": fmt.Sprintf("ev-%07d", i),
		"ts":       ts.UnixMilli(),
		"app_id":   "it-app",
		"flow":     "one_click_login",
		"phone":    fmt.Sprintf("+86139%08d", i),
		"ip":       fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256),
		"carrier":  "CM",
		"platform": "android",
		"outcome":  []string{"success", "success", "success", "fail"}[i%4],
	}
	if i%3 == 0 {
		ev["device_id"] = fmt.Sprintf("dev-%d", i)
	}
	b, _ := json.Marshal(ev)
	return b
}

// invalid returns the j-th kind of bad message and the field its error must name.
func invalid(j int) ([]byte, string) {
	good := map[string]any{"event_id": fmt.Sprintf("bad-%d", j), "ts": "2026-11-20T10:00:00Z", "app_id": "it-app", "flow": "one_click_login", "phone": "13900000000", "ip": "1.2.3.4", "outcome": "success"}
	mut := func(k string, v any) ([]byte, string) {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b, k
	}
	switch j % 8 {
	case 0:
		return mut("ip", "999.1.1.1")
	case 1:
		return mut("phone", "12345")
	case 2:
		return mut("flow", "password_login")
	case 3:
		return mut("event_id", nil)
	case 4:
		return mut("ts", "yesterday")
	case 5:
		return mut("surprise", "field")
	case 6:
		return []byte(`{"event_id": "trunc`), "event_id" // the text stops inside its value (f50e74f)
	default:
		return mut("outcome", 7)
	}
}

func (e *env) produce(ctx context.Context, w *kafka.Writer, values [][]byte) {
	e.t.Helper()
	const chunk = 1000
	for i := 0; i < len(values); i += chunk {
		end := min(i+chunk, len(values))
		msgs := make([]kafka.Message, 0, end-i)
		for _, v := range values[i:end] {
			msgs = append(msgs, kafka.Message{Value: v})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			e.t.Fatalf("produce: %v", err)
		}
	}
}

// count runs a count query; a failing query fails the test (a broken query must not pass as 0).
func (e *env) count(ctx context.Context, query string) uint64 {
	e.t.Helper()
	n, err := e.tryCount(ctx, query)
	if err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (e *env) tryCount(ctx context.Context, query string) (uint64, error) {
	var n uint64
	err := e.ch.QueryRow(ctx, strings.ReplaceAll(query, "{db}", e.db)).Scan(&n)
	return n, err
}

// waitCount polls query until it returns want or the deadline passes; it returns the last value.
func (e *env) waitCount(ctx context.Context, query string, want uint64, within time.Duration) uint64 {
	deadline := time.Now().Add(within)
	var got uint64
	for time.Now().Before(deadline) {
		got, _ = e.tryCount(ctx, query) // the tables may not exist yet
		if got >= want {
			return got
		}
		time.Sleep(250 * time.Millisecond)
	}
	return got
}

// topicEnd returns the sum of end offsets of topic (messages ever written).
func topicEnd(t *testing.T, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kc := consumers.Config{Brokers: []string{kafkaAddr}}
	parts, err := consumers.Partitions(ctx, kc, topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var total int64
	for _, p := range parts {
		var last int64
		var err error
		for attempt := 0; attempt < 50; attempt++ { // a new topic's leader may still be settling
			var conn *kafka.Conn
			if conn, err = kafka.DialLeader(ctx, "tcp", kafkaAddr, topic, p); err == nil {
				last, err = conn.ReadLastOffset()
				conn.Close()
			}
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("last offset %s/%d: %v", topic, p, err)
		}
		total += last
	}
	return total
}

// readAll reads every message of a topic from the beginning.
func readAll(t *testing.T, topic string, want int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{kafkaAddr}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d messages: %v", topic, len(out), want, err)
		}
		out = append(out, m)
	}
	return out
}

// readAllPartitions reads n messages from all partitions of topic, from the beginning.
func readAllPartitions(t *testing.T, topic string, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	parts, err := consumers.Partitions(ctx, consumers.Config{Brokers: []string{kafkaAddr}}, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for _, p := range parts {
		conn, err := kafka.DialLeader(ctx, "tcp", kafkaAddr, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil || last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{kafkaAddr}, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		for int64(len(out)) < int64(n) {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	if len(out) < n {
		t.Fatalf("read %d of %d messages from %s", len(out), n, topic)
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func tail(b *syncbuf.Buffer, lines int) string {
	all := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
