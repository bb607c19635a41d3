package chsink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// StoredEvent is one row of verify_events with the columns a replay needs (a backtest feeds
// them to a scorer again). The plaintext number is not stored, so there is none here either:
// a number is its keyed PhoneHash and its PhoneSegment (first 7 digits).
type StoredEvent struct {
	EventID      string
	TS           time.Time // UTC, whole seconds
	AppID        string
	Flow         string
	PhoneHash    string
	PhoneSegment string
	IP           string
	Carrier      string
	Platform     string
	DeviceID     string
	Outcome      string
	ErrorCode    string
	TokenDigest  string
}

// replayColumns are the columns ReadEvents selects, in the order of scanRow.
var replayColumns = []string{
	"event_id", "ts", "app_id", "flow", "phone_hash", "phone_segment", "ip",
	"carrier", "platform", "device_id", "outcome", "error_code", "token_digest",
}

// ReadOptions tune [Store.ReadEvents]. The zero value is a good default.
type ReadOptions struct {
	// Chunk is the length of the slices of time read one query at a time; each query sorts
	// its slice on the server, so the chunk bounds the server's memory. 0 means 24 h, aligned
	// to UTC midnight (one daily partition per query).
	Chunk time.Duration
	// Batch is how many rows the reading goroutine hands over at once; 0 means 4096.
	Batch int
	// ChunkTimeout bounds one chunk's query from start to last row, including the time the
	// consumer takes over the rows; 0 means 6 h. (The driver applies Config.WriteTimeout to
	// a whole result stream, not to each read, so a stream consumed at the pace of a replay
	// needs its own, longer bound. A server that goes away mid-stream is still noticed: by a
	// closed connection, or — frozen or hung, its connection open — by having sent nothing,
	// not a row nor a progress packet, for Config.WriteTimeout while the reader waited on it;
	// such a read is resumed.)
	ChunkTimeout time.Duration
	// Resumes is how many times in a row a read that broke off — the connection lost, ClickHouse
	// restarting — is taken up again after the last row it read (no row is read twice or
	// skipped), after a pause that doubles from 1 s to 30 s; 0 means 8 (about two minutes
	// of ClickHouse away), negative none. The count starts again once a resumed read
	// returned rows. A read that has not reached ClickHouse yet, a query ClickHouse refused (its
	// exception), a missing table, the chunk timeout and the caller's context end the read at once.
	Resumes int
	// OnResume, if set, hears each resumption before its pause: the attempt (1…Resumes), the
	// pause and what broke the read off.
	OnResume func(attempt int, wait time.Duration, err error)
}

// DefaultResumes is ReadOptions.Resumes' default.
const DefaultResumes = 8

// resume pauses: the first, and the most one grows to.
const (
	resumeWaitMin = time.Second
	resumeWaitMax = 30 * time.Second
)

// DefaultChunkTimeout is ReadOptions.ChunkTimeout's default.
const DefaultChunkTimeout = 6 * time.Hour

// readBlockRows, when positive, asks the server for blocks of that many rows (tests: many
// small blocks make a stream outlast the driver's buffer).
var readBlockRows = 0

// ReadEvents streams the events of verify_events with from <= ts < to, one row per
// (app_id, event_id) (SELECT ... FINAL, so re-delivered copies are read once), ordered by
// ts, event_id, app_id. It reads in the background, a chunk of time per query (see
// [ReadOptions]), while the caller consumes rows with [EventReader.Next]; ctx bounds the
// whole read. Close the reader when done, also after an error.
//
// Each chunk's query must finish within ReadOptions.ChunkTimeout (or ctx's deadline, if
// earlier), however slowly the caller consumes its rows.
//
// Chunks without events cost no query: a first query lists the UTC days that have events,
// and only their chunks are read. Events stored later into a day that had none when the read
// began are therefore not read, except in the days after the last one listed, which are
// listed again on reaching them (a read up to now still gets what the archiver writes
// meanwhile).
func (s *Store) ReadEvents(ctx context.Context, from, to time.Time, opts ReadOptions) (*EventReader, error) {
	if !storableTime(from) || !storableTime(to) {
		return nil, fmt.Errorf("chsink: read events: period %s to %s is outside what ClickHouse DateTime stores",
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("chsink: read events: from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if opts.Chunk < 0 || opts.Batch < 0 || opts.ChunkTimeout < 0 {
		return nil, errors.New("chsink: read events: chunk, batch and chunk timeout must not be negative")
	}
	if opts.ChunkTimeout == 0 {
		opts.ChunkTimeout = DefaultChunkTimeout
	}
	if opts.Chunk == 0 {
		opts.Chunk = 24 * time.Hour
	}
	if opts.Chunk < time.Second {
		opts.Chunk = time.Second
	}
	if opts.Batch == 0 {
		opts.Batch = 4096
	}
	if opts.Resumes == 0 {
		opts.Resumes = DefaultResumes
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &EventReader{
		cancel:  cancel,
		batches: make(chan []StoredEvent, 4),
		free:    make(chan []StoredEvent, 6),
		done:    make(chan struct{}),
	}
	go r.produce(ctx, s, from.UTC().Truncate(time.Second), to.UTC().Truncate(time.Second), opts)
	return r, nil
}

// EventReader is the stream [Store.ReadEvents] returns. Next and Close must not be called
// concurrently.
type EventReader struct {
	cancel  context.CancelFunc
	batches chan []StoredEvent // filled by produce, closed when it ends
	free    chan []StoredEvent // drained batches for reuse
	done    chan struct{}      // closed when produce has returned
	err     error              // set by produce before closing batches

	cur  []StoredEvent
	pos  int
	rows uint64

	queries int // queries sent by produce (tests)

	closeOnce sync.Once
}

// Next returns the next event; ok is false once the period is exhausted or on error.
func (r *EventReader) Next(ctx context.Context) (ev StoredEvent, ok bool, err error) {
	for r.pos >= len(r.cur) {
		if r.cur != nil {
			select {
			case r.free <- r.cur[:0]:
			default:
			}
			r.cur = nil
		}
		select {
		case b, open := <-r.batches:
			if !open {
				<-r.done
				return StoredEvent{}, false, r.err
			}
			r.cur, r.pos = b, 0
		case <-ctx.Done():
			return StoredEvent{}, false, ctx.Err()
		}
	}
	ev = r.cur[r.pos]
	r.cur[r.pos] = StoredEvent{} // drop the strings early
	r.pos++
	r.rows++
	return ev, true, nil
}

// Rows is how many events Next has returned.
func (r *EventReader) Rows() uint64 { return r.rows }

// Close stops the background read and waits for it. It returns the read's error, if any
// (except the cancellation Close itself caused).
func (r *EventReader) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		for range r.batches { // let produce finish a blocked send
		}
		<-r.done
	})
	if errors.Is(r.err, context.Canceled) {
		return nil
	}
	return r.err
}

func (r *EventReader) produce(ctx context.Context, s *Store, from, to time.Time, opts ReadOptions) {
	defer close(r.done)
	defer close(r.batches)
	// Chunks of days without events are not asked for: a period of years with a few days of
	// history would otherwise cost a query per empty day.
	res := resumer{opts: opts}
	var days []time.Time
	err := res.do(ctx, func() (bool, error) {
		var err error
		days, err = r.eventDays(ctx, s, from, to, opts.ChunkTimeout)
		return false, err
	})
	if err != nil {
		r.err = err
		return
	}
	for lo := from; lo.Before(to); {
		for len(days) > 0 && !days[0].Add(24*time.Hour).After(lo) {
			days = days[1:]
		}
		if len(days) == 0 {
			// Past the last day that had events when the read began: look again, for the days
			// written since (a read that goes on to now meets the events of the archiver).
			if err := res.do(ctx, func() (bool, error) {
				var err error
				days, err = r.eventDays(ctx, s, lo, to, opts.ChunkTimeout)
				return false, err
			}); err != nil {
				r.err = err
				return
			}
			if len(days) == 0 {
				return
			}
			continue
		}
		if days[0].After(lo) {
			lo = days[0] // skip the days without events
		}
		hi := lo.Add(opts.Chunk)
		if opts.Chunk%(24*time.Hour) == 0 {
			// align daily chunks to partitions (UTC days): the first one ends at a midnight
			hi = lo.Truncate(24 * time.Hour).Add(opts.Chunk)
		}
		if hi.After(to) {
			hi = to
		}
		var after rowKey // the last row of the chunk read so far
		if err := res.do(ctx, func() (bool, error) {
			before := after
			err := r.readChunk(ctx, s, lo, hi, &after, opts.Batch, opts.ChunkTimeout)
			return after != before, err
		}); err != nil {
			r.err = err
			return
		}
		lo = hi
	}
}

// eventDays lists the UTC days (their midnights, in order) on which verify_events has rows
// with lo <= ts < hi: one query reading the ts column of the period's partitions.
func (r *EventReader) eventDays(ctx context.Context, s *Store, lo, hi time.Time, timeout time.Duration) ([]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.queries++
	rows, err := s.conn.Query(ctx, eventDaysSQL(s.db, lo, hi))
	if err != nil {
		return nil, fmt.Errorf("chsink: list the days of %s from %s to %s: %w", s.table("verify_events"), lo.Format(time.RFC3339), hi.Format(time.RFC3339), noTable(err))
	}
	defer rows.Close()
	var days []time.Time
	for rows.Next() {
		var d uint32
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("chsink: list the days of %s: %w", s.table("verify_events"), err)
		}
		days = append(days, time.Unix(int64(d)*86400, 0).UTC())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chsink: list the days of %s from %s to %s: %w", s.table("verify_events"), lo.Format(time.RFC3339), hi.Format(time.RFC3339), err)
	}
	return days, nil
}

// eventDaysSQL is the query of eventDays: the UTC days, as days since 1970-01-01, with events
// with lo <= ts < hi. (Without FINAL: a replaced copy can only add a day to read in vain.)
func eventDaysSQL(database string, lo, hi time.Time) string {
	return fmt.Sprintf("SELECT toUInt32(intDiv(toUInt32(ts), 86400)) AS day FROM %s.verify_events WHERE ts >= toDateTime(%d) AND ts < toDateTime(%d) GROUP BY day ORDER BY day",
		database, lo.Unix(), hi.Unix())
}

// rowKey is a row's place in the replay order (ts, event_id, app_id); the zero value is before
// every row.
type rowKey struct {
	ts             int64 // unix seconds
	eventID, appID string
	set            bool
}

// resumer takes up reads that broke off (ReadOptions.Resumes).
type resumer struct {
	opts     ReadOptions
	attempts int  // in a row, without a row read
	reached  bool // a query of the read has succeeded or returned rows
}

// do runs read until it succeeds, fails in a way that does not resume, or has broken off more
// than opts.Resumes times in a row; read reports whether it returned rows before it failed.
func (res *resumer) do(ctx context.Context, read func() (progressed bool, err error)) error {
	for {
		progressed, err := read()
		if err == nil {
			res.reached = true
			return nil
		}
		if progressed {
			res.attempts, res.reached = 0, true
		}
		// A read that never reached ClickHouse fails at once: a wrong address or a server that is
		// down when the backtest starts is said at once, not after minutes of attempts.
		if !res.reached || !resumable(ctx, err) || res.opts.Resumes < 0 || res.attempts >= res.opts.Resumes {
			if res.attempts > 0 {
				return fmt.Errorf("%w (after resuming the read %d times)", err, res.attempts)
			}
			return err
		}
		res.attempts++
		wait := min(resumeWaitMin<<(res.attempts-1), resumeWaitMax)
		if res.opts.OnResume != nil {
			res.opts.OnResume(res.attempts, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// resumable reports whether a read that failed with err may be taken up again: the connection
// broke or could not be made, while the caller still waits. An error ClickHouse answered with,
// a missing table and a deadline are not.
func resumable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrNoTable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var ex *clickhouse.Exception
	return !errors.As(err, &ex)
}

// readChunk reads the events with lo <= ts < hi after *after (all of them while it is not set),
// moving *after on with each row it hands over; a read that fails hands over the rows it read
// before failing, so that a resumed read starts after them.
func (r *EventReader) readChunk(ctx context.Context, s *Store, lo, hi time.Time, after *rowKey, batchSize int, timeout time.Duration) error {
	// A deadline on the query's context replaces the driver's read timeout for the stream.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// That deadline is hours long: a server that stops sending without closing the connection
	// (frozen, hung; its kernel still answers keep-alives) is noticed by the silence watch.
	ctx, silent := watchSilence(ctx, s.cfg.WriteTimeout)
	defer silent.stop()
	r.queries++
	q := readChunkSQL(s.db, lo, hi, *after)
	settings := clickhouse.Settings{
		// a big chunk spills its sort to disk instead of failing on max_memory_usage
		"max_bytes_before_external_sort": 1 << 30,
	}
	if readBlockRows > 0 {
		settings["max_block_size"] = readBlockRows
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithSettings(settings), clickhouse.WithBlockBufferSize(8),
		clickhouse.WithProgress(func(*clickhouse.Progress) { silent.heard() }),
		clickhouse.WithProfileInfo(func(*clickhouse.ProfileInfo) { silent.heard() }))
	silent.waiting(true)
	rows, err := s.conn.Query(qctx, q)
	silent.waiting(false)
	if err != nil {
		if serr := silent.err(s, lo, hi); serr != nil {
			return serr
		}
		return fmt.Errorf("chsink: read %s from %s to %s: %w", s.table("verify_events"), lo.Format(time.RFC3339), hi.Format(time.RFC3339), noTable(err))
	}
	defer rows.Close()
	batch := r.newBatch(batchSize)
	// hand passes the rows read on, and moves after past them.
	hand := func() error {
		if len(batch) == 0 {
			return nil
		}
		last := &batch[len(batch)-1]
		key := rowKey{ts: last.TS.Unix(), eventID: last.EventID, appID: last.AppID, set: true}
		select {
		case r.batches <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
		*after = key
		batch = r.newBatch(batchSize)
		return nil
	}
	next := func() bool {
		silent.waiting(true)
		defer silent.waiting(false)
		return rows.Next()
	}
	for next() {
		batch = append(batch, StoredEvent{})
		e := &batch[len(batch)-1]
		if err := rows.Scan(&e.EventID, &e.TS, &e.AppID, &e.Flow, &e.PhoneHash, &e.PhoneSegment, &e.IP,
			&e.Carrier, &e.Platform, &e.DeviceID, &e.Outcome, &e.ErrorCode, &e.TokenDigest); err != nil {
			return fmt.Errorf("chsink: read %s: %w", s.table("verify_events"), err)
		}
		if len(batch) == batchSize {
			if err := hand(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		if serr := silent.err(s, lo, hi); serr != nil {
			err = serr
		} else {
			err = fmt.Errorf("chsink: read %s from %s to %s: %w", s.table("verify_events"), lo.Format(time.RFC3339), hi.Format(time.RFC3339), err)
		}
		if herr := hand(); herr != nil { // the rows read before the failure, for a resumed read to follow
			return errors.Join(err, herr)
		}
		return err
	}
	return hand()
}

// readChunkSQL is the query of one chunk of ReadEvents: the events with lo <= ts < hi, one row
// per (app_id, event_id), in replay order, after the row after when it is set (a resumed read).
func readChunkSQL(database string, lo, hi time.Time, after rowKey) string {
	var resume string
	if after.set {
		id := quoteString(after.eventID)
		resume = fmt.Sprintf(" AND (ts > toDateTime(%d) OR (ts = toDateTime(%d) AND (event_id > %s OR (event_id = %s AND app_id > %s))))",
			after.ts, after.ts, id, id, quoteString(after.appID))
	}
	return fmt.Sprintf("SELECT %s FROM %s.verify_events FINAL WHERE ts >= toDateTime(%d) AND ts < toDateTime(%d)%s ORDER BY ts, event_id, app_id",
		strings.Join(replayColumns, ", "), database, lo.Unix(), hi.Unix(), resume)
}

func (r *EventReader) newBatch(n int) []StoredEvent {
	select {
	case b := <-r.free:
		return b
	default:
		return make([]StoredEvent, 0, n)
	}
}

// silenceWatch cancels a read's context when the server has sent nothing — no row, no
// progress — for longer than a limit while the reader waits on it; the time the caller takes
// over the rows does not count.
type silenceWatch struct {
	limit  time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	last   atomic.Int64 // unix nanoseconds of the last packet heard or wait begun
	wait   atomic.Bool  // the reader is waiting on the server
	done   chan struct{}
}

// errSilent is the cause of a read's context cancelled by its silenceWatch.
var errSilent = errors.New("the server went silent")

// watchSilence starts watching; stop ends the watch.
func watchSilence(ctx context.Context, limit time.Duration) (context.Context, *silenceWatch) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &silenceWatch{limit: limit, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	w.heard()
	go func() {
		t := time.NewTicker(max(limit/8, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if w.wait.Load() && time.Since(time.Unix(0, w.last.Load())) > w.limit {
					cancel(errSilent)
					return
				}
			}
		}
	}()
	return ctx, w
}

func (w *silenceWatch) heard() { w.last.Store(time.Now().UnixNano()) }

// waiting says whether the reader is waiting on the server; a wait begins the silence anew.
func (w *silenceWatch) waiting(on bool) {
	if on {
		w.heard()
	}
	w.wait.Store(on)
}

// fired reports whether the watch cut the read off.
func (w *silenceWatch) fired() bool { return errors.Is(context.Cause(w.ctx), errSilent) }

func (w *silenceWatch) stop() {
	close(w.done)
	w.cancel(nil)
}

// err is the error of a read the watch cut off, nil when it did not: an error of the
// connection, resumable (it does not wrap the cancelled context).
func (w *silenceWatch) err(s *Store, lo, hi time.Time) error {
	if !w.fired() {
		return nil
	}
	return fmt.Errorf("chsink: read %s from %s to %s: ClickHouse %s sent nothing for %s (clickhouse.write_timeout): hung, frozen or unreachable",
		s.table("verify_events"), lo.Format(time.RFC3339), hi.Format(time.RFC3339), s.cfg.Addr, w.limit)
}
