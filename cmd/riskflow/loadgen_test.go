package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/pipeline/loadgen"
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
	dir := tempDir(t)
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

// stream is a generator of n events a minute apart; next (may be nil) is told each event's index.
type stream struct {
	n, i  int
	start time.Time
	next  func(i int)
}

func (s *stream) Next() (loadgen.Labeled, bool) {
	if s.i == s.n {
		return loadgen.Labeled{}, false
	}
	if s.next != nil {
		s.next(s.i)
	}
	ev := schemas.VerifyEvent{EventID: fmt.Sprintf("e%d", s.i), TS: s.start.Add(time.Duration(s.i) * time.Minute)}
	s.i++
	return loadgen.Labeled{Event: ev, Label: loadgen.LabelBenign}, true
}

func (s *stream) Config() loadgen.Config { return loadgen.Config{Start: s.start} }

// loadgen --out kafka|URL told to stop (Ctrl-C) says what it sent, as at the end of --duration
// (paced, it ended silently), and sends the events it generated and labelled before the signal
// (unpaced, their batch was published with the cancelled context and the run failed).
func TestLoadgenStoppedSaysWhatItSent(t *testing.T) {
	start := time.Now().UTC()
	publish := func(sent *int, after func()) func(context.Context, []schemas.VerifyEvent) error {
		return func(ctx context.Context, evs []schemas.VerifyEvent) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			*sent += len(evs)
			if after != nil {
				after()
			}
			return nil
		}
	}

	// Paced in real time: the signal comes while it waits a minute for the second event.
	ctx, cancel := context.WithCancel(context.Background())
	sent := 0
	var out strings.Builder
	err := sendLoad(ctx, &stream{n: 5, start: start}, 1, nil, &out, publish(&sent, cancel))
	if err != nil || sent != 1 || !strings.Contains(out.String(), "loadgen: 1 events sent (0 attack) in ") || !strings.Contains(out.String(), "stopped before --duration's end") {
		t.Errorf("paced, stopped after the first event: %v, %d sent, output %q", err, sent, out.String())
	}

	// As fast as possible: the signal comes while the batch fills.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	sent = 0
	out.Reset()
	g := &stream{n: 5000, start: start.Add(-5000 * time.Minute), next: func(i int) {
		if i == 510 {
			cancel()
		}
	}}
	err = sendLoad(ctx, g, 0, nil, &out, publish(&sent, nil))
	if err != nil || sent != 511 || !strings.Contains(out.String(), "loadgen: 511 events sent") {
		t.Errorf("unpaced, stopped at the 511th event: %v, %d sent, output %q", err, sent, out.String())
	}

	// As fast as possible, the signal comes while the second batch is on its way (the publish
	// fails with the cancelled context): that batch goes out with the stop too. It said
	// "riskflow: interrupted: loadgen: publish after 500 events: context canceled", exit 1.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	sent, calls := 0, 0
	out.Reset()
	inFlight := func(ctx context.Context, evs []schemas.VerifyEvent) error {
		if calls++; calls == 2 {
			cancel()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sent += len(evs)
		return nil
	}
	err = sendLoad(ctx, &stream{n: 5000, start: start.Add(-5000 * time.Minute)}, 0, nil, &out, inFlight)
	if err != nil || sent != 1000 || !strings.Contains(out.String(), "loadgen: 1000 events sent") || !strings.Contains(out.String(), "stopped before --duration's end") {
		t.Errorf("unpaced, stopped during the second publish: %v, %d sent, output %q", err, sent, out.String())
	}
}

// loadgen --out FILE told to stop (Ctrl-C, SIGTERM) stops, as --out kafka does, and says what it
// wrote: it went on writing the whole --duration, and only a second signal ended it, with the
// file cut in the middle of a line.
func TestLoadgenToAFileStopsWhenTold(t *testing.T) {
	cleanEnv(t)
	events := filepath.Join(tempDir(t), "events.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the signal came while the population was being drawn
	r := runCmd(t, ctx, "loadgen", "--rate", "50", "--duration", "1h", "--seed", "3", "--out", events)
	if r.code != 0 || !strings.Contains(r.stderr, "loadgen: wrote 0 events, stopped before --duration's end") {
		t.Errorf("exit %d, want 0 saying it stopped: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(events); err != nil || len(b) != 0 {
		t.Errorf("%s: %d bytes (%v), want an empty file", events, len(b), err)
	}
}

// --attack-share 0 is no attack traffic: it was loadgen.Config's "default", 10 % of attacks.
func TestLoadgenAttackShareZeroIsNone(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	events, labels := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "labels.jsonl")
	r := runCmd(t, context.Background(), "loadgen", "--rate", "20", "--duration", "10m", "--seed", "3", "--attack-share", "0", "--out", events, "--labels", labels)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(labels)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		var ll loadgen.LabelLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Fatal(err)
		}
		if ll.Attack || ll.Label != loadgen.LabelBenign {
			t.Fatalf("--attack-share 0 generated attack traffic: %s", l)
		}
	}
	if len(lines) < 1000 {
		t.Errorf("%d events, want ordinary traffic", len(lines))
	}
}

// --labels - writes the labels to stdout (it made a file named "-") when the events go to a file.
func TestLoadgenLabelsToStdout(t *testing.T) {
	cleanEnv(t)
	dir := tempDir(t)
	t.Chdir(dir)
	r := runCmd(t, context.Background(), "loadgen", "--rate", "5", "--duration", "10m", "--seed", "3", "--out", "events.jsonl", "--labels", "-")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "-")); err == nil {
		t.Error(`--labels - wrote a file named "-"`)
	}
	var l loadgen.LabelLine
	if err := json.Unmarshal([]byte(strings.SplitN(r.stdout, "\n", 2)[0]), &l); err != nil || l.EventID == "" {
		t.Errorf("stdout does not start with a label line (%v):\n%.300s", err, r.stdout)
	}
}

// With --out URL (or kafka) and --labels -, stdout is the labels alone: the run's progress lines
// ("loadgen: N events sent") go to stderr, where they mixed into the labels.
func TestLoadgenLabelsToStdoutKeepProgressApart(t *testing.T) {
	cleanEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	r := runCmd(t, context.Background(), "loadgen", "--out", srv.URL, "--labels", "-", "--rate", "5", "--duration", "10m", "--seed", "3", "--speedup", "0", "--set", "api.keys=shop:s3cret")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range lines {
		var ll loadgen.LabelLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil || ll.EventID == "" {
			t.Fatalf("stdout holds a line that is not a label: %q", l)
		}
	}
	if len(lines) < 100 || !strings.Contains(r.stderr, "events sent") {
		t.Errorf("%d label lines; stderr %q, want the progress there", len(lines), r.stderr)
	}
}

// A run refused for what --out lacks (the phone-hash key for kafka, an app key for a URL, a
// destination it does not know) leaves an existing --labels file as it was: it was truncated first.
func TestLoadgenRefusedRunKeepsTheLabelsFile(t *testing.T) {
	cleanEnv(t)
	labels := filepath.Join(tempDir(t), "labels.jsonl")
	const kept = "{\"event_id\":\"e1\",\"app_id\":\"a\",\"label\":\"benign\",\"attack\":false}\n"
	for _, out := range []string{"kafka", "http://127.0.0.1:1", "events.txt"} {
		if err := os.WriteFile(labels, []byte(kept), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCmd(t, context.Background(), "loadgen", "--out", out, "--labels", labels, "--duration", "1m")
		if r.code != 2 {
			t.Errorf("--out %s: exit %d, want 2: %s", out, r.code, r.stderr)
		}
		if b, _ := os.ReadFile(labels); string(b) != kept {
			t.Errorf("--out %s: the labels file holds %q after the refused run", out, b)
		}
	}
}

// loadgen --out URL posts each app's events with that app's key (an app key may only publish its
// own app_id): with keys of several apps it sent the first key's app alone (the others, and
// --apps, silently dropped), and with --large-app it stopped at the first batch with the API's
// 403 ("[1].app_id: \"bigapp\" is not the app of the authenticated key \"appA\""). An app it is
// asked for without a key is a usage error naming it, before anything is sent.
func TestLoadgenHTTPPostsEachAppWithItsKey(t *testing.T) {
	cleanEnv(t)
	keys := map[string]string{"appA": "sa", "appB": "sb", "bigapp": "sg"}
	var mu sync.Mutex
	seen := map[string]int{}
	var wrong []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, secret, _ := r.BasicAuth()
		var evs []schemas.VerifyEvent
		if err := json.NewDecoder(r.Body).Decode(&evs); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			if ev.AppID != user || keys[user] != secret {
				wrong = append(wrong, ev.AppID+" by "+user)
				w.WriteHeader(http.StatusForbidden)
				return
			}
			seen[ev.AppID]++
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	r := runCmd(t, context.Background(), "loadgen", "--out", srv.URL, "--rate", "20", "--duration", "10m", "--seed", "3", "--speedup", "0",
		"--set", "api.keys=appA:sa,appB:sb,bigapp:sg", "--apps", "appA,appB", "--large-app", "bigapp", "--large-app-share", "0.5")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 {
		t.Errorf("events posted with another app's key: %v", wrong[:min(len(wrong), 5)])
	}
	for _, app := range []string{"appA", "appB", "bigapp"} {
		if seen[app] == 0 {
			t.Errorf("no event of %s was posted (posted: %v)", app, seen)
		}
	}

	r = runCmd(t, context.Background(), "loadgen", "--out", srv.URL, "--duration", "1m", "--speedup", "0",
		"--set", "api.keys=appA:sa", "--large-app", "bigapp", "--large-app-share", "0.5")
	if r.code != 2 || !strings.Contains(r.stderr, "bigapp") || !strings.Contains(r.stderr, "api.keys") {
		t.Errorf("--large-app without its key: exit %d, want 2 naming the app and api.keys: %s", r.code, r.stderr)
	}
}

// loadgen --out URL keeps to what the node takes: a batch over api.events_per_app (413) goes
// again in halves, a 429 or 503 with Retry-After again after the wait; every event arrives once
// accepted. It stopped at the first such answer ("publish after 0 events: … 413"): a node with
// api.events_per_app below loadgen's batches of 500 refused every run.
func TestLoadgenHTTPKeepsToTheNodesLimits(t *testing.T) {
	cleanEnv(t)
	var mu sync.Mutex
	accepted, requests := map[string]int{}, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var evs []schemas.VerifyEvent
		if err := json.NewDecoder(r.Body).Decode(&evs); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		requests++
		switch {
		case len(evs) > 100:
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, `{"code":413,"content":"rate limit: app key \"shop\" may send at most 100 events per request"}`)
			return
		case requests == 3:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case requests == 5:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		for _, ev := range evs {
			accepted[ev.EventID]++
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	r := runCmd(t, context.Background(), "loadgen", "--out", srv.URL, "--rate", "20", "--duration", "30m", "--seed", "3", "--speedup", "0", "--set", "api.keys=shop:s3cret")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	// The count of the last line, at the end ("… sent (N attack) in 9.5s"), not of a progress
	// line printed every 5 s on the way (under -race the run takes longer than that).
	m := regexp.MustCompile(`loadgen: (\d+) events sent \(\d+ attack\) in `).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no count of events sent: %s", r.stdout)
	}
	for id, n := range accepted {
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
	}
	if strconv.Itoa(len(accepted)) != m[1] || len(accepted) < 500 {
		t.Errorf("%d distinct events accepted, loadgen says %s sent", len(accepted), m[1])
	}
}
