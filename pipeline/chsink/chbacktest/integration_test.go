//go:build integration

package chbacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/backtest"
	"github.com/riskflow/riskflow/scoring/scoringtest"
)

// These tests need the ClickHouse server deploy/local/clickhouse.sh starts, at
// RISKFLOW_CLICKHOUSE_ADDR (default 127.0.0.1:19000). Each works in its own database,
// dropped at the end.

func clickhouseAddr() string {
	if a := os.Getenv("RISKFLOW_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:19000"
}

// throwaway opens a store on a new, migrated database and a plain connection to check it.
func throwaway(t testing.TB) (*chsink.Store, driver.Conn) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "riskflow_bt_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := chsink.Open(ctx, chsink.Config{Addr: clickhouseAddr(), Database: db, WriteTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		st.Close()
		t.Fatalf("ClickHouse at %s (start it with deploy/local/clickhouse.sh start): %v", clickhouseAddr(), err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{clickhouseAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
		conn.Close()
		st.Close()
	})
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st, conn
}

// deviceOf is the device of a scenario's number: one each, its id free of the number (the
// archiver refuses a record whose device_id holds one, as the event decoder does).
func deviceOf(phone string) string {
	return "dev-" + strings.Map(func(r rune) rune { return 'a' + r - '0' }, phone)
}

// scenario is a day of traffic with known shapes, as plaintext events (what the verify
// service sent), in time order.
func scenario(start time.Time) []schemas.VerifyEvent {
	var evs []schemas.VerifyEvent
	n := 0
	add := func(at time.Duration, phone string, ip string, outcome string) {
		n++
		e := schemas.VerifyEvent{
			EventID: fmt.Sprintf("sc-%05d", n), TS: start.Add(at), AppID: []string{"app-a", "app-b"}[n%2],
			Flow: schemas.FlowOneClickLogin, Phone: phone, IP: netip.MustParseAddr(ip),
			Carrier: "CM", Platform: "android", DeviceID: deviceOf(phone), Outcome: outcome,
			TokenDigest: fmt.Sprintf("%064x", n),
		}
		if outcome == schemas.OutcomeFail {
			e.ErrorCode = "103911"
		}
		evs = append(evs, e)
	}
	ipOf := func(i int) string { return fmt.Sprintf("100.%d.%d.%d", 64+i/60000, i/250%240, 1+i%250) }
	// 300 numbers verify once (China Mobile 138 block, spread over segments).
	for i := 0; i < 300; i++ {
		add(time.Duration(i)*20*time.Second, fmt.Sprintf("138%04d%04d", 1000+i, 7000+i), ipOf(i), schemas.OutcomeSuccess)
	}
	// 40 numbers verify twice, 3 minutes apart: the second is the edit's gain.
	for i := 0; i < 40; i++ {
		p := fmt.Sprintf("138%04d%04d", 2000+i, 1000+i)
		add(time.Duration(i)*90*time.Second+time.Second, p, ipOf(1000+i), schemas.OutcomeSuccess)
		add(time.Duration(i)*90*time.Second+181*time.Second, p, ipOf(1000+i), schemas.OutcomeSuccess)
	}
	// 20 numbers verify three times in 6 minutes: the second gains, the third is observed anyway.
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf("138%04d%04d", 3000+i, 2000+i)
		for k := 0; k < 3; k++ {
			add(time.Duration(i)*7*time.Minute+time.Duration(k)*3*time.Minute+2*time.Second, p, ipOf(2000+i), schemas.OutcomeSuccess)
		}
	}
	// One number fails five times in 5 minutes: observed from the 3rd, stepped up at the 5th.
	for k := 0; k < 5; k++ {
		add(30*time.Minute+time.Duration(k)*time.Minute+3*time.Second, "13912345678", ipOf(3000), schemas.OutcomeFail)
	}
	// A 连号 block: 12 numbers of segment 1502233 within 24 minutes, once each, against one app
	// (the default pack counts blocks per app).
	for i := 0; i < 12; i++ {
		add(time.Hour+time.Duration(i)*2*time.Minute+4*time.Second, fmt.Sprintf("1502233%04d", 100+i*7), ipOf(4000+i), schemas.OutcomeSuccess)
		evs[len(evs)-1].AppID = "app-a"
	}
	slices.SortStableFunc(evs, func(a, b schemas.VerifyEvent) int {
		if c := a.TS.Compare(b.TS); c != 0 {
			return c
		}
		return strings.Compare(a.EventID, b.EventID)
	})
	return evs
}

// store scores evs as production does (the default pack, the real hasher) and writes the
// records through chsink, as the archiver does.
func store(t *testing.T, st *chsink.Store, evs []schemas.VerifyEvent) {
	t.Helper()
	s := scoringtest.DefaultPack(t, scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("production key"))))
	recs := make([]schemas.ScoreRecord, 0, len(evs))
	for i := range evs {
		rec, err := s.Process(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// A re-delivered slice: FINAL reads it once.
	if err := st.WriteBatch(ctx, recs[100:200]); err != nil {
		t.Fatal(err)
	}
}

// oracle replays the plaintext events through both packs, the way the backtest would if it
// had the numbers: the reference the stand-in replay must equal.
func oracle(t *testing.T, evs []schemas.VerifyEvent, current, candidate *rules.Pack, from time.Time) (matrix map[[2]int]int64, gained, lost map[string]int64) {
	t.Helper()
	var sc [2]*scoring.Scorer
	for i, p := range []*rules.Pack{current, candidate} {
		s, err := newScorer()
		if err != nil {
			t.Fatal(err)
		}
		s.SetPack(p)
		sc[i] = s
	}
	matrix, gained, lost = map[[2]int]int64{}, map[string]int64{}, map[string]int64{}
	for i := range evs {
		if evs[i].TS.Before(from) {
			sc[0].Apply(&evs[i])
			sc[1].Apply(&evs[i])
			continue
		}
		a, err := sc[0].Process(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := sc[1].Process(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		matrix[[2]int{a.Score, b.Score}]++
		ha, hb := map[string]bool{}, map[string]bool{}
		for _, h := range a.Hits {
			ha[h.Rule] = true
		}
		for _, h := range b.Hits {
			hb[h.Rule] = true
			if !ha[h.Rule] {
				gained[h.Rule]++
			}
		}
		for r := range ha {
			if !hb[r] {
				lost[r]++
			}
		}
	}
	return matrix, gained, lost
}

// The default pack against a copy with one edit, phone_velocity_observe at 2 verifications
// in 10 minutes instead of 3, over events stored in ClickHouse: the diff is exactly the
// edit's, and equals the replay of the plaintext events.
func TestBacktestClickHouse(t *testing.T) {
	st, conn := throwaway(t)
	start := time.Date(2024, 6, 1, 2, 0, 0, 0, time.UTC) // 10:00 China time
	evs := scenario(start)
	store(t, st, evs)

	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "when: phone_verifies_10m >= 3\n", "when: phone_verifies_10m >= 2\n"))
	labels := backtest.Labels{}
	for _, e := range evs {
		labels[backtest.LabelKey{AppID: e.AppID, EventID: e.EventID}] = e.Phone == "13912345678" || strings.HasPrefix(e.Phone, "1502233")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress []backtest.Progress
	opts := backtest.Options{
		From: start, To: start.Add(3 * time.Hour), Labels: labels, FlagAt: 300, Examples: 3,
		Progress: func(p backtest.Progress) { progress = append(progress, p) }, ProgressEvery: 100,
	}
	rep, err := Run(ctx, st, current, candidate, newScorer, opts, chsink.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)

	// 300 + 80 + 60 + 5 + 12 events, the re-delivered copies read once.
	if rep.Events != int64(len(evs)) || rep.Events != 457 || rep.Skipped != 0 || rep.WarmUpEvents != 0 {
		t.Fatalf("events %d (want %d), skipped %d, warm-up %d", rep.Events, len(evs), rep.Skipped, rep.WarmUpEvents)
	}
	// What the edit implies: the second verification of each number within 10 minutes (40
	// doubles, 20 triples, the failing number) now hits phone_velocity_observe and, scoring 0
	// before, scores 300. Nothing else changes.
	if got := rep.Count(0, 300); got != 61 {
		t.Errorf("0→300: %d, want 61", got)
	}
	if rep.Changed != 61 {
		t.Errorf("changed %d, want 61", rep.Changed)
	}
	changed := rep.ChangedRules()
	if len(changed) != 1 || changed[0].Rule != "phone_velocity_observe" || changed[0].Gained != 61 || changed[0].Lost != 0 ||
		changed[0].CandidateHits-changed[0].CurrentHits != 61 || len(changed[0].GainedExamples) != 3 {
		t.Errorf("changed rules %+v", changed)
	}
	// Unchanged: prefix_burst at the 10th to 12th number of the block, under both packs.
	if d := rep.Rule("prefix_burst"); d == nil || d.CurrentHits != 3 || d.CandidateHits != 3 {
		t.Errorf("prefix_burst %+v", d)
	}
	if d := rep.Rule("repeated_failures_phone"); d == nil || d.CurrentHits != 1 || d.CandidateHits != 1 {
		t.Errorf("repeated_failures_phone %+v", d)
	}
	if rep.DistinctPhones != 300+40+20+1+12 {
		t.Errorf("distinct numbers %d", rep.DistinctPhones)
	}

	// The same as replaying the plaintext numbers.
	matrix, gained, lost := oracle(t, evs, current, candidate, time.Time{})
	for k, n := range matrix {
		if got := rep.Count(k[0], k[1]); got != n {
			t.Errorf("%d→%d: backtest %d, plaintext replay %d", k[0], k[1], got, n)
		}
	}
	if len(rep.Transitions) != len(matrix) {
		t.Errorf("transitions %+v, plaintext replay %v", rep.Transitions, matrix)
	}
	for _, d := range rep.Rules {
		if d.Gained != gained[d.Rule] || d.Lost != lost[d.Rule] {
			t.Errorf("%s: gained %d lost %d, plaintext replay %d %d", d.Rule, d.Gained, d.Lost, gained[d.Rule], lost[d.Rule])
		}
	}

	// Labels: attacks are the failing number (5) and the block (12). Flagged at 300:
	// current flags the failing number's 3rd to 5th and the block's 10th to 12th, plus the
	// triples' 3rd (20, legitimate); the candidate also the 2nd verifications (61, one an attack).
	q := rep.Quality
	if q == nil || q.Labeled != 457 {
		t.Fatalf("quality %+v", q)
	}
	if c := q.Current; c.TP != 6 || c.FP != 20 || c.FN != 11 {
		t.Errorf("current %+v", c)
	}
	if c := q.Candidate; c.TP != 7 || c.FP != 80 || c.FN != 10 {
		t.Errorf("candidate %+v", c)
	}
	if len(progress) < 2 || progress[0].Done || !progress[len(progress)-1].Done || progress[len(progress)-1].Read != 457 {
		t.Errorf("progress %+v", progress)
	}

	// The run is in backtest_runs.
	var (
		events, changedEvents uint64
		from                  []uint16
		to                    []uint16
		counts                []uint64
		ruleIDs               []string
		gainedCol             []uint64
		tj, report            string
		precision             *float64
	)
	err = conn.QueryRow(ctx, "SELECT events, changed_events, transition_from, transition_to, transition_count, rule_ids, rule_gained, transitions, report, candidate_precision FROM "+
		st.Database()+".backtest_runs FINAL WHERE run_id = ?", rep.RunID).
		Scan(&events, &changedEvents, &from, &to, &counts, &ruleIDs, &gainedCol, &tj, &report, &precision)
	if err != nil {
		t.Fatal(err)
	}
	if events != 457 || changedEvents != 61 || len(from) != len(rep.Transitions) || len(ruleIDs) != len(rep.Rules) ||
		!strings.Contains(tj, `"from":0,"to":300,"count":61`) || !strings.Contains(report, rep.RunID) || precision == nil {
		t.Errorf("backtest_runs row: events %d changed %d from %v to %v counts %v\n%s", events, changedEvents, from, to, counts, tj)
	}
	if i := slices.Index(ruleIDs, "phone_velocity_observe"); i < 0 || gainedCol[i] != 61 {
		t.Errorf("rule_gained %v for %v", gainedCol, ruleIDs)
	}

	// A later start with warm-up: events before From only fill the windows, and the result
	// is the plaintext replay's with the same split.
	mid := start.Add(4 * time.Minute)
	rep2, err := Run(ctx, st, current, candidate, newScorer, backtest.Options{From: mid, To: start.Add(3 * time.Hour), WarmUp: time.Hour, NoRecord: true}, chsink.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var before int64
	for _, e := range evs {
		if e.TS.Before(mid) {
			before++
		}
	}
	if rep2.WarmUpEvents != before || rep2.Events != 457-before {
		t.Errorf("warm-up %d events %d, want %d and %d", rep2.WarmUpEvents, rep2.Events, before, 457-before)
	}
	matrix, _, _ = oracle(t, evs, current, candidate, mid)
	for k, n := range matrix {
		if got := rep2.Count(k[0], k[1]); got != n {
			t.Errorf("with warm-up, %d→%d: backtest %d, plaintext replay %d", k[0], k[1], got, n)
		}
	}
	var runs uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+st.Database()+".backtest_runs FINAL").Scan(&runs); err != nil || runs != 1 {
		t.Errorf("backtest_runs: %d rows (NoRecord run recorded?) %v", runs, err)
	}

	// Errors.
	if _, err := Run(ctx, st, current, candidate, newScorer, backtest.Options{From: start}, chsink.ReadOptions{}); err == nil {
		t.Error("no to: no error")
	}
	if _, err := Run(ctx, nil, current, candidate, newScorer, backtest.Options{From: start, To: mid}, chsink.ReadOptions{}); err == nil {
		t.Error("no store: no error")
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := Run(cctx, st, current, candidate, newScorer, backtest.Options{From: start, To: mid}, chsink.ReadOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// Throughput against the local server. RISKFLOW_BACKTEST_EVENTS sets the number of stored
// events (default 300,000); the figures are logged.
func TestThroughput(t *testing.T) {
	n := 300_000
	if v := os.Getenv("RISKFLOW_BACKTEST_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("RISKFLOW_BACKTEST_EVENTS=%q", v)
		}
	}
	st, _ := throwaway(t)
	start := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	// Two days of synthetic traffic: 200k numbers over 2k segments, 50k IPs, 100k devices.
	step := 48 * time.Hour / time.Duration(n)
	h := schemas.NewPhoneHasher([]byte("k"))
	hashes := make([]string, 200_000)
	for i := range hashes {
		hashes[i] = h.Hex(fmt.Sprintf("1%02d%04d%04d", 30+i%60, i%2000, i))
	}
	t0 := time.Now()
	ctx := context.Background()
	const chunk = 50_000
	recs := make([]schemas.ScoreRecord, 0, chunk)
	for i := 0; i < n; i++ {
		k := (i * 7919) % len(hashes)
		recs = append(recs, schemas.ScoreRecord{
			EventID: fmt.Sprintf("tp-%08d", i), TS: start.Add(time.Duration(i) * step), AppID: "app-" + strconv.Itoa(i%5),
			Flow: schemas.FlowOneClickLogin, PhoneHash: hashes[k], PhoneMasked: "1380000****",
			PhoneSegment: fmt.Sprintf("1%02d%04d", 30+k%60, k%2000), IP: fmt.Sprintf("10.%d.%d.%d", i%50, i/50%200, 1+i%250),
			Carrier: "CM", Platform: "android", DeviceID: "d" + strconv.Itoa(i%100_000), Outcome: schemas.OutcomeSuccess,
			Score: 0, RulesVersion: "v", ScoredAt: start,
		})
		if len(recs) == chunk || i == n-1 {
			if err := st.WriteBatch(ctx, recs); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	t.Logf("wrote %d events in %s", n, time.Since(t0).Round(time.Millisecond))

	// Reading alone.
	t0 = time.Now()
	rd, err := st.ReadEvents(ctx, start, start.Add(49*time.Hour), chsink.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := NewSource(rd)
	read := 0
	for {
		_, ok, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		read++
	}
	rd.Close()
	readRate := float64(read) / time.Since(t0).Seconds()
	if read != n {
		t.Fatalf("read %d of %d", read, n)
	}

	// The whole backtest: read, stand-ins, two scorers, report.
	current := compile(t, packs.Default())
	candidate := compile(t, edit(t, "when: phone_verifies_10m >= 3\n", "when: phone_verifies_10m >= 2\n"))
	rep, err := Run(ctx, st, current, candidate, newScorer, backtest.Options{From: start, To: start.Add(49 * time.Hour), NoRecord: true}, chsink.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != int64(n) {
		t.Fatalf("backtest compared %d of %d", rep.Events, n)
	}
	t.Logf("read from ClickHouse (verify_events FINAL, ordered): %d events at %.0f events/s", read, readRate)
	t.Logf("backtest end to end (read + 2 scorers + report): %d events at %.0f events/s, %d changed", rep.Events, rep.EventsPerSec, rep.Changed)
}
