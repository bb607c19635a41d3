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

// An analyst investigating one device in one app sees only that app's rows (--app filtered the
// live state only: another app's attempts and decisions were listed as if they were this one's),
// --until ends the range (a span back from now or an RFC 3339 time, the end left out), and a list
// --limit cut is paged: lookup prints the flags of the next page, which show the next rows, none
// twice and none skipped, also in --json (next_page).
func TestLookupOfOneAppInARangePageByPage(t *testing.T) {
	addr, db, _, st := migratedDatabase(t, "riskflow_lookup_page")
	ctx := context.Background()
	h := schemas.NewPhoneHasher([]byte("lookup-test-key"))
	// To the second, as the tables and RFC 3339 flags keep times: the spans below (--until 6m30s)
	// are measured from the clock when lookup runs, and rows are 30 s or more from each bound. To
	// the minute, the rows stood up to 59 s before the clock and the test failed in the second
	// half of every minute.
	now := time.Now().UTC().Truncate(time.Second)
	var recs []schemas.ScoreRecord
	attempt := func(app, id string, at time.Time) {
		recs = append(recs, schemas.ScoreRecord{EventID: id, TS: at, AppID: app, Flow: schemas.FlowOneClickLogin, PhoneHash: h.Hex("13812340000"),
			PhoneMasked: "1381234****", PhoneSegment: "1381234", IP: "47.92.10.20", Carrier: "CM", DeviceID: "dev-page", Outcome: schemas.OutcomeSuccess,
			Tags: []string{}, Detail: map[string]schemas.TagDetail{}, RulesVersion: "v1", ScoredAt: at})
	}
	for i := range 5 { // app1: ev-0 10 min ago … ev-4 6 min ago
		attempt("app1", fmt.Sprintf("ev-%d", i), now.Add(-time.Duration(10-i)*time.Minute))
	}
	attempt("app2", "other-0", now.Add(-8*time.Minute-30*time.Second))
	attempt("app2", "other-1", now.Add(-6*time.Minute-30*time.Second))
	if err := st.WriteBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var ds []schemas.Decision
	decide := func(app, id string, at time.Time) {
		req := schemas.CheckRequest{Phone: "13812340000", IP: netip.MustParseAddr("47.92.10.20"), AppID: app, DeviceID: "dev-page"}
		rc := schemas.RiskCheck{ID: id, Tags: []string{}, RulesVersion: "v1"}
		ds = append(ds, pipeline.NewDecision(h, "n1", &req, &rc, nil, at, time.Millisecond))
	}
	for i := range 3 {
		decide("app1", fmt.Sprintf("n1-page-%d", i), now.Add(-time.Duration(5-i)*time.Minute))
	}
	decide("app2", "n1-other", now.Add(-4*time.Minute-30*time.Second))
	if err := st.WriteDecisions(ctx, ds); err != nil {
		t.Fatal(err)
	}
	lookup := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"lookup", "--device", "dev-page", "--api", "none", "--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}, args...)
		if code := run(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("riskflow %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	type result struct {
		Attempts []struct {
			AppID   string `json:"app_id"`
			EventID string `json:"event_id"`
		} `json:"attempts"`
		Decisions []struct {
			AppID      string `json:"app_id"`
			DecisionID string `json:"decision_id"`
		} `json:"decisions"`
		MoreAttempts  bool      `json:"more_attempts"`
		MoreDecisions bool      `json:"more_decisions"`
		App           string    `json:"app"`
		Since         time.Time `json:"since"`
		Until         time.Time `json:"until"`
		Offset        int       `json:"offset"`
		Next          *struct {
			Since  time.Time `json:"since"`
			Until  time.Time `json:"until"`
			Offset int       `json:"offset"`
		} `json:"next_page"`
	}
	asJSON := func(args ...string) (r result) {
		t.Helper()
		if err := json.Unmarshal([]byte(lookup(append(args, "--json")...)), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	ids := func(r result) string {
		var s []string
		for _, a := range r.Attempts {
			s = append(s, a.AppID+"/"+a.EventID)
		}
		for _, d := range r.Decisions {
			s = append(s, d.AppID+"/"+d.DecisionID)
		}
		return strings.Join(s, " ")
	}

	// --app: that app's rows only.
	if r := asJSON("--app", "app1"); ids(r) != "app1/ev-4 app1/ev-3 app1/ev-2 app1/ev-1 app1/ev-0 app1/n1-page-2 app1/n1-page-1 app1/n1-page-0" || r.App != "app1" {
		t.Errorf("--app app1: %s (app %q); want app1's 5 attempts and 3 decisions only", ids(r), r.App)
	}
	if r := asJSON(); len(r.Attempts) != 7 || len(r.Decisions) != 4 {
		t.Errorf("every app: %s; want 7 attempts and 4 decisions", ids(r))
	}
	// --until: a span back from now, and a time (left out: stamped before it).
	if r := asJSON("--app", "app1", "--until", "6m30s"); ids(r) != "app1/ev-3 app1/ev-2 app1/ev-1 app1/ev-0" {
		t.Errorf("--until 6m30s: %s; want ev-3 … ev-0", ids(r))
	}
	at := now.Add(-8 * time.Minute).Format(time.RFC3339)
	if r := asJSON("--app", "app1", "--until", at); ids(r) != "app1/ev-1 app1/ev-0" || !r.Until.Equal(now.Add(-8*time.Minute)) {
		t.Errorf("--until %s: %s (until %s); want ev-1, ev-0 (ev-2 is stamped at the end, left out)", at, ids(r), r.Until)
	}
	if r := asJSON("--app", "app1", "--since", now.Add(-9*time.Minute).Format(time.RFC3339), "--until", "5m30s"); ids(r) != "app1/ev-4 app1/ev-3 app1/ev-2 app1/ev-1" {
		t.Errorf("--since a time --until a span: %s; want ev-4 … ev-1", ids(r))
	}

	// Paging: the flags printed for the next page show the next rows.
	s := lookup("--app", "app1", "--limit", "2")
	t.Logf("lookup --app app1 --limit 2:\n%s", s)
	m := regexp.MustCompile(`next page \(.*\): (--since \S+ --until \S+ --offset 2)\n`).FindStringSubmatch(s)
	if m == nil || !strings.Contains(s, "recent attempts (app app1, 24h, newest first): the newest 2, more in this range") {
		t.Fatalf("--limit 2 over 5 attempts prints no next page:\n%s", s)
	}
	var seen []string
	page := strings.Fields(m[1])
	for n := 1; ; n++ {
		r := asJSON(append([]string{"--app", "app1", "--limit", "2"}, page...)...)
		seen = append(seen, ids(r))
		if r.Next == nil {
			break
		}
		if n > 3 {
			t.Fatalf("more than 4 pages of 5 attempts: %q", seen)
		}
		page = []string{"--since", r.Next.Since.Format(time.RFC3339), "--until", r.Next.Until.Format(time.RFC3339), "--offset", fmt.Sprint(r.Next.Offset)}
	}
	if got := strings.Join(seen, " | "); got != "app1/ev-2 app1/ev-1 app1/n1-page-0 | app1/ev-0" {
		t.Errorf("pages 2… of --limit 2: %s; want ev-2 ev-1 n1-page-0 | ev-0", got)
	}
	if s := lookup("--app", "app1", "--limit", "2", "--offset", "4"); !strings.Contains(s, "recent attempts (app app1, 24h, newest first): 1 (the 5–5 newest: the last of this range)") ||
		!strings.Contains(s, "decisions served (app app1, 24h, newest first): none past the newest 4") || strings.Contains(s, "next page") {
		t.Errorf("--offset 4, the last page:\n%s", s)
	}
}

// An analyst pasting an address from a log sees the history of what the windows counted: behind
// an IPv6-only front end (SIIT-DC) a client is logged as 64:ff9b::a.b.c.d, and the scorer counts
// it as a.b.c.d with that address's other forms (6to4, Teredo). Looked up by either form, lookup
// listed only the rows stored in that very spelling — or, for the NAT64 form, every client of the
// translator in its /64.
func TestLookupOfAnEmbeddedIPv4AddressIsItsIPv4Address(t *testing.T) {
	addr, db, _, st := migratedDatabase(t, "riskflow_lookup_nat64")
	ctx := context.Background()
	h := schemas.NewPhoneHasher([]byte("lookup-test-key"))
	now := time.Now().UTC().Truncate(time.Second)
	var ds []schemas.Decision
	for i, ip := range []string{"47.92.10.20", "64:ff9b::2f5c:a14", "2002:2f5c:a14:1::9", "64:ff9b::2f5c:a15", "64:ff9b::808:808"} {
		req := schemas.CheckRequest{Phone: fmt.Sprintf("1381235%04d", i), IP: netip.MustParseAddr(ip), AppID: "app1"}
		rc := schemas.RiskCheck{ID: fmt.Sprintf("n1-nat64-%d", i), Tags: []string{}, RulesVersion: "v1"}
		ds = append(ds, pipeline.NewDecision(h, "n1", &req, &rc, nil, now.Add(-time.Duration(5-i)*time.Minute), time.Millisecond))
	}
	if err := st.WriteDecisions(ctx, ds); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"47.92.10.20", "64:ff9b::47.92.10.20", "2002:2f5c:a14:7::1"} {
		var out, errb bytes.Buffer
		args := []string{"lookup", "--ip", ip, "--api", "none", "--set", "clickhouse.addr=" + addr, "--set", "clickhouse.database=" + db}
		if code := run(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("riskflow %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
		}
		s := out.String()
		if !strings.Contains(s, "decisions served (24h, newest first): 3\n") || !strings.Contains(s, "n1-nat64-0") ||
			!strings.Contains(s, "n1-nat64-1") || !strings.Contains(s, "n1-nat64-2") {
			t.Errorf("lookup --ip %s: want the three decisions of 47.92.10.20 in its three forms:\n%s", ip, s)
		}
	}
}
