package backtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
)

// Event is a stored verification event, as a Source yields it: the columns of verify_events a
// replay needs (pipeline/chsink/chbacktest reads them; its StoredEvent converts to Event). There is
// no plaintext phone number (none is stored): the number is its keyed PhoneHash and its PhoneSegment.
type Event struct {
	EventID      string
	TS           time.Time // UTC, whole seconds
	AppID        string
	Flow         string
	PhoneHash    string
	PhoneSegment string
	IP           string
	Carrier      string
	Platform     string
	DeviceID     string
	Outcome      string
	ErrorCode    string
	TokenDigest  string
}

// Source yields stored events in time order (non-decreasing TS). Next returns ok = false
// when there are no more events.
type Source interface {
	Next(ctx context.Context) (ev Event, ok bool, err error)
}

// Options tune a run. The zero value replays everything the Source yields, with no warm-up
// and no labels.
type Options struct {
	// From and To bound the reported period, [From, To). Events before From only warm the
	// feature windows up (they are applied to both scorers, not scored or compared); Run
	// stops at the first event at or after To. Zero values leave that side open.
	From, To time.Time
	// WarmUp is how much history before From chbacktest.Run reads to fill the feature windows
	// (the longest window is 24 h: with less, the first day's windows undercount under both
	// packs alike). Run itself warms up with whatever the Source yields before From.
	WarmUp time.Duration

	// Examples is how many event ids to keep per transition and per rule change; 0 means 5,
	// negative means none.
	Examples int

	// Labels, when not nil, says which events were attacks (true) and which were not (false),
	// by (app_id, event_id); the report then has precision and recall for each pack. Events
	// without a label are left out of both.
	Labels Labels
	// FlagAt is the score at or above which an event counts as flagged for precision and
	// recall; 0 means 600 (step up or block).
	FlagAt int

	// Progress, when not nil, is called every ProgressEvery events read (0 means 100,000)
	// and once at the end, from the goroutine that called Run.
	Progress      func(Progress)
	ProgressEvery int

	// RunID names the run in its report and in backtest_runs; "" means a new random id.
	RunID string
	// NoRecord stops chbacktest.Run from writing the run to backtest_runs.
	NoRecord bool
}

// Progress is a snapshot of a running backtest.
type Progress struct {
	Read     int64     // events read from the Source so far (warm-up and skipped included)
	Compared int64     // events scored by both packs and compared
	Changed  int64     // of those, events whose score differs
	At       time.Time // ts of the last event read
	Elapsed  time.Duration
	Done     bool // the last call of the run
}

// EventsPerSec is the read rate so far.
func (p Progress) EventsPerSec() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Read) / p.Elapsed.Seconds()
}

// DefaultWarmUp is the warm-up that fills every feature window (the longest is 24 h): the
// value for a `--warmup` flag's default.
const DefaultWarmUp = 24 * time.Hour

const (
	batchSize            = 1024
	defaultExamples      = 5
	defaultFlagAt        = schemas.ScoreStepUp
	defaultProgressEvery = 100_000
)

// scoreIndex maps a verdict to its row or column in the transition matrix.
func scoreIndex(score int) (int, bool) {
	switch score {
	case 0:
		return 0, true
	case 300:
		return 1, true
	case 600:
		return 2, true
	case 900:
		return 3, true
	}
	return 0, false
}

// Scores are the verdicts in matrix order.
var Scores = [4]int{0, 300, 600, 900}

// Run replays the events of src through two scorers built by newScorer, one running current
// and one candidate, and reports how the verdicts differ. Each scorer gets every event in
// order through Scorer.Process (Scorer.Apply for warm-up events before opts.From), so both
// compute their features exactly as production does, each from its own feature state.
//
// The stored events carry no plaintext number; each distinct phone hash gets a stand-in
// number inside its stored segment (see the package documentation for what that preserves).
// Events that cannot be replayed (malformed hash, segment or IP) are counted in
// Report.Skipped, by reason. A rule whose evaluation fails on an event is counted in
// Report.EvalErrors and the event is still compared; any other scoring error ends the run.
//
// newScorer must return a scorer with a phone hasher (any key: the stand-ins' hashes are
// not used; [NewScorer] adds one) and is called twice. Both packs must be compiled against
// an environment the scorer declares (compile them with the scorer's Env). src must yield
// events in time order; Run fails on an event older than the one before it.
func Run(ctx context.Context, src Source, current, candidate *rules.Pack, newScorer func() (*scoring.Scorer, error), opts Options) (*Report, error) {
	if src == nil || current == nil || candidate == nil || newScorer == nil {
		return nil, errors.New("backtest: source, both packs and newScorer are required")
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("backtest: from %s is not before to %s", opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	opts = opts.withDefaults()
	rep := &Report{
		RunID:     opts.RunID,
		StartedAt: time.Now().UTC(),
		From:      opts.From.UTC(),
		To:        opts.To.UTC(),
		Current:   packInfo(current),
		Candidate: packInfo(candidate),
	}
	if rep.RunID == "" {
		rep.RunID = newRunID(rep.StartedAt)
	}
	r, err := newRunner(current, candidate, newScorer, opts, rep)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	if err := r.run(ctx, src); err != nil {
		if r.compared.IsZero() {
			return nil, err
		}
		// Interrupted (Ctrl-C) or the Source failed after some events were compared: the
		// report of what was, marked partial, goes back with the error, so that minutes of
		// replay are not lost without a word.
		r.finish()
		rep.Partial, rep.StoppedAt, rep.StopReason = true, r.compared.UTC(), err.Error()
		return rep, err
	}
	r.finish()
	return rep, nil
}

func (o Options) withDefaults() Options {
	if o.Examples == 0 {
		o.Examples = defaultExamples
	}
	if o.Examples < 0 {
		o.Examples = 0
	}
	if o.FlagAt == 0 {
		o.FlagAt = defaultFlagAt
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = defaultProgressEvery
	}
	return o
}

func newRunID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "bt-" + t.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// batch is up to batchSize events on their way through both scorers.
type batch struct {
	evs  []schemas.VerifyEvent
	warm []bool // apply only: before opts.From
	res  [2]packResult
	wg   sync.WaitGroup
}

// packResult is what one scorer made of a batch.
type packResult struct {
	scores []int
	hits   []uint64 // words per event, bit i = rule i of runner.rules
	err    error    // a scoring error that ends the run
}

// side is one pack and its scorer, run by one goroutine.
type side struct {
	pack     *rules.Pack
	scorer   *scoring.Scorer
	ruleIdx  map[string]int // rule id → index in runner.rules
	in       chan *batch
	evalErrs map[string]int64 // rule id → failed evaluations; owned by the goroutine until stop
}

type runner struct {
	opts  Options
	rep   *Report
	sides [2]*side
	rules []string // union of both packs' rule ids: current's in order, then candidate's new ones
	words int      // uint64 words per event in a hit set
	ins   *standIns
	wg    sync.WaitGroup

	matrix    [4][4]int64
	matrixEx  [4][4][]string
	ruleStats []ruleStat
	quality   [2]confusion
	labeled   int64
	apps      map[string]*appStat // per app, at most maxApps; the rest in otherApps
	otherApps appStat
	others    map[string]struct{} // the apps counted in otherApps (at most maxApps)
	lastTS    time.Time
	compared  time.Time // ts of the last event folded into the report (warm-up included)
	failed    bool      // a batch failed to compare: the ones after it are not folded in
	start     time.Time
	read      int64
	nextProg  int64
}

type ruleStat struct {
	hits           [2]int64
	gained, lost   int64
	gainEx, lostEx []string
}

type confusion struct{ tp, fp, fn, tn int64 }

// maxApps bounds the apps a report breaks down by (Report.Apps): a stream of a million app ids
// costs no more memory than this many.
const maxApps = 10_000

type appStat struct {
	events, changed int64
	flagged         [2]int64
	quality         [2]confusion
	labeled         int64
}

// app is the stats an event of app id counts in.
func (r *runner) app(id string) *appStat {
	if st, ok := r.apps[id]; ok {
		return st
	}
	if len(r.apps) < maxApps {
		st := &appStat{}
		r.apps[id] = st
		return st
	}
	if len(r.others) < maxApps {
		r.others[id] = struct{}{}
	}
	return &r.otherApps
}

func newRunner(current, candidate *rules.Pack, newScorer func() (*scoring.Scorer, error), opts Options, rep *Report) (*runner, error) {
	r := &runner{opts: opts, rep: rep, ins: newStandIns(), nextProg: int64(opts.ProgressEvery), apps: map[string]*appStat{}, others: map[string]struct{}{}}
	idx := map[string]int{}
	for _, p := range []*rules.Pack{current, candidate} {
		for _, rl := range p.Rules {
			if _, ok := idx[rl.ID]; !ok {
				idx[rl.ID] = len(r.rules)
				r.rules = append(r.rules, rl.ID)
			}
		}
	}
	r.words = (len(r.rules) + 63) / 64
	r.ruleStats = make([]ruleStat, len(r.rules))
	for i, p := range []*rules.Pack{current, candidate} {
		s, err := newScorer()
		if err != nil {
			return nil, fmt.Errorf("backtest: build scorer: %w", err)
		}
		if s == nil {
			return nil, errors.New("backtest: newScorer returned no scorer")
		}
		if err := compatible(p, s); err != nil {
			return nil, err
		}
		s.SetPack(p)
		sd := &side{pack: p, scorer: s, ruleIdx: map[string]int{}, in: make(chan *batch, 1), evalErrs: map[string]int64{}}
		for _, rl := range p.Rules {
			sd.ruleIdx[rl.ID] = idx[rl.ID]
		}
		r.sides[i] = sd
	}
	for i := range r.sides {
		r.wg.Add(1)
		go func(i int) {
			defer r.wg.Done()
			r.sides[i].loop(i, r.words)
		}(i)
	}
	return r, nil
}

// compatible checks that every variable p was compiled against is one s declares, with the
// same type: a pack compiled elsewhere would otherwise fail rule by rule at evaluation.
func compatible(p *rules.Pack, s *scoring.Scorer) error {
	if p.Env() == nil {
		return fmt.Errorf("backtest: pack %s has no environment", p.Name)
	}
	for _, v := range p.Env().Vars() {
		t, ok := s.Env().Lookup(v.Name)
		if !ok || t != v.Type {
			return fmt.Errorf("backtest: pack %s@%s was compiled against variable %s (%s), which the scorer does not declare as such; compile the packs with the scorer's Env",
				p.Name, p.Version, v.Name, v.Type)
		}
	}
	return nil
}

func (r *runner) stop() {
	for _, s := range r.sides {
		if s != nil {
			close(s.in)
		}
	}
	r.wg.Wait()
	for i := range r.sides {
		r.sides[i] = nil
	}
}

// loop scores the batches of one side until its channel is closed.
func (sd *side) loop(which, words int) {
	for b := range sd.in {
		sd.score(b, which, words)
		b.wg.Done()
	}
}

func (sd *side) score(b *batch, which, words int) {
	res := &b.res[which]
	n := len(b.evs)
	res.scores = res.scores[:0]
	res.hits = res.hits[:0]
	res.err = nil
	for i := 0; i < n; i++ {
		ev := &b.evs[i]
		res.scores = append(res.scores, 0)
		for w := 0; w < words; w++ {
			res.hits = append(res.hits, 0)
		}
		if b.warm[i] {
			// A run of warm-up events is applied as one batch (fewer locks).
			j := i + 1
			for j < n && b.warm[j] {
				j++
			}
			sd.scorer.ApplyBatch(b.evs[i:j], nil)
			for ; i+1 < j; i++ {
				res.scores = append(res.scores, 0)
				for w := 0; w < words; w++ {
					res.hits = append(res.hits, 0)
				}
			}
			continue
		}
		rec, err := sd.scorer.Process(ev)
		if err != nil {
			if schemas.Classify(err) != schemas.Proceed {
				res.err = err
				return
			}
			countRuleErrors(err, sd.evalErrs)
		}
		res.scores[i] = rec.Score
		set := res.hits[i*words : (i+1)*words]
		for _, h := range rec.Hits {
			if j, ok := sd.ruleIdx[h.Rule]; ok {
				set[j/64] |= 1 << (j % 64)
			}
		}
	}
}

// countRuleErrors counts every *rules.RuleError in err's tree.
func countRuleErrors(err error, into map[string]int64) {
	switch e := err.(type) {
	case *rules.RuleError:
		into[e.Rule]++
		return
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			countRuleErrors(x, into)
		}
		return
	}
	if w := errors.Unwrap(err); w != nil {
		countRuleErrors(w, into)
	}
}

func (r *runner) run(ctx context.Context, src Source) error {
	r.start = time.Now()
	// Two batches in flight: one being scored while the next one is read.
	bufs := [2]*batch{newBatch(), newBatch()}
	var pending *batch
	cur := 0
	for {
		b := bufs[cur]
		more, err := r.fill(ctx, src, b)
		if err != nil {
			if len(b.evs) > 0 {
				// what was read before the failure is scored too: a partial report covers it
				b.wg.Add(2)
				r.sides[0].in <- b
				r.sides[1].in <- b
				err = r.finishPending(pending, err)
				return r.finishPending(b, err)
			}
			return r.finishPending(pending, err)
		}
		if len(b.evs) > 0 {
			b.wg.Add(2)
			r.sides[0].in <- b
			r.sides[1].in <- b
		}
		if pending != nil {
			pending.wg.Wait()
			if err := r.compare(pending); err != nil {
				if len(b.evs) > 0 {
					b.wg.Wait()
				}
				return err
			}
		}
		if len(b.evs) > 0 {
			pending = b
			cur ^= 1
		} else {
			pending = nil
		}
		if !more {
			if pending != nil {
				pending.wg.Wait()
				if err := r.compare(pending); err != nil {
					return err
				}
			}
			r.progress(true)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return r.finishPending(pending, err)
		}
	}
}

// finishPending waits for a batch being scored when the run must stop with err, and folds it
// into the report (a partial report then covers every event read), unless scoring it failed or
// an earlier one did.
func (r *runner) finishPending(pending *batch, err error) error {
	if pending == nil {
		return err
	}
	pending.wg.Wait()
	if r.failed {
		return err
	}
	if cerr := r.compare(pending); cerr != nil {
		r.failed = true
		return errors.Join(err, cerr)
	}
	return err
}

func newBatch() *batch {
	return &batch{evs: make([]schemas.VerifyEvent, 0, batchSize), warm: make([]bool, 0, batchSize)}
}

// fill reads up to batchSize replayable events into b. more is false at the end of the
// source or of the period.
func (r *runner) fill(ctx context.Context, src Source, b *batch) (more bool, err error) {
	b.evs, b.warm = b.evs[:0], b.warm[:0]
	for len(b.evs) < batchSize {
		ev, ok, err := src.Next(ctx)
		if err != nil {
			return false, fmt.Errorf("backtest: read events: %w", err)
		}
		if !ok {
			return false, nil
		}
		if !r.opts.To.IsZero() && !ev.TS.Before(r.opts.To) {
			return false, nil
		}
		if ev.TS.Before(r.lastTS) {
			return false, fmt.Errorf("backtest: source is not in time order: event %s at %s after an event at %s",
				ev.EventID, ev.TS.UTC().Format(time.RFC3339), r.lastTS.UTC().Format(time.RFC3339))
		}
		r.lastTS = ev.TS
		if r.rep.FirstEvent.IsZero() {
			r.rep.FirstEvent = ev.TS.UTC()
		}
		r.rep.LastEvent = ev.TS.UTC()
		r.read++
		warm := !r.opts.From.IsZero() && ev.TS.Before(r.opts.From)
		ve, reason := r.verifyEvent(&ev, !warm)
		if reason != "" {
			r.skip(reason)
			continue
		}
		b.evs = append(b.evs, ve)
		b.warm = append(b.warm, warm)
		if warm {
			r.rep.WarmUpEvents++
		}
	}
	return true, nil
}

func (r *runner) skip(reason string) {
	r.rep.Skipped++
	if r.rep.SkipReasons == nil {
		r.rep.SkipReasons = map[string]int64{}
	}
	r.rep.SkipReasons[reason]++
}

// verifyEvent rebuilds the event the scorers saw, with a stand-in number; compared: the event is
// of the period, not of the warm-up.
func (r *runner) verifyEvent(ev *Event, compared bool) (schemas.VerifyEvent, string) {
	if ev.EventID == "" {
		return schemas.VerifyEvent{}, skipNoEventID
	}
	ip, ipErr := netip.ParseAddr(ev.IP)
	phone, err := r.ins.phone(ev.PhoneHash, ev.PhoneSegment, compared && ipErr == nil)
	if err != nil {
		return schemas.VerifyEvent{}, err.Error()
	}
	if ipErr != nil {
		return schemas.VerifyEvent{}, skipBadIP
	}
	return schemas.VerifyEvent{
		EventID:     ev.EventID,
		TS:          ev.TS.UTC(),
		AppID:       ev.AppID,
		Flow:        ev.Flow,
		Phone:       phone,
		IP:          ip.Unmap(),
		Carrier:     ev.Carrier,
		Platform:    ev.Platform,
		DeviceID:    ev.DeviceID,
		Outcome:     ev.Outcome,
		ErrorCode:   ev.ErrorCode,
		TokenDigest: ev.TokenDigest,
	}, ""
}

// compare folds a scored batch into the report.
func (r *runner) compare(b *batch) error {
	cur, cand := &b.res[0], &b.res[1]
	for i, res := range []*packResult{cur, cand} {
		if res.err != nil {
			return fmt.Errorf("backtest: %s pack: %w", [2]string{"current", "candidate"}[i], res.err)
		}
	}
	ex := r.opts.Examples
	for i := range b.evs {
		if b.warm[i] {
			continue
		}
		id := b.evs[i].EventID
		r.rep.Events++
		from, ok1 := scoreIndex(cur.scores[i])
		to, ok2 := scoreIndex(cand.scores[i])
		if !ok1 || !ok2 {
			return fmt.Errorf("backtest: event %s: score %d / %d is not 0, 300, 600 or 900", id, cur.scores[i], cand.scores[i])
		}
		r.matrix[from][to]++
		as := r.app(b.evs[i].AppID)
		as.events++
		for p, score := range [2]int{cur.scores[i], cand.scores[i]} {
			if score >= r.opts.FlagAt {
				as.flagged[p]++
			}
		}
		if from != to {
			as.changed++
			r.rep.Changed++
			if len(r.matrixEx[from][to]) < ex {
				r.matrixEx[from][to] = append(r.matrixEx[from][to], id)
			}
		}
		a := cur.hits[i*r.words : (i+1)*r.words]
		c := cand.hits[i*r.words : (i+1)*r.words]
		for w := 0; w < r.words; w++ {
			for set, k := a[w], 0; set != 0; set &= set - 1 {
				k = w*64 + bits.TrailingZeros64(set)
				r.ruleStats[k].hits[0]++
			}
			for set, k := c[w], 0; set != 0; set &= set - 1 {
				k = w*64 + bits.TrailingZeros64(set)
				r.ruleStats[k].hits[1]++
			}
			for set, k := c[w]&^a[w], 0; set != 0; set &= set - 1 {
				k = w*64 + bits.TrailingZeros64(set)
				st := &r.ruleStats[k]
				st.gained++
				if len(st.gainEx) < ex {
					st.gainEx = append(st.gainEx, id)
				}
			}
			for set, k := a[w]&^c[w], 0; set != 0; set &= set - 1 {
				k = w*64 + bits.TrailingZeros64(set)
				st := &r.ruleStats[k]
				st.lost++
				if len(st.lostEx) < ex {
					st.lostEx = append(st.lostEx, id)
				}
			}
		}
		if r.opts.Labels != nil {
			if attack, ok := r.opts.Labels.Of(b.evs[i].AppID, id); ok {
				r.labeled++
				as.labeled++
				for p, score := range [2]int{cur.scores[i], cand.scores[i]} {
					r.quality[p].add(score >= r.opts.FlagAt, attack)
					as.quality[p].add(score >= r.opts.FlagAt, attack)
				}
			}
		}
	}
	if n := len(b.evs); n > 0 {
		r.compared = b.evs[n-1].TS
	}
	if r.read >= r.nextProg {
		r.progress(false)
		for r.nextProg <= r.read {
			r.nextProg += int64(r.opts.ProgressEvery)
		}
	}
	return nil
}

func (r *runner) progress(done bool) {
	if r.opts.Progress == nil {
		return
	}
	r.opts.Progress(Progress{
		Read: r.read, Compared: r.rep.Events, Changed: r.rep.Changed,
		At: r.lastTS.UTC(), Elapsed: time.Since(r.start), Done: done,
	})
}

// finish fills the report from the counters (after the last batch was compared).
func (r *runner) finish() {
	rep := r.rep
	elapsed := time.Since(r.start)
	rep.FinishedAt = time.Now().UTC()
	rep.DurationSec = elapsed.Seconds()
	if elapsed > 0 {
		rep.EventsPerSec = float64(r.read) / elapsed.Seconds()
	}
	rep.Read = r.read
	rep.DistinctPhones = int64(r.ins.Compared())
	for from := range Scores {
		for to := range Scores {
			if n := r.matrix[from][to]; n > 0 {
				rep.Transitions = append(rep.Transitions, Transition{
					From: Scores[from], To: Scores[to], Count: n, Examples: r.matrixEx[from][to],
				})
			}
		}
	}
	cur, cand := r.sides[0].pack, r.sides[1].pack
	for k, id := range r.rules {
		st := r.ruleStats[k]
		d := RuleDiff{
			Rule: id, CurrentHits: st.hits[0], CandidateHits: st.hits[1],
			Gained: st.gained, Lost: st.lost, GainedExamples: st.gainEx, LostExamples: st.lostEx,
		}
		if rl := findRule(cur, id); rl != nil {
			d.CurrentMode, d.CurrentLevel, d.Tag = string(rl.Mode), rl.Level, rl.Tag
		}
		if rl := findRule(cand, id); rl != nil {
			d.CandidateMode, d.CandidateLevel, d.Tag = string(rl.Mode), rl.Level, rl.Tag
		}
		rep.Rules = append(rep.Rules, d)
	}
	// The scorers' goroutines wrote their error counts before signalling the last batch
	// done (b.wg), which run waited for: reading them here does not race.
	for i, sd := range r.sides {
		if len(sd.evalErrs) == 0 {
			continue
		}
		if rep.EvalErrors == nil {
			rep.EvalErrors = map[string]map[string]int64{}
		}
		rep.EvalErrors[[2]string{"current", "candidate"}[i]] = sd.evalErrs
	}
	if r.opts.Labels != nil {
		rep.Quality = &Quality{
			FlagAt: r.opts.FlagAt, Labeled: r.labeled,
			Current: r.quality[0].result(), Candidate: r.quality[1].result(),
		}
	}
	rep.FlagAt = r.opts.FlagAt
	appDiff := func(id string, st *appStat) AppDiff {
		d := AppDiff{AppID: id, Events: st.events, Changed: st.changed, CurrentFlagged: st.flagged[0], CandidateFlagged: st.flagged[1]}
		if r.opts.Labels != nil {
			d.Quality = &AppQuality{Labeled: st.labeled, Current: st.quality[0].result(), Candidate: st.quality[1].result()}
		}
		return d
	}
	for id, st := range r.apps {
		rep.Apps = append(rep.Apps, appDiff(id, st))
	}
	slices.SortFunc(rep.Apps, func(a, b AppDiff) int {
		if c := cmp.Compare(b.Events, a.Events); c != 0 {
			return c
		}
		return strings.Compare(a.AppID, b.AppID)
	})
	if r.otherApps.events > 0 {
		d := appDiff("", &r.otherApps)
		d.OtherApps = len(r.others)
		rep.Apps = append(rep.Apps, d)
	}
}

func findRule(p *rules.Pack, id string) *rules.Rule {
	for _, rl := range p.Rules {
		if rl.ID == id {
			return rl
		}
	}
	return nil
}

// add counts one labeled event.
func (c *confusion) add(flagged, attack bool) {
	switch {
	case flagged && attack:
		c.tp++
	case flagged:
		c.fp++
	case attack:
		c.fn++
	default:
		c.tn++
	}
}

func (c confusion) result() PackQuality {
	q := PackQuality{TP: c.tp, FP: c.fp, FN: c.fn, TN: c.tn}
	if c.tp+c.fp > 0 {
		v := float64(c.tp) / float64(c.tp+c.fp)
		q.Precision = &v
	}
	if c.tp+c.fn > 0 {
		v := float64(c.tp) / float64(c.tp+c.fn)
		q.Recall = &v
	}
	return q
}

func packInfo(p *rules.Pack) PackInfo {
	return PackInfo{Name: p.Name, Version: p.Version, Rules: len(p.Rules)}
}
