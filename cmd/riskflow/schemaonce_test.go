package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/pipeline/chsink"
)

// blockingMigrator's Migrate counts its calls and waits for release (or its caller's context).
type blockingMigrator struct {
	calls   atomic.Int32
	started chan struct{} // one notice per call
	release chan error
}

func newBlockingMigrator() *blockingMigrator {
	return &blockingMigrator{started: make(chan struct{}, 16), release: make(chan error)}
}

func (b *blockingMigrator) Migrate(ctx context.Context) ([]string, error) {
	b.calls.Add(1)
	b.started <- struct{}{}
	select {
	case err := <-b.release:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Callers arriving while the schema is applied share that one attempt; one whose context ends
// while it waits returns at once with its own context's error; once applied, no caller migrates
// again until a use found a table missing (lost).
func TestSchemaOnceSharesOneAttempt(t *testing.T) {
	var s schemaOnce
	m := newBlockingMigrator()
	errs := make(chan error, 3)
	go func() { errs <- s.ensure(context.Background(), m) }()
	<-m.started
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.ensure(context.Background(), m) }()
	}
	short, cancel := context.WithCancel(context.Background())
	impatient := make(chan error, 1)
	go func() { impatient <- s.ensure(short, m) }()
	cancel()
	if err := <-impatient; !errors.Is(err, context.Canceled) {
		t.Errorf("a waiter whose context ended: %v; want its own context's error, at once", err)
	}
	m.release <- nil
	wg.Wait()
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("a caller of the attempt that succeeded: %v", err)
		}
	}
	if err := s.ensure(context.Background(), m); err != nil || m.calls.Load() != 1 {
		t.Errorf("after the schema was applied: err %v, %d attempts; want 1", err, m.calls.Load())
	}
	s.lost(chsink.ErrNoTable)
	go func() { errs <- s.ensure(context.Background(), m) }()
	<-m.started
	m.release <- nil
	if err := <-errs; err != nil || m.calls.Load() != 2 {
		t.Errorf("after a table was lost: err %v, %d attempts; want 2", err, m.calls.Load())
	}
}

// An attempt that failed is shared by its waiters and repeated by the next caller; one that ended
// with its own caller's context is repeated by a waiter (whose context is still good), not
// reported to it as a failure.
func TestSchemaOnceRetriesAfterFailure(t *testing.T) {
	var s schemaOnce
	m := newBlockingMigrator()
	refused := errors.New("dial tcp 127.0.0.1:19000: connect: connection refused")
	first := make(chan error, 1)
	go func() { first <- s.ensure(context.Background(), m) }()
	<-m.started
	waiter := make(chan error, 1)
	go func() { waiter <- s.ensure(context.Background(), m) }()
	m.release <- refused
	if err := <-first; !errors.Is(err, refused) {
		t.Errorf("the attempt's caller: %v", err)
	}
	// The waiter either shared the failed attempt or (had it not yet seen it) started its own.
	select {
	case err := <-waiter:
		if !errors.Is(err, refused) {
			t.Errorf("a waiter of the failed attempt: %v", err)
		}
	case <-m.started:
		m.release <- nil
		if err := <-waiter; err != nil {
			t.Errorf("a caller after the failed attempt: %v", err)
		}
	}

	var s2 schemaOnce
	ctx, cancel := context.WithCancel(context.Background())
	go func() { first <- s2.ensure(ctx, m) }()
	<-m.started
	go func() { waiter <- s2.ensure(context.Background(), m) }()
	cancel()
	<-first
	<-m.started // the waiter's own attempt
	m.release <- nil
	if err := <-waiter; err != nil {
		t.Errorf("a waiter of an attempt its caller abandoned: %v; want its own attempt to succeed", err)
	}
}

// A console use whose ClickHouse hangs while the schema is applied waits for that attempt or
// its own deadline, whichever comes first: the uses of one page (the rules page reads three
// parts at once) and of every other page queued behind a mutex, each past its own deadline,
// until the first attempt gave up.
func TestConsoleUsesDoNotQueueBehindAHungMigration(t *testing.T) {
	srv := testaddr.NewHung(t)
	cfg := ClickHouseConfig{
		Config:          chsink.Config{Addr: srv.Addr, DialTimeout: time.Minute, WriteTimeout: time.Minute},
		BreakerFailures: 100,
		BreakerOpenFor:  Duration(time.Hour),
	}
	ch := newLazyStore(cfg, "console", "console", nil, nil)
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	firstDone := make(chan error, 1)
	go func() {
		_, err := useStore(first, ch, func(*chsink.Store) (struct{}, error) { return struct{}{}, nil })
		firstDone <- err
	}()
	<-srv.Asked() // the first use's migration is waiting for the hung server
	short, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := useStore(short, ch, func(*chsink.Store) (struct{}, error) { return struct{}{}, nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a use whose caller gave up: %v; want its own context's error", err)
	}
	select {
	case err := <-firstDone:
		t.Fatalf("the use whose caller gave up returned only after the first use ended (%v): it queued behind the first's hung migration", err)
	default:
	}
	cancelFirst()
	<-firstDone
}
