package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// migrator is a ClickHouse store as schemaOnce sees it (chsink.Store).
type migrator interface {
	Migrate(ctx context.Context) ([]string, error)
}

// schemaOnce applies the ClickHouse schema before a store's first use (ClickHouse may be down at
// start: the caller's breaker and retries ask again), and again before the use after one that
// found a table or the database missing (dropped under the running node: a restore, an
// operator's clean-up), as a restarted node would, instead of failing every use until someone
// runs riskflow migrate. The archiver, the decision log's and the labels' writers, the console
// and the rule-pack history each use one.
//
// One attempt runs at a time; a caller arriving during it waits for it, or for its own context,
// and shares its outcome. Label requests to an API node whose ClickHouse hung queued one attempt
// each behind a mutex, past their own deadline and the server's write timeout: all but the
// first lost their answer.
type schemaOnce struct {
	log *slog.Logger // may be nil

	mu       sync.Mutex
	migrated bool
	// flight is the attempt in progress (nil: none).
	flight *migration
}

// migration is one attempt at applying the schema; err is set before done is closed, and retry
// says the attempt is the next caller's to repeat (it ended with its own caller's context).
type migration struct {
	done  chan struct{}
	err   error
	retry bool
}

// ensure applies st's schema unless it has been applied since the start or the last lost.
func (s *schemaOnce) ensure(ctx context.Context, st migrator) error {
	for {
		s.mu.Lock()
		if s.migrated {
			s.mu.Unlock()
			return nil
		}
		if f := s.flight; f != nil {
			s.mu.Unlock()
			select {
			case <-f.done:
				if f.retry {
					continue
				}
				return f.err
			case <-ctx.Done():
				return fmt.Errorf("waiting for the migration in progress: %w", ctx.Err())
			}
		}
		f := &migration{done: make(chan struct{})}
		s.flight = f
		s.mu.Unlock()
		applied, err := st.Migrate(ctx)
		s.mu.Lock()
		s.flight = nil
		s.migrated = err == nil
		f.err, f.retry = err, err != nil && ctx.Err() != nil
		s.mu.Unlock()
		close(f.done)
		if err == nil && len(applied) > 0 && s.log != nil {
			s.log.Info("clickhouse schema migrated", "applied", applied)
		}
		return err
	}
}

// lost makes the next ensure apply the schema again: a use found a table, the database or a
// column missing (err).
func (s *schemaOnce) lost(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated && s.log != nil {
		s.log.Warn("clickhouse table or column missing; the schema is applied again before the next use", "err", err)
	}
	s.migrated = false
}
