package client

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"
)

// Defaults. See the package documentation for the contract they serve.
const (
	// DefaultTimeout bounds one Check when the caller's context allows longer. A healthy answer
	// is a LAN round trip plus rule evaluation over in-memory features; 50 ms leaves room for
	// queueing and GC pauses while staying small next to the rest of a login (the carrier's
	// token exchange), so that a riskflow outage is not felt by users.
	DefaultTimeout = 50 * time.Millisecond

	// DefaultBreakerFailures is how many consecutive failures open the breaker: enough that a
	// stray timeout or a restarted pod does not open it, few enough that a dead riskflow costs a
	// handful of logins at most DefaultTimeout each before calls stop.
	DefaultBreakerFailures = 5

	// DefaultBreakerOpenTimeout is how long the breaker stays open before one probe goes through.
	// A probe costs one login at most DefaultTimeout, so probing every second is cheap, and logins
	// are scored again within a second of riskflow's recovery.
	DefaultBreakerOpenTimeout = time.Second

	// FairBudget is the least time a caller's own deadline must leave a Check for its expiry to
	// count against riskflow in the breaker (or the client's timeout, if shorter). A healthy
	// answer takes a few milliseconds; a caller whose budget was nearly spent before it called
	// is not riskflow's failure, but one that gave 30 ms to a hung node is: without this, a
	// verify service passing its own 30 ms budget never opened the breaker, and every login
	// waited the 30 ms for as long as the node hung.
	FairBudget = 10 * time.Millisecond

	// MaxResponseBytes caps how much of a response body is read. A verdict is a few hundred bytes.
	MaxResponseBytes = 64 << 10
)

// Option configures a Client.
type Option func(*options)

type options struct {
	timeout time.Duration
	hc      *http.Client
	policy  FailPolicy
	breaker BreakerSettings
	logger  *slog.Logger
	tls     *tls.Config
}

// WithTimeout sets the per-call timeout (default DefaultTimeout). A call never runs longer than
// this nor past the caller's context deadline. It must be positive.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithHTTPClient replaces the client's own tuned HTTP client (see NewTransport). The per-call
// timeout still applies through the request context; the client's redirect policy is the caller's.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// WithTLSConfig sets the TLS configuration of the client's own transport (NewTransport), keeping
// its tuning and its refusal of redirects: a riskflow node whose certificate is from a private CA
// (RootCAs), or reached by a name its certificate does not hold (ServerName). The configuration is
// copied. It cannot be combined with WithHTTPClient, whose transport is the caller's.
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tls = c.Clone() } }

// WithFailPolicy sets what Check returns when riskflow cannot answer (default FailOpen()).
func WithFailPolicy(p FailPolicy) Option { return func(o *options) { o.policy = p } }

// WithBreakerSettings tunes the circuit breaker; zero fields keep their defaults.
func WithBreakerSettings(s BreakerSettings) Option { return func(o *options) { o.breaker = s } }

// WithLogger logs the breaker's state changes (open at Warn, half-open and closed at Info).
// Without it the client logs nothing; per-call errors are returned, for the caller to log.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// BreakerSettings are the circuit breaker's knobs. Failures that count: timeouts, connection
// errors, unusable answers, and HTTP 5xx, 408 and 429. A 4xx answer counts as a success (riskflow
// is up and answering); a call whose caller's context ended first is not counted at all — unless
// it was the caller's deadline and the call had at least FairBudget: then it is a timeout.
type BreakerSettings struct {
	// ConsecutiveFailures opens the breaker (default DefaultBreakerFailures).
	ConsecutiveFailures uint32
	// OpenTimeout is how long the breaker stays open before it turns half-open and lets probes
	// through (default DefaultBreakerOpenTimeout).
	OpenTimeout time.Duration
	// HalfOpenProbes is how many calls may probe at once while half-open, and how many must
	// succeed in a row to close the breaker (default 1). One failed probe opens it again.
	HalfOpenProbes uint32
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = DefaultBreakerFailures
	}
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = DefaultBreakerOpenTimeout
	}
	if s.HalfOpenProbes == 0 {
		s.HalfOpenProbes = 1
	}
	return s
}

// FailPolicy decides the verdict Check returns, alongside an *UnavailableError, when riskflow
// cannot answer. The zero value is FailOpen.
type FailPolicy struct {
	closed bool
	score  int
}

// FailOpen passes the login: score 0 with the "risk_unavailable" tag. This is the default.
func FailOpen() FailPolicy { return FailPolicy{} }

// FailWithScore returns the given level (0, 300, 600 or 900) with the "risk_unavailable" tag;
// FailWithScore(600), for instance, sends every login to SMS while riskflow is unavailable.
func FailWithScore(score int) FailPolicy { return FailPolicy{score: score} }

// FailClosed returns a zero verdict with the error: the caller decides what an unscored login means.
func FailClosed() FailPolicy { return FailPolicy{closed: true} }
