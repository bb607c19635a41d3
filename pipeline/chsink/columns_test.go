package chsink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/riskflow/riskflow/schemas"
)

// columnRecords is a mix of records: full ones, clean ones (no tags, hits or detail), one never
// scored, one with repeated shadow tags.
func columnRecords() []schemas.ScoreRecord {
	var recs []schemas.ScoreRecord
	for i := range 40 {
		r := testRecord(i)
		switch i % 4 {
		case 1:
			r.Hits, r.Tags, r.Detail, r.Score = nil, nil, nil, 0
		case 2:
			r.ScoredAt = time.Time{}
			r.Tags = []string{}
			r.Detail = map[string]schemas.TagDetail{}
		case 3:
			r.Detail["z<&>"] = schemas.TagDetail{Score: 300, Reason: "a \"quoted\" <reason>"}
			r.Hits = append(r.Hits, schemas.RuleHit{Rule: "x", Tag: "odd_hours", Score: 300, Mode: "shadow"})
		}
		recs = append(recs, r)
	}
	return recs
}

// pointers points at each record, in order.
func pointers(recs []schemas.ScoreRecord) []*schemas.ScoreRecord {
	out := make([]*schemas.ScoreRecord, len(recs))
	for i := range recs {
		out[i] = &recs[i]
	}
	return out
}

// The columns of a batch hold, row for row, what the row builders give for each record.
func TestBlocksMatchRows(t *testing.T) {
	recs := columnRecords()
	// Filled twice: the second fill reuses the slices of the first (a shorter chunk, then this one).
	var ec eventColumns
	var sc scoreColumns
	if _, err := ec.fill(pointers(columnRecords()[3:30])); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.fill(pointers(columnRecords()[3:30])); err != nil {
		t.Fatal(err)
	}
	ve, _ := ec.fill(pointers(recs))
	rs, err := sc.fill(pointers(recs))
	if err != nil {
		t.Fatal(err)
	}
	if len(ve) != len(verifyEventsColumns) || len(rs) != len(riskScoresColumns) {
		t.Fatalf("%d and %d columns, want %d and %d", len(ve), len(rs), len(verifyEventsColumns), len(riskScoresColumns))
	}
	for i := range recs {
		vrow := verifyEventRow(&recs[i])
		srow, err := riskScoreRow(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		for c, col := range ve {
			if got := reflect.ValueOf(col).Index(i).Interface(); !reflect.DeepEqual(got, vrow[c]) {
				t.Errorf("record %d verify_events.%s: %#v, row form %#v", i, verifyEventsColumns[c], got, vrow[c])
			}
		}
		for c, col := range rs {
			got := reflect.ValueOf(col).Index(i).Interface()
			want := srow[c]
			if reflect.ValueOf(got).Kind() == reflect.Slice && reflect.ValueOf(got).Len() == 0 && reflect.ValueOf(want).Len() == 0 {
				continue // empty either way; both non-nil is checked below
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("record %d risk_scores.%s: %#v, row form %#v", i, riskScoresColumns[c], got, want)
			}
		}
	}
	// Hits of one record do not leak into another's arrays through the shared backing arrays.
	rules := rs[11].([][]string)
	if len(rules[1]) != 0 || len(rules[0]) != 3 || len(rules[3]) != 4 {
		t.Errorf("hit_rules lengths %d %d %d", len(rules[0]), len(rules[1]), len(rules[3]))
	}
	if cap(rules[0]) != len(rules[0]) {
		t.Errorf("a row's hits can be appended into the next row's: cap %d len %d", cap(rules[0]), len(rules[0]))
	}
}

// Every refused record of a batch is named at once, before anything is sent.
func TestWriteBatchNamesEveryInvalidRecord(t *testing.T) {
	st, err := Open(context.Background(), Config{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs := columnRecords()[:10]
	recs[2].PhoneMasked = "13800138000"
	recs[5].EventID = ""
	recs[9].TS = time.Time{}
	err = st.WriteBatch(context.Background(), recs)
	var many *InvalidRecordsError
	if !errors.As(err, &many) {
		t.Fatalf("WriteBatch: %v, want an InvalidRecordsError", err)
	}
	var got []int
	for _, e := range many.Rejections() {
		got = append(got, e.(interface{ RejectedIndex() int }).RejectedIndex())
	}
	if !reflect.DeepEqual(got, []int{2, 5, 9}) {
		t.Errorf("rejected %v, want [2 5 9]", got)
	}
	var first *InvalidRecordError
	if !errors.Is(err, ErrInvalidRecord) || !errors.As(err, &first) || first.Index != 2 || many.RejectedIndex() != 2 {
		t.Errorf("errors.Is/As on %v", err)
	}
	// One refused record: the single-record error, as before.
	recs = columnRecords()[:3]
	recs[1].PhoneSegment = "138001380"
	err = st.WriteBatch(context.Background(), recs)
	if !errors.As(err, &first) || errors.As(err, &many) || first.Index != 1 {
		t.Errorf("one invalid record: %v", err)
	}
}

// colAdapter lets appendColumn fill a bare column (no server) for BenchmarkClientSide.
type colAdapter struct{ c column.Interface }

func (a colAdapter) Append(v any) error    { _, err := a.c.Append(v); return err }
func (a colAdapter) AppendRow(v any) error { return a.c.AppendRow(v) }

// clientBlock is an empty block of table's INSERT columns, typed as on the server.
func clientBlock(b testing.TB, table string) *proto.Block {
	types := map[string]string{"ts": "DateTime('UTC')", "scored_at": "DateTime('UTC')", "asn": "UInt32", "score": "UInt16",
		"tags": "Array(String)", "hit_rules": "Array(String)", "hit_tags": "Array(String)", "hit_modes": "Array(String)",
		"hit_reasons": "Array(String)", "shadow_tags": "Array(String)", "hit_scores": "Array(UInt16)"}
	blk := &proto.Block{ServerContext: &column.ServerContext{Revision: 54451, VersionMajor: 18, VersionMinor: 16, Timezone: time.UTC}}
	for _, c := range InsertColumns(table) {
		t := types[c]
		if t == "" {
			t = "String"
		}
		if err := blk.AddColumn(c, column.Type(t)); err != nil {
			b.Fatal(err)
		}
	}
	return blk
}

// BenchmarkClientSide is the archiver's client-side work for a batch, without a server: check
// the records, build the columns, append them to the driver's columns and encode the blocks as
// the native protocol sends them (before compression). One record in ten has hits.
func BenchmarkClientSide(b *testing.B) {
	const n = 50000
	recs := make([]schemas.ScoreRecord, n)
	for i := range recs {
		recs[i] = testRecord(i)
		if i%10 != 0 {
			recs[i].Hits, recs[i].Tags, recs[i].Detail, recs[i].Score = nil, nil, nil, 0
		}
	}
	buf := new(chproto.Buffer)
	b.ReportAllocs()
	for b.Loop() {
		if err := checkRecords(recs); err != nil {
			b.Fatal(err)
		}
		rows := keyOrder(recs)
		for table, builder := range map[string]columnBuilder{"verify_events": &eventColumns{}, "risk_scores": &scoreColumns{}} {
			blk := clientBlock(b, table)
			for lo := 0; lo < n; lo += insertBlockRows { // as insertColumns sends them
				hi := min(lo+insertBlockRows, n)
				values, err := builder.fill(rows[lo:hi])
				if err != nil {
					b.Fatal(err)
				}
				for i, v := range values {
					if err := appendColumn(colAdapter{blk.Columns[i]}, v); err != nil {
						b.Fatal(err)
					}
				}
				buf.Reset()
				for i := range blk.Columns {
					if err := blk.EncodeColumn(buf, 54451, i); err != nil {
						b.Fatal(err)
					}
				}
				blk.Reset()
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// keyOrder sorts by (app_id, event_id), keeps the batch order among records of one key, and
// leaves the batch as it is.
func TestKeyOrder(t *testing.T) {
	rec := func(app, id, flow string) schemas.ScoreRecord {
		return schemas.ScoreRecord{AppID: app, EventID: id, Flow: flow}
	}
	recs := []schemas.ScoreRecord{
		rec("b", "1", "first"), rec("a", "2", ""), rec("a", "1", "first"), rec("b", "1", "second"),
		rec("a", "1", "second"), rec("", "9", ""), rec("a", "10", ""), rec("b", "1", "third"),
	}
	before := slices.Clone(recs)
	var got []string
	for _, r := range keyOrder(recs) {
		got = append(got, r.AppID+"/"+r.EventID+"/"+r.Flow)
	}
	want := []string{"/9/", "a/1/first", "a/1/second", "a/10/", "a/2/", "b/1/first", "b/1/second", "b/1/third"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keyOrder: %v, want %v", got, want)
	}
	if !reflect.DeepEqual(recs, before) {
		t.Error("keyOrder reordered the batch itself")
	}
	// Already in order: the same records, in place.
	sorted := []schemas.ScoreRecord{rec("a", "1", ""), rec("a", "2", ""), rec("b", "1", "")}
	for i, r := range keyOrder(sorted) {
		if r != &sorted[i] {
			t.Errorf("row %d is not the batch's record %d", i, i)
		}
	}
}

// BenchmarkKeyOrder sorts a batch the size of the archiver's into key order: loadgen's event ids
// (a prefix and a sequence number) of three apps, in the order of a topic keyed by phone.
func BenchmarkKeyOrder(b *testing.B) {
	const n = 88_000
	recs := make([]schemas.ScoreRecord, n)
	for i, j := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		recs[i] = schemas.ScoreRecord{AppID: fmt.Sprintf("app-%d", j%3), EventID: "lg1-" + strconv.Itoa(j)}
	}
	b.ReportAllocs()
	for b.Loop() {
		keyOrder(recs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// keyOrder agrees with a stable sort by (app_id, event_id) whatever the ids share: ids that are
// prefixes of others, that differ only past 8 bytes, hold zero bytes, or all start alike.
func TestKeyOrderAgreesWithStableSort(t *testing.T) {
	ids := []string{"", "a", "a\x00", "a\x00\x00", "ab", "abcdefgh", "abcdefgh1", "abcdefgh0", "abcdefgh", "b", "ab\xff", "a"}
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		recs := make([]schemas.ScoreRecord, r.IntN(40))
		prefix := ""
		if round%2 == 0 {
			prefix = "evt-2024-05-01-" // every id starts with it
		}
		for i := range recs {
			recs[i] = schemas.ScoreRecord{AppID: []string{"x", "", "app-2", "app-10"}[r.IntN(4)], EventID: prefix + ids[r.IntN(len(ids))]}
		}
		want := pointers(recs)
		slices.SortStableFunc(want, func(a, b *schemas.ScoreRecord) int {
			if c := strings.Compare(a.AppID, b.AppID); c != 0 {
				return c
			}
			return strings.Compare(a.EventID, b.EventID)
		})
		if got := keyOrder(recs); !slices.Equal(got, want) {
			t.Fatalf("round %d: keyOrder differs from a stable sort", round)
		}
	}
}
