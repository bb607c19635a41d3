package chsink

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/riskflow/riskflow/schemas"
)

// Column lists of the decision log's and the labels' INSERTs, in the order of their row builders.
var (
	riskDecisionsColumns = []string{
		"decision_id", "ts", "app_id", "flow",
		"phone_hash", "phone_masked", "phone_segment",
		"ip", "carrier", "platform", "device_id", "token_digest", "ex_id",
		"score", "tags", "detail",
		"hit_rules", "hit_tags", "hit_scores", "hit_modes", "hit_reasons",
		"rules_version", "node", "latency_us",
	}
	labelsColumns = []string{
		"app_id", "target", "target_id", "label", "note", "labeled_by", "labeled_at",
	}
)

// WriteDecisions stores served verdicts in risk_decisions, one INSERT (several after one timed out). It returns nil only once
// ClickHouse acknowledged it; the same batch may be sent again after any error (the table keeps one
// row per (app_id, decision_id)). A decision that can never be stored (see checkDecision) fails
// the whole batch with an error matching ErrInvalidRecord, before anything is sent.
func (s *Store) WriteDecisions(ctx context.Context, ds []schemas.Decision) error {
	if len(ds) == 0 {
		return nil
	}
	rows := make([][]any, len(ds))
	for i := range ds {
		if reason := checkDecision(&ds[i]); reason != "" {
			return &InvalidRecordError{Index: i, EventID: ds[i].DecisionID, Reason: reason, IDName: "decision_id"}
		}
		row, err := decisionRow(&ds[i])
		if err != nil {
			return err
		}
		rows[i] = row
	}
	// In INSERTs of at most the bound, as WriteBatch: one that outlives Config.WriteTimeout
	// halves the next ones.
	limit := s.decisions.limit(s.clock())
	for lo := 0; lo < len(rows); {
		hi := len(rows)
		if limit > 0 {
			hi = min(lo+int(limit), len(rows))
		}
		part := rows[lo:hi]
		if err := s.insert(ctx, "risk_decisions", riskDecisionsColumns, len(part), func(i int) ([]any, error) { return part[i], nil }); err != nil {
			return s.insertTimedOut(ctx, &s.decisions, err, len(part))
		}
		lo = hi
	}
	return nil
}

// checkDecision returns why d cannot be stored, or "".
func checkDecision(d *schemas.Decision) string {
	switch {
	case d.DecisionID == "":
		return "decision_id is empty"
	case !storableTime(d.TS):
		return fmt.Sprintf("ts %s is outside what ClickHouse DateTime stores", d.TS.Format(time.RFC3339))
	case !isHex64(d.PhoneHash):
		return "phone_hash must be 64 hex digits"
	case !maskedBeyondSegment(d.PhoneMasked):
		return "phone_masked must be at most 7 leading digits and at least 4 stars, like 1381234****"
	case len(d.PhoneSegment) > 7 || countDigits(d.PhoneSegment) != len(d.PhoneSegment):
		return "phone_segment must be at most 7 digits"
	case d.Score < 0 || d.Score > math.MaxUint16:
		return fmt.Sprintf("score %d out of range", d.Score)
	case d.LatencyUS < 0:
		return "latency_us is negative"
	}
	for i, h := range d.Hits {
		if h.Score < 0 || h.Score > math.MaxUint16 {
			return fmt.Sprintf("hit %d (rule %q): score %d out of range", i, h.Rule, h.Score)
		}
	}
	if f := phoneField(d.Tags, d.Hits, d.Detail, "decision_id", d.DecisionID, "app_id", d.AppID, "ip", notAnAddress(d.IP), "flow", d.Flow,
		"carrier", d.Carrier, "platform", d.Platform, "device_id", d.DeviceID, "token_digest", d.TokenDigest,
		"ex_id", d.ExID, "rules_version", d.RulesVersion, "node", d.Node); f != "" {
		return plaintextPhoneReason(f)
	}
	return ""
}

// decisionRow is d as a row of risk_decisions, in the order of riskDecisionsColumns.
func decisionRow(d *schemas.Decision) ([]any, error) {
	detail := d.Detail
	if detail == nil {
		detail = map[string]schemas.TagDetail{}
	}
	detailJSON, err := json.Marshal(detail)
	if err != nil {
		return nil, fmt.Errorf("decision %s: detail: %w", d.DecisionID, err)
	}
	n := len(d.Hits)
	rules, tags, scores, modes, reasons := make([]string, n), make([]string, n), make([]uint16, n), make([]string, n), make([]string, n)
	for i, h := range d.Hits {
		rules[i], tags[i], scores[i], modes[i], reasons[i] = h.Rule, h.Tag, uint16(h.Score), h.Mode, h.Reason
	}
	answered := d.Tags
	if answered == nil {
		answered = []string{}
	}
	return []any{
		d.DecisionID, d.TS.UTC(), d.AppID, d.Flow,
		d.PhoneHash, d.PhoneMasked, d.PhoneSegment,
		d.IP, d.Carrier, d.Platform, d.DeviceID, d.TokenDigest, d.ExID,
		uint16(d.Score), answered, string(detailJSON),
		rules, tags, scores, modes, reasons,
		d.RulesVersion, d.Node, uint32(min(d.LatencyUS, math.MaxUint32)),
	}, nil
}

// WriteLabels stores labels (validated by the caller, with LabeledBy set), each dated by the
// server's clock: the table keeps the latest label per (app_id, target, target_id), and labels
// come from machines whose clocks differ (an analyst's laptop running riskflow label, the API
// nodes, the console) — dated by their writers, a correction from a machine whose clock is behind
// lost to the label it corrected. A label's LabeledAt is set to the time stored.
func (s *Store) WriteLabels(ctx context.Context, labels []schemas.Label) error {
	if len(labels) == 0 {
		return nil
	}
	for i := range labels {
		if err := labels[i].Validate(); err != nil {
			return fmt.Errorf("chsink: label %d: %w", i, err)
		}
	}
	now, err := s.serverNow(ctx)
	if err != nil {
		return fmt.Errorf("chsink: labels: %w", err)
	}
	rows := make([][]any, len(labels))
	for i := range labels {
		l := &labels[i]
		l.LabeledAt = now
		kind, id := l.Target()
		rows[i] = []any{l.AppID, kind, id, l.Label, l.Note, l.LabeledBy, now}
	}
	return s.insert(ctx, "labels", labelsColumns, len(rows), func(i int) ([]any, error) { return rows[i], nil })
}

// serverNow is the ClickHouse server's clock, to the second (its DateTime).
func (s *Store) serverNow(ctx context.Context) (time.Time, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var now time.Time
	if err := s.conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("ask the server's time: %w", err)
	}
	return now.UTC(), nil
}

// UnknownTargets returns the labels whose decision (risk_decisions) or event (verify_events) is
// not stored: an id mistyped or of another app — whose label would never count — or one the
// archiver has not written yet — each decision or event once (its first label), however many
// labels mark it. Both tables are ordered by (app_id, id): each read is index lookups,
// maxKeysPerQuery ids at a time.
//
// A decision missing from risk_decisions whose id an event carries (verify_events.decision_id)
// is known: its label counts, through that event (ReadLabels). That is a verdict the decision log
// dropped while Kafka was away — its queue full — and whose attempt the verify service reported;
// it was said to be "never counted in a backtest", and was. Those few are looked for among the
// events, which are not ordered by decision_id (a scan of the app's events), only when
// risk_decisions has not got them.
func (s *Store) UnknownTargets(ctx context.Context, labels []schemas.Label) ([]schemas.Label, error) {
	type target struct {
		kind string
		key  EventKey // (app_id, id): the id is the decision's for decisions
	}
	known := map[target]bool{} // by kind too: an event's id is no decision's
	for _, kind := range []string{schemas.LabelTargetDecision, schemas.LabelTargetEvent} {
		var keys []EventKey
		for _, l := range labels {
			if k, id := l.Target(); k == kind {
				keys = append(keys, EventKey{l.AppID, id})
			}
		}
		table, column := "risk_decisions", "decision_id"
		if kind == schemas.LabelTargetEvent {
			table, column = "verify_events", "event_id"
		}
		if err := s.findKeys(ctx, "find labelled "+kind+"s", table, column, "", keys, func(k EventKey) { known[target{kind, k}] = true }); err != nil {
			return nil, err
		}
		if kind != schemas.LabelTargetDecision {
			continue
		}
		var dropped []EventKey // decisions not in the log: does an event carry their id?
		for _, k := range keys {
			if !known[target{kind, k}] {
				dropped = append(dropped, k)
			}
		}
		if err := s.findKeys(ctx, "find events carrying labelled decisions' ids", "verify_events", "decision_id", "decision_id != '' AND ", dropped,
			func(k EventKey) { known[target{kind, k}] = true }); err != nil {
			return nil, err
		}
	}
	var unknown []schemas.Label
	named := map[target]bool{} // each target once, however many of its labels (a correction)
	for _, l := range labels {
		kind, id := l.Target()
		if t := (target{kind, EventKey{l.AppID, id}}); !known[t] && !named[t] {
			named[t] = true
			unknown = append(unknown, l)
		}
	}
	return unknown, nil
}

// findKeys calls found with each of keys whose (app_id, column) table holds (where, if not empty,
// narrows the rows first and ends with AND), maxKeysPerQuery keys a query.
func (s *Store) findKeys(ctx context.Context, what, table, column, where string, keys []EventKey, found func(EventKey)) error {
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), maxKeysPerQuery)]
		keys = keys[len(chunk):]
		q := "SELECT DISTINCT app_id, " + column + " FROM " + s.table(table) + " WHERE " + where + "(app_id, " + column + ") IN (" + keyTuples(chunk) + ")"
		rows, err := queryRows(ctx, s, what, q, func(rows driver.Rows, k *EventKey) error { return rows.Scan(&k.AppID, &k.EventID) })
		if err != nil {
			return err
		}
		for _, k := range rows {
			found(k)
		}
	}
	return nil
}

// labelsSQL is ReadLabels' two reads: labels of decisions resolved to their events — every event
// carrying the decision's id (ALL: an attempt tried again after one verdict is two events; ANY
// would pick one, a different one on each server version) — then labels of events (read second,
// so that an event's own label replaces its decision's).
//
// ClickHouse builds a JOIN's right side in memory: the events are narrowed to those carrying a
// labelled decision's id before the join. Joined whole, every event of the table's history that
// followed a verdict went into the hash table — 3 million of them took over 400 MB, and a
// backtest with stored labels failed on a memory limit once verify services sent decision_id
// for a few days.
func labelsSQL(db string) []string {
	return []string{
		"SELECT app_id, e.event_id, l.label FROM (SELECT app_id, target_id AS decision_id, label FROM " + db +
			".labels FINAL WHERE target = 'decision') AS l ALL INNER JOIN (SELECT app_id, decision_id, event_id FROM " + db +
			".verify_events FINAL WHERE decision_id != '' AND (app_id, decision_id) IN (SELECT app_id, target_id FROM " + db +
			".labels WHERE target = 'decision')) AS e USING (app_id, decision_id) ORDER BY app_id, e.event_id",
		"SELECT app_id, target_id, label FROM " + db + ".labels FINAL WHERE target = 'event' ORDER BY app_id, target_id",
	}
}

// EventLabel is a label resolved to the event it concerns.
type EventLabel struct {
	AppID   string
	EventID string
	Fraud   bool
}

// ReadLabels returns the latest label of every labelled event: labels of events as they are, and
// labels of decisions through the event that carries the decision's id (verify_events.decision_id).
// An event's own label wins over a label of its decision.
func (s *Store) ReadLabels(ctx context.Context) ([]EventLabel, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	queries := labelsSQL(s.db)
	type key struct{ app, id string }
	at := map[key]int{}
	var out []EventLabel
	for _, q := range queries {
		rows, err := s.conn.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("chsink: read labels: %w", noTable(err))
		}
		for rows.Next() {
			var app, id, label string
			if err := rows.Scan(&app, &id, &label); err != nil {
				rows.Close()
				return nil, fmt.Errorf("chsink: read labels: %w", err)
			}
			l := EventLabel{AppID: app, EventID: id, Fraud: label == schemas.LabelFraud}
			if i, ok := at[key{app, id}]; ok {
				out[i] = l
				continue
			}
			at[key{app, id}] = len(out)
			out = append(out, l)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("chsink: read labels: %w", err)
		}
	}
	return out, nil
}
