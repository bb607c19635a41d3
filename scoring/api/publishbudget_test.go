package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// slowKafka publishes as kafka-go's writer does against a broker that is slow, not down: a call
// whose context ends returns, but its events stay in the writer (held) until the broker takes
// them (ack).
type slowKafka struct {
	mu    sync.Mutex
	held  int // events handed over and not yet taken by the broker
	acked chan struct{}
}

func (k *slowKafka) Publish(ctx context.Context, evs []schemas.VerifyEvent) error {
	k.mu.Lock()
	k.held += len(evs)
	acked := k.acked
	k.mu.Unlock()
	select {
	case <-acked:
		k.mu.Lock()
		k.held -= len(evs)
		k.mu.Unlock()
		return nil
	case <-ctx.Done():
		go func() { // the writer still holds the batch and writes it later
			<-acked
			k.mu.Lock()
			k.held -= len(evs)
			k.mu.Unlock()
		}()
		return ctx.Err()
	}
}

func (k *slowKafka) holding() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held
}

// With Kafka slow, a client sending its events again after every 503 must not pile them up in
// the writer: the events of requests already answered stay counted until the writer is done with
// them, and past the node's budget a request is refused before anything is handed over.
func TestEventsHeldForSlowKafkaAreBounded(t *testing.T) {
	k := &slowKafka{acked: make(chan struct{})}
	s := New(Config{Keys: map[string]string{"app1": "secret1"}}, nil, k)
	s.publishWait = time.Millisecond
	body := func(i int) string {
		evs := make([]string, 10)
		for j := range evs {
			evs[j] = fmt.Sprintf(`{"event_id":"e%03d-%02d","ts":"2025-03-14T17:26:53+08:00","app_id":"app1","flow":"one_click_login","phone":"13812348000","ip":"1.1.1.1","outcome":"success"}`, i, j)
		}
		return "[" + strings.Join(evs, ",") + "]"
	}
	s.publishing = newByteBudget(3 * int64(len(body(0)))) // three requests' events
	post := func(i int) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body(i)))
		r.SetBasicAuth("app1", "secret1")
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}

	for i := range 20 {
		w := post(i)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Fatalf("request %d to a slow Kafka: %d (Retry-After %q) %s, want 503 with Retry-After", i, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
		if i >= 3 && !strings.Contains(w.Body.String(), "still waiting for Kafka") {
			t.Errorf("request %d past the budget: %s, want it to say events are still waiting for Kafka", i, w.Body)
		}
	}
	if n := k.holding(); n > 30 {
		t.Fatalf("the writer holds %d events of requests answered 503, want at most the budget's 30", n)
	}

	// Kafka catches up: the budget comes back.
	close(k.acked)
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := post(99)
		if w.Code == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Kafka took every event: %d %s, want 202", w.Code, w.Body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type panickingPublisher struct{}

func (panickingPublisher) Publish(context.Context, []schemas.VerifyEvent) error {
	panic("publisher bug")
}

// The publisher runs beside the handler (its events stay counted after the answer): a panic of
// it is answered 500 as a handler's own, not the end of the node.
func TestEventsPublisherPanicIsAnInternalError(t *testing.T) {
	s := New(Config{Keys: map[string]string{"app1": "secret1"}}, nil, panickingPublisher{})
	r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(`{"event_id":"e1","ts":"2025-03-14T17:26:53+08:00","app_id":"app1","flow":"one_click_login","phone":"13812348000","ip":"1.1.1.1","outcome":"success"}`))
	r.SetBasicAuth("app1", "secret1")
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusInternalServerError {
		t.Errorf("a publisher's panic: %d %s, want 500", w.Code, w.Body)
	}
}
