package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/schemas"
)

// cmdMigrate applies the ClickHouse schema.
func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	var cf commonFlags
	cf.register(fs)
	if err := parseFlagsNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	c := cfg.ClickHouse
	// The store's log says what stdout does not: a migration skipped because the server is older
	// than it requires (applied by a migrate after an upgrade), a schema newer than this binary.
	store, err := openStore(ctx, c, newLogger(LogConfig{Level: "info", Format: cfg.Log.Format}, stderr))
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "database %s is up to date\n", c.Database)
		return nil
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m)
	}
	return nil
}

// cmdProduce publishes a JSONL file of VerifyEvents to verify.events. Invalid lines are reported
// with their line number and skipped; the exit code is 1 if any line was invalid.
func cmdProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("produce", stderr)
	var cf commonFlags
	cf.register(fs)
	raw := fs.Bool("raw", false, "send lines as they are, valid or not (exercise the dead-letter path)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("produce: exactly one FILE.jsonl is required (- for stdin)")
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	if cfg.Scoring.PhoneHashKey == "" {
		return configf("scoring.phone_hash_key: required to key messages (RISKFLOW_SCORING_PHONE_HASH_KEY)")
	}
	in := os.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return usageError{fmt.Errorf("produce: %w", err)}
		}
		defer f.Close()
		// Checked before the topics are created: a directory opens, and failed only at its first
		// read, after produce had created three topics on the broker.
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return usageError{fmt.Errorf("produce: %s is a directory: want a FILE.jsonl of events (- for stdin)", name)}
		}
		in = f
	}
	log := newLogger(cfg.Log, stderr)
	kc := cfg.Kafka.Config
	if err := consumers.EnsureTopics(ctx, kc, (&app{cfg: cfg}).topics(), log); err != nil {
		return kafkaStartError(ctx, kc.Brokers, err)
	}
	w := consumers.NewWriter(kc, cfg.Kafka.EventsTopic)
	defer w.Close()
	pub := &pipeline.Publisher{W: w, Hasher: schemas.NewPhoneHasher([]byte(cfg.Scoring.PhoneHashKey))}
	sent, bad, err := produceLines(ctx, in, pub, w, *raw, kc.BatchBytes(), stderr)
	fmt.Fprintf(stdout, "produced %s to %s (%s)\n", plural(sent, "event"), cfg.Kafka.EventsTopic, plural(bad, "invalid line"))
	if err != nil {
		return err
	}
	if bad > 0 && !*raw {
		return fmt.Errorf("produce: %s skipped", plural(bad, "invalid line"))
	}
	return nil
}

// maxProduceLine is the longest line produce reads; a longer one is reported and skipped.
const maxProduceLine = 1 << 20

// produceLines publishes in's lines in batches of at most 1,000 — fewer when the input pauses
// (a stream piped in: what was read goes out instead of waiting for 1,000 more lines). A line that
// is not a valid event (or, with raw, one Kafka refuses) is reported on stderr with its number and
// skipped, as is a line longer than maxProduceLine: one bad line never costs the rest of the file.
// Told to stop (ctx), it stops reading at once — even while the input has nothing to read — and
// sends what it read, for a few seconds at most, then returns ctx's error.
func produceLines(ctx context.Context, in io.Reader, pub *pipeline.Publisher, w pipeline.MessageWriter, raw bool, maxBytes int, stderr io.Writer) (sent, bad int, err error) {
	var batch []schemas.VerifyEvent
	var rawBatch [][]byte
	var rawLines []int
	pubCtx := ctx
	flush := func() error {
		if raw {
			// The lines the broker did not acknowledge are sent again, the others not.
			lines, numbers := rawBatch, rawLines
			err := retryProduce(pubCtx, stderr, func() (int, error) {
				n, rejected, left, leftNumbers, err := writeRaw(pubCtx, w, lines, numbers, maxBytes, stderr)
				sent += n
				bad += rejected
				lines, numbers = left, leftNumbers
				return len(lines), err
			})
			rawBatch, rawLines = rawBatch[:0], rawLines[:0]
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		// Sent again whole: what the broker took of a failed write is stored twice, and counted
		// once downstream (events are idempotent by (app_id, event_id)).
		if err := retryProduce(pubCtx, stderr, func() (int, error) { return len(batch), pub.Publish(pubCtx, batch) }); err != nil {
			return err
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	// The lines are read by a goroutine of their own, so that a read that blocks (a pipe with
	// nothing in it) neither holds back what was read nor a Ctrl-C.
	type readResult struct {
		text []byte
		long int
		err  error
	}
	lines := make(chan readResult, 1024)
	done := make(chan struct{})
	defer close(done)
	go func() {
		r := bufio.NewReaderSize(in, 64<<10)
		for {
			text, long, err := readLine(r, nil, maxProduceLine)
			select {
			case lines <- readResult{text, long, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	line := 0
	for {
		var rr readResult
		select {
		case rr = <-lines:
		default:
			// Nothing read yet: send what is waiting, then wait for more or for a stop.
			if err := flush(); err != nil {
				return sent, bad, err
			}
			select {
			case rr = <-lines:
			case <-ctx.Done():
				return sent, bad, fmt.Errorf("stopped after line %d, before the end of the input: %w", line, ctx.Err())
			}
		}
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			pubCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := flush(); err != nil {
				return sent, bad, err
			}
			return sent, bad, fmt.Errorf("stopped after line %d, before the end of the input: %w", line, ctx.Err())
		}
		text, long, rerr := rr.text, rr.long, rr.err
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return sent, bad, fmt.Errorf("read line %d: %w", line+1, rerr)
		}
		if len(text) > 0 || long > 0 || rerr == nil {
			line++
		}
		switch {
		case long > 0:
			bad++
			fmt.Fprintf(stderr, "line %d: %d bytes, over the %d-byte limit of a line; skipped\n", line, long, maxProduceLine)
		case len(bytes.TrimSpace(text)) == 0:
		case raw:
			rawBatch = append(rawBatch, text)
			rawLines = append(rawLines, line)
		default:
			ev, err := schemas.DecodeEvent(text)
			if err != nil {
				bad++
				fmt.Fprintf(stderr, "line %d: %v\n", line, err)
				break
			}
			batch = append(batch, ev)
		}
		if len(batch)+len(rawBatch) >= 1000 {
			if err := flush(); err != nil {
				return sent, bad, err
			}
		}
		if rerr != nil { // io.EOF
			return sent, bad, flush()
		}
	}
}

// readLine appends r's next line (without its end) to buf. A line longer than limit is read to
// its end and dropped: long is then its length and the returned text empty. The error is io.EOF
// after the last line.
func readLine(r *bufio.Reader, buf []byte, limit int) (text []byte, long int, err error) {
	n := 0
	for {
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) { // no end of line yet
			if n += len(chunk); n <= limit {
				buf = append(buf, chunk...)
			}
			continue
		}
		body := bytes.TrimSuffix(chunk, []byte("\n"))
		if n += len(body); n > limit {
			return nil, n, err
		}
		buf = append(buf, body...)
		return bytes.TrimSuffix(buf, []byte("\r")), 0, err
	}
}

// writeRaw writes lines as they are; a line Kafka refuses for good (too large, invalid) is
// reported with its line number and counted as rejected, the others are written. With err, left
// (and leftNumbers) are the lines the broker did not acknowledge, to be sent again.
func writeRaw(ctx context.Context, w pipeline.MessageWriter, lines [][]byte, numbers []int, maxBytes int, stderr io.Writer) (sent, rejected int, left [][]byte, leftNumbers []int, err error) {
	if len(lines) == 0 {
		return 0, 0, nil, nil, nil
	}
	msgs := make([]kafka.Message, len(lines))
	for i, l := range lines {
		msgs[i] = kafka.Message{Value: l}
	}
	rej, retry, err := consumers.Produce(ctx, w, msgs, maxBytes)
	for _, r := range rej {
		fmt.Fprintf(stderr, "line %d: not written: %v\n", numbers[r.Index], consumers.Summarize(r.Err))
	}
	sent = len(lines) - len(rej) - len(retry)
	if err != nil {
		for _, i := range retry {
			left, leftNumbers = append(left, lines[i]), append(leftNumbers, numbers[i])
		}
		return sent, len(rej), left, leftNumbers, fmt.Errorf("produce %d raw lines (%d not acknowledged): %w", len(lines), len(retry), err)
	}
	return sent, len(rej), nil, nil, nil
}

// produceRetries is how many times in a row produce sends again what the broker did not take (a
// broker restarting, a leader moving), after pauses doubling from produceRetryWait to 30 s —
// about two minutes in all (1+2+4+…+30 s): a file being loaded rides out a broker restart instead of
// stopping at its first failed write.
const produceRetries = 8

// produceRetryWait is the first pause of retryProduce (tests shorten it).
var produceRetryWait = time.Second

// retryProduce runs send until it succeeds, fails for a reason that will not pass (an invalid
// event, a misconfiguration), ctx ends or produceRetries attempts failed in a row, telling each
// retry on stderr. send returns how many messages it was sending.
func retryProduce(ctx context.Context, stderr io.Writer, send func() (int, error)) error {
	for attempt := 1; ; attempt++ {
		n, err := send()
		if err == nil || ctx.Err() != nil || schemas.Classify(err) != schemas.Retry || attempt > produceRetries {
			return err
		}
		wait := min(produceRetryWait<<(attempt-1), 30*time.Second)
		fmt.Fprintf(stderr, "produce: %s not taken by the broker (%v); sent again in %s (attempt %d of %d)\n",
			plural(n, "message"), consumers.Summarize(err), wait, attempt, produceRetries)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// plural writes n and noun, with an s unless n is 1: "1 invalid line", "3 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// kafkaStartError says that the brokers a one-shot command (produce, loadgen --out kafka) was to
// publish to did not take its topics, naming kafka.brokers and what usually starts them.
func kafkaStartError(ctx context.Context, brokers []string, err error) error {
	if ctx.Err() != nil {
		// Stopped (Ctrl-C) while waiting for the broker: not a reason to check it.
		return fmt.Errorf("kafka.brokers %s: %w", strings.Join(brokers, ","), err)
	}
	return fmt.Errorf("kafka.brokers %s: %w (is Kafka running there? deploy/local/up starts one on 127.0.0.1:19092)", strings.Join(brokers, ","), err)
}

// clickhouseHint adds what to check to an error of a ClickHouse a command could not use: nothing
// answering at clickhouse.addr, its HTTP port given for the native one, or refused credentials.
func clickhouseHint(err error) error {
	var de *chsink.DialError
	switch {
	case errors.As(err, &de):
		return fmt.Errorf("%w (is ClickHouse running there? deploy/local/up starts one on 127.0.0.1:19000)", err)
	case chsink.HandshakeTimedOut(err):
		// Either a server that stopped answering (hung, overloaded: an outage of the address that
		// worked until now) or its HTTP port given for the native one: both take the connection
		// and never answer the native hello. Naming only the port misled an operator in an outage.
		return fmt.Errorf("%w (the server took the connection and did not answer: ClickHouse hung or overloaded, or clickhouse.addr is its HTTP port 8123 instead of the native protocol port: 9000, or 19000 with deploy/local/up)", err)
	case chsink.AuthFailed(err):
		return fmt.Errorf("%w (check clickhouse.username and clickhouse.password: RISKFLOW_CLICKHOUSE_USERNAME, RISKFLOW_CLICKHOUSE_PASSWORD)", err)
	}
	return err
}
