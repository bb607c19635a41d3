package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/client"
)

func TestPublishEvents(t *testing.T) {
	var status int
	var answer, got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = r.Method + " " + r.URL.Path + " " + string(b)
		if u, p, ok := r.BasicAuth(); !ok || u != "app-1" || p != "s" {
			t.Errorf("auth %q %q", u, p)
		}
		if status == 503 {
			w.Header().Set("Retry-After", "2")
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "app-1", "s")
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.VerifyEvent{EventID: "e1", TS: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC), AppID: "app-1", Flow: schemas.FlowOneClickLogin,
		Phone: "13800138000", IP: netip.MustParseAddr("10.1.2.3"), Outcome: schemas.OutcomeSuccess, DecisionID: "api1-01"}
	ctx := context.Background()

	status, answer = 202, `{"code":0,"content":"accepted","accepted":1}`
	if err := c.PublishEvents(ctx, []schemas.VerifyEvent{ev}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, `POST /v1/events [{"event_id":"e1"`) || !strings.Contains(got, `"decision_id":"api1-01"`) {
		t.Errorf("sent %s", got)
	}
	status, answer = 202, `{"code":0,"content":"accepted","accepted":0}`
	if err := c.PublishEvents(ctx, []schemas.VerifyEvent{ev}); !errors.Is(err, client.ErrBadResponse) {
		t.Errorf("fewer acknowledged: %v", err)
	}
	status, answer = 400, `{"code":400,"content":"[0].ip: \"x\" is not an IP address"}`
	err = c.PublishEvents(ctx, []schemas.VerifyEvent{ev})
	var api *client.APIError
	if !errors.As(err, &api) || api.Status != 400 || client.Retryable(err) || !strings.Contains(api.Content, "[0].ip") || api.RetryAfter != 0 {
		t.Errorf("refused batch: %v (retryable %v)", err, client.Retryable(err))
	}
	status, answer = 503, `{"code":503,"content":"publish to Kafka failed"}`
	err = c.PublishEvents(ctx, []schemas.VerifyEvent{ev})
	if err == nil || !client.Retryable(err) || !errors.As(err, &api) || api.RetryAfter != 2*time.Second {
		t.Errorf("Kafka down: %v, retryable %v, want Retry-After 2s", err, client.Retryable(err))
	}
	srv.Close()
	if err := c.PublishEvents(ctx, []schemas.VerifyEvent{ev}); err == nil || !client.Retryable(err) || strings.Contains(err.Error(), "13800138000") {
		t.Errorf("riskflow away: %v", err)
	}
	if err := c.PublishEvents(ctx, nil); err != nil {
		t.Errorf("no events: %v", err)
	}
	// Sent again as it is, a batch over the limit fails again: not retryable, and named so that a
	// caller can split it.
	if err := c.PublishEvents(ctx, make([]schemas.VerifyEvent, client.MaxPublishEvents+1)); err == nil || client.Retryable(err) || !errors.Is(err, client.ErrTooManyEvents) {
		t.Errorf("too many events: %v (retryable %v)", err, client.Retryable(err))
	}
}

// A connection that breaks while the answer is read (riskflow stopped, a proxy reset it) leaves
// the batch's fate unknown: it is a transport failure to send again (events are deduplicated), not
// an unusable answer to drop. Here the 202's body is cut short; a 503's is read as far as it came.
func TestPublishEventsAnswerCutShortIsRetryable(t *testing.T) {
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "200")
		w.WriteHeader(status)
		io.WriteString(w, `{"code":0,"content":"acc`)
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "app-1", "s")
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.VerifyEvent{EventID: "e1", TS: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC), AppID: "app-1", Flow: schemas.FlowOneClickLogin,
		Phone: "13800138000", IP: netip.MustParseAddr("10.1.2.3"), Outcome: schemas.OutcomeSuccess}
	err = c.PublishEvents(context.Background(), []schemas.VerifyEvent{ev})
	if err == nil || !client.Retryable(err) || errors.Is(err, client.ErrBadResponse) || strings.Contains(err.Error(), "13800138000") {
		t.Errorf("202 cut short: %v (retryable %v), want a retryable transport error", err, client.Retryable(err))
	}
}

// Events are sent as JSON, not HTML-escaped JSON: a batch of the most events a call takes, each
// with ids full of '<', '>' and '&' at their longest, stays within the API's default body limit
// (1 MiB) as sent — HTML escaping made each such byte six, and the batch a 413 (not retryable).
func TestPublishEventsAreNotHTMLEscaped(t *testing.T) {
	var size int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		size, body = len(b), string(b)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"code":0,"content":"accepted","accepted":1000}`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "app-1", "s")
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]schemas.VerifyEvent, client.MaxPublishEvents)
	for i := range evs {
		evs[i] = schemas.VerifyEvent{EventID: strings.Repeat("<&>", 21), TS: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC), AppID: strings.Repeat("&", 64),
			Flow: schemas.FlowOneClickLogin, Phone: "13800138000", IP: netip.MustParseAddr("10.1.2.3"), Outcome: schemas.OutcomeSuccess,
			DeviceID: strings.Repeat("<>", 64), ExID: strings.Repeat("a&b", 42)}
	}
	if err := c.PublishEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if size > 1<<20 || !strings.Contains(body, `"event_id":"<&><&>`) {
		t.Errorf("sent %d bytes (the API's default limit is %d), starting %.80s", size, 1<<20, body)
	}
}

// A node that does not publish events answers 503 with the wait before sending again, as every
// 503 but /readyz's does: the batch is retryable and APIError.RetryAfter says when. It had no
// Retry-After, so RetryAfter was 0 and a sender that retries what is retryable sent it again at once.
func TestPublishEventsToANodeWithoutPublisher(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{Keys: map[string]string{"app-1": "s"}}, nil, nil, api.WithLogger(slog.New(slog.DiscardHandler))))
	defer srv.Close()
	c, err := client.New(srv.URL, "app-1", "s")
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.VerifyEvent{EventID: "e1", TS: time.Now().Add(-time.Minute), AppID: "app-1", Flow: schemas.FlowOneClickLogin,
		Phone: "13800138000", IP: netip.MustParseAddr("10.1.2.3"), Outcome: schemas.OutcomeSuccess}
	err = c.PublishEvents(context.Background(), []schemas.VerifyEvent{ev})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || !client.Retryable(err) || ae.RetryAfter != api.UnavailableRetryAfter {
		t.Fatalf("PublishEvents to a node without a publisher: %v (retryable %v, %+v); want a retryable 503 with RetryAfter %s",
			err, client.Retryable(err), ae, api.UnavailableRetryAfter)
	}
}

// stalledPublisher is a Kafka that takes no events: Publish waits until its context ends.
type stalledPublisher struct{}

func (stalledPublisher) Publish(ctx context.Context, _ []schemas.VerifyEvent) error {
	<-ctx.Done()
	return ctx.Err()
}

// Kafka too slow to take the events within the API's own bound (api.PublishWait): the client
// waits for the API's answer — a 503 with Retry-After — rather than giving up at the same moment
// the API does. Both waited 5 s, the client's clock started first, and a sender saw "context
// deadline exceeded" with no Retry-After whenever Kafka was slow (a real node's broker took 2 s
// per event then, its 503 was never read).
func TestPublishEventsGetsTheAnswerOfASlowKafka(t *testing.T) {
	if client.PublishTimeout <= api.PublishWait {
		t.Fatalf("client.PublishTimeout %s is not longer than the API's own bound on Kafka, %s", client.PublishTimeout, api.PublishWait)
	}
	srv := httptest.NewServer(api.New(api.Config{Keys: map[string]string{"app-1": "s"}}, nil, stalledPublisher{}, api.WithLogger(slog.New(slog.DiscardHandler))))
	defer srv.Close()
	c, err := client.New(srv.URL, "app-1", "s")
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.VerifyEvent{EventID: "e1", TS: time.Now().Add(-time.Minute), AppID: "app-1", Flow: schemas.FlowOneClickLogin,
		Phone: "13800138000", IP: netip.MustParseAddr("10.1.2.3"), Outcome: schemas.OutcomeSuccess}
	err = c.PublishEvents(context.Background(), []schemas.VerifyEvent{ev})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RetryAfter == 0 || !client.Retryable(err) {
		t.Fatalf("PublishEvents while Kafka takes nothing: %v; want the API's 503 with its Retry-After", err)
	}
}

// A batch that did not go through because the caller's context ended says so through the error
// chain, as Check's errors do: an event publisher told to stop (its context canceled) must be able
// to tell that from riskflow being away, since Retryable says yes to both.
func TestPublishEventsErrorKeepsTheContextsCause(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := client.New(srv.URL, "app-1", "s")
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.VerifyEvent{EventID: "e1", TS: time.Now(), AppID: "app-1", Flow: schemas.FlowOneClickLogin,
		Phone: "13800138000", IP: netip.MustParseAddr("10.1.2.3"), Outcome: schemas.OutcomeSuccess}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = c.PublishEvents(ctx, []schemas.VerifyEvent{ev})
	if !errors.Is(err, context.DeadlineExceeded) || !client.Retryable(err) {
		t.Errorf("publish past the caller's deadline: %v (errors.Is DeadlineExceeded %v, Retryable %v)", err, errors.Is(err, context.DeadlineExceeded), client.Retryable(err))
	}

	ctx, cancel = context.WithCancel(context.Background())
	<-arrived // the first request's
	go func() { <-arrived; cancel() }()
	err = c.PublishEvents(ctx, []schemas.VerifyEvent{ev})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("publish canceled by the caller: %v, want context.Canceled in its chain", err)
	}
	if err != nil && strings.Contains(err.Error(), "13800138000") {
		t.Errorf("error carries the phone number: %v", err)
	}
}
