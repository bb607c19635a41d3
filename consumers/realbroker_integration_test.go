//go:build integration

package consumers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// RealBroker and OwnTopic are realBroker and testTopic for the package's external tests.
var (
	RealBroker = realBroker
	OwnTopic   = testTopic
)

// realBroker is the configuration of the broker make test started (RISKFLOW_KAFKA_BROKERS); the
// test is skipped without one.
func realBroker(t *testing.T) Config {
	t.Helper()
	brokers := os.Getenv("RISKFLOW_KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("RISKFLOW_KAFKA_BROKERS is not set (make test starts Kafka and sets it)")
	}
	c := DefaultConfig()
	c.Brokers = strings.Split(brokers, ",")
	return c
}

// testTopic returns a topic name of the test's own, prefix and a random suffix, and deletes the
// topic when the test ends (whoever created it by then).
func testTopic(t *testing.T, c Config, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	topic := prefix + hex.EncodeToString(b)
	t.Cleanup(func() {
		cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
		_, _ = cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})
	return topic
}
