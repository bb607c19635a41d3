package main

import (
	"context"
	"fmt"

	"github.com/riskflow/riskflow/schemas"
)

// Pack-test runs a node makes at once, and how many more wait for their turn: the default pack's
// tests take about 2 s of CPU, and PUT /v1/rules, the console's promote, its "run tests" and a
// promotion request each run them. Unbounded, a few admins clicking (or a script PUTting) took
// every core from scoring.
const (
	packTestRuns    = 1
	packTestWaiting = 4
)

// testGate bounds the pack-test runs of one node: at most running at once, at most waiting more
// waiting for a turn (each within its request's context); a request beyond them is refused at
// once (errTestsBusy: 503 with Retry-After). A nil gate bounds nothing.
type testGate struct {
	running, waiting int
	slots            chan struct{} // a run holds one
	queue            chan struct{} // a run or a waiter holds one
}

func newTestGate(running, waiting int) *testGate {
	return &testGate{running: running, waiting: waiting,
		slots: make(chan struct{}, running), queue: make(chan struct{}, running+waiting)}
}

// run calls f once it has a turn; it returns a busy error (schemas.ErrUnavailable) when too many
// runs are under way and waiting, and ctx's error when ctx ends before the turn comes.
func (g *testGate) run(ctx context.Context, f func() error) error {
	if g == nil {
		return f()
	}
	select {
	case g.queue <- struct{}{}:
	default:
		return schemas.Unavailable(fmt.Sprintf("rules: the pack's tests are being run for other requests on this node (at most %d at a time, %d more waiting): "+
			"try again in a moment", g.running, g.waiting))
	}
	defer func() { <-g.queue }()
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("rules: wait for a turn to run the pack's tests (at most %d at a time on this node): %w", g.running, ctx.Err())
	}
	defer func() { <-g.slots }()
	return f()
}
