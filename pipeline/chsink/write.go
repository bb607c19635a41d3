package chsink

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// Column lists of the INSERTs, in the order of the row builders below. inserted_at is left
// to its DEFAULT now() on the server.
var (
	verifyEventsColumns = []string{
		"event_id", "ts", "app_id", "flow",
		"phone_hash", "phone_masked", "phone_segment",
		"ip", "carrier", "platform", "device_id",
		"outcome", "error_code", "token_digest", "ex_id", "decision_id",
		"country", "province", "city", "asn", "ip_type",
	}
	riskScoresColumns = []string{
		"event_id", "ts", "app_id", "flow",
		"phone_hash", "phone_segment", "ip", "carrier",
		"score", "tags", "detail",
		"hit_rules", "hit_tags", "hit_scores", "hit_modes", "hit_reasons",
		"shadow_tags", "rules_version", "scored_at",
	}
	ruleVersionsColumns = []string{
		"version", "name", "loaded_at", "loaded_by", "source", "rule_count", "content",
	}
	ruleLoadsColumns = []string{
		"loaded_at", "version", "name", "loaded_by", "source", "rule_count",
	}
)

// ErrInvalidRecord marks records WriteBatch will never be able to store (see
// [InvalidRecordError]). Retrying the same batch fails the same way; drop or dead-letter the
// record instead.
var ErrInvalidRecord = errors.New("chsink: invalid record")

// InvalidRecordError says which record of a batch cannot be stored and why. It matches
// [ErrInvalidRecord] with errors.Is.
type InvalidRecordError struct {
	Index   int    // position in the batch
	EventID string // "" if that is what is wrong; a decision's decision_id (IDName)
	Reason  string
	IDName  string // what EventID is: "event_id" when empty, "decision_id" for a decision
}

func (e *InvalidRecordError) Error() string {
	name := e.IDName
	if name == "" {
		name = "event_id"
	}
	// The id as an excerpt, a number in it masked: the message is the dead letter's riskflow-error
	// header and the archiver's log line, and the record may be refused for holding a number there.
	return fmt.Sprintf("chsink: record %d (%s %s) cannot be stored: %s", e.Index, name, schemas.Excerpt(e.EventID, schemas.MaxEventIDLen), e.Reason)
}

// RejectedIndex is the position of the refused record (pipeline.RejectedRecord).
func (e *InvalidRecordError) RejectedIndex() int { return e.Index }

// Is reports whether target is ErrInvalidRecord.
func (e *InvalidRecordError) Is(target error) bool { return target == ErrInvalidRecord }

// InvalidRecordsError lists every record of a batch that cannot be stored (two or more), in
// batch order, so that the caller sets them all aside at once and sends the rest once. It matches
// [ErrInvalidRecord] with errors.Is, and errors.As finds the first [*InvalidRecordError].
type InvalidRecordsError struct {
	Records []*InvalidRecordError
}

func (e *InvalidRecordsError) Error() string {
	return fmt.Sprintf("chsink: %d records of the batch cannot be stored; the first: %v", len(e.Records), e.Records[0])
}

// Unwrap returns every record's error.
func (e *InvalidRecordsError) Unwrap() []error { return e.Rejections() }

// Rejections returns every record's error, each an *InvalidRecordError with its RejectedIndex
// (pipeline.RejectedRecords).
func (e *InvalidRecordsError) Rejections() []error {
	out := make([]error, len(e.Records))
	for i, r := range e.Records {
		out[i] = r
	}
	return out
}

// RejectedIndex is the position of the first refused record (pipeline.RejectedRecord), for a
// caller that handles one at a time.
func (e *InvalidRecordsError) RejectedIndex() int { return e.Records[0].Index }

// WriteBatch stores recs: one row per record in verify_events and one per record in
// risk_scores, each table in a single column-oriented INSERT, the two INSERTs at the same time
// on two connections (a batch spanning more than maxDaysPerInsert days goes as several such
// pairs, one after the other). It returns nil only after ClickHouse has acknowledged all.
//
// Retry contract: after any error the caller may send the same batch again, as often as it
// likes, and must not commit the records upstream (Kafka offsets) until WriteBatch has
// returned nil for them. Part of a failed batch may already be stored (one table may have
// acknowledged while the other failed); writing it again is harmless because both tables keep
// one row per (app_id, event_id). The error names the table(s) that failed.
//
// The one error a retry cannot fix is a record that can never be stored (no event_id, a ts
// ClickHouse cannot store, phone fields that could hold a plaintext number). Every record is
// checked before anything is sent, and all such records are reported at once: an
// [*InvalidRecordError] when there is one, an [*InvalidRecordsError] listing each when there
// are several. Both match [ErrInvalidRecord]; the caller drops or dead-letters those records
// and sends the rest.
//
// Each table's INSERT must finish within Config.WriteTimeout (or ctx's deadline, if
// earlier). An empty batch does nothing.
func (s *Store) WriteBatch(ctx context.Context, recs []schemas.ScoreRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := checkRecords(recs); err != nil {
		return err
	}
	start := time.Now()
	limit := s.events.limit(s.clock())
	for _, group := range dayGroups(keyOrder(recs)) {
		for _, rows := range chunks(group, limit) {
			var (
				wg       sync.WaitGroup
				eventErr error
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				eventErr = s.insertColumns(ctx, "verify_events", verifyEventsColumns, rows, &eventColumns{})
			}()
			scoreErr := s.insertColumns(ctx, "risk_scores", riskScoresColumns, rows, &scoreColumns{})
			wg.Wait()
			if err := errors.Join(eventErr, scoreErr); err != nil {
				return s.insertTimedOut(ctx, &s.events, err, len(rows))
			}
		}
	}
	s.log.Debug("clickhouse batch written", "database", s.db, "records", len(recs), "took", time.Since(start))
	return nil
}

// minInsertRows is the fewest records an insertBound bounds INSERTs to: a server that cannot take
// that many within the timeout is not slow but stuck, and more, smaller INSERTs (a part each)
// would only add to its merges.
var minInsertRows int64 = 5000

// insertBoundFor is how long an insertBound holds after the last INSERT that timed out; then
// INSERTs carry whole batches again. (Growing it back on every batch written instead sent the
// size that had just timed out again every other batch.)
const insertBoundFor = 10 * time.Minute

// insertBound is how many records one INSERT may carry after one outlived Config.WriteTimeout:
// a server too slow for the archiver's batches (overloaded, catching up on merges) gets the
// same records in smaller INSERTs rather than the same INSERT again after every failure. Safe
// for concurrent use.
type insertBound struct {
	rows  atomic.Int64 // 0: no bound
	since atomic.Int64 // unix nanoseconds of the last INSERT that timed out
}

// limit returns the bound at now; 0 when there is none (or it has expired).
func (b *insertBound) limit(now time.Time) int64 {
	n := b.rows.Load()
	if n > 0 && now.Sub(time.Unix(0, b.since.Load())) >= insertBoundFor {
		b.rows.CompareAndSwap(n, 0)
		return 0
	}
	return n
}

// timedOut notes that an INSERT of n records ran out of time at now, and returns the new bound:
// half of n, not below minInsertRows, and never above the bound already in force.
func (b *insertBound) timedOut(n int, now time.Time) int64 {
	next := max(int64(n)/2, minInsertRows)
	b.since.Store(now.UnixNano())
	for {
		cur := b.rows.Load()
		if cur != 0 && cur <= next {
			return cur
		}
		if b.rows.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// chunks splits rows into runs of at most limit (0: one run). Rows of one key stay in order,
// each run after the one before, so the last copy of a key is still the one inserted last.
func chunks(rows []*schemas.ScoreRecord, limit int64) [][]*schemas.ScoreRecord {
	if limit <= 0 || int64(len(rows)) <= limit {
		return [][]*schemas.ScoreRecord{rows}
	}
	var out [][]*schemas.ScoreRecord
	for len(rows) > 0 {
		n := min(int64(len(rows)), limit)
		out = append(out, rows[:n])
		rows = rows[n:]
	}
	return out
}

// insertTimedOut returns err of an INSERT of n records; when it ran out of
// Config.WriteTimeout (the caller still waiting), the next INSERTs carry at most half as many
// records, and the error says so and names the setting. A server that needs longer than the
// timeout for the archiver's batches (overloaded, catching up on merges) would otherwise get
// the same batch again after every failure: nothing acknowledged, the loop stalled for good,
// every attempt leaving part of the rows behind.
func (s *Store) insertTimedOut(ctx context.Context, bound *insertBound, err error, n int) error {
	var dial *DialError
	if ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)) ||
		errors.As(err, &dial) || HandshakeTimedOut(err) || int64(n) <= minInsertRows {
		return err // not the INSERT's size: a server that does not answer at all, or the caller gave up
	}
	next := bound.timedOut(n, s.clock())
	return fmt.Errorf("%w (an INSERT of %d records outlived clickhouse.write_timeout %s; for %s INSERTs carry at most %d)", err, n, s.cfg.WriteTimeout, insertBoundFor, next)
}

// maxDaysPerInsert bounds the UTC days the rows of one INSERT span. Both tables are partitioned by
// toYYYYMMDD(ts), and current ClickHouse refuses a block that spans more than
// max_partitions_per_insert_block (100) partitions: code 252, TOO_MANY_PARTS, which no retry
// fixes. One batch of attempts from many days — the backfill of a small app, or a single POST
// /v1/events of 101 old attempts by any app key — stopped the archiver for every app. A UTC day
// lies in at most two days of the server's time zone, so 50 of them are at most 100 partitions.
const maxDaysPerInsert = 50

// dayGroups splits rows (in key order) into groups that each span at most maxDaysPerInsert UTC
// days, each group in key order; a batch spanning fewer days (the stream's case: one pass for the
// first and last day) is one group, rows itself.
func dayGroups(rows []*schemas.ScoreRecord) [][]*schemas.ScoreRecord {
	if len(rows) == 0 {
		return nil
	}
	lo, hi := utcDay(rows[0].TS), utcDay(rows[0].TS)
	for _, r := range rows[1:] {
		d := utcDay(r.TS)
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < maxDaysPerInsert {
		return [][]*schemas.ScoreRecord{rows}
	}
	group := map[int64]int{}
	for _, r := range rows {
		group[utcDay(r.TS)] = 0
	}
	days := slices.Sorted(maps.Keys(group))
	for i, d := range days {
		group[d] = i / maxDaysPerInsert
	}
	groups := make([][]*schemas.ScoreRecord, (len(days)+maxDaysPerInsert-1)/maxDaysPerInsert)
	for _, r := range rows {
		g := group[utcDay(r.TS)]
		groups[g] = append(groups[g], r)
	}
	return groups
}

// utcDay numbers t's day in UTC (days since 1970-01-01; ts is never before 2000).
func utcDay(t time.Time) int64 { return t.Unix() / 86400 }

// keyOrder returns the records in the order of both tables' sorting key, (app_id, event_id), and
// records of one key in batch order. The server sorts every part it writes by that key; rows that
// arrive sorted pass its check and skip the sort and the reordering of every column, which for
// the stream's order (by phone hash) cost it as much CPU as the rest of the INSERT: 400,000
// verify_events rows in one INSERT into a copy of the table took 1.0 s of server CPU in the
// stream's order and 0.59 s sorted (ClickHouse 18.16, three runs each). ReplacingMergeTree keeps
// the last of equal versions, so records of one key keep their order (the sort is stable).
//
// The sort compares small keys held in one array — the app's rank and 8 bytes of the event id
// after the prefix all the batch's ids share — and reads the ids themselves only on a tie:
// comparing the strings where they lie, all over the messages' memory, took twice as long
// (BenchmarkKeyOrder).
func keyOrder(recs []schemas.ScoreRecord) []*schemas.ScoreRecord {
	keys := make([]orderKey, len(recs))
	apps := map[string]uint32{}
	var appNames []string
	prefix := 0
	if len(recs) > 0 {
		prefix = len(recs[0].EventID)
	}
	last := ""
	var lastRank uint32
	for i := range recs {
		r := &recs[i]
		if i == 0 || r.AppID != last {
			rank, ok := apps[r.AppID]
			if !ok {
				rank = uint32(len(appNames))
				apps[r.AppID] = rank
				appNames = append(appNames, r.AppID)
			}
			last, lastRank = r.AppID, rank
		}
		keys[i] = orderKey{app: lastRank, idx: int32(i)}
		prefix = commonPrefix(recs[0].EventID[:prefix], r.EventID)
	}
	// Ranks in app_id order.
	sortedApps := slices.Clone(appNames)
	slices.Sort(sortedApps)
	rank := make([]uint32, len(appNames))
	for i, a := range sortedApps {
		rank[apps[a]] = uint32(i)
	}
	for i := range keys {
		keys[i].app = rank[keys[i].app]
		keys[i].id = head8(recs[i].EventID[prefix:])
	}
	slices.SortFunc(keys, func(a, b orderKey) int {
		if c := cmp.Compare(a.app, b.app); c != 0 {
			return c
		}
		if c := cmp.Compare(a.id, b.id); c != 0 {
			return c
		}
		if c := strings.Compare(recs[a.idx].EventID, recs[b.idx].EventID); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	rows := make([]*schemas.ScoreRecord, len(recs))
	for i, k := range keys {
		rows[i] = &recs[k.idx]
	}
	return rows
}

// orderKey is what keyOrder sorts: the app_id's rank among the batch's apps, the first 8 bytes of
// the event id past the batch's common prefix (big-endian, zero-padded: ordered as the ids are,
// equal when those bytes are), and the record's position.
type orderKey struct {
	app uint32
	idx int32
	id  uint64
}

func head8(s string) uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		v <<= 8
		if i < len(s) {
			v |= uint64(s[i])
		}
	}
	return v
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// checkRecords returns nil when every record can be stored, else an error naming each one that
// cannot: an *InvalidRecordError for one, an *InvalidRecordsError for several.
func checkRecords(recs []schemas.ScoreRecord) error {
	var bad []*InvalidRecordError
	for i := range recs {
		if reason := checkRecord(&recs[i]); reason != "" {
			bad = append(bad, &InvalidRecordError{Index: i, EventID: recs[i].EventID, Reason: reason})
		}
	}
	switch len(bad) {
	case 0:
		return nil
	case 1:
		return bad[0]
	}
	return &InvalidRecordsError{Records: bad}
}

// RuleVersion is one rule set as it was loaded, for the rule_versions table.
type RuleVersion struct {
	Version   string    // content hash; the key of the table
	Name      string    // rule pack name
	LoadedBy  string    // who, with the node: "api:NAME@node", "console:…", "cli:USER@…", "startup@…", "file@…"
	Source    string    // the pack file's path, "embedded default", "api", "console" or "rollback"
	LoadedAt  time.Time // zero means now
	RuleCount int
	Content   string // the rule set as loaded
}

// RecordRuleVersion stores v in rule_versions and the load in rule_loads, the audit trail.
// Recording the same load again is harmless: rule_versions keeps one row per version (the latest
// load), rule_loads one per load. Like WriteBatch, it may be retried after any error.
func (s *Store) RecordRuleVersion(ctx context.Context, v RuleVersion) error {
	now := time.Now()
	row, err := ruleVersionRow(v, now)
	if err != nil {
		return err
	}
	if err := s.insert(ctx, "rule_versions", ruleVersionsColumns, 1, func(int) ([]any, error) { return row, nil }); err != nil {
		return err
	}
	// The version's row first: a load in the trail always has its text in rule_versions.
	load := []any{row[2], row[0], row[1], row[3], row[4], row[5]}
	return s.insert(ctx, "rule_loads", ruleLoadsColumns, 1, func(int) ([]any, error) { return load, nil })
}

// ruleVersionRow is v as a row of rule_versions; now is its loaded_at when v has none.
func ruleVersionRow(v RuleVersion, now time.Time) ([]any, error) {
	if v.Version == "" {
		return nil, errors.New("chsink: rule version: version is required")
	}
	if v.RuleCount < 0 || int64(v.RuleCount) > math.MaxUint32 {
		return nil, fmt.Errorf("chsink: rule version %s: rule count %d out of range", v.Version, v.RuleCount)
	}
	loaded := v.LoadedAt
	if loaded.IsZero() {
		loaded = now
	}
	if !storableTime(loaded) {
		return nil, fmt.Errorf("chsink: rule version %s: loaded_at %s is outside what ClickHouse DateTime stores", v.Version, loaded.Format(time.RFC3339))
	}
	return []any{v.Version, v.Name, loaded.UTC(), v.LoadedBy, v.Source, uint32(v.RuleCount), v.Content}, nil
}

// insertSQL is the statement of every INSERT chsink sends: the table and its columns by name;
// the driver sends the rows after it.
func insertSQL(database, table string, cols []string) string {
	return "INSERT INTO " + database + "." + table + " (" + strings.Join(cols, ", ") + ")"
}

// insert sends n rows, built by row(i), to one table in one INSERT with named columns.
func (s *Store) insert(ctx context.Context, table string, cols []string, n int, row func(i int) ([]any, error)) (err error) {
	ctx, done := s.insertContext(ctx)
	defer done()
	defer func() {
		if err != nil {
			err = fmt.Errorf("chsink: insert %d rows into %s: %w", n, s.table(table), noTable(err))
		}
	}()
	batch, err := s.conn.PrepareBatch(ctx, insertSQL(s.db, table, cols))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = batch.Abort() // frees the connection; after a failed Send it is a no-op
		}
	}()
	for i := 0; i < n; i++ {
		vals, rerr := row(i)
		if rerr != nil {
			return rerr
		}
		if err = batch.Append(vals...); err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
	}
	return batch.Send()
}

// verifyEventRow and riskScoreRow are one record's row of each table, in the order of the column
// lists: the row form of what eventColumns and scoreColumns build column by column (a test holds
// the two forms equal), kept for fixtures that need rows.
func verifyEventRow(r *schemas.ScoreRecord) []any {
	return []any{
		r.EventID, r.TS.UTC(), r.AppID, r.Flow,
		r.PhoneHash, r.PhoneMasked, r.PhoneSegment,
		r.IP, r.Carrier, r.Platform, r.DeviceID,
		r.Outcome, r.ErrorCode, r.TokenDigest, r.ExID, r.DecisionID,
		r.Geo.Country, r.Geo.Province, r.Geo.City, r.Geo.ASN, r.Geo.IPType,
	}
}

func riskScoreRow(r *schemas.ScoreRecord) ([]any, error) {
	detail := r.Detail
	if detail == nil {
		detail = map[string]schemas.TagDetail{}
	}
	detailJSON, err := json.Marshal(detail) // map keys come out sorted
	if err != nil {
		return nil, fmt.Errorf("event %s: detail: %w", r.EventID, err)
	}
	n := len(r.Hits)
	var (
		rules   = make([]string, n)
		tags    = make([]string, n)
		scores  = make([]uint16, n)
		modes   = make([]string, n)
		reasons = make([]string, n)
		shadow  = []string{}
	)
	for i, h := range r.Hits {
		rules[i], tags[i], scores[i], modes[i], reasons[i] = h.Rule, h.Tag, uint16(h.Score), h.Mode, h.Reason
		if h.Mode == "shadow" && !slices.Contains(shadow, h.Tag) {
			shadow = append(shadow, h.Tag)
		}
	}
	recTags := r.Tags
	if recTags == nil {
		recTags = []string{}
	}
	scored := r.ScoredAt
	if scored.IsZero() {
		scored = time.Unix(0, 0) // unknown; any real scoring of the event wins over it
	}
	return []any{
		r.EventID, r.TS.UTC(), r.AppID, r.Flow,
		r.PhoneHash, r.PhoneSegment, r.IP, r.Carrier,
		uint16(r.Score), recTags, string(detailJSON),
		rules, tags, scores, modes, reasons,
		shadow, r.RulesVersion, scored.UTC(),
	}, nil
}

// maskedBeyondSegment reports whether m reveals nothing past the number segment: up to 7 leading
// digits, then only stars (at least 4). Anything else — e.g. 138****8000, whose last 4 digits beside
// phone_segment would spell out the number — is refused.
func maskedBeyondSegment(m string) bool {
	i := 0
	for i < len(m) && m[i] >= '0' && m[i] <= '9' {
		i++
	}
	if i > 7 || len(m)-i < 4 {
		return false
	}
	return strings.Trim(m[i:], "*") == ""
}

// checkRecord returns why r cannot be stored, or "".
func checkRecord(r *schemas.ScoreRecord) string {
	switch {
	case r.EventID == "":
		return "event_id is empty"
	case !storableTime(r.TS):
		return fmt.Sprintf("ts %s is outside what ClickHouse DateTime stores", r.TS.Format(time.RFC3339))
	case !r.ScoredAt.IsZero() && !storableTime(r.ScoredAt):
		return fmt.Sprintf("scored_at %s is outside what ClickHouse DateTime stores", r.ScoredAt.Format(time.RFC3339))
	case !isHex64(r.PhoneHash):
		return "phone_hash must be 64 hex digits"
	case !maskedBeyondSegment(r.PhoneMasked):
		return "phone_masked must be at most 7 leading digits and at least 4 stars, like 1381234****"
	case len(r.PhoneSegment) > 7 || countDigits(r.PhoneSegment) != len(r.PhoneSegment):
		return "phone_segment must be at most 7 digits"
	case r.Score < 0 || r.Score > math.MaxUint16:
		return fmt.Sprintf("score %d out of range", r.Score)
	}
	for i, h := range r.Hits {
		if h.Score < 0 || h.Score > math.MaxUint16 {
			return fmt.Sprintf("hit %d (rule %q): score %d out of range", i, h.Rule, h.Score)
		}
	}
	if f := phoneField(r.Tags, r.Hits, r.Detail, "event_id", r.EventID, "app_id", r.AppID, "ip", notAnAddress(r.IP), "flow", r.Flow,
		"carrier", r.Carrier, "platform", r.Platform, "device_id", r.DeviceID, "outcome", r.Outcome,
		"error_code", r.ErrorCode, "token_digest", r.TokenDigest, "ex_id", r.ExID, "decision_id", r.DecisionID,
		"geo.country", r.Geo.Country, "geo.province", r.Geo.Province, "geo.city", r.Geo.City,
		"geo.ip_type", r.Geo.IPType, "rules_version", r.RulesVersion); f != "" {
		return plaintextPhoneReason(f)
	}
	return ""
}

// phoneField names the first text field of a record, of those given as name, value pairs and of
// its tags, rule hits' names and detail's tags (the keys of its detail column's JSON), that holds
// a phone number (schemas.ContainsPhone), or "". The decoders refuse a number in every free-text field of an event, and a rule pack refuses one in
// its rules and tags, so a record holding one was not written by a scorer or an API node but by
// another producer of the topic (or a bug); stored, it would put the number in ClickHouse in
// plaintext, where riskflow promises only its keyed hash. Reasons are not read: one may name an
// IPv6 address (a listed network), whose groups can read as a number (2409:8a4c:138:1234:5678::1).
func phoneField(tags []string, hits []schemas.RuleHit, detail map[string]schemas.TagDetail, pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if schemas.ContainsPhone(pairs[i+1]) {
			return pairs[i]
		}
	}
	for i, t := range tags {
		if schemas.ContainsPhone(t) {
			return fmt.Sprintf("tags[%d]", i)
		}
	}
	for i, h := range hits {
		if schemas.ContainsPhone(h.Rule) || schemas.ContainsPhone(h.Tag) || schemas.ContainsPhone(h.Mode) {
			return fmt.Sprintf("hits[%d]", i)
		}
	}
	for tag := range detail { // its keys are tags, stored in the detail column's JSON
		if schemas.ContainsPhone(tag) {
			return "detail (a tag)"
		}
	}
	return ""
}

// notAnAddress is ip unless it is an IP address, which holds no phone number — though an IPv6
// address's groups may read as one (2409:8a4c:138:1234:5678::1) — else "". An IPv6 address's zone
// is free text (fe80::1%13812345678 parses), so an address with one is its zone: no scorer writes
// one (the event decoder refuses it), and the column is a String that would store it as sent.
func notAnAddress(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		return a.Zone()
	}
	return ip
}

// plaintextPhoneReason is why a record holding a phone number in field is not stored.
func plaintextPhoneReason(field string) string {
	return field + " holds a phone number in plaintext (riskflow stores numbers only as keyed hashes; no scorer or API node writes one there)"
}

// storableTime reports whether t fits ClickHouse's DateTime (whole seconds since 1970 in a
// UInt32; 0 is the "empty" value, so it does not count).
func storableTime(t time.Time) bool {
	u := t.Unix()
	return u > 0 && u <= math.MaxUint32
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !hexDigit[s[i]] {
			return false
		}
	}
	return true
}

var hexDigit = func() (t [256]bool) {
	for _, c := range "0123456789abcdefABCDEF" {
		t[c] = true
	}
	return t
}()

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}
