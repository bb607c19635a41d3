package chsink

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LookupKey names what `riskflow lookup` looks at: exactly one of a phone's keyed hash, an IP
// address (as stored: text) and a device id.
type LookupKey struct {
	PhoneHash string
	IP        string
	DeviceID  string
}

// column is the stored column of the key and its value; an error when the key names nothing or
// more than one thing.
func (k LookupKey) column() (string, string, error) {
	var col, val string
	n := 0
	for _, c := range []struct{ col, val string }{{"phone_hash", k.PhoneHash}, {"ip", k.IP}, {"device_id", k.DeviceID}} {
		if c.val != "" {
			col, val = c.col, c.val
			n++
		}
	}
	if n != 1 {
		return "", "", errors.New("chsink: lookup: give exactly one of phone hash, ip, device id")
	}
	return col, val, nil
}

// Attempt is one stored verification with the scorer's verdict on it.
type Attempt struct {
	TS           time.Time
	AppID        string
	EventID      string
	Flow         string
	PhoneMasked  string
	IP           string
	DeviceID     string
	Outcome      string
	ErrorCode    string
	DecisionID   string
	Score        uint16
	Tags         []string
	RulesVersion string
}

// StoredDecision is one verdict of the decision log.
type StoredDecision struct {
	TS           time.Time
	AppID        string
	DecisionID   string
	PhoneMasked  string
	IP           string
	DeviceID     string
	Score        uint16
	Tags         []string
	HitRules     []string
	HitModes     []string
	RulesVersion string
	Node         string
	LatencyUS    uint32
}

// LookupSQL returns the two reads of a lookup: the key's attempts (verify_events with their
// risk_scores verdicts) and its decisions (risk_decisions), newest first, since `since`, at most
// limit of each.
func LookupSQL(database string, key LookupKey, since time.Time, limit int) (attempts, decisions string, err error) {
	if !identRE.MatchString(database) {
		return "", "", fmt.Errorf("chsink: lookup: database %q must be letters, digits and _", database)
	}
	col, val, err := key.column()
	if err != nil {
		return "", "", err
	}
	if limit <= 0 || !storableTime(since) {
		return "", "", errors.New("chsink: lookup: limit must be positive and since storable")
	}
	where := col + " = " + quoteString(val) + " AND ts >= " + dateTime(since)
	// risk_scores has phone_hash and ip but no device_id: a device's scores are found through the
	// event ids of its attempts.
	scoresWhere := where
	if col == "device_id" {
		scoresWhere = "ts >= " + dateTime(since) + " AND (app_id, event_id) IN (SELECT app_id, event_id FROM " + database + ".verify_events WHERE " + where + ")"
	}
	// Re-delivered copies are collapsed with LIMIT 1 BY, newest first, rather than FINAL: FINAL
	// merges every part of the key's time range before filtering, 3–6× slower on a history of a
	// million events. Only the newest `limit` events are joined to their scores.
	attempts = fmt.Sprintf("SELECT e.ts, e.app_id, e.event_id, e.flow, e.phone_masked, e.ip, e.device_id, e.outcome, e.error_code, e.decision_id, "+
		"s.score, s.tags, s.rules_version FROM (SELECT ts, app_id, event_id, flow, phone_masked, ip, device_id, outcome, error_code, decision_id "+
		"FROM %[1]s.verify_events WHERE %[2]s ORDER BY ts DESC, app_id, event_id, inserted_at DESC LIMIT 1 BY app_id, event_id LIMIT %[3]d) AS e "+
		"ANY LEFT JOIN (SELECT app_id, event_id, score, tags, rules_version "+
		"FROM %[1]s.risk_scores WHERE %[4]s ORDER BY scored_at DESC LIMIT 1 BY app_id, event_id) "+
		"AS s USING (app_id, event_id) ORDER BY e.ts DESC, e.app_id, e.event_id LIMIT %[3]d",
		database, where, limit, scoresWhere)
	decisions = fmt.Sprintf("SELECT ts, app_id, decision_id, phone_masked, ip, device_id, score, tags, hit_rules, hit_modes, rules_version, node, latency_us "+
		"FROM %s.risk_decisions WHERE %s ORDER BY ts DESC, app_id, decision_id, inserted_at DESC LIMIT 1 BY app_id, decision_id LIMIT %d", database, where, limit)
	return attempts, decisions, nil
}

// Lookup reads the recent attempts and decisions of one phone hash, IP or device.
func (s *Store) Lookup(ctx context.Context, key LookupKey, since time.Time, limit int) ([]Attempt, []StoredDecision, error) {
	aq, dq, err := LookupSQL(s.db, key, since, limit)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, aq)
	if err != nil {
		return nil, nil, fmt.Errorf("chsink: lookup attempts: %w", err)
	}
	var as []Attempt
	for rows.Next() {
		var a Attempt
		if err := rows.Scan(&a.TS, &a.AppID, &a.EventID, &a.Flow, &a.PhoneMasked, &a.IP, &a.DeviceID, &a.Outcome, &a.ErrorCode,
			&a.DecisionID, &a.Score, &a.Tags, &a.RulesVersion); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("chsink: lookup attempts: %w", err)
		}
		as = append(as, a)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("chsink: lookup attempts: %w", err)
	}
	rows, err = s.conn.Query(ctx, dq)
	if err != nil {
		return as, nil, fmt.Errorf("chsink: lookup decisions: %w", err)
	}
	defer rows.Close()
	var ds []StoredDecision
	for rows.Next() {
		var d StoredDecision
		if err := rows.Scan(&d.TS, &d.AppID, &d.DecisionID, &d.PhoneMasked, &d.IP, &d.DeviceID, &d.Score, &d.Tags, &d.HitRules, &d.HitModes,
			&d.RulesVersion, &d.Node, &d.LatencyUS); err != nil {
			return as, nil, fmt.Errorf("chsink: lookup decisions: %w", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return as, nil, fmt.Errorf("chsink: lookup decisions: %w", err)
	}
	return as, ds, nil
}
