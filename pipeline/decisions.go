package pipeline

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// DecisionLogConfig shapes a DecisionLog.
type DecisionLogConfig struct {
	// Queue is how many verdicts may wait for Kafka; beyond it new ones are dropped (and counted).
	// Default 10,000.
	Queue int
	// Batch is the most verdicts one produce call carries. Default 4,000, and never more than
	// Queue: a batch being built or retried holds verdicts taken from the queue, so that at most
	// about twice Queue wait in memory, whatever Kafka does.
	Batch int
	// Linger is how long the first verdict of a batch waits for more (default 50 ms). Fewer,
	// larger produce calls cost the client and the broker less per verdict: on the local broker,
	// calls of 2,000–4,000 verdicts took about half the CPU per verdict (client and broker) of
	// calls of 350, which a 10 ms linger gave at 35k checks/s. Verdicts reach Kafka that much later;
	// nothing waits for them.
	Linger time.Duration
	// EncodeEvery is how often, while a batch lingers, the verdicts queued meanwhile are encoded
	// into it (default 5 ms): encoding a whole linger's worth at once (900 verdicts at 18k checks/s,
	// 1.3 ms of one core) made the checks served meanwhile wait; a tenth of it at a time does not.
	EncodeEvery time.Duration
	// Node names the process that served the verdicts (the decision's node).
	Node string
	// MaxMessageBytes bounds a produce batch (consumers.Config.BatchBytes); 0 = the default.
	MaxMessageBytes int
	// RetryMin and RetryMax bound the backoff after a failed produce (default 100 ms and 5 s).
	RetryMin, RetryMax time.Duration
	// DropLogEvery is the least time between two log lines about dropped verdicts (default 10 s).
	DropLogEvery time.Duration
}

func (c DecisionLogConfig) withDefaults() DecisionLogConfig {
	if c.Queue <= 0 {
		c.Queue = 10_000
	}
	if c.Batch <= 0 {
		c.Batch = 4000
	}
	c.Batch = min(c.Batch, c.Queue)
	if c.Linger <= 0 {
		c.Linger = 50 * time.Millisecond
	}
	if c.EncodeEvery <= 0 {
		c.EncodeEvery = 5 * time.Millisecond
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = consumers.Config{}.BatchBytes()
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.DropLogEvery <= 0 {
		c.DropLogEvery = 10 * time.Second
	}
	return c
}

// verdict is one served verdict waiting in the queue. It holds the plaintext phone only in
// memory: the phone is hashed and masked when the decision is encoded, off the check's path.
type verdict struct {
	req     schemas.CheckRequest
	rc      schemas.RiskCheck
	hits    []schemas.RuleHit
	at      time.Time
	latency time.Duration
}

// DecisionLog publishes every verdict the API serves to risk.decisions (api.DecisionLog). Record
// hands the verdict to a bounded queue and returns at once: a full queue (Kafka slow or away) drops
// the verdict, counts it and logs, at most once per DropLogEvery, how many were dropped. Run
// drains the queue into Kafka, in batches, retrying a failed batch with backoff; the check never
// waits for any of it.
type DecisionLog struct {
	cfg    DecisionLogConfig
	w      MessageWriter
	hasher *schemas.PhoneHasher
	log    *slog.Logger
	q      chan verdict

	recorded  atomic.Uint64
	published atomic.Uint64
	dropped   atomic.Uint64
	rejected  atomic.Uint64 // refused by the broker for good (too large)
	lost      atomic.Uint64 // still unpublished when the drain at the stop ran out of time
	failures  atomic.Uint64 // failed produce calls (each retried)

	droppedLogged atomic.Uint64 // dropped count at the last log line
	lastDropLog   atomic.Int64  // unix ns of the last log line about drops

	failingSince  atomic.Int64           // unix ns of the first failure of the current outage; 0 while Kafka takes verdicts
	failingErr    atomic.Pointer[string] // the last failure's error, summarized and masked
	droppedAtFail atomic.Uint64          // dropped count when the outage began
}

// Degraded says, while Kafka does not take verdicts, since when and how many were dropped since,
// with the last error ("" while it takes them): the API's /readyz names it after "degraded:",
// where checks are answered all the same.
func (d *DecisionLog) Degraded() string {
	since := d.failingSince.Load()
	if since == 0 {
		return ""
	}
	why := ""
	if e := d.failingErr.Load(); e != nil {
		why = ": " + schemas.Excerpt(*e, 200)
	}
	return fmt.Sprintf("decisions: not published to Kafka since %s, %d verdicts dropped since%s",
		time.Unix(0, since).UTC().Format(time.RFC3339), d.dropped.Load()-d.droppedAtFail.Load(), why)
}

// NewDecisionLog returns a decision log writing to w (risk.decisions); start Run.
func NewDecisionLog(cfg DecisionLogConfig, w MessageWriter, hasher *schemas.PhoneHasher, log *slog.Logger) *DecisionLog {
	cfg = cfg.withDefaults()
	return &DecisionLog{cfg: cfg, w: w, hasher: hasher, log: logger(log), q: make(chan verdict, cfg.Queue)}
}

// Record queues a served verdict; it never blocks (api.DecisionLog).
func (d *DecisionLog) Record(req schemas.CheckRequest, rc schemas.RiskCheck, hits []schemas.RuleHit, latency time.Duration) {
	d.recorded.Add(1)
	select {
	case d.q <- verdict{req: req, rc: rc, hits: hits, at: time.Now(), latency: latency}:
	default:
		n := d.dropped.Add(1)
		d.noteDrop(n)
	}
}

// noteDrop logs dropped verdicts, at most once per DropLogEvery.
func (d *DecisionLog) noteDrop(total uint64) { d.logDrops(total, false) }

// logDrops logs the verdicts dropped since the last such line (total: the count so far): at most
// once per DropLogEvery, unless force. Drops that end within an interval are logged by force when
// the outage ends (publishing again) or the log stops, and by Run within two DropLogEvery
// otherwise, so that the lines add up to every drop.
func (d *DecisionLog) logDrops(total uint64, force bool) {
	now := time.Now().UnixNano()
	last := d.lastDropLog.Load()
	if total <= d.droppedLogged.Load() || !force && now-last < int64(d.cfg.DropLogEvery) || !d.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	var since uint64
	for {
		told := d.droppedLogged.Load()
		if total <= told { // another line has told of them meanwhile
			return
		}
		if d.droppedLogged.CompareAndSwap(told, total) {
			since = total - told
			break
		}
	}
	d.log.Warn("decision log queue full: verdicts dropped (Kafka slow or away); checks are answered",
		"dropped", since, "dropped_total", total, "queue", d.cfg.Queue)
}

// Recorded, Published, Dropped, Rejected, Lost and Failures count verdicts handed to Record,
// verdicts Kafka acknowledged, verdicts dropped because the queue was full, verdicts the broker
// refused for good, verdicts still unpublished when Run's drain at the stop ran out of time, and
// failed produce calls (retried). Once Run has returned, Recorded is the sum of Published,
// Dropped, Rejected and Lost (verdicts recorded after Run returned excepted).
func (d *DecisionLog) Recorded() uint64  { return d.recorded.Load() }
func (d *DecisionLog) Published() uint64 { return d.published.Load() }
func (d *DecisionLog) Dropped() uint64   { return d.dropped.Load() }
func (d *DecisionLog) Rejected() uint64  { return d.rejected.Load() }
func (d *DecisionLog) Lost() uint64      { return d.lost.Load() }
func (d *DecisionLog) Failures() uint64  { return d.failures.Load() }

// Queued is the number of verdicts in the queue, not yet taken into a batch.
func (d *DecisionLog) Queued() int { return len(d.q) }

// Pending is the number of verdicts held and not yet acknowledged by Kafka: those queued and those
// taken into the batch being built, written or retried (up to Batch more than Queued). It is what
// a stop would lose if Kafka stayed away: riskflow_decision_queue_length.
func (d *DecisionLog) Pending() uint64 {
	// The outcomes first: each verdict is counted recorded before any outcome, so this order
	// never makes the difference negative.
	done := d.published.Load() + d.dropped.Load() + d.rejected.Load() + d.lost.Load()
	rec := d.recorded.Load()
	if rec < done {
		return 0
	}
	return rec - done
}

// Run publishes queued verdicts until ctx ends, then tries for at most drain to publish what is
// still queued; what it cannot is lost: counted (Lost) and logged.
//
// A batch's messages are encoded one after the other into one buffer, reused by the next batch
// once the batch is acknowledged: a verdict costs the garbage collector no allocation of its own.
// The writer must not keep the messages after WriteMessages returns (kafka.Writer does not, unless
// Async); a write cut short by ctx is not followed by a reuse, since Run then stops.
func (d *DecisionLog) Run(ctx context.Context, drain time.Duration) error {
	batch := make([]kafka.Message, 0, d.cfg.Batch)
	var buf []byte
	tick := time.NewTimer(time.Hour)
	tick.Stop()
	defer tick.Stop()
	// Drops are logged at most once per DropLogEvery, at the next drop: the last drops of a burst
	// would wait for the next one (or the stop) to be told. Each DropLogEvery, they are.
	tell := time.NewTicker(d.cfg.DropLogEvery)
	defer tell.Stop()
	for {
		var m kafka.Message
		select {
		case <-ctx.Done():
			d.drain(nil, drain)
			return nil
		case <-tell.C:
			d.logDrops(d.dropped.Load(), false)
			continue
		case v := <-d.q:
			m, buf = d.encode(buf[:0], &v)
			batch = append(batch[:0], m)
		}
		// Linger, waking every EncodeEvery (not once per verdict: a wake-up per verdict costs the
		// check's cores more than encoding it) to encode what was queued meanwhile.
		publishAt := time.Now().Add(d.cfg.Linger)
		for len(batch) < d.cfg.Batch && ctx.Err() == nil {
			wait := min(d.cfg.EncodeEvery, time.Until(publishAt))
			if wait <= 0 {
				break
			}
			tick.Reset(wait)
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
			batch, buf = d.take(batch, buf)
		}
		batch, buf = d.take(batch, buf)
		if rest, err := d.publish(ctx, batch); err != nil {
			d.drain(rest, drain) // stopping: what was not acknowledged goes first
			return nil
		}
	}
}

// take encodes queued verdicts into batch (and buf) until the queue is empty or the batch full.
func (d *DecisionLog) take(batch []kafka.Message, buf []byte) ([]kafka.Message, []byte) {
	for n := 0; len(batch) < d.cfg.Batch; n++ {
		if n > 0 && n%64 == 0 {
			// Let the checks waiting for this core go first.
			runtime.Gosched()
		}
		select {
		case v := <-d.q:
			var m kafka.Message
			m, buf = d.encode(buf, &v)
			batch = append(batch, m)
		default:
			return batch, buf
		}
	}
	return batch, buf
}

// drain publishes pending, then what is queued, for at most limit.
func (d *DecisionLog) drain(pending []kafka.Message, limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	defer func() { d.logDrops(d.dropped.Load(), true) }() // drops not told yet
	batch := slices.Clone(pending)
	for {
		select {
		case v := <-d.q:
			m, _ := d.encode(nil, &v) // rest may alias Run's buffer: no reuse here
			batch = append(batch, m)
			if len(batch) < d.cfg.Batch {
				continue
			}
		default:
		}
		if len(batch) == 0 {
			return
		}
		if rest, err := d.publish(ctx, batch); err != nil {
			// The queue is emptied into the count: its length gauge then says nothing waits.
			lost := uint64(len(rest))
			for empty := false; !empty; {
				select {
				case <-d.q:
					lost++
				default:
					empty = true
				}
			}
			total := d.lost.Add(lost)
			d.log.Warn("decision log stopped with verdicts unpublished (Kafka slow or away): lost", "lost", lost, "lost_total", total,
				"recorded_total", d.recorded.Load(), "published_total", d.published.Load(), "dropped_total", d.dropped.Load(), "rejected_total", d.rejected.Load(),
				"drain", limit, "err", err)
			return
		}
		batch = batch[:0]
	}
}

// publish writes batch, retrying what Kafka did not acknowledge until it did or ctx ended; then
// it returns what is still unacknowledged with ctx's error.
func (d *DecisionLog) publish(ctx context.Context, batch []kafka.Message) ([]kafka.Message, error) {
	wait := d.cfg.RetryMin
	failing := false
	droppedBefore := d.dropped.Load() // an outage's drops start while its first attempt waits
	for len(batch) > 0 {
		rejected, retry, err := consumers.Produce(ctx, d.w, batch, d.cfg.MaxMessageBytes)
		for _, r := range rejected {
			d.rejected.Add(1)
			d.log.Error("decision cannot be written to Kafka; dropped", "bytes", len(batch[r.Index].Value), "err", consumers.Summarize(r.Err))
		}
		d.published.Add(uint64(len(batch) - len(rejected) - len(retry)))
		if err == nil {
			d.failingSince.Store(0)
			if failing {
				d.logDrops(d.dropped.Load(), true) // the outage's drops not told yet
				d.log.Info("decision log publishing again")
			}
			return nil, nil
		}
		batch = keep(batch, retry)
		if ctx.Err() != nil {
			return batch, ctx.Err()
		}
		d.failures.Add(1)
		msg := schemas.MaskPhones(consumers.Summarize(err).Error())
		d.failingErr.Store(&msg)
		if d.failingSince.Load() == 0 {
			d.droppedAtFail.Store(droppedBefore)
			d.failingSince.Store(time.Now().UnixNano())
		}
		d.logDrops(d.dropped.Load(), false)
		if !failing {
			failing = true
			d.log.Warn("decision log cannot publish; retrying (verdicts queue, then drop)", "pending", len(retry), "err", consumers.Summarize(err))
		}
		select {
		case <-ctx.Done():
			return batch, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, d.cfg.RetryMax)
	}
	return nil, nil
}

// encode appends a verdict's risk.decisions message to buf and returns the message (aliasing buf)
// and buf: the phone becomes its keyed hash, its masked form and its segment here, and the message
// is keyed by the hash. Earlier messages aliasing buf stay valid when it grows (they keep the
// array they were written in).
func (d *DecisionLog) encode(buf []byte, v *verdict) (kafka.Message, []byte) {
	// The strings the decision adds (hash, masked form, address) share one allocation: this runs
	// for every verdict, on the check's cores.
	var stack [192]byte
	sum := d.hasher.Sum(v.req.Phone)
	b := hex.AppendEncode(stack[:0], sum[:])
	nHash := len(b)
	b = schemas.AppendMaskedPhone(b, v.req.Phone)
	nMasked := len(b)
	if v.req.IP.IsValid() {
		b = v.req.IP.AppendTo(b)
	}
	strs := string(b)
	dec := decisionOf(strs[:nHash], strs[nHash:nMasked], strs[nMasked:], d.cfg.Node, &v.req, &v.rc, v.hits, v.at, v.latency)
	start := len(buf)
	buf = append(buf, dec.PhoneHash...)
	buf = dec.AppendJSON(buf)
	msg := buf[start:len(buf):len(buf)]
	return kafka.Message{Key: msg[:nHash:nHash], Value: msg[nHash:]}, buf
}

// NewDecision builds the decision record of a verdict served at `at` by node.
func NewDecision(h *schemas.PhoneHasher, node string, req *schemas.CheckRequest, rc *schemas.RiskCheck, hits []schemas.RuleHit, at time.Time, latency time.Duration) schemas.Decision {
	ip := ""
	if req.IP.IsValid() {
		ip = req.IP.String()
	}
	return decisionOf(h.Hex(req.Phone), schemas.MaskPhone(req.Phone), ip, node, req, rc, hits, at, latency)
}

// decisionOf is NewDecision with the phone's hash and masked form and the address's text given.
func decisionOf(hash, masked, ip, node string, req *schemas.CheckRequest, rc *schemas.RiskCheck, hits []schemas.RuleHit, at time.Time, latency time.Duration) schemas.Decision {
	tags := rc.Tags
	if tags == nil {
		tags = []string{}
	}
	if hits == nil {
		hits = []schemas.RuleHit{}
	}
	detail := rc.Detail
	if detail == nil {
		detail = map[string]schemas.TagDetail{}
	}
	return schemas.Decision{
		DecisionID: rc.ID, TS: at.UTC(), AppID: req.AppID, Flow: req.Flow,
		PhoneHash: hash, PhoneMasked: masked, PhoneSegment: schemas.PhoneSegment(req.Phone),
		IP: ip, Carrier: req.Carrier, Platform: req.Platform, DeviceID: req.DeviceID, TokenDigest: req.TokenDigest, ExID: req.ExID,
		Score: rc.Score, Tags: tags, Detail: detail, Hits: hits, RulesVersion: rc.RulesVersion,
		Node: node, LatencyUS: latency.Microseconds(),
	}
}
