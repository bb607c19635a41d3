//go:build integration

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
)

// Helpers of the broker-outage, stall and phone-privacy tests.

func kafkaCtl(t *testing.T, action string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "deploy", "local", "kafka.sh"), action)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kafka.sh %s: %v\n%s", action, err, out)
	}
}

// stopKafka stops the broker and returns the function that starts it again and waits until it
// answers for topics. If the test ends first (a failure mid-outage), a cleanup starts it.
func stopKafka(t *testing.T, topics ...string) (restart func()) {
	t.Helper()
	var once sync.Once
	restart = func() {
		once.Do(func() {
			kafkaCtl(t, "start")
			waitKafka(t, topics...)
		})
	}
	t.Cleanup(restart)
	kafkaCtl(t, "stop")
	return restart
}

// waitKafka waits until every partition of topics has a leader again. kafka.sh start returns once
// the port is open and a "started" line is in server.log — which may be a previous run's line.
func waitKafka(t *testing.T, topics ...string) {
	t.Helper()
	kc := consumers.Config{Brokers: []string{kafkaAddr}, DialTimeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for _, topic := range topics {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			parts, err := consumers.Partitions(ctx, kc, topic)
			var lastErr error
			if err == nil && len(parts) > 0 {
				// A leader in the metadata is not yet a partition that answers: read its end offset.
				for _, p := range parts {
					conn, err := kafka.DialLeader(ctx, "tcp", kafkaAddr, topic, p)
					if err != nil {
						lastErr = err
						break
					}
					_, err = conn.ReadLastOffset()
					conn.Close()
					if err != nil {
						lastErr = err
						break
					}
				}
			} else {
				lastErr = fmt.Errorf("partitions %v: %v", parts, err)
			}
			cancel()
			if lastErr == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kafka did not serve %s within 90 s of its restart: %v", topic, lastErr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitLog waits until the process's output contains s (within d) and returns the output.
func (p *proc) waitLog(t *testing.T, s string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out := p.log.String()
		if strings.Contains(out, s) {
			return out
		}
		if !p.alive() {
			t.Fatalf("riskflow exited before logging %q:\n%s", s, tailString(out, 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("riskflow did not log %q within %s:\n%s", s, d, tailString(out, 40))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tailString(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// logLines returns the lines of out that contain every one of subs.
func logLines(out string, subs ...string) []string {
	var res []string
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, s := range subs {
			if !strings.Contains(l, s) {
				ok = false
				break
			}
		}
		if ok && l != "" {
			res = append(res, l)
		}
	}
	return res
}

// logAttr returns the value of key=value in a text-format slog line ("" if absent).
func logAttr(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if s, err := strconv.QuotedPrefix(v); err == nil {
			u, _ := strconv.Unquote(s)
			return u
		}
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

// apiClient calls one riskflow API with the env's app credentials.
type apiClient struct {
	base string
	c    *http.Client
}

func newAPIClient(addr string) *apiClient {
	return &apiClient{base: "http://" + addr, c: &http.Client{Timeout: 10 * time.Second}}
}

// post sends a JSON body (Content-Type application/json) with HTTP Basic it-app:it-secret.
func (a *apiClient) post(path string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, a.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.SetBasicAuth("it-app", "it-secret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func (a *apiClient) get(path string) (int, []byte, error) {
	resp, err := a.c.Get(a.base + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// metricValue returns a series' value as a number (ok false when absent or not a number).
func metricValue(t *testing.T, addr, series string) (float64, bool) {
	v := metric(t, addr, series)
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// cursor reads a topic incrementally: every partition from where the last poll stopped up to the
// end offsets at the time of the poll.
type cursor struct {
	t     *testing.T
	topic string
	pos   map[int]int64
}

// newCursor starts at the beginning of topic, or at its current end when fromEnd.
func newCursor(t *testing.T, topic string, fromEnd bool) *cursor {
	t.Helper()
	c := &cursor{t: t, topic: topic, pos: map[int]int64{}}
	for p, end := range partitionEnds(t, topic) {
		if fromEnd {
			c.pos[p] = end
		} else {
			c.pos[p] = 0
		}
	}
	return c
}

func partitionEnds(t *testing.T, topic string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parts, err := consumers.Partitions(ctx, consumers.Config{Brokers: []string{kafkaAddr}}, topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	ends := map[int]int64{}
	for _, p := range parts {
		var last int64
		var err error
		for attempt := 0; attempt < 50; attempt++ {
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
			t.Fatalf("end offset of %s/%d: %v", topic, p, err)
		}
		ends[p] = last
	}
	return ends
}

// poll returns the messages written since the last poll.
func (c *cursor) poll() []kafka.Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []kafka.Message
	for p, end := range partitionEnds(c.t, c.topic) {
		from := c.pos[p]
		if from >= end {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{kafkaAddr}, Topic: c.topic, Partition: p,
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(from); err != nil {
			r.Close()
			c.t.Fatalf("%s/%d: set offset %d: %v", c.topic, p, from, err)
		}
		for c.pos[p] < end {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				c.t.Fatalf("read %s/%d at %d (end %d): %v", c.topic, p, c.pos[p], end, err)
			}
			out = append(out, m)
			c.pos[p] = m.Offset + 1
		}
		r.Close()
	}
	return out
}

// scoreIDs collects the event ids of score records read by a cursor (count per id).
type scoreIDs struct {
	cur  *cursor
	seen map[string]int
	recs map[string][]byte // last record value per id
}

func newScoreIDs(c *cursor) *scoreIDs {
	return &scoreIDs{cur: c, seen: map[string]int{}, recs: map[string][]byte{}}
}

func (s *scoreIDs) poll() {
	s.cur.t.Helper()
	for _, m := range s.cur.poll() {
		id := jsonField(m.Value, "event_id")
		s.seen[id]++
		s.recs[id] = m.Value
	}
}

// count returns how many distinct ids with prefix were seen, and how many records they had.
func (s *scoreIDs) count(prefix string) (distinct, records int) {
	for id, n := range s.seen {
		if strings.HasPrefix(id, prefix) {
			distinct++
			records += n
		}
	}
	return distinct, records
}

// waitFor polls until n distinct ids with prefix were seen or d passed; it returns the distinct count.
func (s *scoreIDs) waitFor(prefix string, n int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		s.poll()
		got, _ := s.count(prefix)
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jsonField extracts a top-level string member of a flat JSON object cheaply ("" if absent).
func jsonField(b []byte, name string) string {
	key := []byte(`"` + name + `":"`)
	i := bytes.Index(b, key)
	if i < 0 {
		return ""
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// dropTopicsAtEnd deletes the env's topics when the test ends (after its processes stopped, when
// called before starting them): the outage tests write hundreds of MB. A failure is only logged.
func (e *env) dropTopicsAtEnd() {
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client := &kafka.Client{Addr: kafka.TCP(kafkaAddr), Transport: &kafka.Transport{}}
		resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{e.events, e.scores, e.dlq, e.decisions}})
		if err != nil {
			e.t.Logf("delete topics: %v", err)
			return
		}
		for topic, err := range resp.Errors {
			if err != nil {
				e.t.Logf("delete topic %s: %v", topic, err)
			}
		}
	})
}
