//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/syncbuf"
	"github.com/riskflow/riskflow/pipeline"
	"github.com/riskflow/riskflow/schemas"
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

// --limit cuts the lists to the newest rows, and lookup says so: "decisions served (24h, newest
// first): 2" over three stored decisions read as if the device had two, and an analyst closed the
// ticket on the count.
func TestLookupSaysWhenTheLimitCutTheList(t *testing.T) {
	addr, db, _, st := migratedDatabase(t, "riskflow_lookup_limit")
	ctx := context.Background()
	h := schemas.NewPhoneHasher([]byte("lookup-test-key"))
	now := time.Now().UTC().Truncate(time.Second)
	var ds []schemas.Decision
	for i := range 3 {
		req := schemas.CheckRequest{Phone: fmt.Sprintf("1381234%04d", i), IP: netip.MustParseAddr("47.92.10.20"), AppID: "app1", DeviceID: "dev-limit"}
		rc := schemas.RiskCheck{ID: fmt.Sprintf("n1-limit-%d", i), Tags: []string{}, RulesVersion: "v1"}
		ds = append(ds, pipeline.NewDecision(h, "n1", &req, &rc, nil, now.Add(-time.Duration(3-i)*time.Minute), time.Millisecond))
	}
	if err := st.WriteDecisions(ctx, ds); err != nil {
		t.Fatal(err)
	}
	lookup := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"lookup", "--device", "dev-limit", "--api", "none", "--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}, args...)
		if code := run(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("riskflow %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	s := lookup("--limit", "2")
	if !strings.Contains(s, "decisions served (24h, newest first): the newest 2, more in this range (--limit 2 reached") ||
		!strings.Contains(s, "n1-limit-2") || !strings.Contains(s, "n1-limit-1") || strings.Contains(s, "n1-limit-0") {
		t.Errorf("--limit 2 over 3 decisions:\n%s", s)
	}
	if s := lookup("--limit", "3"); !strings.Contains(s, "decisions served (24h, newest first): 3\n") || !strings.Contains(s, "n1-limit-0") {
		t.Errorf("--limit 3 over 3 decisions:\n%s", s)
	}
	var res struct {
		Decisions     []json.RawMessage `json:"decisions"`
		MoreDecisions bool              `json:"more_decisions"`
		MoreAttempts  bool              `json:"more_attempts"`
	}
	if err := json.Unmarshal([]byte(lookup("--limit", "1", "--json")), &res); err != nil || len(res.Decisions) != 1 || !res.MoreDecisions || res.MoreAttempts {
		t.Errorf("--limit 1 --json: %d decisions, more_decisions %v, more_attempts %v (%v); want 1, true, false", len(res.Decisions), res.MoreDecisions, res.MoreAttempts, err)
	}
	// A list with nothing in it is [] in --json, never null (a script iterating over it broke):
	// this device has decisions and no attempts, another has neither.
	for _, dev := range []string{"dev-limit", "dev-none"} {
		var raw map[string]json.RawMessage
		out := lookup("--json", "--device", dev)
		if err := json.Unmarshal([]byte(out), &raw); err != nil || string(raw["attempts"]) == "null" || string(raw["decisions"]) == "null" {
			t.Errorf("lookup --device %s --json: attempts %s, decisions %s (%v); want lists", dev, raw["attempts"], raw["decisions"], err)
		}
	}
}
