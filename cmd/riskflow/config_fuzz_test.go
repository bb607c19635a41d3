package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/riskflow/riskflow/internal/bounded"
	"github.com/riskflow/riskflow/schemas"
)

// validateLine is how every line of Validate's error starts: the key it is about.
var validateLine = regexp.MustCompile(`^[a-z]+\.[a-z_]+[.:\[ ]`)

// FuzzLoadConfig feeds configuration files (--config) to loadConfig and what it accepts to
// Validate, as serve does. Whatever the file, both return within seconds and without a panic;
// their errors are safe to print (valid UTF-8, no control character but the newlines between
// several errors, no phone number), the file's name each of their lines (the file's line,
// "line N") and Validate's the key.
//
//	go test -run '^$' -fuzz '^FuzzLoadConfig$' -fuzztime 5m ./cmd/riskflow
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"# comments are fine\nkafka:\n  brokers: [k1:9092, k2:9092]\n  partitions: 12\n  batch_timeout: 10ms\nclickhouse:\n  addr: 127.0.0.1:19000\n  breaker_open_for: 30s\napi:\n  listen: 0.0.0.0:8080\n  keys:\n    app1: s1\n    app2: \"s:2\"\n  rate_per_app: 2000\nscoring:\n  windows: [1m, 1h]\n  replay: false\nlog:\n  format: json\n",
		"kafka:\n  brokers: [kafka-0.kafka:9092]\n  partitions: 12\n  stall_after: 30s\nclickhouse:\n  addr: clickhouse:9000\n  database: riskflow\napi:\n  listen: 0.0.0.0:8080\n  ready_max_lag: 1000\n  max_staleness: 1m\n  shutdown_delay: 8s\nops:\n  listen: 0.0.0.0:9464\nscoring:\n  rules: /etc/riskflow/rules/rules.yaml\n  reload_interval: 5s\n  snapshot_dir: /var/lib/riskflow/snapshots\n  snapshot_interval: 5m\nlog:\n  format: json\n",
		"kafka:\n\tbrokers: [a:1]\n", "kafka: {}\n---\napi: {}\n", "api:\n  keys: app1:secret1\n",
		"api:\n  admin_keys:\n    \"13812348000\": s\n", "kafka:\n  partitions: 1.5\n", "scoring:\n  windows: [5, 1h]\n",
		"\"13812348000\": x\n", "kafka:\n  \"tel:13812348000\": 1\n", "kafka: 13812348000\n", "kafka:\n  events_topic: \"\\e[31m\"\n",
		"kafka:\n  decisions_brokers: [\"+86 138 1234 8000\"]\n", "log:\n  level: \"1381234\\n8000\"\n", "- a\n- b\n", "",
		"a: &a [*a, *a]\n", "kafka:\n  brokers: &b [x, *b]\n",
	} {
		f.Add([]byte(s))
	}
	p := filepath.Join(tempDir(f), "riskflow.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip()
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		type result struct {
			c         Config
			err, verr error
		}
		r := bounded.Run(t, 20*time.Second, fmt.Sprintf("loadConfig of a %d-byte file", len(data)), func() (r result) {
			r.c, _, r.err = loadConfig(p, nil, nil)
			if r.err == nil {
				r.verr = r.c.Validate()
			}
			return r
		})
		if r.err != nil {
			msg := r.err.Error()
			// The file's path is checked apart: the temporary directory's random digits
			// ("…/FuzzLoadConfig1419680934/001/…") may read as a number themselves.
			checkConfigError(t, data, strings.ReplaceAll(msg, p, "FILE"))
			if !strings.HasPrefix(msg, "config "+p+": ") {
				t.Fatalf("error %q does not name the file (input %q)", msg, data)
			}
			return
		}
		if r.verr != nil {
			msg := r.verr.Error()
			checkConfigError(t, data, msg)
			for _, line := range strings.Split(msg, "\n") {
				if !validateLine.MatchString(line) {
					t.Fatalf("Validate's error line %q names no key (input %q)", line, data)
				}
			}
		}
	})
}

func checkConfigError(t *testing.T, data []byte, msg string) {
	t.Helper()
	switch {
	case msg == "":
		t.Fatalf("empty error message (input %q)", data)
	case !utf8.ValidString(msg):
		t.Fatalf("error message is not valid UTF-8: %q (input %q)", msg, data)
	case strings.ContainsFunc(msg, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' || unicode.Is(unicode.Bidi_Control, r)
	}):
		t.Fatalf("error message holds a control character: %q (input %q)", msg, data)
	case schemas.MaskPhones(msg) != msg:
		t.Fatalf("error message shows a phone number: %q (input %q)", msg, data)
	}
}
