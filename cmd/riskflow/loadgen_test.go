package main

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/schemas"
)

// loadgen --out kafka keeps publishing through a broker outage: a batch refused because the broker
// is away is sent again until it is taken; one the broker refuses for good ends the run.
func TestLoadgenRetriesABrokerOutage(t *testing.T) {
	evs := []schemas.VerifyEvent{{EventID: "e1"}}
	away := kafka.WriteErrors{refused}
	calls := 0
	pub := retryingPublish(slog.New(slog.DiscardHandler), func(context.Context, []schemas.VerifyEvent) error {
		if calls++; calls <= 2 {
			return away
		}
		return nil
	})
	if err := pub(context.Background(), evs); err != nil || calls != 3 {
		t.Errorf("publish through an outage of 2 attempts: %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	tooLarge := kafka.WriteErrors{kafka.MessageSizeTooLarge}
	pub = retryingPublish(slog.New(slog.DiscardHandler), func(context.Context, []schemas.VerifyEvent) error {
		calls++
		return tooLarge
	})
	if err := pub(context.Background(), evs); !consumers.IsRejection(err) || calls != 1 {
		t.Errorf("a batch refused for good: %v after %d calls, want the refusal after 1", err, calls)
	}
}

// refused is a refused connection, as kafka-go reports a stopped broker.
var refused = errors.Join(errors.New("dial tcp 127.0.0.1:19092: connect"), syscall.ECONNREFUSED)
