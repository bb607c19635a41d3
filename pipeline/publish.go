package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
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
	if p.Hasher == nil {
		return errors.New("publish: no phone hasher configured")
	}
	msgs := make([]kafka.Message, len(evs))
	for i := range evs {
		// The key is the hash of the normalized number, as the scorer computes it: "+8613812348000"
		// and "13812348000" are one number and must land on one partition.
		phone, err := schemas.NormalizePhone(evs[i].Phone)
		if err != nil {
			return fmt.Errorf("publish event %s: %w", evs[i].EventID, err)
		}
		v, err := json.Marshal(&evs[i])
		if err != nil {
			return fmt.Errorf("encode event %s: %w", evs[i].EventID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(p.Hasher.Hex(phone)), Value: v}
	}
	if err := p.W.WriteMessages(ctx, msgs...); err != nil {
		// Summarized: kafka-go's WriteErrors names the error once per message, and the API's
		// 503 quoted that list (a batch of 20 with the broker away: "connection refused" 20
		// times, cut at the answer's limit, never saying how many failed of how many).
		return fmt.Errorf("publish %d events: %w", len(evs), consumers.Summarize(err))
	}
	return nil
}
