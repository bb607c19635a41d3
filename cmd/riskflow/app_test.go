package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
)

// The process's log lines mask phone-like numbers wherever a line shows one — its message, a
// string value, an error, a list — in both formats: a configured value is logged as it was set
// ("ops.listen is not used" showed ops.listen=13812345678:80), and an error may quote anything.
func TestLogMasksPhoneNumbers(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log := newLogger(LogConfig{Level: "info", Format: format}, &buf)
		log.Info("lookup of 13812345678 failed", "ops.listen", "13812345678:80",
			"err", errors.New("dial tcp: lookup +86 138 1234 5678: no such host"),
			"brokers", []string{"127.0.0.1:19092", "138-1234-5678:9092"}, "partitions", 4)
		out := buf.String()
		if schemas.ContainsPhone(out) || strings.Contains(out, "5678") {
			t.Errorf("%s: the line shows a phone number:\n%s", format, out)
		}
		if strings.Count(out, schemas.PhoneMask) != 4 || !strings.Contains(out, "127.0.0.1:19092") || !strings.Contains(out, "partitions") {
			t.Errorf("%s: want each number masked and the rest as it was:\n%s", format, out)
		}
	}
}

// JSON logs write durations as the text format does ("1m1s"), not as nanoseconds
// ("failing_for":61000000000), and still mask numbers.
func TestJSONLogDurationsReadable(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(LogConfig{Level: "info", Format: "json"}, &buf)
	log.Info("loop stalled", "failing_for", 61*time.Second, "why", "insert for 13800138000 failed")
	out := buf.String()
	if !strings.Contains(out, `"failing_for":"1m1s"`) {
		t.Errorf("JSON duration: %s", out)
	}
	if strings.Contains(out, "13800138000") {
		t.Errorf("JSON line shows the number: %s", out)
	}
}
