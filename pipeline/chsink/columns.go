package chsink

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// The archiver's INSERTs are column-oriented: a chunk of records becomes one typed slice per
// column ([]string, []time.Time, []uint16, …), handed to the driver with batch.Column(i).Append,
// which copies a whole []string or []uint32 into the block without looking at each value
// through an interface. Array columns go in row by row (AppendRow with a []string), the one
// form of the driver that avoids reflection for them. Row-wise batch.Append(vals ...any) took a
// type switch (and often reflection) per value.
//
// A batch goes out as one INSERT in blocks of insertBlockRows rows (batch.Flush between them):
// the driver's column buffers and the slices here are sized for one block and reused for the
// next, instead of growing (and being copied, and collected) to the size of the whole batch, and
// the server receives the first blocks while the next are built. The server puts the blocks of
// one INSERT together again (min_insert_block_size_rows), so the parts it writes do not get
// smaller.
//
// Every type here is one ClickHouse 18.16 takes (String, DateTime, UInt16, UInt32 and arrays of
// String and UInt16), and the slices work unchanged for LowCardinality(String) columns.

// insertBlockRows is how many rows go into one block of an INSERT. Measured with
// BenchmarkClientSide (50,000 records): 2,048-row blocks cost half the client CPU of one
// 50,000-row block; larger blocks allocate more, smaller ones add per-block overhead.
var insertBlockRows = 1024

// columnBuilder fills the columns of one table for a chunk of records, reusing its slices from
// one chunk to the next; the values are in the order of the table's column list, and valid until
// the next fill.
type columnBuilder interface {
	fill(recs []*schemas.ScoreRecord) ([]any, error)
}

// sized returns s with length n, reusing its array when it is large enough.
func sized[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// eventColumns builds verify_events' columns (verifyEventsColumns).
type eventColumns struct {
	eventID, appID, flow, hash, masked, segment, ip, carrier, platform   []string
	device, outcome, errCode, digest, exID, country, province, city, ipt []string
	decisionID                                                           []string
	ts                                                                   []time.Time
	asn                                                                  []uint32
}

func (c *eventColumns) fill(recs []*schemas.ScoreRecord) ([]any, error) {
	n := len(recs)
	for _, s := range []*[]string{&c.eventID, &c.appID, &c.flow, &c.hash, &c.masked, &c.segment, &c.ip, &c.carrier, &c.platform,
		&c.device, &c.outcome, &c.errCode, &c.digest, &c.exID, &c.country, &c.province, &c.city, &c.ipt, &c.decisionID} {
		*s = sized(*s, n)
	}
	c.ts, c.asn = sized(c.ts, n), sized(c.asn, n)
	for i, r := range recs {
		c.eventID[i], c.ts[i], c.appID[i], c.flow[i] = r.EventID, r.TS.UTC(), r.AppID, r.Flow
		c.hash[i], c.masked[i], c.segment[i] = r.PhoneHash, r.PhoneMasked, r.PhoneSegment
		c.ip[i], c.carrier[i], c.platform[i], c.device[i] = r.IP, r.Carrier, r.Platform, r.DeviceID
		c.outcome[i], c.errCode[i], c.digest[i], c.exID[i] = r.Outcome, r.ErrorCode, r.TokenDigest, r.ExID
		c.decisionID[i] = r.DecisionID
		c.country[i], c.province[i], c.city[i], c.asn[i], c.ipt[i] = r.Geo.Country, r.Geo.Province, r.Geo.City, r.Geo.ASN, r.Geo.IPType
	}
	return []any{
		c.eventID, c.ts, c.appID, c.flow,
		c.hash, c.masked, c.segment,
		c.ip, c.carrier, c.platform, c.device,
		c.outcome, c.errCode, c.digest, c.exID, c.decisionID,
		c.country, c.province, c.city, c.asn, c.ipt,
	}, nil
}

// scoreColumns builds risk_scores' columns (riskScoresColumns). Array columns are [][]string /
// [][]uint16 with one slice per row; the rows' hits share a few backing arrays.
type scoreColumns struct {
	eventID, appID, flow, hash, segment, ip, carrier, detail, version []string
	ts, scored                                                        []time.Time
	score                                                             []uint16
	tags, rules, hitTags, modes, reasons, shadow                      [][]string
	hitScores                                                         [][]uint16
	allRules, allTags, allModes, allReasons                           []string
	allScores                                                         []uint16
}

func (c *scoreColumns) fill(recs []*schemas.ScoreRecord) ([]any, error) {
	n := len(recs)
	for _, s := range []*[]string{&c.eventID, &c.appID, &c.flow, &c.hash, &c.segment, &c.ip, &c.carrier, &c.detail, &c.version} {
		*s = sized(*s, n)
	}
	for _, s := range []*[][]string{&c.tags, &c.rules, &c.hitTags, &c.modes, &c.reasons, &c.shadow} {
		*s = sized(*s, n)
	}
	c.ts, c.scored, c.score, c.hitScores = sized(c.ts, n), sized(c.scored, n), sized(c.score, n), sized(c.hitScores, n)
	total := 0
	for _, r := range recs {
		total += len(r.Hits)
	}
	// Room for every hit of the chunk up front: the rows' sub-slices never move.
	c.allRules, c.allTags, c.allModes, c.allReasons = sized(c.allRules, total)[:0], sized(c.allTags, total)[:0], sized(c.allModes, total)[:0], sized(c.allReasons, total)[:0]
	c.allScores = sized(c.allScores, total)[:0]
	for i, r := range recs {
		c.eventID[i], c.ts[i], c.appID[i], c.flow[i] = r.EventID, r.TS.UTC(), r.AppID, r.Flow
		c.hash[i], c.segment[i], c.ip[i], c.carrier[i] = r.PhoneHash, r.PhoneSegment, r.IP, r.Carrier
		c.score[i], c.version[i] = uint16(r.Score), r.RulesVersion
		d, err := detailJSON(r)
		if err != nil {
			return nil, err
		}
		c.detail[i] = d
		c.tags[i] = r.Tags
		start := len(c.allRules)
		var sh []string
		for _, h := range r.Hits {
			c.allRules, c.allTags, c.allModes, c.allReasons = append(c.allRules, h.Rule), append(c.allTags, h.Tag), append(c.allModes, h.Mode), append(c.allReasons, h.Reason)
			c.allScores = append(c.allScores, uint16(h.Score))
			if h.Mode == "shadow" && !slices.Contains(sh, h.Tag) {
				sh = append(sh, h.Tag)
			}
		}
		end := len(c.allRules)
		c.rules[i], c.hitTags[i], c.modes[i], c.reasons[i] = c.allRules[start:end:end], c.allTags[start:end:end], c.allModes[start:end:end], c.allReasons[start:end:end]
		c.hitScores[i] = c.allScores[start:end:end]
		c.shadow[i] = sh
		s := r.ScoredAt
		if s.IsZero() {
			s = time.Unix(0, 0) // unknown; any real scoring of the event wins over it
		}
		c.scored[i] = s.UTC()
	}
	return []any{
		c.eventID, c.ts, c.appID, c.flow,
		c.hash, c.segment, c.ip, c.carrier,
		c.score, c.tags, c.detail,
		c.rules, c.hitTags, c.hitScores, c.modes, c.reasons,
		c.shadow, c.version, c.scored,
	}, nil
}

// detailJSON is the detail column of r: the JSON object tag → {score, reason}, keys sorted;
// "{}" when there is none.
func detailJSON(r *schemas.ScoreRecord) (string, error) {
	if len(r.Detail) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(r.Detail) // map keys come out sorted
	if err != nil {
		return "", fmt.Errorf("event %s: detail: %w", r.EventID, err)
	}
	return string(b), nil
}

// columnAppender is the part of driver.BatchColumn appendColumn uses.
type columnAppender interface {
	Append(v any) error
	AppendRow(v any) error
}

// appendColumn appends one column's values to an INSERT. Typed slices go in at once; arrays
// row by row.
func appendColumn(c columnAppender, v any) error {
	switch v := v.(type) {
	case [][]string:
		return appendArrays(c, v, noStrings)
	case [][]uint16:
		return appendArrays(c, v, noUint16s)
	default:
		return c.Append(v)
	}
}

// noStrings and noUint16s are an empty row of an array column, boxed once: most records have no
// hits, and boxing a slice for AppendRow allocates.
var (
	noStrings any = []string{}
	noUint16s any = []uint16{}
)

func appendArrays[T any](c columnAppender, rows [][]T, empty any) error {
	for _, row := range rows {
		var err error
		if len(row) == 0 {
			err = c.AppendRow(empty)
		} else {
			err = c.AppendRow(row)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// insertColumns sends recs to one table in one INSERT with named columns, in that order, in blocks
// of insertBlockRows rows that b fills.
func (s *Store) insertColumns(ctx context.Context, table string, cols []string, recs []*schemas.ScoreRecord, b columnBuilder) (err error) {
	n := len(recs)
	defer func() {
		if err != nil {
			err = fmt.Errorf("chsink: insert %d rows into %s: %w", n, s.table(table), noTable(err))
		}
	}()
	ctx, done := s.insertContext(ctx)
	defer done()
	batch, err := s.conn.PrepareBatch(ctx, insertSQL(s.db, table, cols))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = batch.Abort() // frees the connection; after a failed Send it is a no-op
		}
	}()
	for lo := 0; lo < n; lo += insertBlockRows {
		if err := ctx.Err(); err != nil {
			return err // the caller gave up (shutdown) or the INSERT's time is over
		}
		hi := min(lo+insertBlockRows, n)
		values, err := b.fill(recs[lo:hi])
		if err != nil {
			return err
		}
		if len(values) != len(cols) {
			return fmt.Errorf("%d columns of values for %d column names", len(values), len(cols))
		}
		for i, v := range values {
			if err := appendColumn(batch.Column(i), v); err != nil {
				return fmt.Errorf("column %s: %w", cols[i], err)
			}
		}
		if hi < n {
			// The block goes out now; the driver's columns are emptied, keeping their buffers.
			// (A server that stops reading fails the write after Config.WriteTimeout: dial.go.)
			if err := batch.Flush(); err != nil {
				return err
			}
		}
	}
	return batch.Send()
}

// InsertColumns returns the columns WriteBatch fills in table ("verify_events" or
// "risk_scores"), in order; nil for any other table. Everything else is left to its DEFAULT.
// Tools that copy the same rows another way (riskflow bench's clickhouse-client baseline) use it.
func InsertColumns(table string) []string {
	switch table {
	case "verify_events":
		return slices.Clone(verifyEventsColumns)
	case "risk_scores":
		return slices.Clone(riskScoresColumns)
	}
	return nil
}
