package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

type fakeReplica struct {
	lag   int64
	fresh time.Time
}

func (r fakeReplica) Lag() int64       { return r.lag }
func (r fakeReplica) Fresh() time.Time { return r.fresh }

func TestReplicaReadiness(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name           string
		r              fakeReplica
		serving, ready bool
		says           string
	}{
		{"not started", fakeReplica{-1, time.Time{}}, false, false, "starting"},
		{"catching up", fakeReplica{5000, time.Time{}}, false, false, "catching up (5000 messages behind)"},
		{"caught up", fakeReplica{0, now}, true, true, ""},
		{"within lag", fakeReplica{1000, now}, true, true, ""},
		{"behind", fakeReplica{1001, now}, true, false, "1001 messages behind"},
		{"fresh enough", fakeReplica{0, now.Add(-50 * time.Second)}, true, true, ""},
		{"stale: broker away", fakeReplica{0, now.Add(-2 * time.Minute)}, true, false, "stale (allowed 1m0s)"},
	} {
		serving := replicaServing(c.r)()
		if (serving == nil) != c.serving {
			t.Errorf("%s: serving %v, want %v", c.name, serving, c.serving)
		}
		fresh := replicaFresh(c.r, 1000, time.Minute)()
		if !c.serving && fresh != nil {
			t.Errorf("%s: fresh says %v before the first catch-up (state says it)", c.name, fresh)
		}
		err := errors.Join(serving, fresh)
		if (err == nil) != c.ready {
			t.Errorf("%s: ready err %v, want ready=%v", c.name, err, c.ready)
		}
		if err != nil && !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.says)
		}
	}
}

type fakeLoop struct {
	d   time.Duration
	why string
}

func (l *fakeLoop) Stalled() (time.Duration, string) { return l.d, l.why }

func TestHealthNamesEveryUnreadyPart(t *testing.T) {
	h := &health{}
	h.add("scorer", loopCheck(&fakeLoop{45 * time.Second, "write score records: broker away"}, 30*time.Second))
	h.add("archiver", loopCheck(&fakeLoop{10 * time.Second, "clickhouse: breaker open"}, 30*time.Second))
	h.add("state", func() error { return errors.New("feature replica is starting") })
	err := h.ready()
	if err == nil {
		t.Fatal("ready with a stalled scorer and a starting replica")
	}
	for _, want := range []string{"scorer: stalled for 45s (allowed 30s): write score records: broker away", "state: feature replica is starting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "archiver") {
		t.Errorf("%q names the archiver, stalled for less than the bound", err)
	}
	if err := (&health{}).ready(); err != nil {
		t.Errorf("empty health: %v", err)
	}
}

// An archiver with nothing to write never fails a batch: it turns unready once its ClickHouse has
// failed every ping for longer than the stall bound, says why, and is ready again at the first
// ping that succeeds; a loop stalled longer than the pings have failed is reported as itself.
func TestIdleArchiverUnreadyWhileItsStoreFailsPings(t *testing.T) {
	now := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	loop := &fakeLoop{}
	w := &pingWatch{loop: loop, now: func() time.Time { return now }}
	check := loopCheck(w, 30*time.Second)
	w.noted(nil) // reached once (TestArchiverUnreadyUntilItReachesItsStore)
	if err := check(); err != nil {
		t.Fatalf("after the first ping: %v", err)
	}
	refused := errors.New("chsink: ping 127.0.0.1:19000: dial tcp 127.0.0.1:19000: connect: connection refused")
	w.noted(refused)
	now = now.Add(20 * time.Second)
	w.noted(refused)
	if err := check(); err != nil {
		t.Errorf("pings failing for 20 s of 30 allowed: %v", err)
	}
	now = now.Add(20 * time.Second)
	w.noted(refused)
	err := check()
	if err == nil || !strings.Contains(err.Error(), "stalled for 40s") || !strings.Contains(err.Error(), "its store does not answer: chsink: ping") {
		t.Errorf("pings failing for 40 s: %v; want it unready, saying the store does not answer", err)
	}
	w.noted(nil)
	if err := check(); err != nil {
		t.Errorf("after a ping succeeded: %v", err)
	}
	loop.d, loop.why = time.Minute, "clickhouse: breaker open"
	w.noted(refused)
	now = now.Add(40 * time.Second)
	if err := check(); err == nil || !strings.Contains(err.Error(), "stalled for 1m0s") || !strings.Contains(err.Error(), "breaker open") {
		t.Errorf("loop stalled 60 s, pings failing 40 s: %v; want the loop's own stall", err)
	}
}

// The decision archiver writes to the archiver's ClickHouse: idle, it is unready with the
// archiver's failing pings (it stayed ready, riskflow_loop_stalled_seconds{loop="decisions"} 0,
// through an outage — and /readyz?exclude=archiver said ready), and is ready again with them.
func TestIdleDecisionArchiverUnreadyWithThePings(t *testing.T) {
	now := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	w := &pingWatch{loop: &fakeLoop{}, now: func() time.Time { return now }}
	decisions := &fakeLoop{}
	check := loopCheck(w.sharing(decisions), 30*time.Second)
	w.noted(nil)
	refused := errors.New("chsink: ping 127.0.0.1:19000: dial tcp 127.0.0.1:19000: connect: connection refused")
	w.noted(refused)
	now = now.Add(40 * time.Second)
	w.noted(refused)
	if err := check(); err == nil || !strings.Contains(err.Error(), "stalled for 40s") || !strings.Contains(err.Error(), "its store does not answer") {
		t.Errorf("pings failing for 40 s: %v; want the decision archiver unready too", err)
	}
	decisions.d, decisions.why = time.Minute, "insert decisions: breaker open"
	if err := check(); err == nil || !strings.Contains(err.Error(), "insert decisions: breaker open") {
		t.Errorf("its own loop stalled longer: %v", err)
	}
	decisions.d, decisions.why = 0, ""
	w.noted(nil)
	if err := check(); err != nil {
		t.Errorf("after a ping succeeded: %v", err)
	}
}

// An archiver (and the decision archiver beside it) is unready from its start until its
// ClickHouse has answered once, saying why, rather than ready through the stall bound's grace —
// where a rollout with a wrong address or password took the new pods as ready. Once reached, an
// outage shorter than the bound leaves it ready again.
func TestArchiverUnreadyUntilItReachesItsStore(t *testing.T) {
	now := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	w := &pingWatch{loop: &fakeLoop{}, now: func() time.Time { return now }}
	checks := map[string]func() error{
		"archiver":  loopCheck(w, 30*time.Second),
		"decisions": loopCheck(w.sharing(&fakeLoop{}), 30*time.Second),
	}
	for name, check := range checks {
		if err := check(); err == nil || !strings.Contains(err.Error(), "has not reached its store yet") {
			t.Errorf("%s before its first ping: %v; want unready", name, err)
		}
	}
	denied := errors.New("chsink: ping 127.0.0.1:19000: code: 516, message: default: Authentication failed")
	w.noted(denied)
	for name, check := range checks {
		if err := check(); err == nil || !strings.Contains(err.Error(), "has not reached its store since the start: chsink: ping") ||
			!strings.Contains(err.Error(), "Authentication failed") {
			t.Errorf("%s after a refused first ping: %v; want unready, saying why", name, err)
		}
	}
	w.noted(nil)
	now = now.Add(10 * time.Second)
	w.noted(denied)
	for name, check := range checks {
		if err := check(); err != nil {
			t.Errorf("%s reached once, then a failing ping 0 s of 30 allowed: %v", name, err)
		}
	}
}

// watchPings pings at once, then notes each ping's result until its context ends.
func TestWatchPingsPingsAtOnce(t *testing.T) {
	w := &pingWatch{loop: &fakeLoop{}, now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.watchPings(ctx, time.Hour, func(context.Context) error { return nil })
	}()
	// An interval of an hour: only a first ping at once can reach the store in this test's time.
	for deadline := time.Now().Add(time.Minute); w.Unreached() != nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no ping noted a minute after the start of an hourly watch")
		}
	}
	cancel()
	<-done
}

// watchPings notes each ping's result until its context ends.
func TestWatchPingsNotesResults(t *testing.T) {
	w := &pingWatch{loop: &fakeLoop{}, now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	pinged := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.watchPings(ctx, time.Millisecond, func(context.Context) error {
			select {
			case pinged <- struct{}{}:
			default:
			}
			return errors.New("down")
		})
	}()
	<-pinged
	<-pinged
	cancel()
	<-done
	if _, why := w.Stalled(); !strings.Contains(why, "its store does not answer: down") {
		t.Errorf("after failed pings: %q", why)
	}
}

// waitAnswering (what an archiver waits for before it joins its consumer groups) returns once a
// ping has succeeded, not at a failing one, and its context's error when that ends first.
func TestWaitAnsweringWaitsForAnAnsweringPing(t *testing.T) {
	w := &pingWatch{loop: &laterLoop{}, now: time.Now}
	waited := make(chan error, 1)
	go func() { waited <- w.waitAnswering(context.Background()) }()
	w.noted(errors.New("code: 193, message: Wrong password for user default"))
	select {
	case err := <-waited:
		t.Fatalf("waitAnswering returned %v after a failing ping", err)
	default:
	}
	if _, why := w.Stalled(); why != "its store does not answer: code: 193, message: Wrong password for user default" {
		t.Errorf("Stalled before the loop exists: %q", why)
	}
	w.noted(nil)
	if err := <-waited; err != nil {
		t.Fatalf("waitAnswering after a ping succeeded: %v", err)
	}
	if err := w.waitAnswering(context.Background()); err != nil {
		t.Errorf("waitAnswering once reached: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (&pingWatch{loop: &laterLoop{}, now: time.Now}).waitAnswering(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("waitAnswering with its context ended: %v", err)
	}
}

// An archiver leaves its consumer groups when its store's pings have failed for kafka.stall_after
// (whenDown), not at the first failing one, and joins again at the next ping that answers
// (waitAnswering blocks from the failing pings on).
func TestWhenDownClosesOnceThePingsFailedLongEnough(t *testing.T) {
	now := time.Unix(1000, 0)
	w := &pingWatch{loop: &laterLoop{}, now: func() time.Time { return now }}
	w.noted(nil)
	down := w.whenDown(30 * time.Second)
	closed := func() bool {
		select {
		case <-down:
			return true
		default:
			return false
		}
	}
	w.noted(errors.New("connection refused"))
	now = now.Add(20 * time.Second)
	w.noted(errors.New("connection refused"))
	if closed() {
		t.Fatal("down after pings failing for 20 s, want 30 s")
	}
	waited := make(chan error, 1)
	go func() { waited <- w.waitAnswering(context.Background()) }()
	now = now.Add(10 * time.Second)
	w.noted(errors.New("connection refused"))
	if !closed() {
		t.Fatal("not down after pings failing for 30 s")
	}
	select {
	case err := <-waited:
		t.Fatalf("waitAnswering returned %v while the pings fail", err)
	default:
	}
	w.noted(nil)
	if err := <-waited; err != nil {
		t.Fatalf("waitAnswering after a ping answered: %v", err)
	}
	// A break in the failures starts the count again; a watch asked for when it is down already closes at once.
	down = w.whenDown(30 * time.Second)
	w.noted(errors.New("connection refused"))
	now = now.Add(29 * time.Second)
	w.noted(errors.New("connection refused"))
	if closed() {
		t.Fatal("down 29 s after the pings answered again")
	}
	now = now.Add(time.Second)
	if c := w.whenDown(30 * time.Second); !isClosed(c) {
		t.Error("whenDown asked after 30 s of failing pings: not closed at once")
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
