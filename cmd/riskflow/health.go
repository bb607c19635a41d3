package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
)

// health is what /readyz reports: every part of this process that can be unready, by name. A
// process is ready when all of them are; the answer names each one that is not, and why.
type health struct {
	mu     sync.Mutex
	checks []namedCheck
}

type namedCheck struct {
	name  string
	check func() error
}

// checkNames are the names of every readiness check a riskflow process can run, whatever its
// roles: start (waiting for Kafka, loading), state (the feature replica has caught up since the
// start), fresh (it is within api.ready_max_lag and api.max_staleness now), lists, scorer, archiver,
// decisions. /readyz?exclude= takes any of them on every role — one probe configuration shared by
// processes of different roles, or asked while a process is still starting and has not registered
// all of its checks, leaves out what it names and this process does not run — and refuses any
// other name (a typo must not silently leave a check in).
var checkNames = []string{"start", "state", "fresh", "lists", "scorer", "archiver", "decisions"}

func (h *health) add(name string, check func() error) {
	if !slices.Contains(checkNames, name) {
		panic("readiness check " + name + " is not in checkNames")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = append(h.checks, namedCheck{name, check})
}

// ready returns nil when every part is ready, else one line per part that is not. The parts
// named in exclude are left out (a process running the api role with others: its load balancer
// asks only for what checks need, /readyz?exclude=archiver&exclude=decisions); a name of a check
// this process does not run (checkNames) leaves nothing out, a name no riskflow process has is an
// error wrapping api.ErrUnknownCheck.
func (h *health) ready(exclude ...string) error {
	h.mu.Lock()
	checks := h.checks
	h.mu.Unlock()
	skip := map[string]bool{}
	for _, name := range exclude {
		if !slices.Contains(checkNames, name) {
			var names []string
			for _, c := range checks {
				if !slices.Contains(names, c.name) {
					names = append(names, c.name)
				}
			}
			return fmt.Errorf("%w: %s (the checks are %s; this process runs %s)", api.ErrUnknownCheck, schemas.Excerpt(name, 40),
				strings.Join(checkNames, ", "), strings.Join(names, ", "))
		}
		skip[name] = true
	}
	var bad []string
	for _, c := range checks {
		if skip[c.name] {
			continue
		}
		if err := c.check(); err != nil {
			// One line: a check's error may join several (errors.Join puts newlines between them),
			// and probes, logs and the API's 503 show the answer on one line.
			bad = append(bad, c.name+": "+strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return errors.New(strings.Join(bad, "; "))
}

// stateCurrent is the readiness of what an API node's answers rest on — the feature state, its
// freshness and the lists (checks "state", "fresh" and "lists") — without its other parts: an
// explanation of a node whose archiver cannot reach ClickHouse is current all the same
// (api.WithStateHealth).
func (h *health) stateCurrent() error {
	var others []string
	for _, name := range checkNames {
		if name != "state" && name != "fresh" && name != "lists" {
			others = append(others, name)
		}
	}
	return h.ready(others...)
}

// staller is a consumer loop as readiness sees it (consumers.Loop).
type staller interface {
	Stalled() (time.Duration, string)
}

// loopCheck fails while loop has been unable to move on (fetching, or retrying one batch) for
// longer than after: a broker or ClickHouse outage, or a batch that keeps failing.
// A loop whose store has never answered (reacher) is unready until it does: a process started
// with a wrong ClickHouse address or password is not ready for the stall bound's grace, where a
// rollout would have taken it as ready and replaced the working pods with it.
func loopCheck(loop staller, after time.Duration) func() error {
	return func() error {
		if r, ok := loop.(reacher); ok {
			if err := r.Unreached(); err != nil {
				return err
			}
		}
		d, why := loop.Stalled()
		if d <= after {
			return nil
		}
		return fmt.Errorf("stalled for %s (allowed %s): %s", d.Round(time.Second), after, why)
	}
}

// registerLoop adds loop's readiness check, its riskflow_loop_stalled_seconds gauge and its
// riskflow_batch_retries_total counter.
func (a *app) registerLoop(name string, loop staller) {
	a.health.add(name, loopCheck(loop, a.cfg.Kafka.StallAfter.D()))
	// Retries counted from the start, at 0: a first retry is an increase rate() sees.
	if a.obs != nil {
		a.obs.retries.WithLabelValues(name)
	}
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "riskflow_loop_stalled_seconds",
		Help:        "How long a consumer loop has been unable to move on (fetch failing, one batch retried, or a batch's write that has not returned for longer than the loop's backoff: a hung broker); 0 while it makes progress.",
		ConstLabels: prometheus.Labels{"loop": name},
	}, func() float64 { d, _ := loop.Stalled(); return d.Seconds() }))
}

// replica is an API node's feature replica as readiness sees it (pipeline.Feed).
type replica interface {
	Lag() int64
	Fresh() time.Time
}

// replicaServing fails until the replica has caught up with verify.events once: before that its
// windows are missing history and verdicts would be too low. After that a broker outage does not
// stop checks — they are answered from the state there is (replicaFresh reports its staleness).
func replicaServing(r replica) func() error {
	return func() error {
		if r.Fresh().IsZero() {
			if lag := r.Lag(); lag >= 0 {
				return fmt.Errorf("feature replica is catching up (%d messages behind)", lag)
			}
			return errors.New("feature replica is starting")
		}
		return nil
	}
}

// listsServing fails like serving, and until the lists have been read from their topic once: a
// node must not answer before it knows the blocked entries.
func listsServing(l interface{ Fresh() time.Time }, serving func() error) func() error {
	return func() error {
		if err := serving(); err != nil {
			return err
		}
		if l.Fresh().IsZero() {
			return errors.New("the lists are being read (kafka.lists_topic)")
		}
		return nil
	}
}

// replicaFresh fails while the replica, once caught up, is older than maxStale or more than maxLag
// messages behind — what every node shows at once when the broker is away or a burst outruns
// the feeds. It is a check of its own (fresh), apart from state (caught up since the start): a
// load balancer that took every stale node out of rotation would refuse every check of a broker
// outage, where each node can answer from the state it has (the shipped Kubernetes probe leaves
// it out; RiskflowReplicaStale and the answers' staleness say it).
func replicaFresh(r replica, maxLag int64, maxStale time.Duration) func() error {
	return func() error {
		if r.Fresh().IsZero() {
			return nil // not caught up yet: state says so
		}
		if age := time.Since(r.Fresh()); age > maxStale {
			return fmt.Errorf("feature replica is %s stale (allowed %s): the events topic has not been read to its end since %s", age.Round(time.Second), maxStale, r.Fresh().UTC().Format(time.RFC3339))
		}
		if lag := r.Lag(); lag > maxLag {
			return fmt.Errorf("feature replica is %d messages behind (ready at ≤ %d)", lag, maxLag)
		}
		return nil
	}
}

// registerReplica adds the feature state's readiness check and its lag and staleness metrics.
func (a *app) registerReplica(r replica) {
	a.health.add("state", replicaServing(r))
	a.health.add("fresh", replicaFresh(r, a.cfg.API.ReadyMaxLag, a.cfg.API.MaxStaleness.D()))
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "riskflow_replica_staleness_seconds",
		Help: "Age of this node's feature replica (api and scorer roles): time since every event then in verify.events had been applied (-1 before the first catch-up).",
	}, func() float64 {
		f := r.Fresh()
		if f.IsZero() {
			return -1
		}
		return time.Since(f).Seconds()
	}))
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "riskflow_replica_lag_messages",
		Help: "Messages of verify.events not yet applied to this node's feature replica, behind the end offsets last read from the broker (-1 before start); while the broker cannot be read it says nothing new, riskflow_replica_staleness_seconds grows instead.",
	}, func() float64 { return float64(r.Lag()) }))
}

// pingWatch is a loop's readiness that also covers its store while it has nothing to write: an
// archiver with no batch in hand never fails one, so without pings it stayed ready however long
// ClickHouse was down. Stalled reports the longer of the loop's own stall and how long the
// store's pings have failed without a break.
type pingWatch struct {
	loop staller
	now  func() time.Time

	mu        sync.Mutex
	failing   time.Time // when the pings started failing; zero while they succeed
	why       string
	reached   bool          // a ping has succeeded once
	answered  time.Time     // when the last ping that succeeded did
	answeredc chan struct{} // closed at the next ping that succeeds (waitAnswering)
	downc     chan struct{} // closed at a failing ping once they have failed for downAfter (whenDown)
	downAfter time.Duration
	log       *slog.Logger // if set, told when the store is not reached at the start, and when it then is
}

// waitAnswering returns nil once the store answers — at once if the last ping succeeded, else
// at the next ping that does — or ctx's error.
func (w *pingWatch) waitAnswering(ctx context.Context) error {
	w.mu.Lock()
	if w.reached && w.failing.IsZero() {
		w.mu.Unlock()
		return nil
	}
	if w.answeredc == nil {
		w.answeredc = make(chan struct{})
	}
	c := w.answeredc
	w.mu.Unlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// whenDown returns a channel closed at the first failing ping once the pings have failed without
// a break for d (at once if they already have). It replaces the channel of an earlier call.
func (w *pingWatch) whenDown(d time.Duration) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := make(chan struct{})
	if !w.failing.IsZero() && w.now().Sub(w.failing) >= d {
		close(c)
		w.downc = nil
		return c
	}
	w.downc, w.downAfter = c, d
	return c
}

// answeredAt is when the store last answered a ping (zero: never).
func (w *pingWatch) answeredAt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answered
}

// laterLoop is the readiness of a consumer loop that does not exist yet (an archiver's, until
// its store answered; a scorer's, until the feature state has caught up): not stalled — the
// store's pings say what keeps it — until set. With waiting said, it is unready until first set,
// naming what it waits for: its check and its riskflow_loop_stalled_seconds series exist from the
// role's start, so that /readyz never says ready before the loop runs, nor a scrape misses it.
type laterLoop struct {
	l       atomic.Pointer[staller]
	waiting string
	ran     atomic.Bool
}

// Unreached implements reacher: what the loop waits for, until it was first set.
func (l *laterLoop) Unreached() error {
	if l.waiting == "" || l.ran.Load() {
		return nil
	}
	return errors.New(l.waiting)
}

func (l *laterLoop) set(s staller) { l.l.Store(&s); l.ran.Store(true) }

// unset is set undone: the loop has ended (its archiver left the consumer groups).
func (l *laterLoop) unset() { l.l.Store(nil) }

// Stalled implements staller.
func (l *laterLoop) Stalled() (time.Duration, string) {
	if s := l.l.Load(); s != nil {
		return (*s).Stalled()
	}
	return 0, ""
}

// reacher is a loop's store as readiness sees it before its first answer (pingWatch).
type reacher interface {
	Unreached() error
}

// Unreached implements reacher: an error until the store has answered a ping once.
func (w *pingWatch) Unreached() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reached {
		return nil
	}
	if w.why != "" {
		return fmt.Errorf("has not reached its store since the start: %s", strings.TrimPrefix(w.why, "its store does not answer: "))
	}
	return errors.New("has not reached its store yet (first ping in progress)")
}

// Stalled implements staller.
func (w *pingWatch) Stalled() (time.Duration, string) { return w.stalledWith(w.loop) }

// sharing returns the readiness of another loop writing to the store w pings (the decision
// archiver beside the archiver): it stalls with the pings as w's own loop does.
func (w *pingWatch) sharing(loop staller) staller { return sharedPings{loop: loop, w: w} }

type sharedPings struct {
	loop staller
	w    *pingWatch
}

func (s sharedPings) Stalled() (time.Duration, string) { return s.w.stalledWith(s.loop) }

// Unreached implements reacher with the pings of the store both loops write to.
func (s sharedPings) Unreached() error { return s.w.Unreached() }

// stalledWith is the longer of loop's own stall and how long the store's pings have failed.
func (w *pingWatch) stalledWith(loop staller) (time.Duration, string) {
	d, why := loop.Stalled()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.failing.IsZero() {
		if pd := w.now().Sub(w.failing); pd > d {
			return pd, w.why
		}
	}
	return d, why
}

// noted records one ping's result.
func (w *pingWatch) noted(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		if w.answeredc != nil {
			close(w.answeredc)
			w.answeredc = nil
		}
		if !w.reached && w.why != "" && w.log != nil {
			w.log.Info("store reached: joining the consumer groups")
		}
		w.failing, w.why, w.reached, w.answered = time.Time{}, "", true, w.now()
		return
	}
	if w.failing.IsZero() {
		w.failing = w.now()
		if !w.reached && w.log != nil {
			w.log.Warn("store not reached since the start: the consumer groups are joined once it answers a ping (one each "+archiverPingEvery.String()+"); not ready until then", "err", err)
		}
	}
	w.why = "its store does not answer: " + err.Error()
	if w.downc != nil && w.now().Sub(w.failing) >= w.downAfter {
		close(w.downc)
		w.downc = nil
	}
}

// watchPings pings at once and then every interval until ctx is done, noting each result in w.
func (w *pingWatch) watchPings(ctx context.Context, interval time.Duration, ping func(context.Context) error) {
	once := func() {
		pctx, cancel := context.WithTimeout(ctx, interval)
		defer cancel()
		if err := ping(pctx); ctx.Err() == nil {
			w.noted(err)
		}
	}
	once()
	every(ctx, interval, once)
}
