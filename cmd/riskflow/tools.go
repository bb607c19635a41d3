package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/schemas"
)

// cmdMigrate applies the ClickHouse schema.
func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	var cf commonFlags
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load(nil)
	if err != nil {
		return err
	}
	c := cfg.ClickHouse
	store, err := openStore(ctx, c, nil)
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
		in = f
	}
	log := newLogger(cfg.Log, stderr)
	kc := cfg.Kafka.Config
	if err := consumers.EnsureTopics(ctx, kc, (&app{cfg: cfg}).topics(), log); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	w := consumers.NewWriter(kc, cfg.Kafka.EventsTopic)
	defer w.Close()
	pub := &pipeline.Publisher{W: w, Hasher: schemas.NewPhoneHasher([]byte(cfg.Scoring.PhoneHashKey))}
	sent, bad, err := produceLines(ctx, in, pub, w, *raw, stderr)
	fmt.Fprintf(stdout, "produced %d events to %s (%d invalid lines)\n", sent, cfg.Kafka.EventsTopic, bad)
	if err != nil {
		return err
	}
	if bad > 0 && !*raw {
		return fmt.Errorf("produce: %d invalid lines were skipped", bad)
	}
	return nil
}

func produceLines(ctx context.Context, in io.Reader, pub *pipeline.Publisher, w pipeline.MessageWriter, raw bool, stderr io.Writer) (sent, bad int, err error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var batch []schemas.VerifyEvent
	var rawBatch [][]byte
	flush := func() error {
		if raw {
			if err := writeRaw(ctx, w, rawBatch); err != nil {
				return err
			}
			sent += len(rawBatch)
			rawBatch = rawBatch[:0]
			return nil
		}
		if len(batch) == 0 {
			return nil
		}
		if err := pub.Publish(ctx, batch); err != nil {
			return err
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(strings.TrimSpace(string(text))) == 0 {
			continue
		}
		if raw {
			rawBatch = append(rawBatch, append([]byte(nil), text...))
		} else {
			ev, err := schemas.DecodeEvent(text)
			if err != nil {
				bad++
				fmt.Fprintf(stderr, "line %d: %v\n", line, err)
				continue
			}
			batch = append(batch, ev)
		}
		if len(batch)+len(rawBatch) >= 1000 {
			if err := flush(); err != nil {
				return sent, bad, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return sent, bad, fmt.Errorf("read line %d: %w", line+1, err)
	}
	return sent, bad, flush()
}

func writeRaw(ctx context.Context, w pipeline.MessageWriter, lines [][]byte) error {
	if len(lines) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(lines))
	for i, l := range lines {
		msgs[i] = kafka.Message{Value: l}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d raw lines: %w", len(lines), err)
	}
	return nil
}
