// Package api serves riskflow's HTTP contract: POST /v1/risk/check (the riskCheck verdict on the
// login hot path), POST /v1/events (events into Kafka), GET /healthz, /readyz and /metrics, the
// admin routes (rules, explain, labels: admin.go, rules.go) and GET /v1/openapi.yaml, the OpenAPI 3
// document of all of them (openapi.yaml, checked against real answers by openapi_test.go). With a
// DecisionLog every verdict served is handed to it once written (the decision log).
//
// Every non-2xx answer is {"code":<non-zero>,"content":"<what is wrong, which field>"}; statuses
// are decided in one place (status), and bodies written in one place (instrument), which keeps
// them under maxErrorBody bytes. Contents show a caller's values only through schemas.Excerpt
// (short, escaped, phone numbers masked), and request bodies must be JSON (415 otherwise).
//
// Apps authenticate with HTTP Basic app_key:secret, compared in constant time; an app may only
// score or publish for its own app_id. Each app key has its own rate buckets for checks and for
// events, and failed authentications are throttled per client address (limit.go).
package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/internal/httppath"
	"github.com/riskflow/riskflow/scoring/internal/secret"
)

// Checker scores a request (scoring.Scorer).
type Checker interface {
	Check(req *schemas.CheckRequest) (schemas.RiskCheck, error)
}

// Publisher hands validated events to the stream (Kafka verify.events).
type Publisher interface {
	Publish(ctx context.Context, evs []schemas.VerifyEvent) error
}

// Config is the API's behaviour.
//
// The YAML keys are those of riskflow's api section; the fields without one are set by the
// program. DefaultConfig has the defaults, Validate names every key that is wrong.
type Config struct {
	Keys map[string]string `yaml:"keys"` // app key → secret
	// PreviousKeys are secrets being retired (app key → the old secret): accepted as well as the
	// app's secret in Keys while its verify services move over, so that a secret is rotated
	// without refusing the instances not yet moved (and the auth-failure throttle then locking
	// out their address). Each app still using one is logged, at most once an hour; remove the
	// entry once the logs no longer name the app.
	PreviousKeys map[string]string `yaml:"previous_keys"`
	MaxBodyBytes int64             `yaml:"max_body_bytes"` // default 1 MiB
	RatePerApp   float64           `yaml:"rate_per_app"`   // /v1/risk/check requests per second per app key; 0 = unlimited
	Burst        int               `yaml:"-"`              // check bucket size; default max(1, RatePerApp)
	// EventsRatePerApp limits /v1/events requests per second per app key, in a bucket of its own
	// (0 = unlimited): publishing a backlog must not eat the budget of the login hot path.
	EventsRatePerApp float64 `yaml:"events_rate_per_app"`
	EventsBurst      int     `yaml:"-"` // events bucket size; default max(1, EventsRatePerApp)
	// EventsPerApp limits the events /v1/events accepts per second per app key, whatever the
	// number of requests they come in (0 = unlimited): a request of n events takes n tokens, and
	// one of more events than the bucket holds (a second's worth) is refused with 413.
	EventsPerApp      float64 `yaml:"events_per_app"`
	EventsPerAppBurst int     `yaml:"-"` // default max(1, EventsPerApp)
	// AppLimits overrides the three rates above for some app keys (app key → its rates): the
	// limit that holds a small app's abuse in check throttles a large app's real traffic. A rate
	// an entry leaves out is the section's; 0 is unlimited, as above.
	AppLimits map[string]AppLimit `yaml:"app_limits"`
	// AuthFailuresPerMinute is the rate at which a client address (IPv6: its /64) may fail to
	// authenticate once it has used up AuthFailureBurst failures (default 10); beyond it every
	// request from that address gets 429 until a token is back. Each app key has such a budget
	// of its own at an address, which only requests naming it spend and wait on. 0 = no throttling.
	AuthFailuresPerMinute float64 `yaml:"auth_failures_per_minute"`
	AuthFailureBurst      int     `yaml:"-"`
	// TrustedProxies are the addresses or CIDRs of the reverse proxies in front of the API. A
	// request from one of them is counted against the client its X-Forwarded-For names (the
	// right-most address that is not itself a trusted proxy); X-Forwarded-For from anybody else
	// is ignored, since a client can write anything there. Empty: every request counts against
	// its TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxConns bounds the client connections the server holds open (ConnGuard); 0 = three
	// quarters of the open-file limit, at most 16,384.
	MaxConns int    `yaml:"max_conns"`
	NodeID   string `yaml:"-"` // prefix of response ids
}

// AppLimit is one app key's rates (api.app_limits); nil: the section's.
type AppLimit struct {
	RatePerApp       *float64 `yaml:"rate_per_app"`
	EventsRatePerApp *float64 `yaml:"events_rate_per_app"`
	EventsPerApp     *float64 `yaml:"events_per_app"`
}

// rates are the app key's three rates: its AppLimits entry's where set, the section's otherwise.
func (c *Config) rates(key string) (check, eventsReqs, events float64) {
	check, eventsReqs, events = c.RatePerApp, c.EventsRatePerApp, c.EventsPerApp
	if l, ok := c.AppLimits[key]; ok {
		if l.RatePerApp != nil {
			check = *l.RatePerApp
		}
		if l.EventsRatePerApp != nil {
			eventsReqs = *l.EventsRatePerApp
		}
		if l.EventsPerApp != nil {
			events = *l.EventsPerApp
		}
	}
	return check, eventsReqs, events
}

// DefaultConfig is the configuration of a node: 1 MiB bodies, no rate limits, 20 failed
// authentications per minute per address after a burst of 10; no keys.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 1 << 20, AuthFailuresPerMinute: 20}
}

// Validate reports every key that is wrong, each error starting with the key's name.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes != 0 && c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d is below 1024", c.MaxBodyBytes))
	}
	if c.RatePerApp < 0 {
		errs = append(errs, errors.New("rate_per_app: must not be negative"))
	}
	if c.EventsRatePerApp < 0 {
		errs = append(errs, errors.New("events_rate_per_app: must not be negative"))
	}
	if c.EventsPerApp < 0 {
		errs = append(errs, errors.New("events_per_app: must not be negative"))
	}
	if c.MaxConns < 0 {
		errs = append(errs, errors.New("max_conns: must not be negative (0 picks a limit from the open-file limit)"))
	}
	if c.AuthFailuresPerMinute < 0 {
		errs = append(errs, errors.New("auth_failures_per_minute: must not be negative (0 turns the throttle off)"))
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("trusted_proxies: %w", err))
	}
	for k, v := range c.Keys {
		if k == "" || v == "" {
			errs = append(errs, errors.New("keys: app key and secret must both be non-empty"))
			break
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Keys)) {
		if why := SecretFlaw(c.Keys[k]); why != "" && schemas.CheckID("app_id", k, schemas.MaxAppIDLen) == nil {
			errs = append(errs, fmt.Errorf("keys: the secret of %s %s", schemas.Excerpt(k, 40), why))
		}
	}
	// An app key is the app_id its requests carry (checkApp): a name no app_id can be would
	// authenticate and then have every check and event refused.
	for _, k := range slices.Sorted(maps.Keys(c.Keys)) {
		if err := schemas.CheckID("app_id", k, schemas.MaxAppIDLen); k != "" && err != nil {
			fe, _ := schemas.AsFieldError(err)
			errs = append(errs, fmt.Errorf("keys: app key %s is no app_id: %s", schemas.Excerpt(k, 16), fe.Reason))
		} else if strings.Contains(k, ":") {
			// HTTP Basic ends the user name at the first colon (RFC 7617): "shop:cn:secret" is
			// user "shop", and the app would have every request refused as a wrong secret.
			errs = append(errs, fmt.Errorf("keys: app key %s holds ':', which HTTP Basic cannot carry in a user name (its requests would all be refused): use an app_id without one", schemas.Excerpt(k, 40)))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.AppLimits)) {
		if _, ok := c.Keys[k]; !ok {
			errs = append(errs, fmt.Errorf("app_limits: %s is not in keys (limits are set for a configured app key)", schemas.Excerpt(k, 40)))
			continue
		}
		l := c.AppLimits[k]
		for _, r := range []struct {
			name string
			v    *float64
		}{{"rate_per_app", l.RatePerApp}, {"events_rate_per_app", l.EventsRatePerApp}, {"events_per_app", l.EventsPerApp}} {
			if r.v != nil && (*r.v < 0 || math.IsNaN(*r.v) || math.IsInf(*r.v, 0)) {
				errs = append(errs, fmt.Errorf("app_limits.%s.%s: %g is not 0 (unlimited) or a positive rate", k, r.name, *r.v))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.PreviousKeys)) {
		v := c.PreviousKeys[k]
		switch cur, ok := c.Keys[k]; {
		case k == "" || v == "":
			errs = append(errs, errors.New("previous_keys: app key and secret must both be non-empty"))
		case !ok:
			errs = append(errs, fmt.Errorf("previous_keys: %s is not in keys (a previous secret is kept beside the app's current one)", k))
		case cur == v:
			errs = append(errs, fmt.Errorf("previous_keys: %s has the same secret as in keys (put the new secret in keys)", k))
		case SecretFlaw(v) != "":
			errs = append(errs, fmt.Errorf("previous_keys: the secret of %s %s", schemas.Excerpt(k, 40), SecretFlaw(v)))
		}
	}
	return errors.Join(errs...)
}

// SecretFlaw says what makes secret unfit for HTTP Basic ("" when nothing does): one of only
// spaces (a blank password), or one beginning or ending in a space or holding a control character
// — the trailing newline a YAML block scalar ("app1: |") keeps, a pasted tab — which no client
// sends: the node had started and refused every request of the app as a wrong secret. The secret
// itself is not shown.
func SecretFlaw(secret string) string {
	switch {
	case secret == "":
		return ""
	case strings.TrimSpace(secret) == "":
		return "is blank (only spaces)"
	case strings.TrimSpace(secret) != secret:
		return "begins or ends with a space or a newline (a YAML block scalar \"|\" keeps one: write the secret on the key's line)"
	case strings.ContainsFunc(secret, unicode.IsControl):
		return "holds a control character (a newline, a tab)"
	}
	return ""
}

// Server is the HTTP handler set.
type Server struct {
	cfg       Config
	checker   Checker
	pub       Publisher
	ready     func(exclude ...string) error
	serving   func() error
	log       *slog.Logger
	apps      map[string]*appLimits // app key → its rate buckets; fixed at New
	authFails *addrLimiter          // failed authentications per client address; nil = off
	proxies   []netip.Prefix        // cfg.TrustedProxies
	seq       atomic.Uint64
	m         *metrics
	mux       *http.ServeMux
	other     http.Handler // the answer to a path or method no route has (404, 405)
	reg       prometheus.Gatherer
	metricsAt string // where /metrics is served instead ("": on the API's routes)
	rules     RulesAdmin
	admins    map[string]string
	// prevLogged: app key → when (unix ns) its use of a previous secret was last logged.
	prevLogged sync.Map
	// needApproval refuses PUT /v1/rules and POST /v1/rules/rollback: a pack takes two admins (WithRulesApproval).
	needApproval bool
	decisions    DecisionLog
	explainer    Explainer
	stateHealth  func() error // WithStateHealth; nil: every explanation is taken as current
	labeler      Labeler
	fails        failureLog  // 5xx answers, logged once per run (faillog.go)
	bodies       *byteBudget // bytes of large bodies being read (body)
	publishing   *byteBudget // bytes of /v1/events bodies whose events the publisher still holds (publish)
	publishWait  time.Duration
}

// Option configures a Server.
type Option func(*Server)

// WithServing sets what /v1/risk/check needs to answer (nil error = it can), e.g. a feature
// replica that has caught up once; while it fails, checks get 503. Without it, checks are gated on
// the readiness probe. Keep it narrower than readiness: a node whose state is merely stale (the
// broker is away) should still answer checks, while /readyz says it is stale.
func WithServing(f func() error) Option {
	return func(s *Server) { s.serving = f }
}

// WithReadiness sets the readiness probe reported by /readyz (nil error = ready). exclude names
// the checks a caller leaves out (/readyz?exclude=archiver); f answers an error wrapping
// ErrUnknownCheck for a name it has no check of.
func WithReadiness(f func(exclude ...string) error) Option {
	return func(s *Server) {
		if f != nil {
			s.ready = f
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithMetricsElsewhere leaves /metrics off the API's routes (a 404 saying where they are): the
// process serves them on its ops port, which the verify services calling the API need not reach —
// rule ids and hit counts show how the detection works.
func WithMetricsElsewhere(where string) Option { return func(s *Server) { s.metricsAt = where } }

// MetricsElsewhere is the 404's content for /metrics (any method) on the API's address of a node
// that serves its metrics at where (WithMetricsElsewhere), also while the node starts.
// method is the request's, shown short.
func MetricsElsewhere(method, where string) string {
	return "no route " + schemas.ShowName(method, 16) + " /metrics on the API's address: this node serves its metrics on " + where
}

// WithRegistry registers the API's metrics on reg and serves reg's metrics on /metrics.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(s *Server) { s.m = newMetrics(reg, &s.fails); s.reg = reg }
}

// New builds the API. pub may be nil (then /v1/events answers 503).
func New(cfg Config, checker Checker, pub Publisher, opts ...Option) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.RatePerApp))
	}
	if cfg.EventsBurst <= 0 {
		cfg.EventsBurst = max(1, int(cfg.EventsRatePerApp))
	}
	if cfg.EventsPerAppBurst <= 0 {
		cfg.EventsPerAppBurst = max(1, int(cfg.EventsPerApp))
	}
	if cfg.AuthFailureBurst <= 0 {
		cfg.AuthFailureBurst = defaultAuthFailureBurst
	}
	s := &Server{
		cfg: cfg, checker: checker, pub: pub, ready: func(...string) error { return nil }, log: slog.Default(),
		apps: newAppLimits(&cfg), authFails: newAddrLimiter(cfg.AuthFailuresPerMinute, cfg.AuthFailureBurst),
		bodies:     newByteBudget(defaultBodyBudget(cfg.MaxBodyBytes)),
		publishing: newByteBudget(defaultBodyBudget(cfg.MaxBodyBytes)), publishWait: PublishWait,
	}
	s.proxies, _ = parseProxies(cfg.TrustedProxies) // Validate reports a bad entry
	for _, o := range opts {
		o(s)
	}
	if s.serving == nil {
		s.serving = func() error { return s.ready() }
	}
	if s.m == nil {
		reg := prometheus.NewRegistry()
		s.m, s.reg = newMetrics(reg, &s.fails), reg
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+routeCheck, s.instrument("check", s.handleCheck))
	mux.HandleFunc("POST "+routeEvents, s.instrument("events", s.handleEvents))
	mux.HandleFunc("GET /healthz", s.instrument("healthz", s.handleHealth))
	mux.HandleFunc("GET /readyz", s.instrument("readyz", s.handleReady))
	mux.HandleFunc("GET /v1/rules", s.instrument("rules", s.handleGetRules))
	mux.HandleFunc("PUT /v1/rules", s.instrument("rules", s.handlePutRules))
	mux.HandleFunc("GET /v1/rules/versions", s.instrument("rules", s.handleRulesVersions))
	mux.HandleFunc("POST /v1/rules/rollback", s.instrument("rules", s.handleRulesRollback))
	mux.HandleFunc("POST /v1/admin/explain", s.instrument("explain", s.handleExplain))
	mux.HandleFunc("POST /v1/admin/labels", s.instrument("labels", s.handleLabels))
	mux.HandleFunc("GET /v1/openapi.yaml", s.instrument("openapi", s.handleOpenAPI))
	if s.metricsAt == "" {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	} else {
		mux.HandleFunc("GET /metrics", s.instrument("other", func(_ http.ResponseWriter, r *http.Request) (int, error) {
			return 0, &httpError{status: http.StatusNotFound, msg: MetricsElsewhere(r.Method, s.metricsAt)}
		}))
	}
	// The routes an unknown path's 404 names: this address's own (a node that serves /metrics on
	// ops.listen says where, as its /metrics here does).
	routes := "POST /v1/risk/check, POST /v1/events, GET /healthz, /readyz, /metrics, /v1/openapi.yaml"
	if s.metricsAt != "" {
		routes = "POST /v1/risk/check, POST /v1/events, GET /healthz, /readyz, /v1/openapi.yaml; /metrics is on " + s.metricsAt
	}
	s.other = s.instrument("other", func(w http.ResponseWriter, r *http.Request) (int, error) {
		// Every method of every path lands here unless a route above matched, so a known path
		// reached with the wrong method is told apart from an unknown path.
		// Method and path are the caller's: shown short, escaped, phone numbers masked.
		// The routes match the path as sent: /v1/risk%2Fcheck is not /v1/risk/check (its
		// decoded form), so it is an unknown path, not a known one with the wrong method.
		target := r.URL.EscapedPath()
		if target == "" {
			target = r.URL.Host // CONNECT host:port, which names no path
		}
		method, path := schemas.ShowName(r.Method, 16), schemas.ShowName(target, 64)
		if r.URL.EscapedPath() == "/metrics" && s.metricsAt != "" {
			// Not a wrong method: /metrics is on ops.listen, whatever the method.
			return 0, &httpError{status: http.StatusNotFound, msg: MetricsElsewhere(r.Method, s.metricsAt)}
		}
		if allow, msg, ok := NotAllowed(r.Method, r.URL.EscapedPath()); ok {
			w.Header().Set("Allow", allow)
			return 0, &httpError{status: http.StatusMethodNotAllowed, msg: msg}
		}
		return 0, &httpError{status: http.StatusNotFound, msg: fmt.Sprintf("no route %s %s (see %s)", method, path, routes)}
	})
	mux.Handle("/", s.other)
	s.mux = mux
	return s
}

// The two routes that take request bodies, each with its own rate bucket per app key.
const (
	routeCheck  = "/v1/risk/check"
	routeEvents = "/v1/events"
)

// allowed lists the methods of every route, for 405 answers.
var allowed = map[string]string{
	"/v1/risk/check":     "POST",
	"/v1/events":         "POST",
	"/healthz":           "GET, HEAD",
	"/readyz":            "GET, HEAD",
	"/metrics":           "GET, HEAD",
	"/v1/rules":          "GET, HEAD, PUT",
	"/v1/rules/versions": "GET, HEAD",
	"/v1/rules/rollback": "POST",
	"/v1/admin/explain":  "POST",
	"/v1/admin/labels":   "POST",
	"/v1/openapi.yaml":   "GET, HEAD",
}

// NotAllowed reports whether path (as sent, escaped) is a route of the API that does not take
// method, with the Allow header and the content of the API's 405 answer: what a node still
// starting answers too, before it says it is not ready (cmd/riskflow's startingHandler).
func NotAllowed(method, path string) (allow, content string, ok bool) {
	allow, known := allowed[path]
	if !known || slices.Contains(strings.Split(allow, ", "), method) {
		return "", "", false
	}
	return allow, fmt.Sprintf("method %s is not allowed on %s: use %s", schemas.ShowName(method, 16), schemas.ShowName(path, 64), allow), true
}

// ServeHTTP implements http.Handler. A path not in its clean form ("/v1//risk/check",
// "/v1/./events") is no route: ServeMux would answer it with an empty redirect to the clean path,
// which is not the API's Error and which clients that refuse redirects (scoring/client) could
// only report as an unusable answer. A CONNECT to a host:port (no path) is no route either:
// ServeMux would answer it with its text/plain "404 page not found".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; r.Method == http.MethodConnect && p == "" || r.Method != http.MethodConnect && p != httppath.Clean(p) {
		s.other.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// httpError is an error with a status chosen where it happened.
type httpError struct {
	status     int
	msg        string
	retryAfter time.Duration // > 0: answered with a Retry-After header (429)
	cause      error         // what failed, if anything (instrument tells a client gone by it)
}

func (e *httpError) Error() string { return e.msg }
func (e *httpError) Unwrap() error { return e.cause }

var (
	errNotReady  = errors.New("not ready")
	errNoPublish = errors.New("event publishing is not configured on this node")
)

// status maps an error to the HTTP status and the body's content — the one place that decides.
func status(err error) (int, string) {
	var he *httpError
	var fe *schemas.FieldError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body: is larger than %d bytes (api.max_body_bytes)", mbe.Limit)
	case errors.As(err, &fe):
		return http.StatusBadRequest, fe.Error()
	case errors.Is(err, errNotReady), errors.Is(err, errNoPublish):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "timed out: " + err.Error()
	}
	return http.StatusInternalServerError, "internal error"
}

// handler writes its success response itself and returns its status, or returns an error for
// instrument to answer.
type handler func(http.ResponseWriter, *http.Request) (int, error)

func (s *Server) instrument(route string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p) // net/http's way to abort a response; it must reach the server
				}
				s.log.Error("handler panic", "route", route, "panic", schemas.Excerpt(fmt.Sprint(p), maxLogErr))
				writeJSON(w, http.StatusInternalServerError, schemas.ErrorBody{Code: http.StatusInternalServerError, Content: "internal error"})
				s.m.observe(route, http.StatusInternalServerError, time.Since(start))
			}
		}()
		code, err := h(w, r)
		if err != nil {
			var msg string
			code, msg = status(err)
			if code >= 500 && errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				// The client went away (closed the connection, gave up waiting) and the wait
				// for a store ended with it: nobody reads the answer, and the store did not
				// fail — a 5xx here made /readyz say the route was failing.
				code, msg = StatusClientClosedRequest, "the client closed the request before it was answered: "+msg
			}
			var he *httpError
			switch {
			case errors.As(err, &he) && he.retryAfter > 0:
				w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(he.retryAfter)))
			case code == http.StatusUnauthorized:
				// RFC 9110 §11.6.1: a 401 names the scheme to answer it with.
				w.Header().Set("WWW-Authenticate", `Basic realm="riskflow", charset="UTF-8"`)
			case errors.Is(err, errNotReady) && route != "readyz":
				// A node replaying its state says when to come back, as the starting node does
				// (cmd/riskflow's startingHandler); a probe is not retried, so /readyz has none.
				w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(NotReadyRetryAfter)))
			case code == http.StatusServiceUnavailable && route != "readyz":
				// Every other 503 says when to come back too (a node without a publisher, the
				// rules' history unreachable, a timeout): without it a client that retries what
				// is retryable — client.Retryable says a 503 is — sent the request again at once.
				w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(UnavailableRetryAfter)))
			}
			// Contents are built not to echo phone numbers; masking here as well covers text
			// that comes from elsewhere (a Kafka error, a rejected rule pack).
			msg = schemas.MaskPhones(msg)
			body := errorBody(code, msg)
			switch {
			case errors.Is(err, errNotReady):
				// The node's state, not this request, is what fails: the parts that are not
				// ready log their own changes once. A line per probe or per refused check would
				// flood the log for as long as a broker outage or a start-up replay lasts.
				s.log.Debug("request refused: not ready", "route", route, "status", code, "err", boundedErr(err))
			case code >= 500:
				s.fails.failed(s.log, route, start, code, err)
			default:
				s.log.Debug("request refused", "route", route, "status", code, "content", schemas.Excerpt(msg, maxLogErr))
			}
			writeBody(w, code, body)
		}
		if code < 400 {
			// Only an answer the route gave in full ends a run of its failures: a 400 refused
			// before the broker was asked says nothing of it.
			s.fails.ok(s.log, route, start)
		}
		s.m.observe(route, code, time.Since(start))
	}
}

// maxErrorBody bounds every error answer. Contents are built short (schemas.Excerpt), but some
// carry text from elsewhere (a rejected rule pack, a Kafka error): the cap applies here, to all.
const maxErrorBody = 1024

// errorBody is the JSON of an error answer, content cut so that the body (newline included) is
// at most maxErrorBody bytes. It is written without HTML escaping: the answer is JSON, and
// "<phone>" should read as it is.
func errorBody(code int, content string) []byte {
	const more = "… (cut)"
	if b := encodeErrorBody(code, content); len(b) <= maxErrorBody {
		return b
	}
	// The longest start of content that fits with the marker. Escapes make the JSON longer than
	// the text (a line break or a quote takes 2 bytes, a control character 6), so the cut is
	// found by encoding, not by subtracting the excess: a rejected pack's problems, quotes and
	// line breaks throughout, were cut to nothing but the marker when the excess was taken from
	// the text's length. No more than maxErrorBody bytes of text can fit.
	content = cutUTF8(content, maxErrorBody)
	lo, hi := 0, len(content) // content[:lo]+more fits; content[:hi+1]+more does not (or hi is the end)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(encodeErrorBody(code, cutUTF8(content, mid)+more)) <= maxErrorBody {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return encodeErrorBody(code, cutUTF8(content, lo)+more)
}

// encodeErrorBody is the JSON of an error answer, newline included.
func encodeErrorBody(code int, content string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(schemas.ErrorBody{Code: code, Content: content}) // cannot fail: a struct of an int and a string
	return buf.Bytes()
}

// cutUTF8 returns the first n bytes of s (n ≥ 0), backing up so as not to split a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	n = max(0, min(n, len(s)))
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxLogErr bounds the error text of a log line.
const maxLogErr = 512

// boundedErr is err as a log line shows it: at most maxLogErr bytes, escaped, phone numbers
// masked (an error may quote a request).
func boundedErr(err error) string { return schemas.Excerpt(err.Error(), maxLogErr) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"code":500,"content":"encode response"}`)
	}
	writeBody(w, code, append(b, '\n'))
}

// writeBody writes a JSON body (ending in a newline).
func writeBody(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

// auth authenticates an app for route and spends a token of its bucket there; it returns the app
// key.
func (s *Server) auth(r *http.Request, route string) (string, error) {
	key, err := s.authenticate(r, s.cfg.Keys, s.cfg.PreviousKeys, "app_key", "app key", true)
	if err != nil {
		return "", err
	}
	if err := s.rateLimited(key, route); err != nil {
		return "", err
	}
	return key, nil
}

// crossOrigin is net/http's cross-site request forgery check: a request a browser sends from
// another origin (Sec-Fetch-Site, or an Origin other than the Host) with a method other than GET,
// HEAD and OPTIONS is refused; requests without those headers — every client but a browser —
// pass.
var crossOrigin = http.NewCrossOriginProtection()

// crossSite refuses, with 403, a browser's request from another origin (crossOrigin).
func crossSite(r *http.Request) error {
	if err := crossOrigin.Check(r); err != nil {
		return &httpError{status: http.StatusForbidden, msg: fmt.Sprintf("%s %s from another site's page is refused: riskflow's API takes no request a browser sends on another origin's behalf (Sec-Fetch-Site / Origin); call it from a server, or from the console",
			schemas.ShowName(r.Method, 16), r.URL.Path)}
	}
	return nil
}

// authenticate checks HTTP Basic credentials against creds, unless the client's address failed
// too often lately: then it answers 429 without looking at them. A wrong name or secret costs the
// address a token; a missing Authorization header does not (it guesses nothing). With perName
// (app keys) a request naming one of creds is counted in that name's bucket at the address, so
// that one app's wrong secret does not lock out the other apps calling from the same host; any
// other name is counted in the address's own bucket (limit.go).
//
// A browser's request from another site is refused before its credentials are looked at
// (crossSite): a browser that had once been given an admin's Basic credentials sends them with
// any site's form, and a text/plain form posted to POST /v1/rules/rollback arrived authenticated.
func (s *Server) authenticate(r *http.Request, creds, previous map[string]string, field, what string, perName bool) (string, error) {
	if err := crossSite(r); err != nil {
		return "", err
	}
	addr, now := clientAddr(r, s.proxies), time.Now()
	var bucket string
	if given, _, ok := r.BasicAuth(); ok && perName {
		if _, known := creds[given]; known {
			bucket = given
		}
	}
	if wait := s.authFails.blocked(addr, bucket, now); wait > 0 {
		return "", throttled(bucket, wait)
	}
	name, old, err := basicAuth(r, creds, previous, field, what)
	if errors.Is(err, errBadCredentials) {
		if !perName {
			// An app's right credentials at an admin route are no guess: 403 saying what the route
			// takes, the address's budget unspent (a verify service trying the admin routes with
			// its key locked the admins at its address out of them).
			if app, given, _ := r.BasicAuth(); s.AppKey(app, given) {
				return "", appKeyAtAdminRoute(r, app)
			}
		}
		s.authFails.failed(addr, bucket, now)
	}
	if old {
		s.previousUsed(name, now)
	}
	return name, err
}

// AppKey reports whether name and secret are an app's right credentials (api.keys, or its
// previous secret), compared in constant time: the console answers such a login that it takes an
// admin's, as the admin routes do (appKeyAtAdminRoute), without counting a failed login.
func (s *Server) AppKey(name, secret string) bool {
	ok, _ := matches(name, secret, s.cfg.Keys, s.cfg.PreviousKeys)
	return ok
}

// appKeyAtAdminRoute is the 403 for app's right credentials at an admin route.
func appKeyAtAdminRoute(r *http.Request, app string) error {
	return &httpError{status: http.StatusForbidden, msg: fmt.Sprintf("authorization: app key %s (api.keys) is no admin: %s %s takes an admin's credentials (api.admin_keys); an app key calls POST /v1/risk/check and POST /v1/events",
		schemas.Excerpt(app, 40), schemas.ShowName(r.Method, 16), schemas.ShowName(r.URL.Path, 64))}
}

// previousUsed logs, at most once an hour per name, that name authenticated with its previous
// secret: the operator removes it from previous_keys once no app is named any more.
func (s *Server) previousUsed(name string, now time.Time) {
	v, _ := s.prevLogged.LoadOrStore(name, new(atomic.Int64))
	last := v.(*atomic.Int64)
	if l := last.Load(); l != 0 && now.UnixNano()-l < int64(time.Hour) || !last.CompareAndSwap(l, now.UnixNano()) {
		return
	}
	s.log.Warn("an app authenticated with its previous secret (api.previous_keys): its verify services have not all moved to the new one", "app_key", name)
}

// errBadCredentials marks a wrong name or secret (not a missing header).
var errBadCredentials = errors.New("bad credentials")

// basicAuth checks HTTP Basic credentials against creds (name → secret), or previous (name → a
// secret being retired; may be nil), in constant time (matches). old reports that the previous
// secret matched.
func basicAuth(r *http.Request, creds, previous map[string]string, field, what string) (name string, old bool, err error) {
	name, given, ok := r.BasicAuth()
	if !ok {
		return "", false, &httpError{status: http.StatusUnauthorized, msg: fmt.Sprintf("authorization: HTTP Basic %s:secret is required", field)}
	}
	ok, old = matches(name, given, creds, previous)
	if !ok {
		return "", false, fmt.Errorf("%w: %w", errBadCredentials,
			&httpError{status: http.StatusUnauthorized, msg: fmt.Sprintf("authorization: unknown %s or wrong secret", what)})
	}
	return name, old, nil
}

// matches reports whether given is name's secret in creds, or its previous one (old), in constant
// time: the timing tells neither whether the name exists, nor the secret's length, nor how much
// of it matched.
func matches(name, given string, creds, previous map[string]string) (ok, old bool) {
	const never = "\x00never-matches\x00" // compared anyway
	want, known := creds[name]
	if !known {
		want = never
	}
	prev, hasPrev := previous[name]
	if !hasPrev {
		prev = never
	}
	cur, older := secret.Equal(given, want), secret.Equal(given, prev)
	if !known || !cur && !(older && hasPrev) {
		return false, false
	}
	return true, !cur
}

// jsonTypes says which request bodies the JSON routes take, for 415 answers.
const jsonTypes = "application/json or application/*+json (charset, if given, utf-8); no Content-Type is read as JSON"

// checkJSON refuses a request body declared as anything but JSON: a form or text body is a
// client bug better named than parsed. A missing Content-Type is taken as JSON.
func checkJSON(r *http.Request) error {
	if err := checkEncoding(r); err != nil {
		return err
	}
	if ct := r.Header["Content-Type"]; len(ct) == 1 && ct[0] == "application/json" {
		return nil // what clients send; parsing it would allocate on the login hot path
	}
	return checkContentType(r, jsonTypes, func(mt string) bool {
		return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
	})
}

// yamlTypes says what PUT /v1/rules takes, for 415 answers.
const yamlTypes = "a YAML rule pack: application/yaml, application/x-yaml, text/yaml, text/x-yaml, text/plain or JSON; no Content-Type is fine"

// checkYAML accepts what a YAML rule pack is sent as. JSON is YAML. application/x-www-form-urlencoded
// is what curl sends with --data-binary unless told otherwise, so it is tolerated: refusing it
// would break every admin script written before this check existed.
func checkYAML(r *http.Request) error {
	if err := checkEncoding(r); err != nil {
		return err
	}
	return checkContentType(r, yamlTypes, func(mt string) bool {
		switch mt {
		case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain",
			"application/json", "application/x-www-form-urlencoded":
			return true
		}
		return strings.HasPrefix(mt, "application/") && (strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+yaml"))
	})
}

// checkEncoding answers 415 to a compressed body (a Content-Encoding other than identity), naming
// the header: the server decodes no content coding, and gzip read as JSON would be reported as a
// puzzling bad byte, a plain body sent with the header accepted by chance.
func checkEncoding(r *http.Request) error {
	for _, v := range r.Header["Content-Encoding"] {
		for ce := range strings.SplitSeq(v, ",") {
			if ce = strings.TrimSpace(ce); ce != "" && !strings.EqualFold(ce, "identity") {
				return &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Encoding %s is not accepted: send the body uncompressed", schemas.Excerpt(ce, 40))}
			}
		}
	}
	return nil
}

// checkContentType answers 415 unless the request's Content-Type is absent, or a media type ok
// accepts with a charset (if any) of UTF-8, given once. want describes what is accepted.
func checkContentType(r *http.Request, want string, ok func(mediaType string) bool) error {
	if n := len(r.Header["Content-Type"]); n > 1 {
		// The first was read and the others ignored: a body declared both JSON and a form was
		// read as whichever the client happened to write first.
		return &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type is given %d times: send one, %s", n, want)}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	switch {
	case err != nil:
		return &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %s is malformed: send %s", schemas.Excerpt(ct, 40), want)}
	case !ok(mt):
		return &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %s is not accepted: send %s", schemas.Excerpt(mt, 40), want)}
	}
	if cs, has := params["charset"]; has && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("charset %s is not accepted: the body must be UTF-8", schemas.Excerpt(cs, 40))}
	}
	return nil
}

// body reads the request's body, at most cfg.MaxBodyBytes. A body larger than freeBodyBytes first
// takes its length from the server's budget of body bytes (bodyBudget): while large bodies
// already hold all of it, the request is answered 503 with Retry-After before its body is read.
// Without the budget, one app key's client sending 1 MiB bodies on a thousand connections and
// holding back each one's last byte made the server hold a gigabyte (each body, read by
// io.ReadAll, twice over) until its read timeout — more than a pod's memory limit, past which
// the process, and every login check it answers, dies. Call release once the body is no longer
// used.
func (s *Server) body(w http.ResponseWriter, r *http.Request) (b []byte, release func(), err error) {
	release = noRelease
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, release, &http.MaxBytesError{Limit: limit}
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	if cl := r.ContentLength; cl > freeBodyBytes {
		if !s.bodies.take(cl) {
			return nil, release, s.bodies.spent()
		}
		release = func() { s.bodies.give(cl) }
	}
	// A known length is read into a buffer of that size (io.ReadAll grows one, up to twice the
	// body); an unknown one (chunked) reads freeBodyBytes first and takes the limit if there is more.
	size := r.ContentLength
	if size < 0 {
		size = freeBodyBytes
	}
	buf := make([]byte, 0, size+1) // +1: reading to EOF without one more growth
	for {
		if len(buf) == cap(buf) {
			if r.ContentLength < 0 && cap(buf) == freeBodyBytes+1 {
				if !s.bodies.take(limit) {
					return nil, release, s.bodies.spent()
				}
				release = func() { s.bodies.give(limit) }
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, rerr := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if rerr == io.EOF {
			return buf, release, nil
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, release, err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A body trickling in (slowloris) until the server's read timeout: say so, without
		// the connection's addresses a net error spells out.
		return nil, release, &httpError{status: http.StatusRequestTimeout, msg: "body: not received in full within the server's read timeout: send the request at once"}
	}
	return nil, release, &httpError{status: http.StatusBadRequest, msg: "body: cannot be read: " + err.Error()}
}

func noRelease() {}

// freeBodyBytes is the body size read without taking from the budget: a check request is a few
// hundred bytes, so the login hot path never waits on the budget, and the connections the server
// may hold (api.max_conns) bound what bodies this small hold together (16,384 × 16 KiB: 256 MiB).
const freeBodyBytes = 16 << 10

// defaultBodyBudget is the bytes of larger bodies the server reads at once: 64 MiB, or eight bodies
// of api.max_body_bytes if that is more.
func defaultBodyBudget(maxBody int64) int64 { return max(64<<20, 8*maxBody) }

// bodyBudgetRetryAfter is the Retry-After of a body refused because the budget was spent: a body
// is read within the server's read timeout (5 s), so a second frees much of it.
const bodyBudgetRetryAfter = time.Second

// byteBudget is a count of bytes that requests take from and give back.
type byteBudget struct {
	size int64
	left atomic.Int64
}

func newByteBudget(size int64) *byteBudget {
	b := &byteBudget{size: size}
	b.left.Store(size)
	return b
}

// take takes n bytes if that many are left.
func (b *byteBudget) take(n int64) bool {
	if b.left.Add(-n) < 0 {
		b.left.Add(n)
		return false
	}
	return true
}

// spent is the answer to a body that found the budget spent.
func (b *byteBudget) spent() error {
	return &httpError{status: http.StatusServiceUnavailable, retryAfter: bodyBudgetRetryAfter,
		msg: fmt.Sprintf("body: the server is already reading large bodies up to its budget (%.1f MiB): send this one again after Retry-After", float64(b.size)/(1<<20))}
}

func (b *byteBudget) give(n int64) {
	if n > 0 {
		b.left.Add(n)
	}
}

func checkApp(key, appID, field string) error {
	if appID == key {
		return nil
	}
	got, want := schemas.Excerpt(appID, 40), schemas.Excerpt(key, 40)
	if !isASCII(appID) || !isASCII(key) {
		// Names that differ in characters which look alike — é composed or as e and an accent, a
		// Cyrillic ѕ for s — read as the same name ("café" is not the app of "café"): their code
		// points say how they differ. Both are ids of at most 64 bytes, checked not to hold a
		// phone number (instrument masks the answer as well).
		got, want = strconv.QuoteToASCII(cutUTF8(appID, 64)), strconv.QuoteToASCII(cutUTF8(key, 64))
	}
	return &httpError{status: http.StatusForbidden, msg: fmt.Sprintf("%s: %s is not the app of the authenticated key %s", field, got, want)}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) (int, error) {
	start := time.Now()
	key, err := s.auth(r, routeCheck)
	if err != nil {
		return 0, err
	}
	if err := noQuery(r); err != nil {
		return 0, err
	}
	if err := checkJSON(r); err != nil {
		return 0, err
	}
	b, release, err := s.body(w, r)
	defer release()
	if err != nil {
		return 0, err
	}
	req, err := schemas.DecodeCheckRequest(b)
	if err != nil {
		return 0, err
	}
	if err := checkApp(key, req.AppID, "app_id"); err != nil {
		return 0, err
	}
	if err := s.serving(); err != nil {
		return 0, fmt.Errorf("%w: %v", errNotReady, err)
	}
	var (
		rc   schemas.RiskCheck
		hits []schemas.RuleHit
	)
	if hc, ok := s.checker.(HitsChecker); ok && s.decisions != nil {
		rc, hits, err = hc.CheckHits(&req)
	} else {
		rc, err = s.checker.Check(&req)
	}
	switch schemas.Classify(err) {
	case schemas.Proceed:
		// err, if any, is a rule that failed at run time: the other rules' verdict stands. The
		// scorer counts and logs it (at most once per 10 s per rule, not once per check).
	case schemas.Retry:
		return 0, fmt.Errorf("%w: %v", errNotReady, err)
	default: // a bad request (400) or a broken node (500): status decides
		return 0, err
	}
	// The envelope is the API's: whatever the checker filled in, a verdict is code 0, "success",
	// and echoes the caller's ex_id.
	rc.Code, rc.Content = 0, "success"
	if rc.ExID == "" {
		rc.ExID = req.ExID
	}
	rc.ID = s.nextID()
	s.m.scores.WithLabelValues(strconv.Itoa(rc.Score)).Inc()
	writeBody(w, http.StatusOK, append(rc.AppendJSON(make([]byte, 0, 256)), '\n'))
	if s.decisions != nil {
		// After the answer is written: the log never delays it. Record does not block.
		s.decisions.Record(req, rc, hits, time.Since(start))
	}
	return http.StatusOK, nil
}

type accepted struct {
	Code     int    `json:"code"`
	Content  string `json:"content"`
	Accepted int    `json:"accepted"`
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) (int, error) {
	key, err := s.auth(r, routeEvents)
	if err != nil {
		return 0, err
	}
	if err := noQuery(r); err != nil {
		return 0, err
	}
	if err := checkJSON(r); err != nil {
		return 0, err
	}
	b, release, err := s.body(w, r)
	defer release()
	if err != nil {
		return 0, err
	}
	evs, err := schemas.DecodeEvents(b)
	if err != nil {
		return 0, err
	}
	// Errors about one event of an array name it as DecodeEvents does: [3].app_id.
	array := firstNonSpace(b) == '['
	field := func(i int, name string) string {
		if array {
			return fmt.Sprintf("[%d].%s", i, name)
		}
		return name
	}
	now := time.Now()
	for i := range evs {
		if err := schemas.CheckNotFuture(&evs[i], now, schemas.MaxClockSkew); err != nil {
			fe, _ := schemas.AsFieldError(err)
			return 0, &schemas.FieldError{Field: field(i, fe.Field), Reason: fe.Reason}
		}
		if err := checkApp(key, evs[i].AppID, field(i, "app_id")); err != nil {
			return 0, err
		}
	}
	if s.pub == nil {
		return 0, errNoPublish
	}
	if err := s.eventsLimited(key, len(evs)); err != nil {
		return 0, err
	}
	if err := s.publish(r.Context(), evs, int64(len(b))); err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return 0, err // the client went away (publish)
		}
		// A broker away for a moment: ask the sender to wait before it sends the batch again,
		// instead of every verify service retrying at once into a broker coming back.
		return 0, &httpError{status: http.StatusServiceUnavailable, msg: "publish to Kafka failed: " + err.Error(), retryAfter: publishRetryAfter}
	}
	writeJSON(w, http.StatusAccepted, accepted{Code: 0, Content: "accepted", Accepted: len(evs)})
	return http.StatusAccepted, nil
}

// NotReadyRetryAfter is the Retry-After of a 503 from a route of a node that is not ready yet
// (its feature state or lists still being read).
const NotReadyRetryAfter = 5 * time.Second

// UnavailableRetryAfter is the Retry-After of a 503 that names no wait of its own: the node does
// not publish events, a store it needs (the rules' history, the pack file) could not be reached,
// or the request timed out.
const UnavailableRetryAfter = 5 * time.Second

// PublishWait bounds how long POST /v1/events waits for Kafka to take the events before it
// answers 503 (client.PublishTimeout waits longer, to read that answer).
const PublishWait = 5 * time.Second

// publishRetryAfter is the Retry-After of a 503 on /v1/events when Kafka did not take the events.
const publishRetryAfter = 2 * time.Second

// publishHold bounds how long the publisher keeps events of a request already answered: past
// the writer's own attempts (5 of 10 s each) and the batches queued before them.
const publishHold = 2 * time.Minute

// publish hands evs (size: the bytes of the body they came in) to the publisher and waits for
// Kafka's acknowledgement at most s.publishWait. The events stay counted in s.publishing until the
// publisher is done with them, not until the request is answered: kafka-go's writer keeps and
// writes the batches of a call whose context ended, so with Kafka slow (not down) a client sending
// again after each 503 piled up batch after batch in the writer — every one answered 503, every
// one written later — while the node's memory grew without bound (held-out run: 751 of 899
// requests of 1,000 events answered 503 against a broker running one second in ten, all of their
// events in the state minutes later). Past the budget a request is answered 503 before anything
// is handed over.
func (s *Server) publish(ctx context.Context, evs []schemas.VerifyEvent, size int64) error {
	if !s.publishing.take(size) {
		return fmt.Errorf("events sent earlier are still waiting for Kafka, up to this node's budget (%.1f MiB): send these again after Retry-After",
			float64(s.publishing.size)/(1<<20))
	}
	started := time.Now() // orders the outcome recorded late among the route's others (failureLog.ok)
	type result struct {
		err    error
		panicv any
	}
	done := make(chan result, 1)
	go func() {
		defer s.publishing.give(size)
		// A panic of the publisher is the handler's to answer (500), as it was when the handler
		// called it; here, outside the handler, it would end the process.
		defer func() {
			if p := recover(); p != nil {
				done <- result{panicv: p}
			}
		}()
		// Not the request's context: the events stay counted until the writer is done with them.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishHold)
		defer cancel()
		done <- result{err: s.pub.Publish(pctx, evs)}
	}()
	t := time.NewTimer(s.publishWait)
	defer t.Stop()
	select {
	case r := <-done:
		if r.panicv != nil {
			panic(r.panicv)
		}
		return r.err
	case <-t.C:
		return fmt.Errorf("Kafka did not acknowledge %d events within %s; they may still be written: send them again as they are (events are deduplicated by app and id)",
			len(evs), s.publishWait)
	case <-ctx.Done():
		// The client went away (closed the connection, gave up waiting) before Kafka answered.
		// That is no failure of this node's: answered 503, it made /readyz say "degraded:
		// events … failed" and counted a 5xx for RiskflowAPIErrors while Kafka took every event —
		// any app key's client with a short timeout could page the operator. What Kafka does
		// with the events is recorded for the route when the publisher returns.
		go func() {
			r := <-done
			switch {
			case r.panicv != nil:
				s.log.Error("publisher panic", "route", "events", "panic", schemas.Excerpt(fmt.Sprint(r.panicv), maxLogErr))
				s.fails.failed(s.log, "events", started, http.StatusInternalServerError, errors.New("internal error"))
			case r.err != nil:
				s.fails.failed(s.log, "events", started, http.StatusServiceUnavailable, fmt.Errorf("publish to Kafka failed: %w", r.err))
			default:
				s.fails.ok(s.log, "events", started)
			}
		}()
		return &httpError{status: StatusClientClosedRequest, msg: fmt.Sprintf("the client closed the request before Kafka acknowledged its %d events: %v", len(evs), ctx.Err())}
	}
}

// StatusClientClosedRequest is the status recorded for a request whose client went away before
// the answer (nginx's 499): nobody reads it, and it is not the node's failure — not a 5xx in
// riskflow_api_requests_total, nor a failing route in /readyz.
const StatusClientClosedRequest = 499

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c
		}
	}
	return 0
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) (int, error) {
	if err := noQuery(r); err != nil {
		return 0, err
	}
	writeJSON(w, http.StatusOK, schemas.ErrorBody{Code: 0, Content: "ok"})
	return http.StatusOK, nil
}

// Degrader is a part of the node that checks do not wait for (the decision log) and that can
// fail on its own: Degraded says how, or "" while it works. /readyz names it after "degraded:".
type Degrader interface {
	Degraded() string
}

// ErrUnknownCheck is what a readiness probe (WithReadiness) answers for an excluded name that is
// no check's (not merely one this process does not run): /readyz answers 400, so that a load
// balancer's probe with a mistyped name fails at once instead of counting a check it meant to
// leave out.
var ErrUnknownCheck = errors.New("no readiness check of that name")

// handleReady answers whether the node can answer checks. Routes failing on their own meanwhile
// — POST /v1/events while Kafka does not take events, labels while ClickHouse is away — do not
// make it unready (checks are answered all the same, and every node shares the broker: taking
// them out of rotation would refuse the logins too), but the answer names them after
// "degraded:", as riskflow_api_failing_seconds counts how long: a node answered "ready" while
// every event sent to it was refused with 503.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) (int, error) {
	degraded := ""
	d := s.fails.degraded()
	if dl, ok := s.decisions.(Degrader); ok {
		if why := dl.Degraded(); why != "" {
			d = append(d, why)
		}
	}
	if len(d) > 0 {
		degraded = "; degraded: " + strings.Join(d, "; ")
	}
	q, err := Query(r, "exclude")
	if err != nil {
		return 0, err
	}
	if err := s.ready(q["exclude"]...); err != nil {
		if errors.Is(err, ErrUnknownCheck) {
			return 0, &schemas.FieldError{Field: "exclude", Reason: schemas.MaskPhones(err.Error())}
		}
		return 0, fmt.Errorf("%w: %v%s", errNotReady, err, degraded)
	}
	writeJSON(w, http.StatusOK, schemas.ErrorBody{Code: 0, Content: "ready" + degraded})
	return http.StatusOK, nil
}

// nextID returns a unique response id: node prefix + sequence, hex.
func (s *Server) nextID() string {
	var b [8]byte
	n := s.seq.Add(1)
	for i := 7; i >= 0; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	return s.cfg.NodeID + hex.EncodeToString(b[:])
}
