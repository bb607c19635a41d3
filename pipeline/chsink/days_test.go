package chsink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/riskflow/riskflow/schemas"
)

// partitionServer plays current ClickHouse's INSERT path for the partition limit: a block whose
// rows (their ts column) fall on more than 100 days of the server's time zone is refused with
// code 252 (max_partitions_per_insert_block), as both tables are partitioned by toYYYYMMDD(ts).
type partitionServer struct {
	driver.Conn // only PrepareBatch is used
	tz          *time.Location
	mu          sync.Mutex
	rows        map[string]int // table → rows acknowledged
}

func (c *partitionServer) PrepareBatch(_ context.Context, query string, _ ...driver.PrepareBatchOption) (driver.Batch, error) {
	table := strings.Fields(query)[2] // INSERT INTO db.table (…)
	return &partitionBatch{srv: c, table: table[strings.IndexByte(table, '.')+1:]}, nil
}

type partitionBatch struct {
	driver.Batch
	srv   *partitionServer
	table string
	ts    []time.Time // the block being built
	sent  int
}

func (b *partitionBatch) Column(i int) driver.BatchColumn { return &partitionColumn{b: b, i: i} }

func (b *partitionBatch) Flush() error {
	days := map[string]bool{}
	for _, t := range b.ts {
		days[t.In(b.srv.tz).Format("20060102")] = true
	}
	if len(days) > 100 {
		return fmt.Errorf("code: 252, message: Too many partitions for single INSERT block (more than 100): %d", len(days))
	}
	b.sent += len(b.ts)
	b.ts = b.ts[:0]
	return nil
}

func (b *partitionBatch) Send() error {
	if err := b.Flush(); err != nil {
		return err
	}
	b.srv.mu.Lock()
	b.srv.rows[b.table] += b.sent
	b.srv.mu.Unlock()
	return nil
}

func (b *partitionBatch) Abort() error { return nil }

type partitionColumn struct {
	driver.BatchColumn
	b *partitionBatch
	i int
}

func (c *partitionColumn) Append(v any) error {
	if c.i == 1 { // ts, the second column of both tables
		c.b.ts = append(c.b.ts, v.([]time.Time)...)
	}
	return nil
}

func (c *partitionColumn) AppendRow(any) error { return nil }

// A batch of attempts from many days — a backfill, or one app's POST /v1/events of old
// attempts — is stored; in one INSERT current ClickHouse refused it for good, and the archiver
// retried it for ever.
func TestWriteBatchSpanningManyDays(t *testing.T) {
	tz, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	for _, days := range []int{1, 49, 50, 51, 101, 400} {
		t.Run(fmt.Sprint(days, " days"), func(t *testing.T) {
			srv := &partitionServer{tz: tz, rows: map[string]int{}}
			st := &Store{conn: srv, db: "riskflow", cfg: DefaultConfig().withDefaults(), log: slog.New(slog.DiscardHandler)}
			var recs []schemas.ScoreRecord
			for i := range 1000 {
				r := testRecord(i)
				// Spread over the days, at hours that put a UTC day on two local ones.
				r.TS = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i%days)*24*time.Hour + time.Duration(i%24)*time.Hour)
				recs = append(recs, r)
			}
			if err := st.WriteBatch(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			if srv.rows["verify_events"] != len(recs) || srv.rows["risk_scores"] != len(recs) {
				t.Errorf("stored %v rows, want %d in each table", srv.rows, len(recs))
			}
		})
	}
}
