package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/pipeline/chsink"
	"github.com/riskflow/riskflow/rules/rulesvc"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/api"
	"github.com/riskflow/riskflow/scoring/backtest"
)

// lookup's own mistakes are usage errors naming the flag, before anything is asked; a device id
// holding a phone number is refused as the API refuses it (the API logs what it explains).
func TestLookupUsage(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--phone", "+86", "138", "1234", "5678"}, `takes no arguments, got "138"`},
		{[]string{"--device", "138 1234 5678"}, "--device: looks like it contains a mobile phone number"},
		{[]string{"--ip", "10.1.2.3", "--app", "tel:13812345678"}, "--app: looks like it contains a mobile phone number"},
		{[]string{"--device", "farm-1", "--admin", "lead"}, "--admin: want name:secret"},
		{[]string{"--ip", "2408:8400::/64"}, `riskflow: --ip: "2408:8400::/64" is not an IP address`},
		{[]string{"--ip", "10.1.2.3", "--api", "127.0.0.1:8080"}, `--api: "127.0.0.1:8080" is not an http:// or https:// URL`},
		{[]string{"--ip", "10.1.2.3", "--api", "ftp://x"}, `--api: "ftp://x" is not an http:// or https:// URL`},
		{[]string{"--ip", "10.1.2.3", "--limit", "0"}, "--limit: 0 is not positive"},
		{[]string{"--ip", "10.1.2.3", "--since", "0h"}, "--since: 0s is not positive"},
		{[]string{"--ip", "10.1.2.3", "--since", "--1h"}, "invalid value \"--1h\" for flag --since"},
		{[]string{"--ip", "10.1.2.3", "--offset", "-1"}, "--offset: -1 is negative"},
		{[]string{"--ip", "10.1.2.3", "--until", "--1h"}, "invalid value \"--1h\" for flag --until"},
		{[]string{"--ip", "10.1.2.3", "--since", "1h", "--until", "2h"}, "is not after --since"},
		{[]string{"--ip", "10.1.2.3", "--since", "2026-12-06T10:00:00Z", "--until", "2026-12-06T10:00:00Z"}, "--until: 2026-12-06T10:00:00Z is not after --since 2026-12-06T10:00:00Z"},
		{[]string{"--ip", "10.1.2.3", "--until", "yesterday"}, `invalid value "yesterday" for flag --until`},
		// The number where a flag was meant: named as a number, never shown.
		{[]string{"13812345678"}, `takes no arguments, got "<phone>"`},
		{[]string{"--device", "farm-1", "138-1234-5678"}, `takes no arguments, got "<phone>"`},
		{[]string{"--ip", "10.1.2.3", "--api", "13812345678"}, `--api: "<phone>" is not an http:// or https:// URL`},
	} {
		r := runCmd(t, context.Background(), append([]string{"lookup"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "usage: riskflow lookup") {
			t.Errorf("lookup %q: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
		if strings.Contains(r.stderr, "5678") {
			t.Errorf("lookup %q: the error shows the number: %s", c.args, r.stderr)
		}
	}
}

// Without a live state and without history the error says why each is missing: --api none is
// not an empty reason, and a node answering 404 without a riskflow body is named as such.
func TestLookupSaysWhyNothingWasShown(t *testing.T) {
	cleanEnv(t)
	r := runCmd(t, context.Background(), "lookup", "--device", "farm-1", "--api", "none", "--set", "clickhouse.addr=")
	if r.code != 1 || strings.Contains(r.stdout+r.stderr, "()") || !strings.Contains(r.stdout, "not asked (--api none)") ||
		!strings.Contains(r.stderr, "clickhouse.addr is not set") {
		t.Errorf("--api none, no ClickHouse: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer empty.Close()
	r = runCmd(t, context.Background(), "lookup", "--device", "farm-1", "--api", empty.URL, "--set", "clickhouse.addr=")
	if r.code != 1 || !strings.Contains(r.stderr, "404 Not Found (is this a riskflow API node?)") {
		t.Errorf("a 404 without a body: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// ClickHouse not answering is named with the settings to check, by lookup (its history) and by
// label: the driver's "connection refused" named neither clickhouse.addr nor the database.
func TestLookupAndLabelNameClickHouseWhenItIsAway(t *testing.T) {
	cleanEnv(t)
	addr := testaddr.Free(t) // nothing listens there
	want := "ClickHouse " + addr + ", database riskflow (clickhouse.addr, clickhouse.database)"
	r := runCmd(t, context.Background(), "lookup", "--device", "farm-1", "--api", "none", "--set", "clickhouse.addr="+addr)
	if r.code != 1 || !strings.Contains(r.stdout, "history: unavailable ("+want) || !strings.Contains(r.stderr, want) {
		t.Errorf("lookup, ClickHouse away: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, context.Background(), "label", "--app", "a", "--event", "e", "--as", "fraud", "--set", "clickhouse.addr="+addr)
	if r.code != 1 || !strings.Contains(r.stderr, "label: "+want) {
		t.Errorf("label, ClickHouse away: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// A file of JSON lines (FORMAT JSONEachRow) is read — then ClickHouse is found away.
	file := filepath.Join(tempDir(t), "labels.jsonl")
	os.WriteFile(file, []byte("{\"app_id\":\"a\",\"decision_id\":\"d-1\",\"label\":\"fraud\"}\n{\"app_id\":\"a\",\"decision_id\":\"d-2\",\"label\":\"legit\"}\n"), 0o644)
	r = runCmd(t, context.Background(), "label", "--file", file, "--set", "clickhouse.addr="+addr)
	if r.code != 1 || !strings.Contains(r.stderr, "label: "+want) {
		t.Errorf("label --file of JSON lines, ClickHouse away: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// A lookup whose history fails while its live state was shown is a partial result: exit 3 and an
// error naming clickhouse.addr (it exited 0, so a script took the missing history for none). A
// history shown without the live state asked of an API node is the same; a part not asked
// (--api none, no clickhouse.addr) is no failure.
func TestLookupPartialResultExits3(t *testing.T) {
	cleanEnv(t)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"code":0,"content":"live state","subject":"device farm-1","windows":[],"matching":[],"near":[]}`)
	}))
	defer node.Close()
	addr := testaddr.Free(t) // nothing listens there
	r := runCmd(t, context.Background(), "lookup", "--device", "farm-1", "--api", node.URL, "--set", "clickhouse.addr="+addr)
	if r.code != 3 || !strings.Contains(r.stdout, "live state of device farm-1") ||
		!strings.Contains(r.stderr, "lookup: history unavailable (ClickHouse "+addr+", database riskflow (clickhouse.addr, clickhouse.database)") {
		t.Errorf("live state shown, ClickHouse away: exit %d, want 3 naming clickhouse.addr\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, context.Background(), "lookup", "--device", "farm-1", "--api", node.URL, "--set", "clickhouse.addr=")
	if r.code != 0 || r.stderr != "" {
		t.Errorf("live state shown, no clickhouse.addr: exit %d, want 0\nstderr %s", r.code, r.stderr)
	}
	// A device id holding a bidi override is shown with it escaped, as the history's rows show it.
	odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"code":0,"content":"live state","subject":"device dev\u202eexe.txt","windows":[],"matching":[],"near":[]}`)
	}))
	defer odd.Close()
	r = runCmd(t, context.Background(), "lookup", "--device", "dev\u202eexe.txt", "--api", odd.URL, "--set", "clickhouse.addr=")
	if !strings.Contains(r.stdout, `live state of device dev\u202Eexe.txt`) || strings.Contains(r.stdout, "\u202e") {
		t.Errorf("a device id with a bidi override, shown raw:\n%s", r.stdout)
	}
	for _, c := range []struct {
		res  lookupResult
		code int
		want string
	}{
		{lookupResult{LiveError: "live state from http://x: 401 authorization"}, 3, "lookup: live state unavailable (live state from http://x: 401 authorization); only the history was printed (--api none not to ask an API node)"},
		{lookupResult{LiveSkipped: true}, 0, ""},
		{lookupResult{Live: &api.ExplainResponse{}}, 0, ""},
		{lookupResult{Live: &api.ExplainResponse{}, HistoryError: "ClickHouse x (clickhouse.addr, clickhouse.database): refused"}, 3, "lookup: history unavailable (ClickHouse x (clickhouse.addr"},
		{lookupResult{LiveSkipped: true, HistoryError: "h"}, 1, "lookup: no history (h)"},
	} {
		err := c.res.err()
		code := 1 // what run makes of the error
		switch {
		case err == nil:
			code = 0
		case errors.As(err, new(partialError)):
			code = 3
		}
		if code != c.code || (err != nil && !strings.HasPrefix(err.Error(), c.want)) {
			t.Errorf("%+v: exit %d, %v; want %d, %q", c.res, code, err, c.code, c.want)
		}
	}
}

// label's mistakes name its flags (not the JSON fields of --file), and who labels, stored as is
// in labeled_by, may not be a phone number.
func TestLabelUsage(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--app", "a", "--as", "fraud"}, "label: --decision or --event is required"},
		{[]string{"--app", "a", "--decision", "d", "--event", "e", "--as", "fraud"}, "label: --decision and --event are both set"},
		{[]string{"--app", "a", "--event", "e", "--as", "fraud", "--by", "138 1234 5678"}, "label: --by: looks like it contains a mobile phone number"},
		{[]string{"--app", "a", "--event", "e", "--as", "fraud", "--note", "modem", "pool"}, `label: takes no arguments, got "pool"`},
		{[]string{"--app", "a", "--event", "e", "--as", "spam"}, `label: --as: "spam" is not fraud or legit`},
		{[]string{"--file", "/nonexistent/138-1234-5678.json"}, "--file: open /nonexistent/<phone>.json: no such file"},
	} {
		r := runCmd(t, context.Background(), append([]string{"label"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "event_id") || strings.Contains(r.stderr, "5678") {
			t.Errorf("label %q: exit %d, stderr %q; want 2 and %q, no JSON field names, no number", c.args, r.code, r.stderr, c.want)
		}
	}
}

// The help a new user reads names where the decision log and the stored labels go.
func TestHelpNamesDecisionLogAndLabels(t *testing.T) {
	cleanEnv(t)
	for cmd, want := range map[string][]string{
		"serve":    {"archiver: stores risk.scores and the decision log (risk.decisions)", "every verdict to risk.decisions"},
		"backtest": {"labels stored by riskflow label and POST /v1/admin/labels"},
	} {
		r := runCmd(t, context.Background(), cmd, "--help")
		for _, w := range want {
			if r.code != 0 || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), w) {
				t.Errorf("%s --help: exit %d, no %q in\n%s", cmd, r.code, w, r.stdout)
			}
		}
	}
}

// Stored labels that cannot be read are an error naming them, not a hint to migrate followed by a
// precision and recall computed without them.
func TestBacktestStoredLabelsUnreadable(t *testing.T) {
	cleanEnv(t)
	addr := testaddr.Free(t) // nothing listens there
	r := runCmd(t, context.Background(), "backtest", "--rules", "../../rules/packs/default/rules.yaml", "--from", "1h",
		"--no-record", "--set", "clickhouse.addr="+addr)
	if r.code != 1 || strings.Contains(r.stderr, "migrate") || !strings.Contains(r.stderr, "read the stored labels (--stored-labels=false to go without)") {
		t.Errorf("exit %d\nstderr %s", r.code, r.stderr)
	}
}

// A rejected pack or an unknown version reaches the API classified, with its text said once.
func TestRulesAdminErrorsSaidOnce(t *testing.T) {
	for _, c := range []struct {
		err, class error
		want       string
	}{
		{fmt.Errorf("%w:\n%w", rulesvc.ErrRejected, errors.New("line 1:1: pack: is required")), api.ErrRejected, "rule pack rejected:\nline 1:1"},
		{fmt.Errorf("%w %q in rule_versions", rulesvc.ErrUnknownVersion, "v9"), api.ErrNotFound, ""},
	} {
		got := apiError(c.err)
		if !errors.Is(got, c.class) || !errors.Is(got, c.err) || got.Error() != c.err.Error() {
			t.Errorf("apiError(%q) = %q; want %v and the same text", c.err, got, c.class)
		}
		if c.want != "" && (!strings.HasPrefix(got.Error(), c.want) || strings.Count(got.Error(), "rule pack rejected") != 1) {
			t.Errorf("apiError(%q) = %q", c.err, got)
		}
	}
}

// A phone is looked up by its keyed hash: without the key nothing stored can match, which must be
// said rather than shown as "0 attempts".
func TestLookupPhoneNeedsTheHashKey(t *testing.T) {
	cleanEnv(t)
	r := runCmd(t, context.Background(), "lookup", "--phone", "13812345678", "--api", "none", "--set", "clickhouse.addr=")
	if r.code != 2 || !strings.Contains(r.stderr, "scoring.phone_hash_key: required to look up a phone") || strings.Contains(r.stdout, "attempts") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// A number with no history says what a wrong phone_hash_key would look like; an IP does not.
func TestLookupNoHistoryOfANumber(t *testing.T) {
	var b strings.Builder
	(&lookupResult{byPhone: true, LiveSkipped: true, span: time.Hour}).write(&b)
	if !strings.Contains(b.String(), "check that scoring.phone_hash_key is the key the scorers and API nodes use") {
		t.Errorf("a number without history:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "recent attempts (1h, newest first)") {
		t.Errorf("the span is not written as given (1h):\n%s", b.String())
	}
	b.Reset()
	(&lookupResult{LiveSkipped: true, span: time.Hour}).write(&b)
	if strings.Contains(b.String(), "phone_hash_key") {
		t.Errorf("an address without history:\n%s", b.String())
	}
}

// During a Kafka outage an API node explains the state it has, minutes old: lookup says so above
// the windows, so that an investigator does not take them for the number's latest attempts. What
// the node's archiver thinks of ClickHouse is no part of it; the state and the lists are.
func TestLookupSaysTheLiveStateIsNotCurrent(t *testing.T) {
	h := &health{}
	stale := errors.New("feature replica is 37s stale (allowed 20s)")
	h.add("state", func() error { return nil })
	h.add("fresh", func() error { return stale })
	h.add("lists", func() error { return nil })
	h.add("archiver", func() error { return errors.New("stalled: clickhouse refused") })
	h.add("decisions", func() error { return errors.New("stalled: clickhouse refused") })
	err := h.stateCurrent()
	if err == nil || !strings.Contains(err.Error(), "37s stale") || strings.Contains(err.Error(), "clickhouse") {
		t.Fatalf("stateCurrent: %v; want the state's staleness only", err)
	}
	var b strings.Builder
	(&lookupResult{Live: &api.ExplainResponse{Stale: err.Error(), Explanation: scoring.Explanation{Subject: "ip 111.8.0.175"}},
		HistoryError: "x", span: time.Hour}).write(&b)
	if !strings.Contains(b.String(), "NOT CURRENT: fresh: feature replica is 37s stale") {
		t.Errorf("lookup of a stale state does not say so:\n%s", b.String())
	}
	stale = nil
	if err := h.stateCurrent(); err != nil {
		t.Errorf("stateCurrent of a current state, ClickHouse away: %v; want nil", err)
	}
	b.Reset()
	(&lookupResult{Live: &api.ExplainResponse{Explanation: scoring.Explanation{Subject: "ip 111.8.0.175"}}, HistoryError: "x", span: time.Hour}).write(&b)
	if strings.Contains(b.String(), "NOT CURRENT") {
		t.Errorf("lookup of a current state:\n%s", b.String())
	}
}

// A disputed verdict is shown with what it rested on: each hit's reason, with the numbers, as it
// was served, and the rules version (lookup showed rule ids only; the reasons took SQL).
func TestLookupShowsTheReasonsOfADecision(t *testing.T) {
	var b strings.Builder
	(&lookupResult{LiveSkipped: true, Decisions: []chsink.StoredDecision{{
		TS: time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC), AppID: "app1", DecisionID: "api1-x-01", PhoneMasked: "1370000****", IP: "47.92.10.20",
		Score: 600, Tags: []string{"idc_proxy_ip"}, RulesVersion: "f0a24e6a32446aba", LatencyUS: 230,
		HitRules:   []string{"idc_proxy_ip", "ipv6_trial"},
		HitModes:   []string{"enforce", "shadow"},
		HitReasons: []string{"datacenter/proxy IP (AS37963 Alibaba)", "26 phones from this IP in 10 min"},
	}}, span: time.Hour}).write(&b)
	for _, want := range []string{"idc_proxy_ip: datacenter/proxy IP (AS37963 Alibaba); ipv6_trial(shadow): 26 phones from this IP in 10 min", "f0a24e6a32446aba"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 10 * time.Minute: "10m", 90 * time.Second: "1m30s", 36*time.Hour + 5*time.Second: "36h0m5s",
		7 * 24 * time.Hour: "7d", 400 * 24 * time.Hour: "400d", 48 * time.Hour: "2d", 49 * time.Hour: "49h"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// What lookup prints about a part it could not show never spells a number out, whatever text the
// failure quotes (an --api URL with a number in its path here).
func TestLookupErrorsMaskNumbers(t *testing.T) {
	cleanEnv(t)
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer empty.Close()
	r := runCmd(t, context.Background(), "lookup", "--device", "farm-1", "--api", empty.URL+"/13812345678", "--set", "clickhouse.addr=")
	if r.code != 1 || !strings.Contains(r.stdout, "live state: unavailable") || strings.Contains(r.stdout+r.stderr, "5678") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// A secret in --api's user info (http://name:secret@host) is never printed: lookup's error, its
// text output and --json's live_error showed the URL as given.
func TestLookupErrorsHideTheAPISecret(t *testing.T) {
	cleanEnv(t)
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer empty.Close()
	withSecret := strings.Replace(empty.URL, "://", "://lead:s3cr3t-pw@", 1)
	away := "http://lead:s3cr3t-pw@" + testaddr.Free(t)
	for _, args := range [][]string{
		{"--api", withSecret},
		{"--api", withSecret, "--json"},
		{"--api", away},
		{"--api", "ftp://lead:s3cr3t-pw@host"},
		{"--api", "http://lead:s3cr3t-pw@bad host"},
	} {
		r := runCmd(t, context.Background(), append([]string{"lookup", "--device", "farm-1", "--set", "clickhouse.addr="}, args...)...)
		if r.code == 0 || strings.Contains(r.stdout+r.stderr, "s3cr3t") {
			t.Errorf("%v: exit %d\nstdout %s\nstderr %s", args, r.code, r.stdout, r.stderr)
		}
	}
}

// An analyst pastes a number as the complaint wrote it (schemas.ReadWrittenPhone reads every
// common writing): the live state is asked of the number itself, and nothing echoes it.
func TestLookupPhoneWritings(t *testing.T) {
	// Through the command: the live state is asked of the number itself.
	var asked api.ExplainRequest
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&asked)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"code":0,"content":"live state","subject":"phone 1381234****","windows":[],"matching":[],"near":[]}`)
	}))
	defer node.Close()
	cleanEnv(t)
	r := runCmd(t, context.Background(), "lookup", "--phone", "0086 (138) 1234-5678", "--api", node.URL, "--set", "clickhouse.addr=", "--set", "scoring.phone_hash_key=k")
	if r.code != 0 || asked.Phone != "13812345678" || strings.Contains(r.stdout+r.stderr, "5678") {
		t.Errorf("exit %d, asked %+v\nstdout %s\nstderr %s", r.code, asked, r.stdout, r.stderr)
	}
}

// --since is "how far back": one reaching before what ClickHouse stores (1970) reads everything
// rather than failing with "since storable", and a span in days is read as people write it.
func TestLookupSince(t *testing.T) {
	now := time.Now()
	for _, since := range []time.Duration{time.Hour, 100_000 * time.Hour, 1_000_000 * time.Hour, math.MaxInt64} {
		if _, _, err := chsink.LookupSQL("riskflow", chsink.LookupKey{IP: "10.1.2.3"}, chsink.LookupRange{Since: lookupSince(now, since)}, 20); err != nil {
			t.Errorf("--since %s: %v", since, err)
		}
	}
	if got := lookupSince(now, time.Hour); !got.Equal(now.Add(-time.Hour)) {
		t.Errorf("--since 1h from %s: %s", now, got)
	}
	cleanEnv(t)
	for _, c := range []struct{ since, want string }{
		{"7d", "clickhouse.addr is not set"}, // parsed: the lookup went on to ask for the history
		{"1d12h", "clickhouse.addr is not set"},
		{"1w", `invalid value "1w" for flag --since: want a span like 24h, 90m or 7d back from now, an RFC 3339 time`},
	} {
		r := runCmd(t, context.Background(), "lookup", "--ip", "10.1.2.3", "--api", "none", "--set", "clickhouse.addr=", "--since", c.since)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("--since %s: exit %d, stderr %q; want %q", c.since, r.code, r.stderr, c.want)
		}
	}
}

// lookup's --since and --until take every form backtest's --from and --to take, meaning the
// same: a date (its UTC midnight) and "now" were refused by lookup ("invalid value
// \"2026-12-01\" for flag --since") while backtest --from 2026-12-01 read them.
func TestLookupTakesBacktestsTimes(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)
	for _, s := range []string{"2026-12-01", "now", "24h", "7d", "2026-12-06T10:00:00Z", "2026-12-06T18:00:00+08:00"} {
		want, err := parseWhen(s, now)
		if err != nil {
			t.Fatalf("backtest --from %s: %v", s, err)
		}
		var f timeFlag
		if err := f.Set(s); err != nil {
			t.Errorf("lookup --since %s: %v (backtest --from reads it as %s)", s, err, want)
			continue
		}
		if got := f.resolve(now); !got.Equal(want) {
			t.Errorf("lookup --since %s: %s; backtest --from %s: %s", s, got, s, want)
		}
	}
	cleanEnv(t)
	r := runCmd(t, context.Background(), "lookup", "--ip", "10.1.2.3", "--api", "none", "--set", "clickhouse.addr=", "--since", "2026-12-01", "--until", "now")
	if !strings.Contains(r.stderr, "clickhouse.addr is not set") {
		t.Errorf("--since 2026-12-01 --until now: exit %d, stderr %q; want the flags read and the history asked for", r.code, r.stderr)
	}
}

// A --labels file wins over the stored labels where both label an event — also with a line that
// names no app (it labels the event id in every app): the stored label of (app1, ev-1) outvoted
// the file's "ev-1,legit", which Labels.Of reads after the app's own.
func TestFileLabelsWinOverStored(t *testing.T) {
	stored := backtest.Labels{{AppID: "app1", EventID: "ev-1"}: true, {AppID: "app2", EventID: "ev-1"}: true,
		{AppID: "app1", EventID: "ev-2"}: true, {AppID: "app1", EventID: "ev-3"}: false}
	file := backtest.Labels{{EventID: "ev-1"}: false, {AppID: "app1", EventID: "ev-2"}: false, {EventID: "ev-3"}: true, {AppID: "app1", EventID: "ev-3"}: false}
	got := mergeLabels(stored, file)
	for _, c := range []struct {
		app, id string
		want    bool
	}{
		{"app1", "ev-1", false}, {"app2", "ev-1", false}, // the file's line without an app, in every app
		{"app1", "ev-2", false}, // the file's own line for the app
		{"app1", "ev-3", false}, // the file's line for the app beats its line without one
		{"app9", "ev-3", true},
	} {
		if attack, ok := got.Of(c.app, c.id); !ok || attack != c.want {
			t.Errorf("(%s, %s): attack %v (labelled %v), want %v", c.app, c.id, attack, ok, c.want)
		}
	}
}

// Without --api, lookup asks the API node of the configuration as it serves: over HTTPS when
// api.tls_cert is set (plain HTTP to a TLS listener is refused), at the loopback address when it
// listens on every address.
func TestLookupDefaultAPI(t *testing.T) {
	for _, c := range []struct{ listen, cert, want string }{
		{"127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"127.0.0.1:8443", "/etc/riskflow/tls.crt", "https://127.0.0.1:8443"},
		{":8080", "", "http://127.0.0.1:8080"},
		{"0.0.0.0:8080", "", "http://127.0.0.1:8080"},
		{"[::]:8080", "", "http://[::1]:8080"},
	} {
		cfg := Default()
		cfg.API.Listen, cfg.API.TLSCert = c.listen, c.cert
		if got := defaultAPIURL(cfg); got != c.want {
			t.Errorf("api.listen %s, tls_cert %q: %s, want %s", c.listen, c.cert, got, c.want)
		}
	}
}

// Stored free text is shown with its invisible formatting characters escaped: an event id ending
// in a right-to-left override (which the decoder lets through) does not reverse the rest of its row
// in the analyst's terminal, and a zero-width space in a device id is seen.
func TestLookupTableEscapesFormattingCharacters(t *testing.T) {
	l := lookupResult{LiveSkipped: true, span: time.Hour, limit: 20,
		Attempts: []chsink.Attempt{{TS: time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC), AppID: "app1", EventID: "evt-1\u202e", PhoneMasked: "1381234****",
			IP: "1.2.3.4", DeviceID: "dev\u200b1", Outcome: "fail", ErrorCode: "103911", Score: 600, Tags: []string{"overseas_ip"}}},
		Decisions: []chsink.StoredDecision{{TS: time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC), AppID: "app\u2066x", DecisionID: "d-1", PhoneMasked: "1381234****"}},
	}
	var out bytes.Buffer
	l.write(&out)
	got := out.String()
	for _, r := range []rune{'\u202e', '\u200b', '\u2066'} {
		if strings.ContainsRune(got, r) {
			t.Errorf("the table holds U+%04X as it is:\n%s", r, got)
		}
	}
	for _, want := range []string{`evt-1\u202E`, `dev\u200B1`, `app\u2066x`, "fail 103911"} {
		if !strings.Contains(got, want) {
			t.Errorf("the table does not show %q:\n%s", want, got)
		}
	}
}
