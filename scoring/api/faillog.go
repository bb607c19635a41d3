package api

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// failureLog logs a route's server-side failures (5xx) as an outage: the first of a run at error
// level, then a reminder at most every failRemindEvery with how many failed since, and one line
// when the route answers again — not a line per request. A broker outage fails every POST
// /v1/events at once, and a verify service retrying its events in a loop wrote 133,000 error
// lines in 15 s. Safe for concurrent use.
type failureLog struct {
	failing atomic.Int32 // routes in a run of failures: ok is a load when there are none
	mu      sync.Mutex
	routes  map[string]*routeFailures
	clock   func() time.Time // nil: time.Now
}

func (f *failureLog) now() time.Time {
	if f.clock != nil {
		return f.clock()
	}
	return time.Now()
}

// failRemindEvery is how often a run of failures is logged again while it lasts.
const failRemindEvery = time.Minute

type routeFailures struct {
	since, reminded, last time.Time
	newest                time.Time // when the newest failed attempt started
	count, unlogged       int
	status                int   // of the last failure
	err                   error // of the last failure
}

// failed records a failed request of route, started at started, and logs it if it starts a run or
// a reminder is due.
func (f *failureLog) failed(log *slog.Logger, route string, started time.Time, status int, err error) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	rf := f.routes[route]
	if rf != nil && now.Sub(rf.last) > failRecent {
		// The route failed, then was not called for a while: this failure starts a run of its
		// own, logged as such, not one "since" the first failure of an hour ago.
		delete(f.routes, route)
		f.failing.Add(-1)
		rf = nil
	}
	if rf == nil {
		if f.routes == nil {
			f.routes = map[string]*routeFailures{}
		}
		rf = &routeFailures{since: now, reminded: now, last: now, newest: started, status: status, err: err}
		f.routes[route] = rf
		f.failing.Add(1)
		rf.count = 1
		log.Error("request failed", "route", route, "status", status, "err", boundedErr(err))
		return
	}
	rf.last, rf.status, rf.err = now, status, err
	if started.After(rf.newest) {
		rf.newest = started
	}
	rf.count++
	rf.unlogged++
	if now.Sub(rf.reminded) >= failRemindEvery {
		log.Error("requests still failing", "route", route, "status", status, "err", boundedErr(err),
			"failed", rf.count, "not_logged", rf.unlogged, "failing_for", now.Sub(rf.since).Round(time.Second))
		rf.reminded, rf.unlogged = now, 0
		return
	}
	log.Debug("request failed", "route", route, "status", status, "err", boundedErr(err))
}

// ok records an answered request of route, started at started, logging the end of a run of
// failures. An answer to a request started before the newest failed one ends nothing: it says
// what the route did before that failure. A publication answered after its client left is
// recorded when Kafka answers (Server.publish), up to minutes later, and such a late success
// cleared the failures of the requests sent after it — /readyz said "ready" with every one of
// them refused, until the next failure.
func (f *failureLog) ok(log *slog.Logger, route string, started time.Time) {
	if f.failing.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rf := f.routes[route]
	if rf == nil || started.Before(rf.newest) {
		return
	}
	delete(f.routes, route)
	f.failing.Add(-1)
	log.Info("requests answered again", "route", route, "failed", rf.count, "failed_for", time.Since(rf.since).Round(time.Millisecond))
}

// failRecent is how long after its last failure a route in a run of failures is reported as
// failing (degraded, failingFor): a run ends at the route's next answer, and a route nobody calls
// any more after a failure would otherwise be reported failing for ever.
const failRecent = time.Minute

// failingFor returns how long route has been failing (its run of failures, while its last
// failure is recent), or 0.
func (f *failureLog) failingFor(route string) time.Duration {
	if f.failing.Load() == 0 {
		return 0
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	rf := f.routes[route]
	if rf == nil || now.Sub(rf.last) > failRecent {
		return 0
	}
	return now.Sub(rf.since)
}

// degraded describes the routes failing now (failingFor), sorted: one "route: …" each, saying
// since when, how many requests failed, and the last one's status and error.
func (f *failureLog) degraded() []string {
	if f.failing.Load() == 0 {
		return nil
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for route, rf := range f.routes {
		if now.Sub(rf.last) > failRecent {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %d failed since %s, the last %s ago with %d: %s", route, rf.count,
			rf.since.UTC().Format(time.RFC3339), now.Sub(rf.last).Round(time.Second), rf.status, schemas.Excerpt(rf.err.Error(), maxDegradedErr)))
	}
	slices.Sort(out)
	return out
}

// maxDegradedErr bounds the error a failing route shows in /readyz's answer.
const maxDegradedErr = 200
