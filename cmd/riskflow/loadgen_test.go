package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

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

// What loadgen --help says of --start and --labels is what a file run does: the stream ends at
// about now (it starts --duration before it), and each label line holds the fields named.
func TestLoadgenHelpMatchesAFileRun(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	events, labels := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "labels.jsonl")
	before := time.Now().UTC()
	if r := runCmd(t, context.Background(), "loadgen", "--rate", "20", "--duration", "10m", "--seed", "3", "--out", events, "--labels", labels); r.code != 0 {
		t.Fatalf("loadgen: exit %d: %s", r.code, r.stderr)
	}
	help := runCmd(t, context.Background(), "loadgen", "--help").stdout

	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		TS time.Time `json:"ts"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.TS.After(before.Add(-9 * time.Minute)) {
		t.Fatalf("first event at %s: the stream of 10m does not end at now (run at %s)", first.TS, before)
	}
	if strings.Contains(help, "(default: now)") || !strings.Contains(help, "end at about now") {
		t.Errorf("loadgen --help: --start does not say that a file's stream ends at about now:\n%s", help)
	}

	b, err = os.ReadFile(labels)
	if err != nil {
		t.Fatal(err)
	}
	var label map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &label); err != nil {
		t.Fatal(err)
	}
	fields := slices.Sorted(maps.Keys(label))
	m := regexp.MustCompile(`\{([a-z_,]+)\} per line`).FindStringSubmatch(help)
	if m == nil {
		t.Fatalf("loadgen --help does not name the label fields:\n%s", help)
	}
	named := strings.Split(m[1], ",")
	slices.Sort(named)
	if !slices.Equal(named, fields) {
		t.Errorf("loadgen --help names label fields %v, a label line has %v", named, fields)
	}
}

// loadgen --out URL without api.keys says which key the node of riskflow dev (make run) takes,
// the README's first target for it; exit 2.
func TestLoadgenHTTPWithoutKeysNamesTheDevKey(t *testing.T) {
	cleanEnv(t)
	r := runCmd(t, context.Background(), "loadgen", "--out", "http://127.0.0.1:8080", "--duration", "1s")
	if r.code != 2 || !strings.Contains(r.stderr, "api.keys: ") || !strings.Contains(r.stderr, "RISKFLOW_API_KEYS=demo:demo-secret") {
		t.Errorf("exit %d, want 2 naming api.keys and dev's demo key: %s", r.code, r.stderr)
	}
}
