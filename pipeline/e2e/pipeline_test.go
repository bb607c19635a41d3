//go:build integration

package e2e

import (
	"context"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/pipeline"
)

const (
	exactlyOnceQuery = "SELECT count() FROM {db}.risk_scores FINAL"
	distinctQuery    = "SELECT uniqExact(event_id) FROM {db}.risk_scores"
	eventsQuery      = "SELECT count() FROM {db}.verify_events FINAL"
)

// 20,000 events, 200 of them invalid, plus 500 re-sent duplicates → exactly 19,800 scored events in
// ClickHouse and 200 dead letters naming the bad field.
func TestPipelineExactCounts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.start("scorer,archiver")

	const total, bad, resent = 20000, 200, 500
	now := time.Now().Add(-time.Hour)
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs [][]byte
	var valid [][]byte
	wantField := map[string]string{}
	badAt := map[int]bool{}
	for len(badAt) < bad {
		badAt[rng.IntN(total)] = true
	}
	j := 0
	for i := 0; i < total; i++ {
		if badAt[i] {
			b, field := invalid(j)
			wantField[string(b)] = field
			msgs = append(msgs, b)
			j++
			continue
		}
		v := event(i, now.Add(time.Duration(i)*10*time.Millisecond))
		msgs = append(msgs, v)
		valid = append(valid, v)
	}
	w := e.writer()
	e.produce(ctx, w, msgs)
	// Re-send 500 already-sent valid events (a producer retry storm).
	var dups [][]byte
	for _, k := range rng.Perm(len(valid))[:resent] {
		dups = append(dups, valid[k])
	}
	e.produce(ctx, w, dups)

	want := uint64(total - bad)
	if got := e.waitCount(ctx, exactlyOnceQuery, want, 3*time.Minute); got != want {
		t.Fatalf("risk_scores FINAL: %d rows, want %d", got, want)
	}
	// Let any straggling re-delivery land, then check it left no second row.
	time.Sleep(2 * time.Second)
	if got := e.count(ctx, exactlyOnceQuery); got != want {
		t.Errorf("risk_scores FINAL after settling: %d, want %d", got, want)
	}
	if got := e.count(ctx, distinctQuery); got != want {
		t.Errorf("distinct event ids in risk_scores: %d, want %d", got, want)
	}
	if got := e.waitCount(ctx, eventsQuery, want, 30*time.Second); got != want {
		t.Errorf("verify_events FINAL: %d, want %d", got, want)
	}
	// No plaintext phone anywhere in ClickHouse.
	if got := e.count(ctx, "SELECT count() FROM {db}.verify_events WHERE phone_masked NOT LIKE '_______****' OR length(phone_hash) != 64"); got != 0 {
		t.Errorf("%d verify_events rows without a masked phone and a 64-hex hash", got)
	}
	// No column holds anything shaped like a mobile number (phone_hash is checked as hex above).
	if got := e.count(ctx, `SELECT count() FROM {db}.verify_events WHERE match(concat(event_id, '|', ex_id, '|', device_id, '|', phone_masked, '|', phone_segment, '|', ip), '(^|[^0-9])1[0-9]{10}([^0-9]|$)')`); got != 0 {
		t.Errorf("%d verify_events rows hold an 11-digit number", got)
	}
	if got := e.count(ctx, `SELECT count() FROM {db}.risk_scores WHERE match(concat(event_id, '|', detail, '|', arrayStringConcat(hit_reasons, '|')), '(^|[^0-9])1[0-9]{10}([^0-9]|$)')`); got != 0 {
		t.Errorf("%d risk_scores rows hold an 11-digit number", got)
	}

	// Dead letters: exactly the 200 invalid messages, original bytes, error naming the field.
	if got := topicEnd(t, e.dlq); got != bad {
		t.Fatalf("dead-letter topic holds %d messages, want %d", got, bad)
	}
	for _, m := range readAll(t, e.dlq, bad) {
		field, ok := wantField[string(m.Value)]
		if !ok {
			t.Errorf("dead letter %q is not one of the invalid messages sent", m.Value)
			continue
		}
		if got := header(m, pipeline.HeaderField); got != field {
			t.Errorf("dead letter %q: field header %q, want %q (error %q)", m.Value, got, field, header(m, pipeline.HeaderError))
		}
		if field != "" && !strings.Contains(header(m, pipeline.HeaderError), field) {
			t.Errorf("dead letter error %q does not name field %q", header(m, pipeline.HeaderError), field)
		}
	}
	// risk.scores got one record per consumed valid message (re-sends included: the archiver dedupes).
	if got := topicEnd(t, e.scores); got < int64(want) {
		t.Errorf("risk.scores holds %d records, want at least %d", got, want)
	}
}

// Kill the scorer with SIGKILL mid-stream and start it again: no event lost, none counted twice.
func TestScorerKilledMidStream(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.start("archiver")
	scorer := e.start("scorer")

	const n = 12000
	now := time.Now().Add(-time.Hour)
	w := e.writer()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n; i += 500 {
			var vs [][]byte
			for k := i; k < i+500; k++ {
				vs = append(vs, event(k, now.Add(time.Duration(k)*time.Millisecond)))
			}
			e.produce(ctx, w, vs)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// Kill once the scorer is visibly mid-stream.
	deadline := time.Now().Add(time.Minute)
	for topicEnd(t, e.scores) < 2000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	scored := topicEnd(t, e.scores)
	if scored < 2000 {
		t.Fatalf("scorer produced only %d records within a minute", scored)
	}
	scorer.stop(syscall.SIGKILL)
	t.Logf("scorer killed after %d score records", scored)
	<-produced
	e.start("scorer")

	if got := e.waitCount(ctx, exactlyOnceQuery, n, 3*time.Minute); got != n {
		t.Fatalf("risk_scores FINAL after restart: %d, want %d (lost events)", got, n)
	}
	time.Sleep(2 * time.Second)
	if got := e.count(ctx, exactlyOnceQuery); got != n {
		t.Errorf("risk_scores FINAL: %d, want %d", got, n)
	}
	if got := e.count(ctx, distinctQuery); got != n {
		t.Errorf("distinct ids: %d, want %d", got, n)
	}
}
