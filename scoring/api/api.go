// Package api serves riskflow's HTTP contract: POST /v1/risk/check (the riskCheck verdict on the
// login hot path), POST /v1/events (events into Kafka), GET /healthz, /readyz and /metrics.
//
// Every non-2xx answer is {"code":<non-zero>,"content":"<what is wrong, which field>"}; statuses
// are decided in one place (status). Apps authenticate with HTTP Basic app_key:secret, compared in
// constant time; an app may only score or publish for its own app_id.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/riskflow/riskflow/schemas"
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
type Config struct {
	Keys         map[string]string // app key → secret
	MaxBodyBytes int64             // default 1 MiB
	RatePerApp   float64           // requests per second per app key; 0 = unlimited
	Burst        int               // bucket size; default max(1, RatePerApp)
	NodeID       string            // prefix of response ids
}

// Server is the HTTP handler set.
type Server struct {
	cfg     Config
	checker Checker
	pub     Publisher
	ready   func() error
	log     *slog.Logger
	limits  sync.Map // app key → *bucket
	seq     atomic.Uint64
	m       *metrics
	mux     *http.ServeMux
	reg     prometheus.Gatherer
	rules   RulesAdmin
	admins  map[string]string
}

// Option configures a Server.
type Option func(*Server)

// WithReadiness sets the readiness probe (nil error = ready). /v1/risk/check answers 503 while not ready.
func WithReadiness(f func() error) Option {
	return func(s *Server) {
		if f != nil {
			s.ready = f
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithRegistry registers the API's metrics on reg and serves reg's metrics on /metrics.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(s *Server) { s.m = newMetrics(reg); s.reg = reg }
}

// New builds the API. pub may be nil (then /v1/events answers 503).
func New(cfg Config, checker Checker, pub Publisher, opts ...Option) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.RatePerApp))
	}
	s := &Server{cfg: cfg, checker: checker, pub: pub, ready: func() error { return nil }, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	if s.m == nil {
		reg := prometheus.NewRegistry()
		s.m, s.reg = newMetrics(reg), reg
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/risk/check", s.instrument("check", s.handleCheck))
	mux.HandleFunc("POST /v1/events", s.instrument("events", s.handleEvents))
	mux.HandleFunc("GET /healthz", s.instrument("healthz", s.handleHealth))
	mux.HandleFunc("GET /readyz", s.instrument("readyz", s.handleReady))
	mux.HandleFunc("GET /v1/rules", s.instrument("rules", s.handleGetRules))
	mux.HandleFunc("PUT /v1/rules", s.instrument("rules", s.handlePutRules))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", s.instrument("other", func(w http.ResponseWriter, r *http.Request) (int, error) {
		// Every method of every path lands here unless a route above matched, so a known path
		// reached with the wrong method is told apart from an unknown path.
		if allow, ok := allowed[r.URL.Path]; ok {
			w.Header().Set("Allow", allow)
			return 0, &httpError{http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, allow)}
		}
		return 0, &httpError{http.StatusNotFound, fmt.Sprintf("no route %s %s (see POST /v1/risk/check, POST /v1/events, GET /healthz, /readyz, /metrics)", r.Method, r.URL.Path)}
	}))
	s.mux = mux
	return s
}

// allowed lists the methods of every route, for 405 answers.
var allowed = map[string]string{
	"/v1/risk/check": "POST",
	"/v1/events":     "POST",
	"/healthz":       "GET, HEAD",
	"/readyz":        "GET, HEAD",
	"/metrics":       "GET, HEAD",
	"/v1/rules":      "GET, HEAD, PUT",
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// httpError is an error with a status chosen where it happened.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

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
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", mbe.Limit)
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
				s.log.Error("handler panic", "route", route, "panic", p)
				writeJSON(w, http.StatusInternalServerError, schemas.ErrorBody{Code: http.StatusInternalServerError, Content: "internal error"})
				s.m.observe(route, http.StatusInternalServerError, time.Since(start))
			}
		}()
		code, err := h(w, r)
		if err != nil {
			var msg string
			code, msg = status(err)
			if code >= 500 {
				s.log.Error("request failed", "route", route, "status", code, "err", err)
			}
			writeJSON(w, code, schemas.ErrorBody{Code: code, Content: msg})
		}
		s.m.observe(route, code, time.Since(start))
	}
}

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

// auth checks HTTP Basic credentials in constant time and returns the app key.
func (s *Server) auth(r *http.Request) (string, error) {
	key, err := basicAuth(r, s.cfg.Keys, "app_key", "app key")
	if err != nil {
		return "", err
	}
	if !s.allow(key) {
		return "", &httpError{http.StatusTooManyRequests, fmt.Sprintf("rate limit: app key %q is over %.0f requests/s", key, s.cfg.RatePerApp)}
	}
	return key, nil
}

// basicAuth checks HTTP Basic credentials against creds (name → secret) in constant time: the
// answer's timing tells neither whether the name exists nor how much of the secret matched.
func basicAuth(r *http.Request, creds map[string]string, field, what string) (string, error) {
	name, secret, ok := r.BasicAuth()
	if !ok {
		return "", &httpError{http.StatusUnauthorized, fmt.Sprintf("authorization: HTTP Basic %s:secret is required", field)}
	}
	want, known := creds[name]
	if !known {
		want = "\x00never-matches\x00" // compare anyway
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 || !known {
		return "", &httpError{http.StatusUnauthorized, fmt.Sprintf("authorization: unknown %s or wrong secret", what)}
	}
	return name, nil
}

func (s *Server) body(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, &httpError{http.StatusBadRequest, "read body: " + err.Error()}
	}
	return b, nil
}

func checkApp(key, appID, field string) error {
	if appID != key {
		return &httpError{http.StatusForbidden, fmt.Sprintf("%s: %q is not the app of the authenticated key %q", field, appID, key)}
	}
	return nil
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) (int, error) {
	key, err := s.auth(r)
	if err != nil {
		return 0, err
	}
	b, err := s.body(w, r)
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
	if err := s.ready(); err != nil {
		return 0, fmt.Errorf("%w: %v", errNotReady, err)
	}
	rc, err := s.checker.Check(&req)
	if err != nil && rc.RulesVersion == "" {
		return 0, fmt.Errorf("%w: %v", errNotReady, err)
	}
	if err != nil {
		s.log.Warn("rule evaluation error", "err", err)
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
	return http.StatusOK, nil
}

type accepted struct {
	Code     int    `json:"code"`
	Content  string `json:"content"`
	Accepted int    `json:"accepted"`
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) (int, error) {
	key, err := s.auth(r)
	if err != nil {
		return 0, err
	}
	b, err := s.body(w, r)
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
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.pub.Publish(ctx, evs); err != nil {
		return 0, &httpError{http.StatusServiceUnavailable, "publish to Kafka failed: " + err.Error()}
	}
	writeJSON(w, http.StatusAccepted, accepted{Code: 0, Content: "accepted", Accepted: len(evs)})
	return http.StatusAccepted, nil
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c
		}
	}
	return 0
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) (int, error) {
	writeJSON(w, http.StatusOK, schemas.ErrorBody{Code: 0, Content: "ok"})
	return http.StatusOK, nil
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) (int, error) {
	if err := s.ready(); err != nil {
		return 0, fmt.Errorf("%w: %v", errNotReady, err)
	}
	writeJSON(w, http.StatusOK, schemas.ErrorBody{Code: 0, Content: "ready"})
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
