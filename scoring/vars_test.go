package scoring_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/scoring"
)

// windowFeatureNames are the window features the catalog must declare for every window.
var windowFeatureNames = []string{
	"phone_verifies", "phone_fails", "phone_devices", "phone_nets",
	"ip_verifies", "ip_fails", "ip_phones", "ip_devices",
	"net_verifies", "net_phones",
	"device_verifies", "device_fails", "device_phones",
	"prefix_phones", "prefix_verifies",
	"app_verifies", "app_fails", "app_phones",
}

func TestWindowLabel(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 5 * time.Minute: "5m", 10 * time.Minute: "10m", 90 * time.Minute: "90m",
		time.Hour: "1h", 2 * time.Hour: "2h", 24 * time.Hour: "24h",
	} {
		if got := scoring.WindowLabel(d); got != want {
			t.Errorf("WindowLabel(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestCatalogDeclaresEveryWindowFeature(t *testing.T) {
	for _, windows := range [][]time.Duration{nil, {5 * time.Minute, 2 * time.Hour}, {time.Minute}} {
		s, err := scoring.New(scoring.Config{Windows: windows})
		if err != nil {
			t.Fatalf("New(%v): %v", windows, err)
		}
		if windows == nil {
			windows = scoring.DefaultWindows
		}
		declared := map[string]rules.Var{}
		for _, v := range s.Env().Vars() {
			declared[v.Name] = v
		}
		for _, f := range windowFeatureNames {
			for _, w := range windows {
				name := f + "_" + scoring.WindowLabel(w)
				v, ok := declared[name]
				if !ok {
					t.Errorf("windows %v: %s not declared", windows, name)
					continue
				}
				if v.Type != rules.Int || !strings.HasSuffix(v.Doc, "in the last "+scoring.WindowLabel(w)) {
					t.Errorf("%s: type %s, doc %q", name, v.Type, v.Doc)
				}
			}
		}
		// Exactly the features × windows, plus the scalars; nothing else with a window suffix.
		nWindowed := 0
		for name := range declared {
			for _, f := range windowFeatureNames {
				if strings.HasPrefix(name, f+"_") {
					nWindowed++
				}
			}
		}
		if nWindowed != len(windowFeatureNames)*len(windows) {
			t.Errorf("windows %v: %d windowed variables, want %d", windows, nWindowed, len(windowFeatureNames)*len(windows))
		}
		longest := time.Duration(0)
		for _, w := range windows {
			longest = max(longest, w)
		}
		// Retention covers the longest window and the late allowance, and never drops below a day
		// (dedupe, token replays).
		if retention := s.State().Config().Retention; retention != max(longest+scoring.LateAllowance, 24*time.Hour) {
			t.Errorf("windows %v: retention %s, want max(longest window %s + %s, 24h)", windows, retention, longest, scoring.LateAllowance)
		}
	}
	// The default windows are what rules and docs use.
	want := []time.Duration{time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour}
	if fmt.Sprint(scoring.DefaultWindows) != fmt.Sprint(want) {
		t.Errorf("DefaultWindows = %v, want %v", scoring.DefaultWindows, want)
	}
}

func TestCatalogRejectsBadWindows(t *testing.T) {
	for _, w := range [][]time.Duration{
		{30 * time.Second}, {90 * time.Second}, {25 * time.Hour}, {0}, {-time.Minute},
		{time.Minute, time.Minute}, // declared twice
	} {
		if _, err := scoring.New(scoring.Config{Windows: w}); err == nil {
			t.Errorf("New with windows %v: no error", w)
		}
	}
}

// Every declared variable resolves, with the declared type, for a full event: a rule comparing
// each variable with itself compiles and evaluates without an error.
func TestEveryDeclaredVariableResolves(t *testing.T) {
	s0, err := scoring.New(scoring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range s0.Env().Vars() {
		names = append(names, v.Name)
	}
	pack := probePack(names...)
	for _, v := range names {
		pack = fmt.Appendf(pack, "  - id: self_%s\n    tag: self\n    level: 300\n    mode: shadow\n    when: %s == %s\n", v, v, v)
	}
	s := newScorer(t, scoring.Config{}, pack)
	ev := event("all-1", t0, "17031234567", "2409:8c00::1") // an MVNO number (1703: CM-hosted)
	ev.DeviceID, ev.TokenDigest, ev.Outcome, ev.ErrorCode = "dev-1", token1, "fail", "103911"
	ev.Carrier = "CU"
	rec, err := s.Process(&ev)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	got := probes(rec.Hits)
	if len(got) != len(names) {
		t.Errorf("%d probes for %d variables", len(got), len(names))
	}
	self := 0
	for _, h := range rec.Hits {
		if h.Tag == "self" {
			self++
		}
	}
	if self != len(names) {
		t.Errorf("%d of %d variables equal themselves", self, len(names))
	}
	want := map[string]string{
		"app_id": "app-test", "flow": "one_click_login", "carrier": "CU", "platform": "android",
		"outcome": "fail", "error_code": "103911", "has_device": "true", "has_token": "true", "token_seen": "0",
		"hour_cn": "18", "phone_prefix": "1703123", "segment_class": "mvno", "segment_carrier": "",
		"segment_host_carrier": "CM", "carrier_mismatch": "true", "geo_known": "false", "ip_v6": "true",
		"phone_verifies_1m": "1", "phone_fails_24h": "1", "device_fails_10m": "1", "ip_phones_1h": "1",
		"phone_listed": "", "travel_kmh": "0",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}

func TestHourCN(t *testing.T) {
	s := newScorer(t, scoring.Config{}, probePack("hour_cn"))
	for i, c := range []struct {
		utc  time.Time
		want string
	}{
		{time.Date(2026, 3, 14, 15, 59, 59, 0, time.UTC), "23"},
		{time.Date(2026, 3, 14, 16, 0, 0, 0, time.UTC), "0"},
		{time.Date(2026, 3, 14, 21, 30, 0, 0, time.UTC), "5"},
		{time.Date(2026, 3, 14, 22, 0, 0, 0, time.UTC), "6"},
	} {
		rec := process(t, s, event(fmt.Sprintf("h-%d", i), c.utc, "13800000001", ip1))
		if got := probes(rec.Hits)["hour_cn"]; got != c.want {
			t.Errorf("%s: hour_cn = %s, want %s", c.utc, got, c.want)
		}
	}
}
