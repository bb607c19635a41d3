//go:build integration

package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/syncbuf"
)

// `riskflow dev` with ClickHouse: its sample stream is scored and archived, its sample checks are
// decisions in risk_decisions; `riskflow lookup --phone` on a number of the stream then shows the
// number's live windows (from the running API), its attempt with the score, and the decision
// served — the phone given in plaintext, hashed by the tool with the configured key.
func TestLookupOnTheDemoStream(t *testing.T) {
	addr, db, _, _ := throwawayDatabase(t, "riskflow_lookup")

	sets := []string{"--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db, "--set", "clickhouse.flush_interval=100ms",
		"--set", "api.admin_keys=lead:lead-secret", "--set", "log.level=warn",
		"--set", "scoring.phone_hash_key=lookup-test-key"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var devOut, devErr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"dev", "--listen", "127.0.0.1:0"}, sets...), &devOut, &devErr)
	}()
	serving := regexp.MustCompile(`serving (http://[0-9.:]+)`)
	var api string
	for deadline := time.Now().Add(60 * time.Second); api == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := serving.FindStringSubmatch(devOut.String()); m != nil {
			api = m[1]
		}
	}
	if api == "" {
		t.Fatalf("dev did not start:\n%s\n%s", devOut.String(), devErr.String())
	}
	// The replayed-token check (sample-3) followed the number's first use (sample-token-1).
	var out, errb bytes.Buffer
	args := append([]string{"lookup", "--phone", "+86 13811112222", "--api", api, "--since", "1h"}, sets...)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out.Reset()
		errb.Reset()
		code := run(ctx, args, &out, &errb)
		s := out.String()
		if code == 0 && strings.Contains(s, "sample-token-1") && strings.Contains(s, "decisions served (1h, newest first): 1") {
			break
		}
	}
	s := out.String()
	for _, want := range []string{
		"live state of phone 1381111****", // masked, never the number
		"phone_verifies_10m",              // a window the pack reads, with its value
		"sample-token-1",                  // the attempt, from verify_events
		"decisions served (1h, newest first): 1",
		"token_replay", // the tag the decision answered
	} {
		if !strings.Contains(s, want) {
			t.Errorf("lookup output lacks %q:\n%s\nstderr: %s", want, s, errb.String())
		}
	}
	if strings.Contains(s, "13811112222") || strings.Contains(s, "11112222") {
		t.Errorf("lookup prints the number:\n%s", s)
	}
	t.Logf("riskflow lookup --phone +86 13811112222:\n%s", s)
	cancel()
	<-done
}
