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
	for _, want := range []string{`brokers: "no-port" is not host:port`, "batch_timeout: 2s is outside", "max_message_bytes: 100 is below"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if err := (consumers.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "brokers: at least one") {
		t.Errorf("no brokers: %v", err)
	}
}
