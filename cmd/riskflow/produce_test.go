package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/schemas"
)

// memWriter keeps what is written.
type memWriter struct{ msgs []kafka.Message }

func (w *memWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.msgs = append(w.msgs, msgs...)
	return nil
}

func produceEvent(id string) string {
	return fmt.Sprintf(`{"event_id":%q,"ts":"2026-12-01T10:00:00Z","app_id":"a","flow":"one_click_login","phone":"13812345678","ip":"1.2.3.4","outcome":"success"}`, id)
}

// One line too long for the reader, one invalid line and a blank one cost only themselves: the
// lines after them are produced, and each is reported with its number.
func TestProduceLinesSkipsBadAndOversizeLines(t *testing.T) {
	in := strings.Join([]string{
		produceEvent("e1"),
		`{"event_id":"` + strings.Repeat("x", 2*maxProduceLine) + `"}`,
		`{"event_id":"e3"}`,
		"",
		produceEvent("e5") + "\r",
		produceEvent("e6"),
	}, "\n")
	for _, raw := range []bool{false, true} {
		w := &memWriter{}
		pub := &pipeline.Publisher{W: w, Hasher: schemas.NewPhoneHasher([]byte("k"))}
		var stderr bytes.Buffer
		sent, bad, err := produceLines(context.Background(), strings.NewReader(in), pub, w, raw, 1<<20, &stderr)
		if err != nil {
			t.Fatalf("raw=%v: %v", raw, err)
		}
		wantSent, wantBad := 3, 2
		if raw { // raw sends the invalid line as it is; only the long one is refused
			wantSent, wantBad = 4, 1
		}
		if sent != wantSent || bad != wantBad || len(w.msgs) != wantSent {
			t.Fatalf("raw=%v: sent %d bad %d written %d, want %d %d; stderr:\n%s", raw, sent, bad, len(w.msgs), wantSent, wantBad, stderr.String())
		}
		if !strings.Contains(stderr.String(), fmt.Sprintf("line 2: %d bytes, over the", 2*maxProduceLine+15)) {
			t.Errorf("raw=%v: the long line is not reported with its number and size:\n%s", raw, stderr.String())
		}
		if !raw && !strings.Contains(stderr.String(), "line 3: ") {
			t.Errorf("the invalid line is not reported with its number:\n%s", stderr.String())
		}
		last := string(w.msgs[len(w.msgs)-1].Value)
		if !strings.Contains(last, `"e6"`) {
			t.Errorf("raw=%v: last message %q, want event e6", raw, last)
		}
		if raw && strings.HasSuffix(string(w.msgs[len(w.msgs)-2].Value), "\r") {
			t.Errorf("a CRLF line keeps its \\r")
		}
	}
}

// In raw mode a message over the writer's limit is reported by line and the rest are written.
func TestProduceRawRejectsOversizeMessage(t *testing.T) {
	in := "a\n" + strings.Repeat("b", 5000) + "\nc\n"
	w := &memWriter{}
	var stderr bytes.Buffer
	sent, bad, err := produceLines(context.Background(), strings.NewReader(in), nil, w, true, 1000, &stderr)
	if err != nil || sent != 2 || bad != 1 || len(w.msgs) != 2 {
		t.Fatalf("sent %d bad %d written %d err %v; stderr %s", sent, bad, len(w.msgs), err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "line 2: not written") {
		t.Errorf("stderr %q does not name line 2", stderr.String())
	}
}

// Counts in produce's summary read as English: one line, two lines.
func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 invalid lines", 1: "1 invalid line", 2: "2 invalid lines"} {
		if got := plural(n, "invalid line"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}

// produce and loadgen --out kafka against brokers that do not answer exit 1 naming kafka.brokers
// and what starts one, not only "kafka: ensure topics: dial …: connection refused".
func TestPublishingCommandsNameUnreachableBrokers(t *testing.T) {
	cleanEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	events := filepath.Join(tempDir(t), "e.jsonl")
	if err := os.WriteFile(events, []byte(produceEvent("e1")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RISKFLOW_KAFKA_BROKERS", addr)
	t.Setenv("RISKFLOW_SCORING_PHONE_HASH_KEY", "k")
	for _, args := range [][]string{{"produce", events}, {"loadgen", "--out", "kafka", "--duration", "1s"}} {
		r := runCmd(t, context.Background(), args...)
		if r.code != 1 || !strings.Contains(r.stderr, "kafka.brokers "+addr+": ") || !strings.Contains(r.stderr, "deploy/local/up") {
			t.Errorf("%v: exit %d, want 1 naming kafka.brokers %s and deploy/local/up: %s", args, r.code, addr, r.stderr)
		}
	}
}

// A command interrupted while it waits on a broker that accepted the connection and never answers
// says it was interrupted, not the "i/o timeout" its dial's cancelled deadline reports.
func TestInterruptedCommandSaysSo(t *testing.T) {
	cleanEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cancel() // the Ctrl-C, once produce is waiting on the broker
		<-t.Context().Done()
	}()
	file := filepath.Join(tempDir(t), "events.jsonl")
	if err := os.WriteFile(file, []byte(produceEvent("e1")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, ctx, "produce", "--set", "kafka.brokers="+ln.Addr().String(), "--set", "scoring.phone_hash_key=k", file)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "riskflow: interrupted: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// chanWriter tells each write's message count on a channel.
type chanWriter chan int

func (w chanWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w <- len(msgs)
	return nil
}

// produce - over a stream that pauses (tail -f events.jsonl | riskflow produce -) sends what it
// read without waiting for 1,000 lines more, and a Ctrl-C or SIGTERM while the input has nothing to
// read stops it at once: it waited for the next line or the end of the input, and then could not
// send the lines it had read ("produced 0 events").
func TestProduceStreamIsSentAndStops(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	w := make(chanWriter, 10)
	pub := &pipeline.Publisher{W: w, Hasher: schemas.NewPhoneHasher([]byte("k"))}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		sent, bad int
		err       error
	}
	done := make(chan result, 1)
	go func() {
		sent, bad, err := produceLines(ctx, pr, pub, w, false, 1<<20, io.Discard)
		done <- result{sent, bad, err}
	}()
	if _, err := io.WriteString(pw, produceEvent("e1")+"\n"+produceEvent("e2")+"\n"); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 2; n += <-w { // the two lines are sent while the stream stays open
	}
	cancel() // Ctrl-C, with nothing to read
	r := <-done
	if r.sent != 2 || r.bad != 0 || !errors.Is(r.err, context.Canceled) || !strings.Contains(r.err.Error(), "stopped after line 2") {
		t.Errorf("stopped: %d sent, %d bad, %v; want 2, 0, stopped after line 2", r.sent, r.bad, r.err)
	}
}

// A directory given as the file is a usage error found before anything touches the broker: it
// opened, and produce created its topics before the first read failed.
func TestProduceDirectoryIsRefusedBeforeTheBroker(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	r := runCmd(t, context.Background(), "produce", dir, "--set", "kafka.brokers=127.0.0.1:1", "--set", "scoring.phone_hash_key=0123456789abcdef")
	if r.code != 2 || !strings.Contains(r.stderr, printed(dir+" is a directory")) || strings.Contains(r.stderr, "Kafka") {
		t.Errorf("exit %d\nstdout %s\nstderr %s\nwant exit 2 naming the directory, before any broker", r.code, r.stdout, r.stderr)
	}
}

// flakyWriter fails its first fails writes (a broker restarting), then keeps what is written.
type flakyWriter struct {
	memWriter
	fails int
}

func (w *flakyWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if w.fails > 0 {
		w.fails--
		return kafka.LeaderNotAvailable
	}
	return w.memWriter.WriteMessages(ctx, msgs...)
}

// A write the broker does not take (restarting, a leader moving) is sent again after a pause,
// said on stderr, instead of ending the run: produce stopped at its first failed write, 1,129 of
// 4,000 events out, during a broker restart (held-out run). After produceRetries failures in a
// row it gives up with the error.
func TestProduceRidesOutABrokerRestart(t *testing.T) {
	defer func(d time.Duration) { produceRetryWait = d }(produceRetryWait)
	produceRetryWait = time.Millisecond
	in := produceEvent("e1") + "\n" + produceEvent("e2") + "\n"
	for _, raw := range []bool{false, true} {
		w := &flakyWriter{fails: 3}
		pub := &pipeline.Publisher{W: w, Hasher: schemas.NewPhoneHasher([]byte("k"))}
		var stderr bytes.Buffer
		sent, bad, err := produceLines(context.Background(), strings.NewReader(in), pub, w, raw, 1<<20, &stderr)
		if err != nil || sent != 2 || bad != 0 || len(w.msgs) != 2 {
			t.Fatalf("raw=%v: sent %d bad %d written %d err %v; stderr:\n%s", raw, sent, bad, len(w.msgs), err, stderr.String())
		}
		if n := strings.Count(stderr.String(), "not taken by the broker"); n != 3 {
			t.Errorf("raw=%v: %d retries told, want 3:\n%s", raw, n, stderr.String())
		}
		w = &flakyWriter{fails: produceRetries + 1}
		pub.W = w
		if _, _, err := produceLines(context.Background(), strings.NewReader(in), pub, w, raw, 1<<20, io.Discard); err == nil {
			t.Errorf("raw=%v: %d failed writes in a row: no error", raw, produceRetries+1)
		}
	}
}
