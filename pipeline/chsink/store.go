package chsink

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Store writes to one ClickHouse database. It is safe for concurrent use.
type Store struct {
	conn driver.Conn
	cfg  Config // with defaults filled
	db   string
	log  *slog.Logger

	// events and decisions bound the records of one INSERT of WriteBatch (a pair: both tables)
	// and of WriteDecisions, after one outlived Config.WriteTimeout (insertBound).
	events, decisions insertBound
	now               func() time.Time // nil: time.Now
}

// Option changes how [Open] builds a Store.
type Option func(*Store)

// WithLogger sends the Store's log records (migrations applied, batches written) to l.
// Without it the Store logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// Pool sizes: the archiver writes one batch at a time, its two tables at once, so a few
// connections are plenty, and they stay small on a shared ClickHouse.
const (
	maxOpenConns    = 4
	maxIdleConns    = 2
	connMaxLifetime = 10 * time.Minute
)

// Open checks cfg and prepares a connection pool. It does not contact the server, so a
// pipeline can start while ClickHouse is down; use [Store.Ping] to check it is reachable.
// Open does no I/O, so ctx is not used.
func Open(_ context.Context, cfg Config, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("chsink: config: %w", err)
	}
	cfg = cfg.withDefaults()
	s := &Store{cfg: cfg, db: cfg.Database, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     splitAddrs(cfg.Addr),
		// No database in the handshake: the server rejects a connection to a database
		// that does not exist yet, and Migrate has to create it. Every statement names
		// its database instead.
		Auth: clickhouse.Auth{Username: cfg.Username, Password: cfg.Password},
		ClientInfo: clickhouse.ClientInfo{Products: []struct {
			Name    string
			Version string
		}{{Name: "riskflow-chsink", Version: "1"}}},
		Compression:      compression(cfg),
		DialTimeout:      cfg.DialTimeout,
		DialContext:      dialer(cfg.DialTimeout, cfg.WriteTimeout),
		ReadTimeout:      cfg.WriteTimeout,
		MaxOpenConns:     maxOpenConns,
		MaxIdleConns:     maxIdleConns,
		ConnMaxLifetime:  connMaxLifetime,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	})
	if err != nil {
		return nil, fmt.Errorf("chsink: open %s: %w", cfg.Addr, err)
	}
	s.conn = conn
	return s, nil
}

// Database is the name of the database the Store writes to.
func (s *Store) Database() string { return s.db }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("chsink: ping %s: %w", s.cfg.Addr, err)
	}
	return nil
}

// Close closes the connections. The Store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("chsink: close: %w", err)
	}
	return nil
}

// withTimeout bounds one round of work with WriteTimeout (an earlier deadline on ctx wins).
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.WriteTimeout)
}

// table is the qualified name of one of riskflow's tables. The database name was checked
// to be a plain identifier, so it needs no quoting.
func (s *Store) table(name string) string { return s.db + "." + name }

// compression is the driver's setting for cfg.Compression. Measured with `riskflow bench` against
// a server on the same machine (README, Performance): LZ4 cost the archiver about 0.7 µs of
// client CPU per record, a tenth of all it spends, and saved nothing.
func compression(cfg Config) *clickhouse.Compression {
	if cfg.compressed() {
		return &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	return &clickhouse.Compression{Method: clickhouse.CompressionNone}
}

// queryRows runs sql with args (within the store's timeout) and scans every row into a new T;
// errors name what was being read.
func queryRows[T any](ctx context.Context, s *Store, what, sql string, scan func(driver.Rows, *T) error, args ...any) ([]T, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("chsink: %s: %w", what, noTable(err))
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, fmt.Errorf("chsink: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chsink: %s: %w", what, err)
	}
	return out, nil
}

// clock is the Store's time: now when set (tests), else the wall clock.
func (s *Store) clock() time.Time {
	if s.now == nil {
		return time.Now()
	}
	return s.now()
}
