package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/riskflow/riskflow/schemas"
)

// UnavailableTag is the tag, and the content, of a verdict made by the fail policy.
const UnavailableTag = "risk_unavailable"

const (
	checkPath = "v1/risk/check"
	userAgent = "riskflow-go-client/1"
)

// Client calls riskflow's scoring API. It is safe for concurrent use; make one per process and
// riskflow deployment and share it, so that connections and breaker state are shared too.
type Client struct {
	endpoint  string
	eventsURL string
	auth      string // precomputed Authorization header value
	hc        *http.Client
	timeout   time.Duration
	policy    FailPolicy
	cb        *gobreaker.CircuitBreaker[schemas.RiskCheck]
}

// New returns a client for the riskflow API at baseURL (e.g. "http://riskflow:8080"), which
// authenticates as appKey:secret with HTTP Basic auth.
func New(baseURL, appKey, secret string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("riskflow client: base URL must look like http(s)://host[:port][/prefix]")
	}
	if u.RawQuery != "" {
		// Joined to every request's path, it would be sent with every check: the API refuses a
		// query parameter its routes do not take (400), and every check would fail.
		return nil, errors.New("riskflow client: base URL must hold no query (?…): the API's check and events routes take none")
	}
	if appKey == "" || secret == "" {
		return nil, errors.New("riskflow client: app key and secret are required")
	}
	if strings.Contains(appKey, ":") {
		return nil, errors.New("riskflow client: app key must not contain ':' (HTTP Basic auth)")
	}
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("riskflow client: timeout must be positive, got %s", o.timeout)
	}
	if !o.policy.closed && !schemas.ValidScore(o.policy.score) {
		return nil, fmt.Errorf("riskflow client: fail score %d is not a level (0, 300, 600, 900)", o.policy.score)
	}
	if o.hc != nil && o.tls != nil {
		return nil, errors.New("riskflow client: WithTLSConfig and WithHTTPClient: give the TLS configuration to your HTTP client's transport (client.NewTransport's TLSClientConfig)")
	}
	if o.hc == nil {
		tr := NewTransport()
		tr.TLSClientConfig = o.tls
		o.hc = &http.Client{
			Transport: tr,
			// A redirect is a misconfiguration, and following one would turn the POST into a GET.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	c := &Client{
		endpoint:  u.JoinPath(checkPath).String(),
		eventsURL: u.JoinPath(eventsPath).String(),
		auth:      "Basic " + base64.StdEncoding.EncodeToString([]byte(appKey+":"+secret)),
		hc:        o.hc,
		timeout:   o.timeout,
		policy:    o.policy,
	}
	c.cb = gobreaker.NewCircuitBreaker[schemas.RiskCheck](breakerSettings(o.breaker.withDefaults(), o.logger))
	return c, nil
}

// NewTransport returns the transport a Client uses unless WithHTTPClient replaces it: keep-alive
// connections, enough idle connections per host for a busy verify service (a few thousand logins
// a second at a few milliseconds each), short dial and TLS handshake timeouts, and no proxy from
// the environment (riskflow sits next to the verify service, not behind an egress proxy).
func NewTransport() *http.Transport {
	d := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    128,
		IdleConnTimeout:        60 * time.Second,
		TLSHandshakeTimeout:    time.Second,
		MaxResponseHeaderBytes: 16 << 10,
	}
}

func breakerSettings(s BreakerSettings, logger *slog.Logger) gobreaker.Settings {
	st := gobreaker.Settings{
		Name:        "riskflow-check",
		MaxRequests: s.HalfOpenProbes,
		Timeout:     s.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.ConsecutiveFailures },
		IsSuccessful: func(err error) bool {
			// A 4xx answer is the request's fault: riskflow itself is up.
			var api *APIError
			return err == nil || errors.As(err, &api) && !api.transient()
		},
		IsExcluded: func(err error) bool {
			var ce *callerEnded
			return errors.As(err, &ce)
		},
	}
	if logger != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) {
			level := slog.LevelInfo
			if to == gobreaker.StateOpen {
				level = slog.LevelWarn
			}
			logger.Log(context.Background(), level, "riskflow circuit breaker state changed",
				"breaker", name, "from", from.String(), "to", to.String())
		}
	}
	return st
}

// Check asks riskflow for the verdict on req. It returns within the client's timeout or the
// caller's deadline, whichever is earlier:
//   - riskflow answered: the verdict and nil;
//   - riskflow said the request is wrong (4xx): a zero verdict and an *APIError;
//   - riskflow could not answer: the fail-policy verdict and an *UnavailableError.
func (c *Client) Check(ctx context.Context, req schemas.CheckRequest) (schemas.RiskCheck, error) {
	body, err := encodeJSON(req)
	if err != nil {
		return schemas.RiskCheck{}, fmt.Errorf("riskflow client: encode check request: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return c.unavailable(req, &callerEnded{err})
	}
	start := time.Now()
	rc, err := c.cb.Execute(func() (schemas.RiskCheck, error) { return c.call(ctx, start, req.Phone, body) })
	if err == nil {
		return rc, nil
	}
	var api *APIError
	if errors.As(err, &api) && !api.transient() {
		return schemas.RiskCheck{}, api
	}
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		err = ErrBreakerOpen
	}
	return c.unavailable(req, err)
}

// BreakerState reports the circuit breaker's state: "closed", "half-open" or "open".
func (c *Client) BreakerState() string { return c.cb.State().String() }

// unavailable builds the fail-policy answer for cause.
func (c *Client) unavailable(req schemas.CheckRequest, cause error) (schemas.RiskCheck, error) {
	ue := &UnavailableError{Reason: c.reason(cause), Cause: cause}
	if c.policy.closed {
		return schemas.RiskCheck{}, ue
	}
	s := c.policy.score
	return schemas.RiskCheck{
		Code:    0,
		Content: UnavailableTag,
		Score:   s,
		Tags:    []string{UnavailableTag},
		Detail:  map[string]schemas.TagDetail{UnavailableTag: {Score: s, Reason: ue.Reason}},
		ExID:    req.ExID,
	}, ue
}

// call makes one HTTP request under the per-call timeout and classifies its failure for the
// breaker: a failure after the caller's context ended is wrapped in callerEnded, unless the
// caller's deadline gave riskflow a fair chance (callerDeadline, counted).
func (c *Client) call(parent context.Context, start time.Time, phone string, body []byte) (schemas.RiskCheck, error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	rc, err := c.post(ctx, phone, body)
	if err == nil {
		return rc, nil
	}
	var api *APIError
	switch {
	case errors.As(err, &api):
	case parent.Err() != nil && errors.Is(parent.Err(), context.DeadlineExceeded) && c.fairBudget(parent, start):
		// riskflow had the time it needs and did not answer: a hung node must open the breaker
		// for callers that pass their own budget too, or each of their logins waits it out.
		err = &callerDeadline{wrapCtxErr(err, parent.Err())}
	case parent.Err() != nil:
		err = &callerEnded{wrapCtxErr(err, parent.Err())}
	case ctx.Err() != nil:
		err = wrapCtxErr(err, ctx.Err())
	}
	return rc, err
}

// fairBudget reports whether the caller's deadline left the call, started at start, at least
// FairBudget (or the client's whole timeout, if shorter).
func (c *Client) fairBudget(ctx context.Context, start time.Time) bool {
	dl, ok := ctx.Deadline()
	return ok && dl.Sub(start) >= min(FairBudget, c.timeout)
}

// wrapCtxErr makes sure ctxErr is in err's chain, so that errors.Is(err, context.DeadlineExceeded)
// holds however deep in the transport the deadline was noticed.
func wrapCtxErr(err, ctxErr error) error {
	if errors.Is(err, ctxErr) {
		return err
	}
	return fmt.Errorf("%w: %w", ctxErr, err)
}

func (c *Client) post(ctx context.Context, phone string, body []byte) (schemas.RiskCheck, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return schemas.RiskCheck{}, err
	}
	req.Header = http.Header{
		"Authorization": {c.auth},
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
		"User-Agent":    {userAgent},
		// Marks the request idempotent without sending a header (net/http's convention), so
		// that the transport sends it again on a new connection when the pooled one it went out
		// on turns out closed by the server (replayable). A check changes no state; events are
		// deduplicated by (app_id, event_id).
		"Idempotency-Key": nil,
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return schemas.RiskCheck{}, err
	}
	defer func() {
		// Drain what is left (bounded) so the connection goes back to the pool.
		_, _ = io.CopyN(io.Discard, resp.Body, MaxResponseBytes)
		_ = resp.Body.Close()
	}()

	data, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if readErr == nil && len(data) > MaxResponseBytes {
		readErr = fmt.Errorf("%w: body larger than %d bytes", ErrBadResponse, MaxResponseBytes)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if readErr != nil {
			return schemas.RiskCheck{}, fmt.Errorf("read the verdict: %w", readErr)
		}
		var rc schemas.RiskCheck
		if err := schemas.UnmarshalJSON(data, &rc); err != nil {
			// The decoder may quote the body; mask anything phone-like it quotes.
			return schemas.RiskCheck{}, fmt.Errorf("%w: decode verdict: %s", ErrBadResponse, maskPhones(err.Error(), phone))
		}
		if !schemas.ValidScore(rc.Score) {
			return schemas.RiskCheck{}, fmt.Errorf("%w: score %d is not a level", ErrBadResponse, rc.Score)
		}
		if rc.Code != 0 || rc.Content != "success" || rc.ID == "" {
			// JSON that is no verdict (`{}`, null, a proxy's or another service's 200) decodes
			// into score 0: a pass that riskflow never gave. A verdict is code 0, content
			// "success" and carries its id (the OpenAPI document's RiskCheck).
			// Excerpt: short, escaped, phone numbers masked in any form.
			return schemas.RiskCheck{}, fmt.Errorf("%w: not a verdict (code %d, content %s, id %s; want code 0, content \"success\" and an id)",
				ErrBadResponse, rc.Code, schemas.Excerpt(rc.Content, 40), schemas.Excerpt(rc.ID, 40))
		}
		return rc, nil
	case resp.StatusCode >= 400:
		if readErr != nil {
			data = nil // the status alone still says what happened
		}
		return schemas.RiskCheck{}, newAPIError(resp.StatusCode, resp.Header, data, phone)
	default:
		return schemas.RiskCheck{}, fmt.Errorf("%w: HTTP %d", ErrBadResponse, resp.StatusCode)
	}
}
