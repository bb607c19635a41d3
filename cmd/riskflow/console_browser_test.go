//go:build browser

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/segmentio/kafka-go"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/rules/packs"
)

// TestConsoleInBrowser drives the console in headless Chromium against two running nodes on the
// shared Kafka and ClickHouse: node A (scorer, archiver, api) and node B (api only), sharing the
// pack and lists files as nodes share them in production. It logs in, opens every page, edits a
// rule with an error and sees it flagged at its line, fixes it, runs the pack's tests, backtests
// the draft, promotes it and checks that /v1/risk/check answers with the new version on both nodes,
// rolls back, and adds block-list entries that take effect on both nodes without a restart.
//
// Chromium: `deploy/local/chromium.sh install` (Debian package chromium); RISKFLOW_CHROMIUM
// names another binary. Screenshots go to RISKFLOW_CONSOLE_SCREENSHOTS (docs/console to refresh
// the README's), else to a temporary directory.
func TestConsoleInBrowser(t *testing.T) {
	chromium := os.Getenv("RISKFLOW_CHROMIUM")
	if chromium == "" {
		for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(n); err == nil {
				chromium = p
				break
			}
		}
	}
	if chromium == "" {
		t.Fatal("no Chromium: run deploy/local/chromium.sh install (Debian package chromium) or set RISKFLOW_CHROMIUM")
	}
	shots := os.Getenv("RISKFLOW_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = tempDir(t)
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// One throwaway world: topics, groups, database (dropped once the nodes stopped), pack and
	// lists files.
	_, brokers := testServices()
	chAddr, db, id, conn := throwawayDatabase(t, "riskflow_console")
	dir := tempDir(t)
	packPath, listsPath := filepath.Join(dir, "rules.yaml"), filepath.Join(dir, "lists.txt")
	must(t, os.WriteFile(packPath, packs.Default(), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "tests.yaml"), packs.DefaultTests(), 0o644))
	must(t, os.WriteFile(listsPath, nil, 0o644))
	const app, appSecret, admin, adminSecret = "consoletest", "app-secret", "alice", "alice-secret"
	common := []string{
		"--set", "kafka.brokers=" + brokers,
		"--set", "kafka.events_topic=console." + id + ".events", "--set", "kafka.scores_topic=console." + id + ".scores",
		"--set", "kafka.dlq_topic=console." + id + ".dlq", "--set", "kafka.scorer_group=console-" + id + "-scorer",
		"--set", "kafka.archiver_group=console-" + id + "-archiver",
		"--set", "kafka.decisions_topic=console." + id + ".decisions", "--set", "kafka.decisions_group=console-" + id + "-decisions",
		"--set", "kafka.lists_topic=console." + id + ".lists",
		"--set", "clickhouse.addr=" + chAddr, "--set", "clickhouse.database=" + db,
		"--set", "scoring.phone_hash_key=console-test-key", "--set", "scoring.rules=" + packPath,
		"--set", "scoring.lists=" + listsPath, "--set", "scoring.reload_interval=200ms",
		"--set", "api.keys=" + app + ":" + appSecret, "--set", "api.admin_keys=" + admin + ":" + adminSecret + ",bob:bob-secret",
		"--set", "log.level=warn",
	}
	ctx, cancel := context.WithCancel(context.Background())
	nodeA, nodeB := "http://"+testaddr.Free(t), "http://"+testaddr.Free(t)
	done := make(chan int, 2)
	var logA, logB bytes.Buffer
	go func() {
		done <- run(ctx, append([]string{"serve", "--roles", "scorer,archiver,api", "--listen", strings.TrimPrefix(nodeA, "http://")}, common...), io.Discard, &logA)
	}()
	go func() {
		done <- run(ctx, append([]string{"serve", "--roles", "api", "--listen", strings.TrimPrefix(nodeB, "http://")}, common...), io.Discard, &logB)
	}()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Error("a node did not stop within 20 s")
			}
		}
		if t.Failed() {
			t.Logf("node A log:\n%s\nnode B log:\n%s", tail(logA.String(), 4000), tail(logB.String(), 4000))
		}
	})
	waitFor(t, "both nodes ready", 60*time.Second, func() error {
		for _, n := range []string{nodeA, nodeB} {
			if err := get200(n + "/readyz"); err != nil {
				return err
			}
		}
		return nil
	})

	// History: 50 numbers verified twice a minute apart and 50 once, over the last two hours;
	// numbers in distinct blocks, minutes apart, so no rule of the default pack fires.
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-2 * time.Hour)
	var evs []map[string]any
	ev := func(n int, phone string, at time.Time) {
		evs = append(evs, map[string]any{"event_id": fmt.Sprintf("ev-%d", n), "ts": at.Format(time.RFC3339), "app_id": app,
			"flow": "one_click_login", "phone": phone, "ip": "100.64.3.4", "carrier": "CM", "outcome": "success"})
	}
	for i := range 50 {
		phone := fmt.Sprintf("139%04d%04d", i*101%10000, i)
		at := start.Add(time.Duration(i) * 2 * time.Minute)
		ev(len(evs), phone, at)
		ev(len(evs), phone, at.Add(time.Minute))
	}
	for i := range 50 {
		ev(len(evs), fmt.Sprintf("138%04d%04d", i*97%10000, i), start.Add(time.Duration(i)*2*time.Minute+30*time.Second))
	}
	// And one loginToken replayed by 20 numbers from another address: token_replay (900) on 19
	// of them under both packs, for the overview's tags and hit rates.
	for i := range 20 {
		ev(len(evs), fmt.Sprintf("137%04d%04d", i*89%10000, i), start.Add(time.Duration(i)*3*time.Minute+45*time.Second))
		evs[len(evs)-1]["ip"] = "100.64.9.9"
		evs[len(evs)-1]["token_digest"] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	}
	const stored = 170
	body, _ := json.Marshal(evs)
	req, _ := http.NewRequest(http.MethodPost, nodeA+"/v1/events", bytes.NewReader(body))
	req.SetBasicAuth(app, appSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %s", resp.Status)
	}
	waitFor(t, "every event scored and stored in ClickHouse", 60*time.Second, func() error {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".risk_scores").Scan(&n); err != nil {
			return err
		}
		if n < stored {
			return fmt.Errorf("%d rows", n)
		}
		return nil
	})
	v0 := checkVersion(t, nodeA, app, appSecret, "13912345678", "203.0.113.9")

	// The browser.
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 4*time.Minute)
	defer tcancel()
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// shot saves the whole page, or only the window where a page is long (the pack's text).
	shot := func(name string, window ...bool) {
		t.Helper()
		take := chromedp.FullScreenshot(100)
		if len(window) > 0 && window[0] {
			take = chromedp.CaptureScreenshot()
		}
		png, err := chromedp.Run(bctx, take)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		must(t, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}

	// waitText waits until sel's text holds want (a click's page replaces the one with a notice).
	waitText := func(sel, want string) {
		t.Helper()
		waitFor(t, sel+" shows "+want, 30*time.Second, func() error {
			s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
			if err != nil || !strings.Contains(s, want) {
				return fmt.Errorf("%q %v", s, err)
			}
			return nil
		})
	}

	// Log in: a wrong secret is refused next to the field, then the right one lands on the
	// page asked for.
	do("open the console", chromedp.Navigate(nodeA+"/console/overview"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	shot("login")
	do("wrong secret", chromedp.SendKeys(chromedp.CSS("#name"), admin), chromedp.SendKeys(chromedp.CSS("#secret"), "nope"),
		chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#err-secret")))
	// Read again until it holds: a read racing the refused form's page load failed once.
	waitText("#err-secret", "wrong secret")
	do("log in", chromedp.SetValue(chromedp.CSS("#name"), admin), chromedp.SetValue(chromedp.CSS("#secret"), adminSecret),
		chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#filters")))
	res, err := chromedp.Run(bctx, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
	})
	must(t, err)
	var session *network.Cookie
	for _, c := range res.Cookies {
		if c.Name == "riskflow_console" {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict", session)
	}

	// Overview: the stored events from the rollups, with the app filter.
	do("overview for the app", chromedp.Navigate(nodeA+"/console/overview?range=6h&app="+app), chromedp.WaitVisible(chromedp.CSS("#rule-hits")))
	if s := text("#total"); s != fmt.Sprint(stored) {
		t.Errorf("overview total = %q, want %d", s, stored)
	}
	if s := text("#rule-hits"); !regexp.MustCompile(`token_replay\s+token_replay\s+enforce\s+19\s`).MatchString(s) {
		t.Errorf("rule hits lack token_replay 19:\n%s", s)
	}
	if s := text("#node-metrics"); !strings.Contains(s, "riskflow_scored_total") {
		t.Errorf("node metrics lack riskflow_scored_total:\n%s", s)
	}
	shot("overview")
	do("bad filter", chromedp.Navigate(nodeA+"/console/overview?range=custom&from=yesterday&app="+app), chromedp.WaitVisible(chromedp.CSS("#err-from")))

	// CSRF: the session alone does not make a POST.
	if code := postWithCookie(t, nodeA+"/console/lists", session.Value, url.Values{"action": {"block"}, "kind": {"ip"}, "value": {"192.0.2.1"}, "why": {"x"}}); code != http.StatusForbidden {
		t.Errorf("POST without a CSRF token: %d, want 403", code)
	}

	// Rules: the live pack and its recorded version.
	do("rules", chromedp.Navigate(nodeA+"/console/rules"), chromedp.WaitVisible(chromedp.CSS("#versions")))
	if s := text("#live-version"); s != v0 {
		t.Errorf("live version on the page %q, /v1/risk/check says %q", s, v0)
	}
	shot("rules")

	// A draft with an error, flagged at its rule and line.
	pack := string(packs.Default())
	const marker = "  # --- lists"
	if !strings.Contains(pack, marker) {
		t.Fatal("the default pack no longer has the lists section this test inserts before")
	}
	rule := func(cond string) string {
		return "  - id: console_twice_in_app\n    tag: console_twice\n    description: a number verified twice in 10 min (console test)\n" +
			"    owner: console-test\n    level: 300\n    when: " + cond + "\n    reason: \"{phone_verifies_10m} verifications in 10 min\"\n\n"
	}
	bad := strings.Replace(pack, marker, rule(`app_id == "`+app+`" && phone_verifies_10m >= "2"`)+marker, 1)
	good := strings.Replace(pack, marker, rule(`app_id == "`+app+`" && phone_verifies_10m >= 2`)+marker, 1)
	badLine := strings.Count(bad[:strings.Index(bad, `phone_verifies_10m >= "2"`)], "\n") + 1
	do("draft", chromedp.Navigate(nodeA+"/console/rules/draft"), chromedp.WaitVisible(chromedp.CSS("#draft")),
		chromedp.SetValue(chromedp.CSS("#draft"), bad), chromedp.Click(chromedp.CSS("#lint")),
		chromedp.WaitVisible(chromedp.CSS("#lint-errors")))
	lint := text("#lint-errors")
	if !strings.Contains(lint, "console_twice_in_app") || !strings.Contains(lint, fmt.Sprintf("line %d:", badLine)) {
		t.Errorf("lint errors %q do not name rule console_twice_in_app at line %d", lint, badLine)
	}
	if s := text("#L" + fmt.Sprint(badLine)); !strings.Contains(s, `"2"`) {
		t.Errorf("flagged line %d reads %q", badLine, s)
	}
	do("scroll to the problem", chromedp.ScrollIntoView(chromedp.CSS("#L"+fmt.Sprint(badLine))))
	shot("draft-lint", true)

	// Fixed: lint clean, tests pass.
	do("fix and test", chromedp.SetValue(chromedp.CSS("#draft"), good), chromedp.Click(chromedp.CSS("#test")),
		chromedp.WaitVisible(chromedp.CSS("#tests")))
	if s := text("#notice"); !regexp.MustCompile(`^All \d+ tests passed\.$`).MatchString(s) {
		t.Errorf("after the tests: %q", s)
	}
	do("scroll to the tests", chromedp.ScrollIntoView(chromedp.CSS("#tests")))
	shot("draft-tests", true)

	// Backtest the draft in the editor, edited after the tests (a comment) and not linted, on the
	// last 3 hours: exactly the 50 second attempts go 0 → 300, and the draft backtested is saved.
	edited := good + "# edited after the tests\n"
	do("backtest", chromedp.SetValue(chromedp.CSS("#draft"), edited), chromedp.SetValue(chromedp.CSS("#hours"), "3"),
		chromedp.Click(chromedp.CSS("#backtest")), chromedp.WaitVisible(chromedp.CSS("#transitions")))
	trans := text("#transitions")
	if !regexp.MustCompile(`(?m)^\s*0\s+300\s+50\b`).MatchString(trans) {
		t.Errorf("transitions lack 0 → 300 for 50 events:\n%s", trans)
	}
	if s := text("#rule-diffs"); !strings.Contains(s, "console_twice_in_app") {
		t.Errorf("rules gained/lost lack console_twice_in_app:\n%s", s)
	}
	shot("backtest")
	do("the backtested draft is saved", chromedp.Navigate(nodeA+"/console/rules/draft"), chromedp.WaitVisible(chromedp.CSS("#draft")))
	if saved, err := chromedp.Run(bctx, chromedp.Value(chromedp.CSS("#draft"))); err != nil || !strings.Contains(saved, "# edited after the tests") {
		t.Error("the backtest did not send the draft as it was in the editor (the saved draft lacks the edit)")
	}

	// Promote: recorded with who, live on both nodes.
	do("promote", chromedp.Navigate(nodeA+"/console/rules/draft"), chromedp.WaitVisible(chromedp.CSS("#draft")),
		chromedp.Click(chromedp.CSS("#promote")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	v1 := text("#live-version")
	if v1 == v0 || !strings.Contains(text("#notice"), "Promoted version "+v1) {
		t.Fatalf("after promote: live %q (was %q), notice %q", v1, v0, text("#notice"))
	}
	for _, n := range []string{nodeA, nodeB} {
		waitFor(t, n+" answers with the promoted version", 10*time.Second, func() error {
			if v := checkVersion(t, n, app, appSecret, "13912345678", "203.0.113.9"); v != v1 {
				return fmt.Errorf("rules_version %s", v)
			}
			return nil
		})
	}
	waitFor(t, "both versions listed", 10*time.Second, func() error {
		if err := chromedp.Do(bctx, chromedp.Navigate(nodeA+"/console/rules")); err != nil {
			return err
		}
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#versions")))
		if err != nil {
			return err
		}
		if !strings.Contains(s, v0) || !strings.Contains(s, v1) || !strings.Contains(s, "console:"+admin) {
			return fmt.Errorf("versions table:\n%s", s)
		}
		return nil
	})
	shot("rules-promoted")
	do("diff", chromedp.Navigate(nodeA+"/console/rules/versions/"+v1+"?against="+v0), chromedp.WaitVisible(chromedp.CSS("#diff")))
	if s := text("#diff"); !strings.Contains(s, "+   - id: console_twice_in_app") {
		t.Errorf("diff lacks the added rule")
	}
	do("scroll to the change", chromedp.ScrollIntoView(chromedp.CSS("#diff .dadd")))
	shot("version-diff", true)

	// Roll back to the first version: the button shows what the rollback undoes, and its
	// confirmation does it.
	do("roll back", chromedp.Navigate(nodeA+"/console/rules"), chromedp.WaitVisible(chromedp.CSS("#versions")),
		chromedp.Click(chromedp.CSS(`button.rollback[data-version="`+v0+`"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm-rollback")))
	if s := text("#diff"); !strings.Contains(s, "-   - id: console_twice_in_app") {
		t.Errorf("the rollback's confirmation does not show the rule it takes out:\n%s", s)
	}
	shot("rollback-confirm")
	do("confirm the rollback", chromedp.Click(chromedp.CSS("#confirm-rollback")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if s := text("#live-version"); s != v0 {
		t.Errorf("after rollback the live version is %q, want %q", s, v0)
	}
	for _, n := range []string{nodeA, nodeB} {
		waitFor(t, n+" answers with the rolled-back version", 10*time.Second, func() error {
			if v := checkVersion(t, n, app, appSecret, "13912345678", "203.0.113.9"); v != v0 {
				return fmt.Errorf("rules_version %s", v)
			}
			return nil
		})
	}

	// Lists: a bad value is refused next to its field; a block entry takes effect on both nodes.
	const blockedIP, blockedPhone = "198.51.100.77", "13700001111"
	for _, n := range []string{nodeA, nodeB} {
		if sc := checkScore(t, n, app, appSecret, "13912345678", blockedIP); sc != 0 {
			t.Fatalf("%s: score %d from %s before it is listed", n, sc, blockedIP)
		}
	}
	do("lists: bad cidr", chromedp.Navigate(nodeA+"/console/lists"), chromedp.WaitVisible(chromedp.CSS("#list-form")),
		chromedp.SetValue(chromedp.CSS("#list-kind"), "cidr"), chromedp.SetValue(chromedp.CSS("#list-value"), "198.51.100.77/24"),
		chromedp.SetValue(chromedp.CSS("#list-why"), "browser test"), chromedp.Click(chromedp.CSS("#list-add")),
		chromedp.WaitVisible(chromedp.CSS("#err-value")))
	if s := text("#err-value"); !strings.Contains(s, "host bits") {
		t.Errorf("cidr error %q", s)
	}
	shot("lists-error")
	do("lists: block ip", chromedp.SetValue(chromedp.CSS("#list-kind"), "ip"), chromedp.SetValue(chromedp.CSS("#list-value"), blockedIP),
		chromedp.SetValue(chromedp.CSS("#list-why"), "farm address (browser test)"), chromedp.Click(chromedp.CSS("#list-add")))
	waitText("#notice", "Added: block ip "+blockedIP)
	do("lists: block phone", chromedp.SetValue(chromedp.CSS("#list-kind"), "phone"), chromedp.SetValue(chromedp.CSS("#list-value"), blockedPhone),
		chromedp.SetValue(chromedp.CSS("#list-why"), "reported fraud (browser test)"), chromedp.Click(chromedp.CSS("#list-add")))
	waitText("#notice", "Added: block phone 1370000****")
	entries := text("#entries")
	if !strings.Contains(entries, blockedIP) || !strings.Contains(entries, "1370000****") || !strings.Contains(entries, admin) || strings.Contains(entries, blockedPhone) {
		t.Errorf("entries table:\n%s", entries)
	}
	shot("lists")
	if b, _ := os.ReadFile(listsPath); len(b) != 0 {
		t.Errorf("the console wrote to the lists file (entries go to the lists topic):\n%s", b)
	}
	// On the lists topic: the number's keyed hash and masked form, never the number.
	lr := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(brokers, ","), Topic: "console." + id + ".lists", Partition: 0, MaxWait: 100 * time.Millisecond})
	var onTopic []string
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	for len(onTopic) < 2 {
		m, err := lr.ReadMessage(rctx)
		if err != nil {
			t.Errorf("reading the lists topic: %v (read %q)", err, onTopic)
			break
		}
		onTopic = append(onTopic, string(m.Value))
	}
	rcancel()
	lr.Close()
	if all := strings.Join(onTopic, "\n"); strings.Contains(all, blockedPhone) || !strings.Contains(all, `"kind":"phone_hash"`) {
		t.Errorf("lists topic holds the number in plaintext or no hash:\n%s", all)
	}
	for _, n := range []string{nodeA, nodeB} {
		waitFor(t, n+" blocks the listed IP and number", 10*time.Second, func() error {
			if sc := checkScore(t, n, app, appSecret, "13912345678", blockedIP); sc != 900 {
				return fmt.Errorf("ip: score %d", sc)
			}
			if sc := checkScore(t, n, app, appSecret, blockedPhone, "203.0.113.9"); sc != 900 {
				return fmt.Errorf("phone: score %d", sc)
			}
			return nil
		})
	}

	// Investigate a number of the history: its attempts and verdicts.
	do("investigate", chromedp.Navigate(nodeA+"/console/investigate"), chromedp.WaitVisible(chromedp.CSS("#investigate-form")),
		chromedp.SetValue(chromedp.CSS("#inv-value"), "13900000000"), chromedp.Click(chromedp.CSS("#inv-go")),
		chromedp.WaitVisible(chromedp.CSS("#attempts")))
	if s := text("#attempts"); strings.Count(s, "ev-") != 2 {
		t.Errorf("attempts of the number (2 expected):\n%s", s)
	}
	loc, err := chromedp.Run(bctx, chromedp.Location())
	must(t, err)
	if strings.Contains(loc, "13900000000") {
		t.Errorf("the number is in the URL: %s", loc)
	}
	// The checks this test made for 13912345678 are in the decision log; mark one fraud.
	do("investigate a checked number", chromedp.Navigate(nodeA+"/console/investigate"), chromedp.WaitVisible(chromedp.CSS("#investigate-form")),
		chromedp.SetValue(chromedp.CSS("#inv-value"), "13912345678"), chromedp.Click(chromedp.CSS("#inv-go")),
		chromedp.WaitVisible(chromedp.CSS("#decisions")))
	if s := text("#features"); !strings.Contains(s, "phone_verifies_10m") {
		t.Errorf("live features of the number lack phone_verifies_10m:\n%s", s)
	}
	waitFor(t, "the decision log reaches ClickHouse", 30*time.Second, func() error {
		if err := chromedp.Do(bctx, chromedp.Navigate(nodeA+"/console/investigate"), chromedp.WaitVisible(chromedp.CSS("#investigate-form")),
			chromedp.SetValue(chromedp.CSS("#inv-value"), "13912345678"), chromedp.Click(chromedp.CSS("#inv-go")),
			chromedp.WaitVisible(chromedp.CSS("#decisions"))); err != nil {
			return err
		}
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#decisions")))
		if err != nil || !strings.Contains(s, "consoletest") {
			return fmt.Errorf("decisions: %q %v", s, err)
		}
		return nil
	})
	shot("investigate")
	do("mark a decision fraud", chromedp.Click(chromedp.CSS(`#decisions button[value="fraud"]`)))
	waitText("#notice", "marked fraud by "+admin)
	var labels uint64
	must(t, conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".labels WHERE label = 'fraud' AND labeled_by = 'console:"+admin+"'").Scan(&labels))
	if labels != 1 {
		t.Errorf("labels rows by the console: %d, want 1", labels)
	}
	do("investigate the blocked address", chromedp.Navigate(nodeA+"/console/investigate?kind=ip&value="+blockedIP), chromedp.WaitVisible(chromedp.CSS("#listed")))
	if s := text("#listed"); !strings.Contains(s, "farm address (browser test)") {
		t.Errorf("the blocked address is not shown as listed: %q", s)
	}

	// Log out: the console asks to log in again.
	do("log out", chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.Navigate(nodeA+"/console/rules"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get200(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(u + ": " + resp.Status)
	}
	return nil
}

func waitFor(t *testing.T, what string, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type consoleVerdict struct {
	Score        int      `json:"score"`
	Tags         []string `json:"tags"`
	RulesVersion string   `json:"rules_version"`
}

func check(t *testing.T, node, app, secret, phone, ip string) consoleVerdict {
	t.Helper()
	body := fmt.Sprintf(`{"phone":%q,"ip":%q,"app_id":%q,"carrier":"CM"}`, phone, ip, app)
	req, _ := http.NewRequest(http.MethodPost, node+"/v1/risk/check", strings.NewReader(body))
	req.SetBasicAuth(app, secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var v consoleVerdict
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s /v1/risk/check: %s %s", node, resp.Status, b)
	}
	must(t, json.NewDecoder(resp.Body).Decode(&v))
	return v
}

func checkVersion(t *testing.T, node, app, secret, phone, ip string) string {
	return check(t, node, app, secret, phone, ip).RulesVersion
}

func checkScore(t *testing.T, node, app, secret, phone, ip string) int {
	return check(t, node, app, secret, phone, ip).Score
}

func postWithCookie(t *testing.T, u, cookie string, form url.Values) int {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "riskflow_console", Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
