package pipeline

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/schemas"
)

// Publisher writes validated events to verify.events, keyed by the phone's keyed hash so every
// attempt of one number lands on one partition.
type Publisher struct {
	W      MessageWriter
	Hasher *schemas.PhoneHasher
}

// Publish implements api.Publisher: nil once Kafka acknowledged every event.
func (p *Publisher) Publish(ctx context.Context, evs []schemas.VerifyEvent) error {
	msgs := make([]kafka.Message, len(evs))
	for i := range evs {
		v, err := json.Marshal(&evs[i])
		if err != nil {
			return fmt.Errorf("encode event %s: %w", evs[i].EventID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(p.Hasher.Hex(evs[i].Phone)), Value: v}
	}
	if err := p.W.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d events: %w", len(evs), err)
	}
	return nil
}
