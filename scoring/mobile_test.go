package scoring_test

import (
	"strings"
	"testing"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

// TestDatacenterReasonNeverAS0: the idc_proxy_ip reason names the AS and its organisation with
// ASN data, and says what is missing without it — never "AS0".
func TestDatacenterReasonNeverAS0(t *testing.T) {
	tab, err := geo.LoadASNCSV(strings.NewReader("47.92.0.0,47.95.255.255,37963,\"Hangzhou Alibaba Advertising Co.,Ltd.\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	withASN, err := geo.Open("", "", geo.WithIDCList(geo.DefaultIDCList()), geo.WithASNTable(tab))
	if err != nil {
		t.Fatal(err)
	}
	without, err := geo.Open("", "", geo.WithIDCList(geo.DefaultIDCList()))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		loc  *geo.Locator
		ip   string
		want string
	}{
		{withASN, geotest.DatacenterIP, "datacenter/proxy IP (AS37963 Hangzhou Alibaba Advertising Co.,Ltd.)"},
		{withASN, "52.1.2.3", "datacenter/proxy IP (unknown AS)"}, // in idc_cidrs.txt (AWS), not in this ASN data
		{without, geotest.DatacenterIP, "datacenter/proxy IP (no ASN data)"},
	}
	for _, c := range cases {
		s := newScorer(t, scoring.Config{}, nil, scoring.WithGeo(c.loc))
		ev := event("e1", t0, "13800138000", c.ip)
		rec, err := s.Process(&ev)
		if err != nil {
			t.Fatal(err)
		}
		got := rec.Detail["idc_proxy_ip"].Reason
		if got != c.want {
			t.Errorf("%s: reason %q, want %q", c.ip, got, c.want)
		}
		if strings.Contains(got, "AS0") {
			t.Errorf("%s: reason %q says AS0", c.ip, got)
		}
	}
}

// TestCarrierMismatchPorted: the ported list exempts a ported number or compares with its new
// carrier; phone_ported says so.
func TestCarrierMismatchPorted(t *testing.T) {
	p, err := scoring.ParsePorted(strings.NewReader("13800138000 CU\n13912345678\n"))
	if err != nil {
		t.Fatal(err)
	}
	pack := []byte(`pack: t
rules:
  - {id: mm, tag: mm, level: 300, when: carrier_mismatch, reason: "x"}
  - {id: ported, tag: ported, mode: tag, when: phone_ported, reason: "x"}
`)
	for _, c := range []struct {
		phone, carrier string
		list           bool
		mismatch       bool
		ported         bool
	}{
		{"13800138000", "CU", false, true, false}, // China Mobile segment reported as CU: soft mismatch without the list
		{"13800138000", "CU", true, false, true},  // ported to CU
		{"13800138000", "CT", true, true, true},   // ported to CU, reported as CT
		{"13912345678", "CT", true, false, true},  // ported, new carrier unknown
		{"13700001111", "CU", true, true, false},  // not ported
	} {
		var opts []scoring.Option
		if c.list {
			opts = append(opts, scoring.WithPorted(p))
		}
		s := newScorer(t, scoring.Config{}, pack, opts...)
		ev := event("e1", t0, c.phone, "203.0.113.10")
		ev.Carrier = c.carrier
		rec, err := s.Process(&ev)
		if err != nil {
			t.Fatal(err)
		}
		h := hits(rec)
		if h["mm"] != c.mismatch || h["ported"] != c.ported {
			t.Errorf("%s reported %s (list %v): mismatch %v ported %v, want %v %v", schemas.MaskPhone(c.phone), c.carrier, c.list, h["mm"], h["ported"], c.mismatch, c.ported)
		}
	}
}

func TestParsePortedErrors(t *testing.T) {
	for in, want := range map[string]string{
		"13800138000 CU CT\n":   "line 1: expected `NUMBER [CM|CU|CT]`, got 3 fields",
		"# x\n13800138000 XX\n": `line 2: carrier "XX" is not CM, CU or CT`,
		"1380013800\n":          "line 1: number: phone: is not a mainland mobile number: 10 digits",
	} {
		_, err := scoring.ParsePorted(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "1380013800") {
			t.Errorf("%q: error %q echoes the number", in, err)
		}
	}
}
