package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/consumers"
	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/schemas"
)

func TestDemoDevMode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few seconds of traffic")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	// With a deployment's configuration: its snapshot directory stays as it was ("nothing
	// written elsewhere"), where each run left three files of its own topic.
	snaps := tempDir(t)
	code := run(ctx, []string{"demo", "--mode", "dev", "--duration", "3s", "--speedup", "100", "--seed", "11", "--set", "scoring.snapshot_dir=" + snaps}, &out, &errb)
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if left, err := os.ReadDir(snaps); err != nil || len(left) != 0 {
		t.Errorf("demo wrote to scoring.snapshot_dir: %v %v", left, err)
	}
	s := out.String()
	for _, want := range []string{"demo: --mode dev: embedded broker, nothing written elsewhere", "detection per scenario", "benign", "datacenter_farm", "token_replay", "/v1/risk/check during the run", "analyst queries: skipped"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	// The probe met a ready node: no check answered 503 (not ready) at the start.
	if !strings.Contains(s, " 0 errors\n") {
		t.Errorf("probe errors during the run:\n%s", s)
	}
	// Every replayed token is caught.
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "token_replay" && f[2] != "100.0%" {
			t.Errorf("token replays not all flagged: %q", line)
		}
	}
}

// --mode real uses the configured broker only, and says so when it does not answer: no fallback to
// dev mode, no probing of default ports.
func TestDemoRealModeNeedsTheConfiguredBroker(t *testing.T) {
	cleanEnv(t)
	r := runCmd(t, context.Background(), "demo", "--mode", "real", "--set", "kafka.brokers=127.0.0.1:1")
	if r.code != 1 || !strings.Contains(r.stderr, "demo --mode real: Kafka at 127.0.0.1:1 (kafka.brokers) does not answer") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "detection per scenario") {
		t.Error("the demo ran anyway")
	}
}

func TestLoadgenToFile(t *testing.T) {
	dir := tempDir(t)
	events, labels := filepath.Join(dir, "ev.jsonl"), filepath.Join(dir, "labels.jsonl")
	var out, errb bytes.Buffer
	// Noon in China yesterday: the daily rhythm is above its mean then (at 02:00 it is a fifth of
	// it, and a test starting at now would count the hour it happens to run in).
	noon := time.Now().UTC().Truncate(24 * time.Hour).Add(-20 * time.Hour).Format(time.RFC3339)
	code := run(context.Background(), []string{"loadgen", "--rate", "20", "--duration", "1m", "--seed", "3", "--start", noon, "--out", events, "--labels", labels}, &out, &errb)
	if code != 0 {
		t.Fatalf("loadgen exited %d: %s", code, errb.String())
	}
	ev, _ := os.ReadFile(events)
	lb, _ := os.ReadFile(labels)
	ne, nl := bytes.Count(ev, []byte("\n")), bytes.Count(lb, []byte("\n"))
	if ne < 600 || ne != nl {
		t.Fatalf("%d events and %d labels; want ≥ 600 and one label per event", ne, nl)
	}
	// The file is what `riskflow produce` accepts: every line decodes.
	for i, line := range bytes.Split(bytes.TrimSpace(ev), []byte("\n")) {
		if _, err := schemas.DecodeEvent(line); err != nil {
			t.Fatalf("line %d does not decode: %v", i+1, err)
		}
	}
	code = run(context.Background(), []string{"loadgen", "--out", "kafka", "--set", "kafka.brokers=127.0.0.1:1"}, &out, &errb)
	if code != 2 {
		t.Errorf("loadgen to kafka without a phone hash key exited %d, want 2", code)
	}
	if code := run(context.Background(), []string{"loadgen", "--out", "ftp://x"}, &out, &errb); code != 2 {
		t.Errorf("bad --out exited %d, want 2", code)
	}
}

// A demo told to stop (Ctrl-C) while it waits for its verdicts says so, not that the verdicts did
// not come "within 1m0s" — a wait that had not run out ("interrupted: demo: only 0 of 2625 events
// were scored within 1m0s", a few seconds in).
func TestDemoStoppedWhileCollectingSaysSo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	kc := consumers.DefaultConfig()
	kc.Brokers = []string{testaddr.Free(t)}
	_, err := collectScores(ctx, kc, "risk.scores", 5, time.Minute)
	if err == nil || err.Error() != "demo: stopped with 0 of 5 events scored" {
		t.Errorf("collectScores stopped: %v", err)
	}
}

// A demo told to stop (Ctrl-C) reports on what was scored by then and exits 0, as loadgen and
// serve stop: it exited 1 with "interrupted: demo: stopped with N of M events scored" and no
// report, and while starting with "interrupted: demo: kafka: context canceled".
func TestDemoInterruptedReportsWhatWasScored(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few seconds of traffic")
	}
	t.Run("while sending", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errb syncbuf.Buffer
		done := make(chan int)
		go func() {
			done <- run(ctx, []string{"demo", "--mode", "dev", "--duration", "5m", "--speedup", "10", "--seed", "11"}, &out, &errb)
		}()
		deadline := time.After(2 * time.Minute)
		for !strings.Contains(out.String(), "probed alongside") {
			select {
			case code := <-done:
				t.Fatalf("demo ended (%d) before sending:\n%s\n%s", code, out.String(), errb.String())
			case <-deadline:
				t.Fatalf("demo did not start sending:\n%s\n%s", out.String(), errb.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("interrupted demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		}
		s := out.String()
		for _, want := range []string{"demo: stopped (interrupted) with ", "events sent scored: the report counts those", "detection per scenario", "/v1/risk/check during the run"} {
			if !strings.Contains(s, want) {
				t.Errorf("output lacks %q:\n%s", want, s)
			}
		}
	})
	t.Run("while starting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out, errb bytes.Buffer
		if code := run(ctx, []string{"demo", "--mode", "dev", "--duration", "5s"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "demo: stopped (interrupted)") {
			t.Errorf("demo interrupted at once: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		}
	})
}
