//go:build integration

package chsink

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	chschema "github.com/riskflow/riskflow/deploy/clickhouse"
	"github.com/riskflow/riskflow/schemas"
)

// The analyst queries answer exactly on data nobody plans for, the numbers worked out here from
// what was written: an event re-delivered three times and scored otherwise each time (the FINAL
// reads count it once, with its latest scoring), sixty apps that number an attempt alike, a
// device id of 3,000 characters beyond ASCII, an event with every optional field empty and an
// IPv6 address, two events one second apart around a China midnight, and a late event written
// last, 3 days old.
func TestAnalystQueriesOnOddData(t *testing.T) {
	st := migrated(t)
	ctx := testContext(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	od := newOddData(time.Now().UTC().Truncate(time.Second), shanghai)
	longDevice, recent, late := od.longDevice, od.recent, od.late
	for _, b := range od.batches {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	query := func(name string) [][]string {
		t.Helper()
		var rows [][]string
		for _, r := range runQuery(t, st, strings.Join(statementsOf(t, chschema.Queries, "queries/"+name+".sql", st.db), ";")) {
			rows = append(rows, strings.Split(r, " | "))
		}
		return rows
	}
	// want compares the columns of row named by cols (index: value) with the row's text.
	want := func(query string, row []string, cols map[int]string) {
		t.Helper()
		if row == nil {
			t.Errorf("%s: no row where one should have %v", query, cols)
			return
		}
		for i, v := range cols {
			if i >= len(row) || row[i] != v {
				t.Errorf("%s: row %q: column %d = %q, want %q", query, row, i, row[min(i, len(row)-1)], v)
			}
		}
	}
	byKey := func(rows [][]string) map[string][]string {
		m := map[string][]string{}
		for _, r := range rows {
			m[r[0]] = r
		}
		return m
	}

	// ip, events, flagged, blocked, flagged_share, phones, apps, tags_earned, …, fails (12).
	ips := byKey(query("top_risky_ips"))
	if got := slices.Sorted(keysOf(ips)); !slices.Equal(got, []string{"192.0.2.10", "192.0.2.11", "198.51.100.9", "203.0.113.7"}) {
		t.Errorf("top_risky_ips lists %q, want the sixty apps' address, two of the long device's and the re-delivered event's (not the late event's)", got)
	}
	want("top_risky_ips", ips["203.0.113.7"], map[int]string{1: "60", 2: "60", 3: "60", 4: "1", 5: "60", 6: "60", 7: "[blk_tag odd_hour]", 12: "12"})
	want("top_risky_ips", ips["198.51.100.9"], map[int]string{1: "1", 2: "1", 3: "1", 7: "[blk_tag]", 12: "0"})
	want("top_risky_ips", ips["192.0.2.10"], map[int]string{1: "1", 2: "1", 3: "0", 7: "[su_tag]"})

	// device_id, phones, attempts, fails, segments, ips, networks, apps, platforms, …, flagged (11), tags_earned.
	devs := byKey(query("device_farms"))
	if len(devs) != 2 {
		t.Errorf("device_farms: %d devices, want shared-dev and the long one", len(devs))
	}
	want("device_farms", devs["shared-dev"], map[int]string{1: "60", 2: "60", 3: "12", 4: "1", 5: "1", 6: "1", 7: "60", 8: "[android]", 11: "60", 12: "[blk_tag odd_hour]"})
	want("device_farms", devs[longDevice], map[int]string{1: "6", 2: "6", 3: "0", 4: "1", 5: "6", 6: "1", 7: "1", 8: "[ios]", 11: "2", 12: "[su_tag]"})

	// network, asn, country, ip_type, addresses, phones, devices, apps, events, fails, flagged, flagged_share, tags_earned.
	nets := byKey(query("ip_networks"))
	if got := slices.Sorted(keysOf(nets)); !slices.Equal(got, []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"}) {
		t.Errorf("ip_networks lists %q", got)
	}
	want("ip_networks", nets["203.0.113.0/24"], map[int]string{4: "1", 5: "60", 6: "1", 7: "60", 8: "60", 9: "12", 10: "60"})
	want("ip_networks", nets["192.0.2.0/24"], map[int]string{4: "6", 5: "6", 6: "1", 7: "1", 8: "6", 9: "0", 10: "2", 12: "[su_tag]"})
	want("ip_networks", nets["198.51.100.0/24"], map[int]string{4: "1", 5: "1", 8: "1", 10: "1", 12: "[blk_tag]"})

	// rule, mode, tag, level, hits, hit_rate, phones, decisive, would_raise: 68 events scored in
	// 24 hours (1 + 60 + 6 + 1), the re-delivered one as its latest scoring.
	rules := map[string][]string{}
	for _, r := range query("rule_hit_rates") {
		rules[r[0]+" "+r[1]] = r
	}
	if len(rules) != 4 {
		t.Errorf("rule_hit_rates: %d rules, want blk, su, sh and odd: %q", len(rules), rules)
	}
	want("rule_hit_rates", rules["blk enforce"], map[int]string{4: "61", 5: fmt.Sprint(roundTo(61.0/68, 5)), 6: "61", 7: "61", 8: "0"})
	want("rule_hit_rates", rules["su enforce"], map[int]string{4: "2", 7: "2"})
	want("rule_hit_rates", rules["sh shadow"], map[int]string{4: "4", 7: "0", 8: "4"})
	want("rule_hit_rates", rules["odd tag"], map[int]string{4: "60", 7: "0", 8: "0"})

	// phone_segment, hour, phones, attempts, fails, ips, devices, apps, flagged.
	blocks := query("number_block_hotspots")
	if len(blocks) != 1 {
		t.Fatalf("number_block_hotspots: %q, want the sixty apps' block", blocks)
	}
	want("number_block_hotspots", blocks[0], map[int]string{0: "1380099", 2: "60", 3: "60", 4: "12", 5: "1", 6: "1", 7: "60", 8: "60"})

	// carrier, error_code, recent_fails, …, recent_phones (6), recent_apps, share_of_carrier_traffic.
	spikes := query("carrier_failure_spikes")
	if len(spikes) != 1 {
		t.Fatalf("carrier_failure_spikes: %q, want CU 103911", spikes)
	}
	want("carrier_failure_spikes", spikes[0], map[int]string{0: "CU", 1: "103911", 2: "12", 6: "12", 7: "12", 8: "0.2"})

	// hour, app_id, flow, carrier, verifications, phones, ips, devices, fail_share, scored.
	var appRows, appEvents int
	for _, r := range query("hourly_traffic") {
		switch {
		case r[1] == "empty":
			want("hourly_traffic", r, map[int]string{3: "", 4: "1", 7: "0", 8: "1", 9: "1"})
		case strings.HasPrefix(r[1], "app-"):
			appRows++
			want("hourly_traffic", r, map[int]string{3: "CU", 4: "1", 9: "1"})
			appEvents++
		case r[1] == "mid" || r[1] == "late":
			t.Errorf("hourly_traffic: %q is older than its 48 hours", r)
		}
	}
	if appRows != 60 || appEvents != 60 {
		t.Errorf("hourly_traffic: %d rows of the sixty apps", appRows)
	}

	// day_cn, app_id, events, passed, observed, stepped_up, blocked: the midnight event on its own
	// China day, the second before it on the day before.
	days := map[string][]string{}
	for _, r := range query("daily_score_distribution") {
		days[r[1]+" "+r[0][:len("2006-01-02")]] = r // a Date scans as a time.Time at UTC midnight
	}
	day := func(ts time.Time) string { return ts.In(shanghai).Format("2006-01-02") }
	if day(od.m1) == day(od.m0) {
		t.Fatalf("%s and %s are one China day: the test proves nothing", od.m1, od.m0)
	}
	for _, ts := range []time.Time{od.m1, od.m0} {
		want("daily_score_distribution", days["mid "+day(ts)], map[int]string{2: "1", 3: "0", 4: "1", 5: "0", 6: "0"})
	}
	want("daily_score_distribution", days["late "+day(late)], map[int]string{2: "1", 5: "1"})
	want("daily_score_distribution", days["dup "+day(recent)], map[int]string{2: "1", 6: "1"})
}

// oddData is the data of TestAnalystQueriesOnOddData, in the batches it is written in, and what
// the test needs to know of it.
type oddData struct {
	batches              [][]schemas.ScoreRecord
	longDevice           string
	recent, late, m1, m0 time.Time
}

func newOddData(now time.Time, shanghai *time.Location) oddData {
	h := schemas.NewPhoneHasher([]byte("odd data"))
	recent := now.Add(-20 * time.Minute)
	cn := now.In(shanghai)
	midnight := time.Date(cn.Year(), cn.Month(), cn.Day()-3, 0, 0, 0, 0, shanghai).UTC() // outside the 24 and 48 hour windows
	late := now.Add(-3*24*time.Hour - 5*time.Hour)

	rec := func(app, id string, ts time.Time, phone, ip string) schemas.ScoreRecord {
		return schemas.ScoreRecord{
			EventID: id, TS: ts, AppID: app, Flow: schemas.FlowOneClickLogin,
			PhoneHash: h.Hex(phone), PhoneMasked: schemas.MaskPhone(phone), PhoneSegment: schemas.PhoneSegment(phone),
			IP: ip, Carrier: "CM", Platform: "android", Outcome: schemas.OutcomeSuccess,
			Geo:          schemas.Geo{Country: "CN", Province: "Guangdong", City: "Shenzhen", ASN: 9808, IPType: "mobile"},
			RulesVersion: "v1", ScoredAt: ts.Add(time.Second),
		}
	}
	hit := func(r *schemas.ScoreRecord, score int, hits ...schemas.RuleHit) {
		r.Score, r.Hits, r.Tags = score, hits, nil
		for _, x := range hits {
			if x.Mode == "enforce" || x.Mode == "tag" {
				r.Tags = append(r.Tags, x.Tag)
			}
		}
	}
	blk := schemas.RuleHit{Rule: "blk", Tag: "blk_tag", Score: 900, Mode: "enforce"}
	su := schemas.RuleHit{Rule: "su", Tag: "su_tag", Score: 600, Mode: "enforce"}
	obs := schemas.RuleHit{Rule: "obs", Tag: "obs_tag", Score: 300, Mode: "enforce"}
	sh := schemas.RuleHit{Rule: "sh", Tag: "sh_tag", Score: 900, Mode: "shadow"}
	odd := schemas.RuleHit{Rule: "odd", Tag: "odd_hour", Score: 0, Mode: "tag"}

	// Re-delivered three times, scored 0, then 900, then 600 by a scorer whose clock was behind:
	// the latest scoring (scored_at) is the 900.
	dup := make([]schemas.ScoreRecord, 3)
	for i, c := range []struct {
		score int
		after time.Duration
		hits  []schemas.RuleHit
	}{{0, time.Second, nil}, {900, 5 * time.Second, []schemas.RuleHit{blk}}, {600, 3 * time.Second, []schemas.RuleHit{su}}} {
		dup[i] = rec("dup", "d1", recent, "13900000001", "198.51.100.9")
		dup[i].DeviceID = "dev-dup"
		hit(&dup[i], c.score, c.hits...)
		dup[i].ScoredAt = recent.Add(c.after)
	}
	// Sixty apps, one event id, one address and device, one number block; 12 failures.
	var apps []schemas.ScoreRecord
	for i := range 60 {
		r := rec(fmt.Sprintf("app-%02d", i), "same", recent, fmt.Sprintf("1380099%04d", i), "203.0.113.7")
		r.DeviceID, r.Carrier = "shared-dev", "CU"
		if i < 12 {
			r.Outcome, r.ErrorCode = schemas.OutcomeFail, "103911"
		}
		hit(&r, 900, blk, odd)
		apps = append(apps, r)
	}
	// One device id of 3,000 characters beyond ASCII, six numbers.
	longDevice := "设备🙂-" + strings.Repeat("x", 3000)
	var uni []schemas.ScoreRecord
	for i := range 6 {
		r := rec("uni", fmt.Sprintf("u%d", i), recent, fmt.Sprintf("1310000%04d", i), fmt.Sprintf("192.0.2.%d", 10+i))
		r.DeviceID, r.Platform = longDevice, "ios"
		if i < 2 {
			hit(&r, 600, su)
		} else {
			hit(&r, 0, sh)
		}
		uni = append(uni, r)
	}
	// Every optional field empty; an IPv6 address; a failure without a code.
	empty := rec("empty", "x1", recent, "13500000001", "2001:db8:85a3:1::5")
	empty.Carrier, empty.Platform, empty.Geo = "", "", schemas.Geo{}
	empty.Outcome = schemas.OutcomeFail
	// A China midnight and the second before it.
	m1, m0 := rec("mid", "m1", midnight, "13700000001", "198.51.100.1"), rec("mid", "m0", midnight.Add(-time.Second), "13700000002", "198.51.100.1")
	hit(&m1, 300, obs)
	hit(&m0, 300, obs)
	lateRec := rec("late", "l1", late, "13600000001", "203.0.113.99")
	hit(&lateRec, 600, su)

	return oddData{
		batches:    [][]schemas.ScoreRecord{dup[:1], dup[1:2], apps, uni, {empty, m1, m0}, apps, dup[2:], {lateRec}},
		longDevice: longDevice, recent: recent, late: late, m1: m1.TS, m0: m0.TS,
	}
}

func keysOf[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// roundTo rounds x to n decimals as ClickHouse's round does for these values.
func roundTo(x float64, n int) float64 {
	p := 1.0
	for range n {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}
