package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sony/gobreaker/v2"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/console"
)

// The console's ClickHouse uses go through a breaker: against a ClickHouse that hangs, after
// clickhouse.breaker_failures uses that timed out, every use (a session check, a page's read, a
// draft saved) fails at once with ErrNotAvailable saying why, without connecting again, and
// riskflow_breaker_state{breaker="console"} shows it open.
func TestConsoleClickHouseBreakerOpensOnAHangingServer(t *testing.T) {
	srv := testaddr.NewHung(t)
	cfg := ClickHouseConfig{
		Config:          chsink.Config{Addr: srv.Addr, DialTimeout: time.Second, WriteTimeout: 300 * time.Millisecond},
		BreakerFailures: 3,
		BreakerOpenFor:  Duration(time.Hour), // stays open for the test
	}
	obs := newObserver(prometheus.NewRegistry())
	var logged bytes.Buffer // the breaker logs in the use that changed its state: this goroutine
	ch := newLazyStore(cfg, "console", "console", slog.New(slog.NewTextHandler(&logged, nil)), func(s string) { obs.breakerState("console", s) })
	state := consoleState{ch: ch}

	for i := range cfg.BreakerFailures {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _, err := state.Get(ctx, console.ItemSessionEnded, "nonce")
		cancel()
		if err == nil || strings.Contains(err.Error(), "did not answer the console's last") {
			t.Fatalf("use %d against the hanging server: err = %v, want the server's timeout", i+1, err)
		}
	}
	if got := gaugeOf(t, obs.breaker.WithLabelValues("console", "open")); got != 1 {
		t.Fatalf(`riskflow_breaker_state{breaker="console",state="open"} = %v after %d failed uses, want 1`, got, cfg.BreakerFailures)
	}
	// The log line names the breaker as the metric's label does (it said breaker="clickhouse console").
	if line := `msg="circuit breaker state change" breaker=console from=closed to=open`; !strings.Contains(logged.String(), line) {
		t.Errorf("log %q does not hold %q", logged.String(), line)
	}
	before := srv.Accepted()
	if before == 0 {
		t.Fatal("the hanging server was never connected to")
	}
	uses := []func() error{
		func() error {
			_, _, err := state.Get(context.Background(), console.ItemSessionEnded, "nonce")
			return err
		},
		func() error {
			return state.Put(context.Background(), console.Item{Kind: "draft", ID: "d1", Body: []byte("rules: []")})
		},
		func() error { _, err := (&consoleHistory{ch: ch}).Apps(context.Background()); return err },
		func() error {
			return consoleLabels{ch: ch}.Mark(context.Background(), "app1", "event", "e1", "fraud", "alice")
		},
	}
	for i, use := range uses {
		err := use()
		if !errors.Is(err, console.ErrNotAvailable) || !strings.Contains(err.Error(), "did not answer the console's last 3 requests") ||
			!strings.Contains(err.Error(), "clickhouse.breaker_open_for") {
			t.Errorf("use %d with the breaker open: err = %v, want ErrNotAvailable saying ClickHouse did not answer", i, err)
		}
	}
	if after := srv.Accepted(); after != before {
		t.Errorf("the open breaker let uses reach ClickHouse: %d connections before, %d after", before, after)
	}
}

// The rule-pack history has its own breaker: a pack promoted while ClickHouse hangs is not held
// up recording its version once the breaker is open (the service retries the record later), and
// the refusal is in class ErrUnavailable (a 503 from /v1/rules/versions).
func TestRuleHistoryBreakerOpensOnAHangingServer(t *testing.T) {
	srv := testaddr.NewHung(t)
	cfg := ClickHouseConfig{
		Config:          chsink.Config{Addr: srv.Addr, DialTimeout: time.Second, WriteTimeout: 300 * time.Millisecond},
		BreakerFailures: 2,
		BreakerOpenFor:  Duration(time.Hour),
	}
	var states []string
	vs := newVersionStore(cfg, nil, func(s string) { states = append(states, s) })
	for i := range cfg.BreakerFailures {
		if _, err := vs.Versions(context.Background()); err == nil || errors.Is(err, gobreaker.ErrOpenState) {
			t.Fatalf("use %d against the hanging server: err = %v, want the server's timeout", i+1, err)
		}
	}
	before := srv.Accepted()
	err := vs.RecordVersion(context.Background(), rulesvc.Version{Version: "0123456789abcdef", Name: "default"})
	if !errors.Is(err, schemas.ErrUnavailable) || !strings.Contains(err.Error(), "rule-pack history's last 2 requests") {
		t.Errorf("record with the breaker open: %v, want ErrUnavailable naming the rule-pack history", err)
	}
	if _, err := vs.Lookup(context.Background(), "0123456789abcdef"); !errors.Is(err, schemas.ErrUnavailable) {
		t.Errorf("lookup with the breaker open: %v, want ErrUnavailable", err)
	}
	if after := srv.Accepted(); after != before {
		t.Errorf("the open breaker let uses reach ClickHouse: %d connections before, %d after", before, after)
	}
	if want := []string{"open"}; !slices.Equal(states, want) {
		t.Errorf("breaker states heard: %v, want %v", states, want)
	}
}

// What counts against ClickHouse: not answering. Errors it answered with, requests the console
// refused and visitors who went away do not.
func TestClickHouseAway(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		away bool
	}{
		{"nil", nil, false},
		{"refused connection", &chsink.DialError{Addr: "127.0.0.1:1", Err: errors.New("connect: connection refused")}, true},
		{"deadline", fmt.Errorf("read console_state: %w", context.DeadlineExceeded), true},
		{"broken pipe", errors.New("write tcp 127.0.0.1:5->127.0.0.1:9000: write: broken pipe"), true},
		{"server exception", fmt.Errorf("read console_state: %w", &clickhouse.Exception{Code: 60, Message: "Table riskflow.console_state does not exist"}), false},
		{"refused draft", fmt.Errorf("%w: the draft does not compile", console.ErrInvalid), false},
		{"no such version", fmt.Errorf("read version: %w", chsink.ErrNoRuleVersion), false},
	} {
		if got := clickHouseAway(c.err); got != c.away {
			t.Errorf("%s: clickHouseAway(%v) = %v, want %v", c.name, c.err, got, c.away)
		}
	}
}

func gaugeOf(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// While the breaker's one probe is under way, the others are told so, not that the last requests
// failed; either way the error is ErrNotAvailable and ErrUnavailable.
func TestBreakerOpenErrorSaysWhichState(t *testing.T) {
	l := newLazyStore(ClickHouseConfig{Config: chsink.Config{Addr: "127.0.0.1:1"}, BreakerFailures: 3, BreakerOpenFor: Duration(5 * time.Second)}, "console", "console", nil, nil)
	for _, c := range []struct {
		err  error
		want string
	}{
		{gobreaker.ErrOpenState, "did not answer the console's last 3 requests; it is asked again within 5s"},
		{gobreaker.ErrTooManyRequests, "one request is checking whether it is back"},
	} {
		err := &breakerOpenError{l: l, err: c.err}
		if !strings.Contains(err.Error(), c.want) || !errors.Is(err, console.ErrNotAvailable) || !errors.Is(err, schemas.ErrUnavailable) {
			t.Errorf("%v: %q, want it to say %q and be ErrNotAvailable and ErrUnavailable", c.err, err.Error(), c.want)
		}
	}
}

// A console use whose caller went away (a page closed while ClickHouse hung) says nothing about
// ClickHouse, also when the driver's error does not wrap the cancellation: before the console's
// breaker was built by pipeline.NewBreaker, such uses counted as ClickHouse not answering, and
// clickhouse.breaker_failures closed pages opened the breaker for every other user.
func TestConsoleBreakerIgnoresUsesTheCallerGaveUp(t *testing.T) {
	srv := testaddr.NewHung(t)
	cfg := ClickHouseConfig{
		Config:          chsink.Config{Addr: srv.Addr, DialTimeout: time.Second, WriteTimeout: 10 * time.Second},
		BreakerFailures: 1,
		BreakerOpenFor:  Duration(time.Hour),
	}
	var states []string
	ch := newLazyStore(cfg, "console", "console", nil, func(s string) { states = append(states, s) })
	st, err := openStore(context.Background(), cfg, nil) // no I/O
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ch.st, ch.schema.migrated = st, true
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := useStore(ctx, ch, func(*chsink.Store) (struct{}, error) {
			cancel() // the page is closed while ClickHouse is asked; the driver says only that the read failed
			return struct{}{}, errors.New("read: connection reset by peer")
		})
		if err == nil {
			t.Fatalf("use %d: no error", i)
		}
	}
	if state := fmt.Sprint(ch.cb.State()); len(states) != 0 || state != "closed" {
		t.Errorf("after 3 uses whose caller went away: breaker %s, state changes %v; want closed, none", state, states)
	}
}
