package chsink

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/riskflow/riskflow/schemas"
)

// LookupKey names what `riskflow lookup` looks at: exactly one of a phone's keyed hash, an IP
// address (as stored: text) and a device id. An IPv6 address stands for its /56, the prefix the
// feature state's ip_* windows count it as outside datacenters (a broadband line's delegation; a
// mobile network's, which holds China Mobile's home broadband; an IPv6 host changes its interface
// id at will, a line its /64): its history is every address of that /56, which holds the /64 a
// datacenter address is counted as. An IPv4 address stands for every stored form that embeds it
// (NAT64 64:ff9b::a.b.c.d, 6to4, Teredo, IPv4-compatible and -translated), as the windows count
// them: give an address embedding one as that IPv4 address (geo.ClientAddr), as the scorer reads it.
// A device id stands for every spelling of it the device windows count as one device (deviceCond).
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
	TS           time.Time `json:"ts"`
	AppID        string    `json:"app_id"`
	EventID      string    `json:"event_id"`
	Flow         string    `json:"flow"`
	PhoneMasked  string    `json:"phone_masked"`
	IP           string    `json:"ip"`
	DeviceID     string    `json:"device_id"`
	Outcome      string    `json:"outcome"`
	ErrorCode    string    `json:"error_code"`
	DecisionID   string    `json:"decision_id"`
	Score        uint16    `json:"score"`
	Tags         []string  `json:"tags"`
	RulesVersion string    `json:"rules_version"`
}

// StoredDecision is one verdict of the decision log.
type StoredDecision struct {
	TS           time.Time `json:"ts"`
	AppID        string    `json:"app_id"`
	DecisionID   string    `json:"decision_id"`
	PhoneMasked  string    `json:"phone_masked"`
	IP           string    `json:"ip"`
	DeviceID     string    `json:"device_id"`
	Score        uint16    `json:"score"`
	Tags         []string  `json:"tags"`
	HitRules     []string  `json:"hit_rules"`
	HitModes     []string  `json:"hit_modes"`
	HitReasons   []string  `json:"hit_reasons"` // the numbers behind each hit, as rendered when it was served
	RulesVersion string    `json:"rules_version"`
	Node         string    `json:"node"`
	LatencyUS    uint32    `json:"latency_us"`
}

// LookupRange is what of a key's history a lookup reads: the rows stamped in [Since, Until) —
// Until zero is no upper bound —, of one app when AppID is set, newest first, past the newest
// Offset of each list (paging: the same range with Offset += limit is the next page, as long as
// nothing stamped in the range is stored meanwhile).
type LookupRange struct {
	AppID  string
	Since  time.Time
	Until  time.Time
	Offset int
}

// LookupSQL returns the two reads of a lookup by key: the key's attempts (verify_events) and its
// decisions (risk_decisions), newest first, in r, at most limit of each. The attempts'
// verdicts are read by ScoresSQL, by the primary key of the events found. ts is stored to the
// second; decisions within one second are ordered by id, newest first (a node's ids count up),
// attempts by app and event id: the order is total, so that pages by r.Offset neither repeat nor
// skip a row.
//
// The key's column is read first (PREWHERE): only the granules holding the key are read for the
// other columns, where a WHERE — or an optimizer guessing the smaller column — read every column of
// every row of the time range (on a million events, 0.72–0.78 s for the attempts with their scores
// joined, 0.03–0.05 s for the attempts this way). Re-delivered copies are collapsed with LIMIT 1 BY,
// newest first, rather than FINAL, which merges every part of the range before filtering.
//
// An IPv6 key reads every address of its /56, an IPv4 key every form embedding it (ipCond), a
// device id every spelling of it (deviceCond).
func LookupSQL(database string, key LookupKey, r LookupRange, limit int) (attempts, decisions string, err error) {
	if !identRE.MatchString(database) {
		return "", "", fmt.Errorf("chsink: lookup: database %q must be letters, digits and _", database)
	}
	col, val, err := key.column()
	if err != nil {
		return "", "", err
	}
	if limit <= 0 || r.Offset < 0 || !storableTime(r.Since) {
		return "", "", errors.New("chsink: lookup: limit must be positive, offset not negative and since storable")
	}
	cond := col + " = " + quoteString(val)
	if a, err := netip.ParseAddr(val); col == "ip" && err == nil {
		cond = ipCond(a)
	}
	if col == "device_id" {
		cond = deviceCond(val)
	}
	filter := "PREWHERE " + cond + " WHERE ts >= " + dateTime(r.Since)
	if !r.Until.IsZero() {
		if !storableTime(r.Until) || !r.Until.After(r.Since) {
			return "", "", errors.New("chsink: lookup: until must be storable and after since")
		}
		filter += " AND ts < " + dateTime(r.Until)
	}
	if r.AppID != "" {
		filter += " AND app_id = " + quoteString(r.AppID)
	}
	page := strconv.Itoa(limit)
	if r.Offset > 0 {
		page = strconv.Itoa(r.Offset) + ", " + page // LIMIT offset, count: ClickHouse 18.16 and current
	}
	attempts = fmt.Sprintf("SELECT ts, app_id, event_id, flow, phone_masked, ip, device_id, outcome, error_code, decision_id "+
		"FROM %s.verify_events %s ORDER BY ts DESC, app_id, event_id, inserted_at DESC LIMIT 1 BY app_id, event_id LIMIT %s",
		database, filter, page)
	decisions = fmt.Sprintf("SELECT ts, app_id, decision_id, phone_masked, ip, device_id, score, tags, hit_rules, hit_modes, hit_reasons, rules_version, node, latency_us "+
		"FROM %s.risk_decisions %s ORDER BY ts DESC, decision_id DESC, app_id, inserted_at DESC LIMIT 1 BY app_id, decision_id LIMIT %s", database, filter, page)
	return attempts, decisions, nil
}

// ipCond is the condition on the stored ip column of a lookup of a: for an IPv6 address every
// address of its /56; for an IPv4 address the address and every IPv6 form embedding it — the NAT64
// well-known prefix, IPv4-compatible and -translated, 6to4 (2002:a.b.c.d::/48) and Teredo (the
// client's address inverted in the last 32 bits of 2001:0::/32) — which the scorer reads as the
// IPv4 address (geo.ClientAddr), so that the history holds the attempts its windows counted. IPv4
// rows have no ':' and are left out of the IPv6 comparisons (on ClickHouse 18.16
// IPv6StringToNum reads them as ::).
func ipCond(a netip.Addr) string {
	a = a.Unmap()
	const h = "hex(IPv6StringToNum(ip))"
	if a.Is6() {
		b := a.As16()
		return "position(ip, ':') > 0 AND substring(" + h + ", 1, 14) = '" + strings.ToUpper(hex.EncodeToString(b[:7])) + "'"
	}
	b := a.As4()
	v := strings.ToUpper(hex.EncodeToString(b[:]))
	inv := strings.ToUpper(hex.EncodeToString([]byte{^b[0], ^b[1], ^b[2], ^b[3]}))
	return "(ip = " + quoteString(a.String()) + " OR position(ip, ':') > 0 AND (" +
		h + " IN ('0064FF9B0000000000000000" + v + "', '000000000000000000000000" + v + "', '0000000000000000FFFF0000" + v + "')" +
		" OR substring(" + h + ", 1, 12) = '2002" + v + "'" +
		" OR substring(" + h + ", 1, 8) = '20010000' AND substring(" + h + ", 25, 8) = '" + inv + "'))"
}

// deviceCond is the condition on the stored device_id column of a lookup of id: every spelling
// the feature state counts as that device (schemas.CanonicalDeviceID) — in another case, with
// spaces or control characters around or inside it — so that the history holds the attempts its
// device windows counted: matched exactly, a rig that varied its id's case showed "5 phones on
// this device" in the live state and one attempt in the history. ClickHouse 18.16 has no NFKC:
// a stored spelling in full-width or other compatibility forms, or holding invisible non-ASCII
// characters, is matched only as given.
func deviceCond(id string) string {
	return "(device_id = " + quoteString(id) + " OR lowerUTF8(replaceRegexpAll(device_id, '[[:cntrl:] ]', '')) = " +
		quoteString(schemas.CanonicalDeviceID(id)) + ")"
}

// maxKeysPerQuery bounds the keys of one (app_id, id) IN list: at most 64 + 64 bytes each, doubled
// by escaping, 500 of them stay well under ClickHouse's default max_query_size of 256 KiB.
const maxKeysPerQuery = 500

// EventKey is the key of one event: (app_id, event_id).
type EventKey struct{ AppID, EventID string }

// ScoresSQL reads the latest verdict of each of the given events (scored since `since`) from
// risk_scores by its primary key — an index lookup, not a scan of the time range.
func ScoresSQL(database string, events []EventKey, since time.Time) (string, error) {
	if !identRE.MatchString(database) {
		return "", fmt.Errorf("chsink: scores: database %q must be letters, digits and _", database)
	}
	if len(events) == 0 || !storableTime(since) {
		return "", errors.New("chsink: scores: no events, or since not storable")
	}
	return fmt.Sprintf("SELECT app_id, event_id, score, tags, rules_version FROM %s.risk_scores WHERE (app_id, event_id) IN (%s) AND ts >= %s "+
		"ORDER BY scored_at DESC LIMIT 1 BY app_id, event_id", database, keyTuples(events), dateTime(since)), nil
}

// keyTuples writes keys as the literal list of an (app_id, id) IN: ('a', 'e1'), ('a', 'e2').
func keyTuples(keys []EventKey) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + quoteString(k.AppID) + ", " + quoteString(k.EventID) + ")")
	}
	return b.String()
}

// Lookup reads the attempts (with their verdicts) and decisions of one phone hash, IP or device
// in r, at most limit of each: the attempts and the decisions at once, then the attempts' verdicts.
func (s *Store) Lookup(ctx context.Context, key LookupKey, r LookupRange, limit int) ([]Attempt, []StoredDecision, error) {
	since := r.Since
	aq, dq, err := LookupSQL(s.db, key, r, limit)
	if err != nil {
		return nil, nil, err
	}
	parent := ctx
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var ds []StoredDecision
	var derr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ds, derr = s.lookupDecisions(ctx, dq)
	}()
	as, aerr := s.lookupAttempts(ctx, aq, since)
	<-done
	if aerr != nil {
		return nil, nil, s.outlived(parent, aerr)
	}
	return as, ds, s.outlived(parent, derr)
}

// outlived says, of a lookup that failed on its own deadline (not the caller's), which setting
// bounds it and what asks less: "context deadline exceeded" alone named neither.
func (s *Store) outlived(parent context.Context, err error) error {
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || parent.Err() != nil {
		return err
	}
	return fmt.Errorf("%w (a lookup must finish within clickhouse.write_timeout, %s: ClickHouse hung or overloaded, or too much asked: fewer rows or a shorter range)", err, s.cfg.WriteTimeout)
}

func (s *Store) lookupAttempts(ctx context.Context, q string, since time.Time) ([]Attempt, error) {
	as, err := queryRows(ctx, s, "lookup attempts", q, func(rows driver.Rows, a *Attempt) error {
		return rows.Scan(&a.TS, &a.AppID, &a.EventID, &a.Flow, &a.PhoneMasked, &a.IP, &a.DeviceID, &a.Outcome, &a.ErrorCode, &a.DecisionID)
	})
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return as, nil
	}
	keys := make([]EventKey, len(as))
	for i, a := range as {
		keys[i] = EventKey{a.AppID, a.EventID}
	}
	type verdict struct {
		score   uint16
		tags    []string
		version string
	}
	vs := map[EventKey]verdict{}
	// In statements of at most maxKeysPerQuery keys: one IN list of a large --limit's attempts went
	// past the server's max_query_size (256 KiB) and failed the whole lookup.
	for rest := keys; len(rest) > 0; {
		chunk := rest[:min(len(rest), maxKeysPerQuery)]
		rest = rest[len(chunk):]
		sq, err := ScoresSQL(s.db, chunk, since)
		if err != nil {
			return nil, err
		}
		rows, err := s.conn.Query(ctx, sq)
		if err != nil {
			return nil, fmt.Errorf("chsink: lookup verdicts: %w", err)
		}
		for rows.Next() {
			var k EventKey
			var v verdict
			if err := rows.Scan(&k.AppID, &k.EventID, &v.score, &v.tags, &v.version); err != nil {
				rows.Close()
				return nil, fmt.Errorf("chsink: lookup verdicts: %w", err)
			}
			vs[k] = v
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("chsink: lookup verdicts: %w", err)
		}
	}
	for i := range as {
		if v, ok := vs[keys[i]]; ok {
			as[i].Score, as[i].Tags, as[i].RulesVersion = v.score, v.tags, v.version
		} else {
			as[i].Tags = []string{}
		}
	}
	return as, nil
}

func (s *Store) lookupDecisions(ctx context.Context, q string) ([]StoredDecision, error) {
	return queryRows(ctx, s, "lookup decisions", q, func(rows driver.Rows, d *StoredDecision) error {
		return rows.Scan(&d.TS, &d.AppID, &d.DecisionID, &d.PhoneMasked, &d.IP, &d.DeviceID, &d.Score, &d.Tags, &d.HitRules, &d.HitModes,
			&d.HitReasons, &d.RulesVersion, &d.Node, &d.LatencyUS)
	})
}
