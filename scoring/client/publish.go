package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

const eventsPath = "v1/events"

// PublishTimeout bounds PublishEvents when the caller's context has no earlier deadline. It is
// longer than riskflow's own wait for Kafka (5 s, then a 503 with Retry-After), so that a slow
// Kafka is that answer, not a timeout of the client's.
const PublishTimeout = 7 * time.Second

// MaxPublishEvents is the most events one PublishEvents call sends (the API's default body limit
// of 1 MiB holds about 3,000 events; this leaves room).
const MaxPublishEvents = 1000

// PublishEvents sends verification attempts with their outcomes to riskflow (POST /v1/events),
// which writes them to Kafka verify.events; nil means riskflow acknowledged every event. Set each
// event's DecisionID to the id of the verdict Check returned for the attempt, so the decision log
// joins verdict and outcome.
//
// It is off the login hot path: it has its own timeout (PublishTimeout, or the caller's earlier
// deadline), does not go through the check's circuit breaker and has no fail policy. A refused
// batch (4xx) is an *APIError naming the field (e.g. "[2].ip: …"); a batch riskflow could not
// take now (429, 503, transport) is an error to retry later. Events are validated by riskflow,
// not here.
func (c *Client) PublishEvents(ctx context.Context, evs []schemas.VerifyEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if len(evs) > MaxPublishEvents {
		return fmt.Errorf("riskflow client: %w: %d; send at most %d per call", ErrTooManyEvents, len(evs), MaxPublishEvents)
	}
	body, err := encodeJSON(evs)
	if err != nil {
		return fmt.Errorf("riskflow client: encode events: %w: %w", errUnsendable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.eventsURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("riskflow client: %w", err)
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
		return maskedErr(fmt.Errorf("riskflow client: publish %d events: %w", len(evs), err))
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, MaxResponseBytes)
		_ = resp.Body.Close()
	}()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	switch {
	case resp.StatusCode == http.StatusAccepted && readErr != nil:
		// The connection broke while the answer came: whether riskflow kept the events is not
		// known, and sending them again is safe (deduplicated), so this is retryable, not an
		// unusable answer.
		return maskedErr(fmt.Errorf("riskflow client: publish %d events: read the answer: %w", len(evs), readErr))
	case resp.StatusCode == http.StatusAccepted:
		var a struct {
			Accepted int `json:"accepted"`
		}
		if err := json.Unmarshal(data, &a); err != nil || a.Accepted != len(evs) {
			return fmt.Errorf("%w: %d of %d events acknowledged", ErrBadResponse, a.Accepted, len(evs))
		}
		return nil
	case resp.StatusCode >= 400:
		return newAPIError(resp.StatusCode, resp.Header, data, "")
	}
	return fmt.Errorf("%w: HTTP %d", ErrBadResponse, resp.StatusCode)
}

// ErrTooManyEvents is the error of a PublishEvents call given more than MaxPublishEvents events:
// split the batch.
var ErrTooManyEvents = errors.New("too many events in one PublishEvents call")

// errUnsendable marks a batch the client cannot encode: sent again, it fails again.
var errUnsendable = errors.New("events cannot be encoded")

// Retryable reports whether a PublishEvents error may pass if the batch is sent again later
// (riskflow or Kafka unavailable, rate limit); false for a batch riskflow refused, or one the
// client cannot send as it is (ErrTooManyEvents, events it cannot encode).
func Retryable(err error) bool {
	var api *APIError
	if errors.As(err, &api) {
		return api.transient()
	}
	return err != nil && !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrTooManyEvents) && !errors.Is(err, errUnsendable)
}

// encodeJSON is json.Marshal without its HTML escaping: riskflow reads JSON, not HTML, and an id
// or reason holding '<', '>' or '&' would take six bytes for each, so that a batch within the API's
// body limit as written could be refused as too large (413, not retryable) as sent.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// maskedError is an error whose text has phone-like numbers masked (a transport error may quote
// what it was given), its chain kept: errors.Is(err, context.Canceled) still tells a caller that
// stopped from riskflow being away.
type maskedError struct {
	msg string
	err error
}

func maskedErr(err error) error { return &maskedError{msg: maskPhones(err.Error(), ""), err: err} }

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }
