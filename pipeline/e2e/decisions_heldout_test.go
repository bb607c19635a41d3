//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/riskflow/riskflow/internal/testaddr"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
)

// heldOutRules are the default pack with a shadow rule hitting every IPv6 check and a tag rule
// hitting every iOS check, their reasons in Chinese with quotes and <&> (JSON escapes them).
const heldOutRules = `
  - id: ipv6_shadow
    tag: ipv6_trial
    description: trying out IPv6 scrutiny
    owner: it
    level: 600
    mode: shadow
    when: ip_v6
    reason: "IPv6 地址 on <{carrier}> & \"trial\""

  - id: ios_tag
    tag: ios_client
    description: iOS clients, a tag only
    owner: it
    mode: tag
    when: platform == "ios"
    reason: "iOS 客户端, {phone_verifies_10m} verifications"
`

// heldOutCheck is the i-th check of the held-out run: two apps; datacenter, carrier, overseas
// and IPv6 addresses (IPv6 written in upper case and as IPv4-mapped); phones with and without +86.
func heldOutCheck(i int) (app string, req map[string]string, phone string) {
	app = "it-app"
	if i%3 == 1 {
		app = "it-app2"
	}
	req = map[string]string{"app_id": app}
	switch i % 6 {
	case 0: // datacenter: idc_proxy_ip
		phone = fmt.Sprintf("1370000%04d", i)
		req["ip"], req["device_id"], req["carrier"], req["platform"], req["flow"] = "47.92.10.20", "farm-1", "CM", "android", "one_click_login"
	case 1: // IPv6, iOS: the shadow and the tag rule
		phone = fmt.Sprintf("1391%07d", i*7919%10_000_000)
		req["ip"], req["carrier"], req["platform"], req["flow"] = fmt.Sprintf("2408:8456:%X:0::%X", i, i+1), "CU", "ios", "number_verify"
		req["device_id"] = fmt.Sprintf("ios-%d", i)
	case 2: // IPv4-mapped, a token
		phone = fmt.Sprintf("1382%07d", i*104729%10_000_000)
		req["ip"], req["carrier"], req["platform"], req["flow"] = fmt.Sprintf("::ffff:223.104.%d.%d", i%200, 1+i%250), "CM", "harmony", "h5_quick_login"
		req["token_digest"] = fmt.Sprintf("%064x", i)
	case 3: // a virtual-operator number, IPv6 without a carrier, an ex_id in Chinese
		phone = fmt.Sprintf("1703%07d", i)
		req["ip"], req["ex_id"] = fmt.Sprintf("2001:DB8::%X", i), fmt.Sprintf("工单-%d", i)
	case 4: // clean
		phone = fmt.Sprintf("1354%07d", i*31%10_000_000)
		req["ip"], req["carrier"], req["platform"], req["flow"] = fmt.Sprintf("117.136.%d.%d", i%250, 1+i%250), "CM", "web", "sms_fallback"
	case 5: // overseas, iOS
		phone = fmt.Sprintf("1865%07d", i)
		req["ip"], req["carrier"], req["platform"], req["device_id"] = "8.8.4.4", "CU", "ios", "dev-é中"
	}
	req["phone"] = phone
	if i%2 == 0 {
		req["phone"] = "+86" + phone
	}
	return app, req, phone
}

var heldOutSecrets = map[string]string{"it-app": "it-secret", "it-app2": "it-secret2"}

// postAs posts a JSON body to the API at addr with the app's key.
func postAs(addr, app, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(app, heldOutSecrets[app])
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Held out: what verify services were answered is what risk_decisions holds, field by field —
// two apps, IPv4, IPv6 written in upper case and IPv4-mapped, clean and flagged verdicts, a shadow
// and a tag rule hitting with their reasons — with the API and the archiver (with a scorer) in separate processes
// and the broker stopped in the middle of the run: every verdict is either stored once or dropped,
// counted (riskflow_decisions_total) and logged; none is stored twice or stored unlike what was
// served, the log lines' dropped counts add up to the metric, and every stored decision joins its
// event by decision_id with SCHEMA.md's query.
func TestDecisionLogHeldOut(t *testing.T) {
	e := newEnv(t)
	e.dropTopicsAtEnd()
	pack := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(pack, append(slices.Clip(packs.Default()), heldOutRules...), 0o644); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "RISKFLOW_SCORING_RULES="+pack, "RISKFLOW_API_KEYS=it-app:it-secret,it-app2:it-secret2",
		"RISKFLOW_API_DECISION_QUEUE=40")
	addr, opsAddr := testaddr.Free(t), testaddr.Free(t)
	apiNode := e.start("api", "--listen", addr)
	e.start("scorer,archiver", "--set", "ops.listen="+opsAddr)
	waitHTTP(t, "http://"+addr+"/readyz")
	waitHTTP(t, "http://"+opsAddr+"/readyz")

	type served struct {
		app, phone string
		req        map[string]string
		rc         schemas.RiskCheck
	}
	var all []served
	check := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			app, req, phone := heldOutCheck(i)
			body, _ := json.Marshal(req)
			code, b, err := postAs(addr, app, "/v1/risk/check", body)
			if err != nil || code != http.StatusOK {
				t.Fatalf("check %d: %d %s %v", i, code, b, err)
			}
			s := served{app: app, phone: phone, req: req}
			if err := json.Unmarshal(b, &s.rc); err != nil || s.rc.ID == "" {
				t.Fatalf("check %d: %s %v", i, b, err)
			}
			all = append(all, s)
		}
	}
	check(0, 60)
	// The broker away: checks are answered from the replica; the queue (40) and the batch being
	// retried (40) hold 80 verdicts, the others are dropped.
	restart := stopKafka(t, e.events, e.decisions)
	check(60, 200)
	restart()
	check(200, 260)
	n := len(all)

	// Everything recorded is published or dropped once the queue is empty.
	var recorded, published, dropped float64
	deadline := time.Now().Add(90 * time.Second)
	for {
		recorded, _ = metricValue(t, addr, `riskflow_decisions_total{result="recorded"}`)
		published, _ = metricValue(t, addr, `riskflow_decisions_total{result="published"}`)
		dropped, _ = metricValue(t, addr, `riskflow_decisions_total{result="dropped"}`)
		if recorded == float64(n) && published+dropped == recorded || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if recorded != float64(n) || published+dropped != recorded || dropped == 0 {
		t.Fatalf("recorded %v, published %v, dropped %v; want %d recorded, each published or dropped, some dropped during the outage",
			recorded, published, dropped, n)
	}
	// The lines' dropped counts add up to the metric — once the log has told of the last drops,
	// which it does within two decision-log DropLogEvery (10 s) of them.
	re := regexp.MustCompile(` dropped=(\d+) `)
	logged := 0
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		logged = 0
		for _, l := range logLines(apiNode.log.String(), "decision log queue full") {
			if m := re.FindStringSubmatch(l); m != nil {
				k, _ := strconv.Atoi(m[1])
				logged += k
			}
		}
		if float64(logged) == dropped || time.Now().After(end) {
			break
		}
	}
	if float64(logged) != dropped {
		t.Errorf("the log tells of %d verdicts dropped, the metric %v:\n%s", logged, dropped, tail(apiNode.log, 30))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	want := uint64(published)
	if got := e.waitCount(ctx, "SELECT count() FROM "+e.db+".risk_decisions FINAL", want, 90*time.Second); got != want {
		t.Fatalf("%d decisions in risk_decisions, %d published", got, want)
	}
	if distinct := e.count(ctx, "SELECT uniqExact(app_id, decision_id) FROM "+e.db+".risk_decisions"); distinct != want {
		t.Errorf("%d distinct decisions stored, want %d", distinct, want)
	}

	rows, err := e.ch.Query(ctx, "SELECT decision_id, app_id, flow, phone_hash, phone_masked, phone_segment, ip, carrier, platform, device_id, "+
		"token_digest, ex_id, score, tags, detail, hit_rules, hit_tags, hit_scores, hit_modes, hit_reasons, rules_version, node, latency_us FROM "+
		e.db+".risk_decisions FINAL")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id, app, flow, hash, masked, segment, ip, carrier, platform, device, token, exID string
		score                                                                            uint16
		tags                                                                             []string
		detail                                                                           string
		hitRules, hitTags                                                                []string
		hitScores                                                                        []uint16
		hitModes, hitReasons                                                             []string
		version, node                                                                    string
		latency                                                                          uint32
	}
	stored := map[string]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.app, &r.flow, &r.hash, &r.masked, &r.segment, &r.ip, &r.carrier, &r.platform, &r.device, &r.token, &r.exID,
			&r.score, &r.tags, &r.detail, &r.hitRules, &r.hitTags, &r.hitScores, &r.hitModes, &r.hitReasons, &r.version, &r.node, &r.latency); err != nil {
			t.Fatal(err)
		}
		stored[r.app+"/"+r.id] = r
	}
	rows.Close()
	hasher := schemas.NewPhoneHasher([]byte("it-key-" + e.id))
	missing, shadowHits, tagHits := 0, 0, 0
	var kept []served
	for _, s := range all {
		r, ok := stored[s.app+"/"+s.rc.ID]
		if !ok {
			missing++
			continue
		}
		kept = append(kept, s)
		delete(stored, s.app+"/"+s.rc.ID)
		var bad []string
		same := func(field string, got, want any) {
			if !reflect.DeepEqual(got, want) {
				bad = append(bad, fmt.Sprintf("%s %#v, served %#v", field, got, want))
			}
		}
		ip := netip.MustParseAddr(s.req["ip"]).Unmap()
		same("flow", r.flow, s.req["flow"])
		same("ip", r.ip, ip.String())
		same("carrier", r.carrier, s.req["carrier"])
		same("platform", r.platform, s.req["platform"])
		same("device_id", r.device, s.req["device_id"])
		same("token_digest", r.token, s.req["token_digest"])
		same("ex_id", r.exID, s.req["ex_id"])
		same("phone_hash", r.hash, hasher.Hex(s.phone))
		same("phone_masked", r.masked, s.phone[:7]+"****")
		same("phone_segment", r.segment, s.phone[:7])
		same("score", int(r.score), s.rc.Score)
		same("tags", r.tags, s.rc.Tags)
		same("rules_version", r.version, s.rc.RulesVersion)
		var detail map[string]schemas.TagDetail
		if err := json.Unmarshal([]byte(r.detail), &detail); err != nil {
			bad = append(bad, "detail: "+err.Error())
		}
		if len(detail)+len(s.rc.Detail) > 0 {
			same("detail", detail, s.rc.Detail)
		}
		if r.latency == 0 || r.node == "" {
			bad = append(bad, fmt.Sprintf("latency %d, node %q", r.latency, r.node))
		}
		if k := len(r.hitRules); len(r.hitTags) != k || len(r.hitScores) != k || len(r.hitModes) != k || len(r.hitReasons) != k {
			bad = append(bad, "hit arrays of different lengths")
		} else {
			// Every tag answered is a hit with the reason and level answered.
			for tag, d := range s.rc.Detail {
				found := false
				for j := range r.hitRules {
					found = found || r.hitTags[j] == tag && r.hitReasons[j] == d.Reason && int(r.hitScores[j]) == d.Score && r.hitModes[j] != "shadow"
				}
				if !found {
					bad = append(bad, "no hit for the tag answered "+tag)
				}
			}
			j := slices.Index(r.hitRules, "ipv6_shadow")
			if ip.Is6() != (j >= 0) {
				bad = append(bad, fmt.Sprintf("IPv6 %v, shadow hit %v", ip.Is6(), j >= 0))
			} else if j >= 0 {
				shadowHits++
				same("shadow hit", [3]any{r.hitModes[j], r.hitScores[j], r.hitReasons[j]},
					[3]any{"shadow", uint16(600), "IPv6 地址 on <" + s.req["carrier"] + "> & \"trial\""})
				if slices.Contains(s.rc.Tags, "ipv6_trial") {
					bad = append(bad, "the shadow rule's tag was answered")
				}
			}
			j = slices.Index(r.hitRules, "ios_tag")
			if (s.req["platform"] == "ios") != (j >= 0) {
				bad = append(bad, fmt.Sprintf("platform %s, tag hit %v", s.req["platform"], j >= 0))
			} else if j >= 0 {
				tagHits++
				same("tag hit", [2]any{r.hitModes[j], r.hitTags[j]}, [2]any{"tag", "ios_client"})
				if !slices.Contains(s.rc.Tags, "ios_client") {
					bad = append(bad, "the tag rule's tag was not answered")
				}
			}
		}
		if len(bad) > 0 {
			t.Errorf("decision %s of %s stored unlike what was served: %v", s.rc.ID, s.app, bad)
		}
	}
	for k := range stored {
		t.Errorf("risk_decisions holds %s, which was never served", k)
	}
	if float64(missing) != dropped {
		t.Errorf("%d served verdicts are not stored, %v counted as dropped", missing, dropped)
	}
	t.Logf("%d checks: %v published, %v dropped (broker away), %d stored decisions compared, %d shadow and %d tag hits", n, published, dropped, len(kept), shadowHits, tagHits)
	if shadowHits == 0 || tagHits == 0 {
		t.Errorf("%d shadow and %d tag hits stored; the run must have both", shadowHits, tagHits)
	}
	// No plaintext number on the decision log.
	for _, m := range readAllPartitions(t, e.decisions, int(published)) {
		for _, s := range all {
			if bytes.Contains(m.Value, []byte(s.phone)) || bytes.Contains(m.Key, []byte(s.phone)) {
				t.Fatalf("risk.decisions carries a plaintext number: %s", m.Value)
			}
		}
	}

	// Each stored decision's attempt, sent by its app with the verdict's id: all join (SCHEMA.md).
	byApp := map[string][]map[string]any{}
	now := time.Now().UTC()
	for i, s := range kept {
		byApp[s.app] = append(byApp[s.app], map[string]any{"event_id": fmt.Sprintf("ho-%d", i), "ts": now.Add(time.Duration(i-len(kept)) * time.Second).Format(time.RFC3339),
			"app_id": s.app, "flow": "one_click_login", "phone": s.req["phone"], "ip": s.req["ip"], "outcome": "success", "decision_id": s.rc.ID})
	}
	for app, evs := range byApp {
		b, _ := json.Marshal(evs)
		if code, body, err := postAs(addr, app, "/v1/events", b); err != nil || code != http.StatusAccepted {
			t.Fatalf("events of %s: %d %s %v", app, code, body, err)
		}
	}
	joined := "SELECT count() FROM (SELECT d.decision_id, d.score, d.tags, e.event_id, e.outcome, e.error_code FROM " + e.db + ".risk_decisions AS d FINAL " +
		"ALL INNER JOIN (SELECT app_id, decision_id, event_id, outcome, error_code FROM " + e.db + ".verify_events FINAL " +
		"WHERE decision_id != '' AND ts >= now() - INTERVAL 2 DAY) AS e USING (app_id, decision_id) WHERE d.ts >= now() - INTERVAL 1 DAY)"
	if got := e.waitCount(ctx, joined, uint64(len(kept)), 90*time.Second); got != uint64(len(kept)) {
		t.Errorf("%d decisions join their event, want %d", got, len(kept))
	}
}
