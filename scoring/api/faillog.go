package api

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
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
}

// failRemindEvery is how often a run of failures is logged again while it lasts.
const failRemindEvery = time.Minute

type routeFailures struct {
	since, reminded time.Time
	count, unlogged int
}

// failed records a failed request of route and logs it if it starts a run or a reminder is due.
func (f *failureLog) failed(log *slog.Logger, route string, status int, err error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	rf := f.routes[route]
	if rf == nil {
		if f.routes == nil {
			f.routes = map[string]*routeFailures{}
		}
		rf = &routeFailures{since: now, reminded: now}
		f.routes[route] = rf
		f.failing.Add(1)
		rf.count = 1
		log.Error("request failed", "route", route, "status", status, "err", boundedErr(err))
		return
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

// ok records an answered request of route, logging the end of a run of failures.
func (f *failureLog) ok(log *slog.Logger, route string) {
	if f.failing.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rf := f.routes[route]
	if rf == nil {
		return
	}
	delete(f.routes, route)
	f.failing.Add(-1)
	log.Info("requests answered again", "route", route, "failed", rf.count, "failed_for", time.Since(rf.since).Round(time.Millisecond))
}
