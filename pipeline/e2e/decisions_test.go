//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
)

// The decision log on real Kafka and ClickHouse, through the binary:
//
//   - N checks answered by an API node → exactly N rows in risk_decisions, each with what was
//     answered (score, tags, id) and the rule hits, and no plaintext phone on risk.decisions;
//   - each attempt then published with its outcome and the verdict's id as decision_id → every
//     decision joins its event (the analysts' join, as SCHEMA.md writes it);
//   - `riskflow label` on decisions and events → `riskflow backtest` reads the stored labels by
//     default, and its precision and recall follow them.
func TestDecisionLogEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	addr := testaddr.Free(t)
	e.start("scorer,archiver,api", "--listen", addr)
	waitHTTP(t, "http://"+addr+"/readyz")
	api := newAPIClient(addr)

	// 40 attempts from a datacenter address through one block of numbers (flagged: idc_proxy_ip),
	// 40 ordinary ones, each from its own carrier address.
	const farm, ordinary = 40, 40
	type attempt struct {
		phone, ip, device string
		fraud             bool
		rc                schemas.RiskCheck
	}
	var as []attempt
	for i := range farm {
		as = append(as, attempt{phone: fmt.Sprintf("1370000%04d", i), ip: "47.92.10.20", device: "farm-1", fraud: true})
	}
	for i := range ordinary {
		as = append(as, attempt{phone: fmt.Sprintf("139%04d%04d", i*97%10000, i), ip: fmt.Sprintf("223.104.%d.%d", i/200, 1+i%200), device: fmt.Sprintf("dev-%d", i)})
	}
	served := map[string]schemas.RiskCheck{}
	for i := range as {
		a := &as[i]
		body := fmt.Sprintf(`{"phone":%q,"ip":%q,"app_id":"it-app","carrier":"CM","flow":"one_click_login","platform":"android","device_id":%q,"ex_id":"x-%d"}`, a.phone, a.ip, a.device, i)
		code, _, b, err := api.post("/v1/risk/check", []byte(body))
		if err != nil || code != http.StatusOK {
			t.Fatalf("check %d: %d %s %v", i, code, b, err)
		}
		if err := json.Unmarshal(b, &a.rc); err != nil || a.rc.ID == "" {
			t.Fatalf("check %d: %s %v", i, b, err)
		}
		if _, dup := served[a.rc.ID]; dup {
			t.Fatalf("id %s served twice", a.rc.ID)
		}
		served[a.rc.ID] = a.rc
	}
	n := uint64(len(as))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if got := e.waitCount(ctx, "SELECT count() FROM "+e.db+".risk_decisions FINAL", n, 60*time.Second); got != n {
		t.Fatalf("%d rows in risk_decisions for %d checks", got, n)
	}
	// What is stored is what was served.
	rows, err := e.ch.Query(ctx, "SELECT decision_id, score, tags, detail, hit_rules, hit_modes, rules_version, phone_masked, latency_us FROM "+e.db+".risk_decisions FINAL")
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for rows.Next() {
		var id, detail, version, masked string
		var score uint16
		var tags, hitRules, hitModes []string
		var latency uint32
		if err := rows.Scan(&id, &score, &tags, &detail, &hitRules, &hitModes, &version, &masked, &latency); err != nil {
			t.Fatal(err)
		}
		rc, ok := served[id]
		if !ok {
			t.Errorf("risk_decisions holds %s, which was never served", id)
			continue
		}
		stored++
		var d map[string]schemas.TagDetail
		_ = json.Unmarshal([]byte(detail), &d)
		if int(score) != rc.Score || !slices.Equal(tags, rc.Tags) || version != rc.RulesVersion || len(d) != len(rc.Tags) || latency == 0 ||
			!strings.HasSuffix(masked, "****") {
			t.Errorf("decision %s stored as score %d tags %v detail %s version %s masked %s latency %d; served %+v",
				id, score, tags, detail, version, masked, latency, rc)
		}
		for _, tag := range rc.Tags {
			if d[tag] != rc.Detail[tag] {
				t.Errorf("decision %s: detail of %s stored %+v, served %+v", id, tag, d[tag], rc.Detail[tag])
			}
		}
		if len(hitRules) < len(rc.Tags) || len(hitModes) != len(hitRules) {
			t.Errorf("decision %s: hits %v %v for tags %v", id, hitRules, hitModes, rc.Tags)
		}
	}
	rows.Close()
	if stored != len(as) {
		t.Errorf("%d stored decisions match served ones, want %d", stored, len(as))
	}
	// No plaintext phone on the topic.
	for _, m := range readAllPartitions(t, e.decisions, len(as)) {
		for _, a := range as {
			if bytes.Contains(m.Value, []byte(a.phone)) {
				t.Fatalf("risk.decisions carries the plaintext number: %s", m.Value)
			}
		}
	}

	// The attempts' outcomes, with the verdicts' ids.
	var evs []string
	now := time.Now().UTC()
	for i, a := range as {
		outcome := "success"
		if a.fraud && i%2 == 0 {
			outcome = "fail"
		}
		evs = append(evs, fmt.Sprintf(`{"event_id":"ev-%03d","ts":%q,"app_id":"it-app","flow":"one_click_login","phone":%q,"ip":%q,"carrier":"CM","platform":"android","device_id":%q,"outcome":%q,"decision_id":%q}`,
			i, now.Add(time.Duration(i-len(as))*time.Second).Format(time.RFC3339), a.phone, a.ip, a.device, outcome, a.rc.ID))
	}
	if code, _, b, err := api.post("/v1/events", []byte("["+strings.Join(evs, ",")+"]")); err != nil || code != http.StatusAccepted {
		t.Fatalf("publish events: %d %s %v", code, b, err)
	}
	joined := "SELECT count() FROM " + e.db + ".risk_decisions AS d FINAL ALL INNER JOIN (SELECT app_id, decision_id, event_id FROM " + e.db +
		".verify_events FINAL WHERE decision_id != '') AS e USING (app_id, decision_id)"
	if got := e.waitCount(ctx, joined, n, 60*time.Second); got != n {
		t.Fatalf("%d decisions join their event, want %d", got, n)
	}
	// The analysts' query runs and sees them all.
	q, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "clickhouse", "queries", "decision_outcomes.sql"))
	if err != nil {
		t.Fatal(err)
	}
	query := strings.ReplaceAll(stripSQLComments(string(q)), "riskflow.", e.db+".")
	var total uint64
	rows, err = e.ch.Query(ctx, "SELECT sum(verdicts), countIf(outcome = '(no event)') FROM ("+strings.TrimSuffix(strings.TrimSpace(query), ";")+")")
	if err != nil {
		t.Fatalf("decision_outcomes.sql: %v", err)
	}
	for rows.Next() {
		var noEvent uint64
		if err := rows.Scan(&total, &noEvent); err != nil {
			t.Fatal(err)
		}
		if noEvent != 0 {
			t.Errorf("decision_outcomes: %d groups without an event", noEvent)
		}
	}
	rows.Close()
	if total != n {
		t.Errorf("decision_outcomes counts %d verdicts, want %d", total, n)
	}

	// Labels: farm decisions fraud, ordinary decisions legit.
	pack := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(pack, packs.Default(), 0o644); err != nil {
		t.Fatal(err)
	}
	quality := func() map[string]any {
		t.Helper()
		out := e.run(t, "backtest", "--rules", pack, "--from", "2h", "--json", "--no-record", "--flag-at", "600")
		var rep struct {
			Quality map[string]any `json:"quality"`
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("backtest JSON: %v\n%s", err, out)
		}
		return rep.Quality
	}
	if qu := quality(); qu != nil {
		t.Fatalf("quality without any label: %v", qu)
	}
	var labels []schemas.Label
	for _, a := range as {
		l := schemas.Label{AppID: "it-app", DecisionID: a.rc.ID, Label: schemas.LabelLegit}
		if a.fraud {
			l.Label = schemas.LabelFraud
		}
		labels = append(labels, l)
	}
	file := filepath.Join(t.TempDir(), "labels.json")
	b, _ := json.Marshal(labels)
	os.WriteFile(file, b, 0o644)
	e.run(t, "label", "--file", file, "--by", "e2e")
	qu := quality()
	cur := qu["current"].(map[string]any)
	if qu["labeled"].(float64) != float64(n) || cur["tp"].(float64) != farm || cur["fp"].(float64) != 0 || cur["precision"].(float64) != 1 || cur["recall"].(float64) != 1 {
		t.Fatalf("with decision labels: %v; want all %d labeled, precision 1 and recall 1", qu, n)
	}
	// Ten ordinary events relabelled fraud (an event's own label wins over its decision's):
	// recall falls to 40/50, precision stays 1.
	for i := farm; i < farm+10; i++ {
		e.run(t, "label", "--app", "it-app", "--event", fmt.Sprintf("ev-%03d", i), "--as", "fraud", "--note", "confirmed by the customer")
	}
	qu = quality()
	cur = qu["current"].(map[string]any)
	if qu["labeled"].(float64) != float64(n) || cur["precision"].(float64) != 1 || cur["recall"].(float64) != 0.8 || cur["fn"].(float64) != 10 {
		t.Fatalf("with ten events relabelled: %v; want precision 1, recall 0.8", qu)
	}
}

// Checks are answered while the decision log cannot reach its broker (kafka.decisions_brokers at a
// closed port; the real broker stays up): every check 200, the queue fills, the rest is dropped
// and counted on /metrics, and the process stays ready.
func TestDecisionLogBrokerUnreachable(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	addr := testaddr.Free(t)
	e.vars = append(e.vars, "RISKFLOW_KAFKA_DECISIONS_BROKERS=127.0.0.1:1", "RISKFLOW_API_DECISION_QUEUE=20")
	p := e.start("api", "--listen", addr)
	waitHTTP(t, "http://"+addr+"/readyz")
	api := newAPIClient(addr)
	const n = 300
	for i := range n {
		body := fmt.Sprintf(`{"phone":"1390000%04d","ip":"223.104.3.7","app_id":"it-app"}`, i)
		code, _, b, err := api.post("/v1/risk/check", []byte(body))
		if err != nil || code != http.StatusOK {
			t.Fatalf("check %d with the decision log's broker away: %d %s %v", i, code, b, err)
		}
	}
	recorded, _ := metricValue(t, addr, `riskflow_decisions_total{result="recorded"}`)
	dropped, _ := metricValue(t, addr, `riskflow_decisions_total{result="dropped"}`)
	published, _ := metricValue(t, addr, `riskflow_decisions_total{result="published"}`)
	queued, _ := metricValue(t, addr, `riskflow_decision_queue_length`)
	// What is not dropped is queued (at most 20) or in the one batch being retried (at most the
	// queue's size, taken from the queue while it lingered): the queue length counts both. Whether
	// the checks outlast the linger (then the queue is full again) depends on the machine's speed.
	if recorded != n || published != 0 || queued > 40 || queued != recorded-dropped || dropped < n/2 {
		t.Errorf("recorded %v, dropped %v, queued %v, published %v; want %d recorded, the queue (20) full, the rest but one batch dropped, none published",
			recorded, dropped, queued, published, n)
	}
	if code, body, err := api.get("/readyz"); err != nil || code != 200 {
		t.Errorf("/readyz with the decision log's broker away: %d %s %v", code, body, err)
	}
	if lines := logLines(p.log.String(), "decision log queue full"); len(lines) == 0 || len(lines) > 2 {
		t.Errorf("drops logged %d times (want once, rate-limited):\n%s", len(lines), tail(p.log, 30))
	}
	// Stopped, the node cannot publish what it still holds: those verdicts are lost, counted and
	// told in one line with the whole account — recorded = published + dropped + rejected + lost.
	// They were only logged, with no count beside the metric's.
	p.stop(syscall.SIGTERM)
	lines := logLines(p.log.String(), "decision log stopped with verdicts unpublished")
	account := regexp.MustCompile(` lost=(\d+) lost_total=(\d+) recorded_total=(\d+) published_total=(\d+) dropped_total=(\d+) rejected_total=(\d+)`)
	var m []string
	if len(lines) == 1 {
		m = account.FindStringSubmatch(lines[0])
	}
	if m == nil {
		t.Fatalf("no account of the verdicts lost at the stop:\n%s", tail(p.log, 20))
	}
	v := make([]int, len(m))
	for i := 1; i < len(m); i++ {
		v[i], _ = strconv.Atoi(m[i])
	}
	lost, rec, pub, drop, rej := v[2], v[3], v[4], v[5], v[6]
	if rec != n || lost == 0 || v[1] != lost || pub+drop+rej+lost != rec || float64(drop) < dropped {
		t.Errorf("the stop's account %q: want %d recorded, some lost, recorded = published + dropped + rejected + lost", lines[0], n)
	}
	// The queue length scraped last before the stop bounds the loss (README): no check came since.
	if float64(lost) != queued {
		t.Errorf("%d verdicts lost at the stop, riskflow_decision_queue_length scraped before it %v; want them equal", lost, queued)
	}
}

// run runs the riskflow binary with the env's configuration and returns its stdout.
func (e *env) run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), e.vars...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("riskflow %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

func stripSQLComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, "--"); i >= 0 {
			l = l[:i]
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
