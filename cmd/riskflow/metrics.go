package main

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/features"
)

// observer turns pipeline and loop events into Prometheus metrics.
type observer struct {
	scored   *prometheus.CounterVec
	dead     *prometheus.CounterVec
	archived prometheus.Counter
	batches  *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	breaker  *prometheus.GaugeVec
	feedWait *prometheus.HistogramVec
	ruleHits *ruleHitsVec
	lag      *prometheus.GaugeVec
	// deletedUnread: messages a consumer group never read because the topic deleted them first.
	deletedUnread *prometheus.CounterVec
}

func newObserver(reg prometheus.Registerer) *observer {
	o := &observer{
		scored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "riskflow_scored_total", Help: "Events scored by the scorer role, by score."}, []string{"score"}),
		dead:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "riskflow_dead_lettered_total", Help: "Messages sent to the dead-letter topic, by reason."}, []string{"reason"}),
		// Registered by the archiver role only (runArchiver): another process would report 0.
		archived: prometheus.NewCounter(prometheus.CounterOpts{Name: "riskflow_archived_total", Help: "Score records stored in ClickHouse."}),
		batches:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "riskflow_batch_seconds", Help: "Time to make a consumed batch durable, by loop.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"loop"}),
		retries:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "riskflow_batch_retries_total", Help: "Batches retried after a failure, by loop."}, []string{"loop"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "riskflow_breaker_state",
			Help: "Circuit breaker state, 1 for the current one, by breaker: archiver (risk.scores into ClickHouse), console (the console's ClickHouse reads and writes) and rules (the rule-pack history, rule_versions)."},
			[]string{"breaker", "state"}),
	}
	o.feedWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "riskflow_scorer_feed_wait_seconds",
		Help:    "How long a scorer waited before scoring a batch for its full-state feed to apply every partition up to the batch's time, by result (met, timeout) and by what the time was read from (stamp: the messages' Kafka timestamps, a live batch; event_time: the stamps and then the events' ts, a batch produced after the fact — a recording played back, a backlog after an outage, an app uploading its attempts late).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"result", "by"})
	o.ruleHits = &ruleHitsVec{CounterVec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "riskflow_rule_hits_total", Help: "Rule hits in the score records written by the scorer role, by rule and mode (enforce, shadow, tag, allow); every rule of the running pack from 0, and those alone.",
	}, []string{"rule", "mode"})}
	o.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "riskflow_consumer_lag_messages", Help: "Messages of a topic a consumer group has not committed yet, per partition (read from the broker every 10 s).",
	}, []string{"group", "partition"})
	o.deletedUnread = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "riskflow_consumer_deleted_unread_total",
		Help: "Messages a consumer group of this process skipped because the topic had deleted them (retention) before the group read them — its committed offset was older than the oldest the topic holds, after the group was down or behind for longer than the retention: never scored (scorer group), never archived (archiver, decisions), by group.",
	}, []string{"group"})
	reg.MustRegister(o.scored, o.dead, o.batches, o.retries, o.breaker, o.feedWait, o.ruleHits, o.lag, o.deletedUnread)
	return o
}

func (o *observer) Scored(score int) { o.scored.WithLabelValues(strconv.Itoa(score)).Inc() }

// scorerStarted makes riskflow_scored_total report every level, and riskflow_rule_hits_total
// every rule of the running pack (running: the scorer's) in its mode, at 0, from the start of the
// scorer role (only there: another role scores nothing): a counter that appears at its first
// increment hides that increment from rate(), and a shadow rule that never matched would have no
// series for an alert to find.
func (o *observer) scorerStarted(running *rules.Holder) {
	for _, s := range []int{schemas.ScorePass, schemas.ScoreObserve, schemas.ScoreStepUp, schemas.ScoreBlock} {
		o.scored.WithLabelValues(strconv.Itoa(s))
	}
	o.ruleHits.running.Store(running)
}

// ruleHitsVec is riskflow_rule_hits_total: at each scrape, every rule of the running pack (once
// the scorer role has said which pack that is) gets its series, at 0 until it matches, and the
// series of rules (or modes) the running pack does not have are dropped: they were kept, and a
// scorer cycling through packs grew /metrics by every rule of every pack it ever ran.
type ruleHitsVec struct {
	*prometheus.CounterVec
	running atomic.Pointer[rules.Holder]
}

func (v *ruleHitsVec) Collect(ch chan<- prometheus.Metric) {
	if h := v.running.Load(); h != nil {
		if p := h.Load(); p != nil {
			keep := make(map[[2]string]bool, len(p.Rules))
			for _, r := range p.Rules {
				keep[[2]string{r.ID, string(r.Mode)}] = true
				v.WithLabelValues(r.ID, string(r.Mode))
			}
			v.dropOthers(keep)
		}
	}
	v.CounterVec.Collect(ch)
}

// dropOthers deletes the series whose (rule, mode) keep lacks. They are read from the vector at
// the scrape, so that counting a hit on the scoring path stays one WithLabelValues (a set of the
// series made, kept as hits came, took a process-wide lock per hit).
func (v *ruleHitsVec) dropOthers(keep map[[2]string]bool) {
	ms := make(chan prometheus.Metric, 64)
	go func() { v.CounterVec.Collect(ms); close(ms) }()
	var drop [][2]string
	for m := range ms {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		var k [2]string
		for _, l := range d.GetLabel() {
			switch l.GetName() {
			case "rule":
				k[0] = l.GetValue()
			case "mode":
				k[1] = l.GetValue()
			}
		}
		if !keep[k] {
			drop = append(drop, k)
		}
	}
	// After the collection: deleting takes the lock that collecting holds.
	for _, k := range drop {
		v.DeleteLabelValues(k[0], k[1])
	}
}
func (o *observer) DeadLettered(reason string) { o.dead.WithLabelValues(reason).Inc() }

// deadLettersFrom makes riskflow_dead_lettered_total report each of a starting stage's reasons
// (pipeline.ScoreReasons, ArchiveReasons, DecisionReasons) at 0: the first dead letter of a
// series that appeared with it was no increase to rate() and increase(), and a lone one never
// showed on the dashboard's dead-letter panel.
func (o *observer) deadLettersFrom(reasons []string) {
	for _, r := range reasons {
		o.dead.WithLabelValues(r)
	}
}
func (o *observer) Archived(rows int) { o.archived.Add(float64(rows)) }
func (o *observer) Batch(name string, _ int, took time.Duration) {
	o.batches.WithLabelValues(name).Observe(took.Seconds())
}
func (o *observer) Retry(name string, _ error) { o.retries.WithLabelValues(name).Inc() }

// RuleHits implements pipeline.HitObserver.
func (o *observer) RuleHits(hits []schemas.RuleHit) {
	for _, h := range hits {
		o.ruleHits.WithLabelValues(h.Rule, h.Mode).Inc()
	}
}

// GateWaited implements pipeline.GateObserver.
func (o *observer) GateWaited(waited time.Duration, ok, replayed bool) {
	result, by := "met", "stamp"
	if !ok {
		result = "timeout"
	}
	if replayed {
		by = "event_time"
	}
	o.feedWait.WithLabelValues(result, by).Observe(waited.Seconds())
}

// breakerState records that breaker (archiver, console) is now in state.
func (o *observer) breakerState(breaker, state string) {
	for _, s := range []string{"closed", "half-open", "open"} {
		v := 0.0
		if s == state {
			v = 1
		}
		o.breaker.WithLabelValues(breaker, s).Set(v)
	}
}

// stateKindNames are the kind label values of riskflow_state_keys, by features.Kind: the per-app
// kinds count an app's addresses, number prefixes and number blocks apart from other apps'.
var stateKindNames = [features.NumKinds]string{
	features.KindPhone: "phone", features.KindIP: "ip", features.KindNet: "net", features.KindDevice: "device",
	features.KindPrefix: "prefix", features.KindApp: "app", features.KindAppIP: "app_ip",
	features.KindAppPrefix: "app_prefix", features.KindAppBlocks: "app_blocks",
}

// stateCollector reports the feature state's size at scrape time.
type stateCollector struct {
	st      *features.State
	keys    *prometheus.Desc
	entries *prometheus.Desc
}

func newStateCollector(st *features.State) *stateCollector {
	return &stateCollector{
		st:      st,
		keys:    prometheus.NewDesc("riskflow_state_keys", "Keys in the feature state, by kind.", []string{"kind"}, nil),
		entries: prometheus.NewDesc("riskflow_state_entries", "Window entries kept in the feature state.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.keys; ch <- c.entries }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.Stats()
	for i, name := range stateKindNames {
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(s.Keys[i]), name)
	}
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries))
}

// rulesCollector reports at scrape time what the rule-pack service and the scorer know of the
// running pack's health: rules failing at run time, and a pack file the node does not follow.
type rulesCollector struct {
	svc      *rulesvc.Service
	scorer   *scoring.Scorer
	withFile bool // scoring.rules is set

	errs, fileOK, fileProblems *prometheus.Desc
}

func newRulesCollector(svc *rulesvc.Service, s *scoring.Scorer, withFile bool) *rulesCollector {
	return &rulesCollector{svc: svc, scorer: s, withFile: withFile,
		errs: prometheus.NewDesc("riskflow_rule_errors_total",
			"Evaluations of a rule that failed at run time (division by zero, overflow, the cost limit), in events and checks: the rule was skipped and the other rules' verdict stood, by rule of the running pack (a rule a new pack drops loses its series).", []string{"rule"}, nil),
		fileOK: prometheus.NewDesc("riskflow_rules_file_ok",
			"1 while the running rule pack is the pack file's (scoring.rules), 0 while the file cannot be read or holds a pack that does not compile: the node keeps its previous pack and no longer follows the file.", nil, nil),
		fileProblems: prometheus.NewDesc("riskflow_rules_file_problems_total",
			"Times the pack file was found unreadable or rejected (a content rejected on every poll counts once), by problem.", []string{"problem"}, nil),
	}
}

func (c *rulesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.errs
	ch <- c.fileOK
	ch <- c.fileProblems
}

func (c *rulesCollector) Collect(ch chan<- prometheus.Metric) {
	// Every rule of the running pack, at 0 until it fails: a series that appeared at its first
	// failures would show no increase() for them. Those alone: rules of earlier packs that failed
	// kept their series, and a node cycling packs of failing rules grew /metrics without bound.
	errs := c.scorer.RuleErrors()
	if p := c.scorer.Rules().Load(); p != nil {
		for _, r := range p.Rules {
			if _, ok := errs[r.ID]; !ok {
				errs[r.ID] = 0
			}
		}
	}
	for rule, n := range errs {
		ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(n), rule)
	}
	if !c.withFile {
		return
	}
	f := c.svc.File()
	ok := 1.0
	if f.Problem != "" {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(c.fileOK, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(c.fileProblems, prometheus.CounterValue, float64(f.Rejected), "rejected")
	ch <- prometheus.MustNewConstMetric(c.fileProblems, prometheus.CounterValue, float64(f.Unreadable), "unreadable")
}
