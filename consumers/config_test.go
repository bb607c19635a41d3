package consumers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/consumers"
)

func TestConfigValidate(t *testing.T) {
	c := consumers.DefaultConfig()
	c.Brokers = []string{"k1:9092"}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with a broker: %v", err)
	}
	if c.BatchTimeout != 2*time.Millisecond || c.MaxMessageBytes != 0 || c.ClientID != "riskflow" {
		t.Errorf("defaults: %+v", c)
	}
	c = consumers.Config{Brokers: []string{"no-port", "ok:1"}, BatchTimeout: 2 * time.Second, MaxMessageBytes: 100}
	err := c.Validate()
	for _, want := range []string{`brokers: "no-port" is not host:port`, "batch_timeout: 2s is outside 0..1s (0: 2ms)", "max_message_bytes: 100 is below"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if err := (consumers.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "brokers: at least one") {
		t.Errorf("no brokers: %v", err)
	}
}

// A reader queues no more than about 64 MiB of messages as large as the broker takes: counted in
// messages alone (1000), a scorer working through a backlog of 1 MB dead-letter-bound messages
// peaked at 2.1 GB, past its memory limit. Small broker limits keep the count.
func TestReaderQueueBoundedByBytes(t *testing.T) {
	for _, c := range []struct{ maxMessage, want int }{{0, 100}, {1_048_588, 100}, {64 << 10, 1000}, {10 << 20, 100}} {
		cfg := consumers.Config{Brokers: []string{"127.0.0.1:1"}, MaxMessageBytes: c.maxMessage}
		if got := cfg.ReaderQueueCapacity(); got != c.want {
			t.Errorf("max.message.bytes %d: queue of %d messages, want %d", c.maxMessage, got, c.want)
		}
		r := consumers.NewGroupReader(cfg, "t", "g")
		got := r.Config().QueueCapacity
		r.Close()
		if got != c.want {
			t.Errorf("max.message.bytes %d: the group reader queues %d messages, want %d", c.maxMessage, got, c.want)
		}
	}
}
