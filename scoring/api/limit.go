package api

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/riskflow/riskflow/schemas"
)

// Rate limits are token buckets (golang.org/x/time/rate):
//
//   - per app key, one bucket for /v1/risk/check and another for /v1/events, so that a backfill
//     through /v1/events cannot starve the same app's checks on the login hot path; and one that
//     counts the events /v1/events accepts (a request of n events takes n tokens), so that large
//     arrays do not carry a request rate's worth of requests each;
//   - per client address, one bucket that only failed authentications drain: once it is empty,
//     requests from that address are refused before their credentials are even looked at, which
//     caps password guessing (and keeps 200-vs-401 from answering guesses during the block). A
//     request naming a configured app key has a bucket of its own at that address: apps share
//     addresses (one verify service calls with the keys of every app it serves), and one app's
//     wrong secret locked every app of its host out — each of their logins then passed on the
//     client's fail-open verdict. Every other name, and the admin routes, share the address's.
//
// Every 429 carries Retry-After: the whole seconds (at least 1) until the bucket has a token again.

// maxTrackedAddrs bounds the failure buckets, whatever the number of addresses a client rotates
// through (see addrLimiter.evict); an address has at most one per app key and one of its own.
const maxTrackedAddrs = 10000

// defaultAuthFailureBurst is how many failed authentications in a row an address gets before the
// per-minute rate applies.
const defaultAuthFailureBurst = 10

// appLimits are one app key's buckets (nil: unlimited) and their rates per second.
type appLimits struct {
	check, events *rate.Limiter
	eventCount    *rate.Limiter

	checkRate, eventsRate, eventCountRate float64
	eventCountKey                         string // the setting eventCountRate comes from
}

// newAppLimits builds the buckets of every configured app key up front: the set of keys is fixed,
// so the hot path reads an immutable map without locking.
func newAppLimits(cfg *Config) map[string]*appLimits {
	m := make(map[string]*appLimits, len(cfg.Keys))
	for key := range cfg.Keys {
		l := &appLimits{}
		l.checkRate, l.eventsRate, l.eventCountRate = cfg.rates(key)
		over, own := cfg.AppLimits[key]
		l.eventCountKey = "api.events_per_app"
		if over.EventsPerApp != nil {
			l.eventCountKey = "api.app_limits." + key + ".events_per_app"
		}
		// A bucket holds a second's worth (at least 1), or the size the program set for the
		// section's rates.
		burst := func(r float64, set int) int {
			if own {
				return max(1, int(r))
			}
			return set
		}
		if l.checkRate > 0 {
			l.check = rate.NewLimiter(rate.Limit(l.checkRate), burst(l.checkRate, cfg.Burst))
		}
		if l.eventsRate > 0 {
			l.events = rate.NewLimiter(rate.Limit(l.eventsRate), burst(l.eventsRate, cfg.EventsBurst))
		}
		if l.eventCountRate > 0 {
			l.eventCount = rate.NewLimiter(rate.Limit(l.eventCountRate), burst(l.eventCountRate, cfg.EventsPerAppBurst))
		}
		m[key] = l
	}
	return m
}

// rateLimited is the 429 for an app key over its rate on route.
func (s *Server) rateLimited(key, route string) error {
	l := s.apps[key]
	if l == nil {
		return nil
	}
	lim, perSec := l.check, l.checkRate
	if route == routeEvents {
		lim, perSec = l.events, l.eventsRate
	}
	if lim == nil {
		return nil
	}
	wait := take(lim, 1)
	if wait == 0 {
		return nil // the token is spent
	}
	return &httpError{
		status:     http.StatusTooManyRequests,
		msg:        fmt.Sprintf("rate limit: app key %s is over %g requests/s on %s; retry in %ds", schemas.Excerpt(key, 40), perSec, route, retrySeconds(wait)),
		retryAfter: wait,
	}
}

// eventsLimited spends n tokens of the app key's events bucket (api.events_per_app) for a
// /v1/events request of n events: 413 when n is more than the bucket holds (no wait would let it
// through), 429 with Retry-After when the bucket has fewer than n now. A refused request spends
// nothing.
func (s *Server) eventsLimited(key string, n int) error {
	l := s.apps[key]
	if l == nil || l.eventCount == nil {
		return nil
	}
	if n > l.eventCount.Burst() {
		return &httpError{
			status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("rate limit: app key %s may send at most %d events per request to %s (%s %g/s); this one has %d",
				schemas.Excerpt(key, 40), l.eventCount.Burst(), routeEvents, l.eventCountKey, l.eventCountRate, n),
		}
	}
	wait := take(l.eventCount, n)
	if wait == 0 {
		return nil
	}
	return &httpError{
		status: http.StatusTooManyRequests,
		msg: fmt.Sprintf("rate limit: app key %s is over %g events/s on %s; retry in %ds",
			schemas.Excerpt(key, 40), l.eventCountRate, routeEvents, retrySeconds(wait)),
		retryAfter: wait,
	}
}

// take spends n tokens of lim now and returns 0, or, when it has fewer than n, spends nothing (a
// refused request does not count) and returns how long until it would have them. n must not
// exceed lim's burst.
func take(lim *rate.Limiter, n int) time.Duration {
	now := time.Now()
	res := lim.ReserveN(now, n)
	wait := res.DelayFrom(now)
	if wait > 0 {
		res.CancelAt(now)
	}
	return wait
}

// retrySeconds is a wait as Retry-After states it: whole seconds, rounded up, at least 1.
func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// addrLimiter counts failed authentications per client address and app key, in at most
// maxTrackedAddrs buckets.
//
// blocked, on every authenticated request, reads m without a lock (sync.Map's Load is lock-free):
// a process-wide mutex there made every request of the login hot path take it in turn once any
// address had failed. Only failures — adding a bucket, evicting — take mu.
type addrLimiter struct {
	limit rate.Limit
	burst int
	size  atomic.Int64 // buckets in m, read without the lock on the hot path
	mu    sync.Mutex   // held by writers of m and size
	m     sync.Map     // failKey → *rate.Limiter
}

// failKey names a bucket: a client address, and the configured app key a request names ("" for
// the address's own bucket: any other name, the admin routes).
type failKey struct {
	addr netip.Prefix
	app  string
}

// newAddrLimiter returns nil (no throttling) when perMinute is 0.
func newAddrLimiter(perMinute float64, burst int) *addrLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &addrLimiter{limit: rate.Limit(perMinute / 60), burst: burst}
}

// blocked reports how long addr must wait before it may try credentials of app again (0: it may
// now). Looking does not spend a token: only failures do.
func (a *addrLimiter) blocked(addr netip.Prefix, app string, now time.Time) time.Duration {
	if a == nil || a.size.Load() == 0 {
		return 0 // nobody failed recently: the usual case costs one atomic load
	}
	v, ok := a.m.Load(failKey{addr, app})
	if !ok {
		return 0
	}
	tokens := v.(*rate.Limiter).TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(a.limit) * float64(time.Second))
}

// failed spends one of the tokens of addr's bucket of app. Concurrent failures may take it below
// zero: every guess that got through is paid for before the next one is allowed.
func (a *addrLimiter) failed(addr netip.Prefix, app string, now time.Time) {
	if a == nil {
		return
	}
	k := failKey{addr, app}
	a.mu.Lock()
	var lim *rate.Limiter
	if v, ok := a.m.Load(k); ok {
		lim = v.(*rate.Limiter)
	} else {
		if a.size.Load() >= maxTrackedAddrs {
			a.evict(now)
		}
		lim = rate.NewLimiter(a.limit, a.burst)
		a.m.Store(k, lim)
		a.size.Add(1)
	}
	a.mu.Unlock()
	lim.ReserveN(now, 1)
}

// evict makes room (a.mu held). A bucket that has refilled carries no state — a new one would
// start full too — so those go first; if that frees less than a quarter of the map, arbitrary
// others go as well. Only a flood from more than maxTrackedAddrs addresses gets there, and
// forgetting some of its history is the price of bounded memory; each eviction pass frees a
// quarter of the map, so its cost is constant per insertion on average.
func (a *addrLimiter) evict(now time.Time) {
	n := a.size.Load()
	a.m.Range(func(k, v any) bool {
		if v.(*rate.Limiter).TokensAt(now) >= float64(a.burst) {
			a.m.Delete(k)
			n--
		}
		return true
	})
	a.m.Range(func(k, _ any) bool {
		if n <= maxTrackedAddrs*3/4 {
			return false
		}
		a.m.Delete(k)
		n--
		return true
	})
	a.size.Store(n)
}

// tracked is the number of buckets (for tests).
func (a *addrLimiter) tracked() int {
	if a == nil {
		return 0
	}
	return int(a.size.Load())
}

// clientAddr is what failed authentications are counted against: the client's IPv4 address, or
// its IPv6 /64 — one host usually holds a whole /64, and counting per address would let it rotate
// through 2^64 of them. The client is the TCP peer, unless the peer is one of proxies: then it is
// the right-most address of X-Forwarded-For that is not a proxy (the left part of the header is
// whatever the client wrote). A proxy that sent no usable header is its own client.
// ClientAddr is the client a request's failed authentication is counted against, as text: its
// address (IPv6: its /64), or the address a trusted proxy's X-Forwarded-For names
// (api.trusted_proxies). The console throttles its failed logins by it too, so that behind a load
// balancer one guessing client does not lock every admin out, nor picks its own bucket.
func (s *Server) ClientAddr(r *http.Request) string {
	if p := clientAddr(r, s.proxies); p.IsValid() {
		return p.String()
	}
	return ""
}

func clientAddr(r *http.Request, proxies []netip.Prefix) netip.Prefix {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(r.RemoteAddr); err != nil {
		return netip.Prefix{} // unknown (not a TCP peer): one shared bucket
	}
	a = a.Unmap().WithZone("")
	if isProxy(a, proxies) {
		a = forwardedClient(r.Header.Values("X-Forwarded-For"), a, proxies)
	}
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// forwardedClient walks X-Forwarded-For (every header line, each a comma-separated list) from the
// right and returns the first address that is not a proxy; peer if there is none or an entry
// cannot be read (nothing to its left can be trusted then).
func forwardedClient(lines []string, peer netip.Addr, proxies []netip.Prefix) netip.Addr {
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			var entry string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				entry, rest = rest, ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a, err := netip.ParseAddr(entry)
			if err != nil {
				if ap, perr := netip.ParseAddrPort(entry); perr == nil {
					a, err = ap.Addr(), nil
				}
			}
			if err != nil {
				return peer
			}
			a = a.Unmap().WithZone("")
			if !isProxy(a, proxies) {
				return a
			}
		}
	}
	return peer
}

func isProxy(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseProxies reads trusted proxies: addresses ("10.0.0.7") or CIDRs ("10.0.0.0/8").
func parseProxies(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %q is not an address or CIDR", i+1, e)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %q is not an address or CIDR", i+1, e)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// throttled is the 429 for an address that failed to authenticate (with app key app, if not "")
// too often.
func throttled(app string, wait time.Duration) error {
	of := ""
	if app != "" {
		of = " with app key " + schemas.Excerpt(app, 40)
	}
	return &httpError{
		status:     http.StatusTooManyRequests,
		msg:        fmt.Sprintf("too many failed authentications from this address%s; retry in %ds", of, retrySeconds(wait)),
		retryAfter: wait,
	}
}
