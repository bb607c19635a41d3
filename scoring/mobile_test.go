package scoring_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
		// Two numbers on a line (a list joined wrong): the second is named masked, not echoed.
		"13900139000 13800138000\n": `line 1: carrier "<phone>" is not CM, CU or CT`,
	} {
		_, err := scoring.ParsePorted(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", in, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "1380013800") || strings.Contains(err.Error(), "13900139000")) {
			t.Errorf("%q: error %q echoes the number", in, err)
		}
	}
	// A line too long to read is named (it said "bufio.Scanner: token too long").
	if _, err := scoring.ParsePorted(strings.NewReader("13800138000 CU\n" + strings.Repeat(" ", 70000) + "x\n")); err == nil || err.Error() != "line 2: longer than 65536 bytes" {
		t.Errorf("a long line: %v", err)
	}
}

// listsOnly is the locator of a node without geo or ASN data: the default network lists
// (datacenter CIDRs, cloud ASes, mobile carrier networks), matched by CIDR.
func listsOnly(t *testing.T) *geo.Locator {
	t.Helper()
	loc, err := geo.Open("", "", geo.WithIDCList(geo.DefaultIDCList()), geo.WithCloudList(geo.DefaultCloudList()),
		geo.WithMobileList(geo.DefaultMobileList()))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestDatacenterIPv6FarmInOneSlash48: a hosting customer is routed a /48 (or a /56) and can give
// every attempt a /64 of its own; a farm rotating through one /48 is one datacenter network, as
// one rotating through an IPv4 /24 is, and phones_per_net_datacenter blocks it. It counted /64s,
// so the farm stayed at 600 (idc_proxy_ip) whatever its size.
func TestDatacenterIPv6FarmInOneSlash48(t *testing.T) {
	for _, c := range []struct {
		name   string
		ip     func(i int) string
		blocks bool
	}{
		{"one /64 per attempt in one /48", func(i int) string { return fmt.Sprintf("2a01:4f8:10:%x::1", i+1) }, true},
		{"one IPv4 address per attempt in one /24", func(i int) string { return fmt.Sprintf("47.92.5.%d", i+1) }, true},
		{"one /48 per attempt", func(i int) string { return fmt.Sprintf("2a01:4f8:%x::1", i+1) }, false},
	} {
		s := newScorer(t, scoring.Config{}, nil, scoring.WithGeo(listsOnly(t)))
		var rec schemas.ScoreRecord
		for i := range 20 {
			ev := event(fmt.Sprintf("farm-%d", i), t0.Add(time.Duration(i)*20*time.Second), fmt.Sprintf("137%08d", i*1234567), c.ip(i))
			rec = process(t, s, ev)
		}
		if got := hits(rec)["phones_per_net_datacenter"]; got != c.blocks {
			t.Errorf("%s: phones_per_net_datacenter %v, want %v (score %d, tags %v)", c.name, got, c.blocks, rec.Score, rec.Tags)
			continue
		}
		want := 600
		if c.blocks {
			want = 900
			if r := rec.Detail["phones_per_ip"].Reason; r != "20 phones from this datacenter network in 10 min" {
				t.Errorf("%s: phones_per_ip reason %q", c.name, r)
			}
		}
		if rec.Score != want || !slices.Contains(rec.Tags, "idc_proxy_ip") {
			t.Errorf("%s: score %d tags %v, want %d with idc_proxy_ip", c.name, rec.Score, rec.Tags, want)
		}
	}
}

// TestCellularSessionsAreOneNetwork: a cellular user gets a new NAT address (IPv4) or a new /64
// (IPv6) of the carrier's pool at each data session. Eight logins in a day of an ordinary user
// are one network, not eight: ips_per_phone ("this number from N networks") stayed silent only
// for users who kept their /24 or /64, and observed (300) every cellular user who logged in five
// times a day. A number used from five fixed-broadband networks is still observed.
func TestCellularSessionsAreOneNetwork(t *testing.T) {
	for _, c := range []struct {
		name string
		ip   func(i int) string
		nets int // phone_nets_24h at the last login
	}{
		{"IPv6 cellular, a new /64 per session", func(i int) string { return fmt.Sprintf("2409:8900:%x:%x::1", 0x100+i*37, i*13) }, 1},
		{"IPv4 cellular NAT, a new address per session", func(i int) string { return fmt.Sprintf("223.104.%d.%d", i*29, 5+i) }, 1},
		{"fixed broadband, a new /24 per login", func(i int) string { return fmt.Sprintf("101.226.%d.7", i*3) }, 8},
	} {
		s := newScorer(t, scoring.Config{}, withProbes(nil, "phone_nets_24h"), scoring.WithGeo(listsOnly(t)))
		var rec schemas.ScoreRecord
		for i := range 8 {
			ev := event(fmt.Sprintf("s-%d", i), t0.Add(time.Duration(i)*90*time.Minute), "13812345678", c.ip(i))
			ev.DeviceID = "own-phone"
			rec = process(t, s, ev)
			if c.nets == 1 && rec.Score != 0 {
				t.Errorf("%s: login %d: score %d, tags %v, detail %v", c.name, i+1, rec.Score, rec.Tags, rec.Detail)
			}
		}
		if got := probes(rec.Hits)["phone_nets_24h"]; got != fmt.Sprint(c.nets) {
			t.Errorf("%s: phone_nets_24h %s, want %d", c.name, got, c.nets)
		}
		if c.nets > 1 && rec.Detail["ips_per_phone"].Reason != "this number from 8 networks in 24 h" {
			t.Errorf("%s: ips_per_phone %v", c.name, rec.Detail)
		}
	}
}

// TestVPNExitFarmIsDatacenter: commercial VPN and proxy services exit through a few hosting
// networks (M247, Datacamp, xTom …). With ASN data their addresses are datacenter addresses, so
// a farm behind one exit is blocked on every flow — overseas_ip does not apply to SMS fallback,
// and an exit inside mainland China is not overseas at all. They were not in cloud_asns.txt: the
// farm got nothing on SMS fallback.
func TestVPNExitFarmIsDatacenter(t *testing.T) {
	tab, err := geo.LoadASNCSV(strings.NewReader("89.187.160.0,89.187.175.255,60068,Datacamp Limited\n" +
		"193.176.84.0,193.176.87.255,9009,M247 Europe SRL\n"))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.Open("", "", geo.WithIDCList(geo.DefaultIDCList()), geo.WithCloudList(geo.DefaultCloudList()),
		geo.WithMobileList(geo.DefaultMobileList()), geo.WithASNTable(tab))
	if err != nil {
		t.Fatal(err)
	}
	for ip, as := range map[string]string{"89.187.160.1": "AS60068 Datacamp Limited", "193.176.84.1": "AS9009 M247 Europe SRL"} {
		s := newScorer(t, scoring.Config{}, nil, scoring.WithGeo(loc))
		var rec schemas.ScoreRecord
		for i := range 10 {
			ev := event(fmt.Sprintf("vpn-%d", i), t0.Add(time.Duration(i)*30*time.Second), fmt.Sprintf("135%08d", i*7654321), ip)
			ev.Flow = schemas.FlowSMSFallback
			rec = process(t, s, ev)
		}
		if rec.Score != 900 || rec.Detail["idc_proxy_ip"].Reason != "datacenter/proxy IP ("+as+")" ||
			rec.Detail["phones_per_ip"].Reason != "10 phones from this datacenter IP in 10 min" {
			t.Errorf("%s: score %d, detail %v; want 900, idc_proxy_ip (%s) and phones_per_ip", ip, rec.Score, rec.Detail, as)
		}
	}
}

// TestIPv4MappedAddressesAreIPv4: an IPv4-mapped IPv6 address (a Go caller's event, a history
// read back from an IPv6 column) is its IPv4 address everywhere — the datacenter and mobile
// lists, the address and network counts — so a farm cannot split its counts by writing half its
// addresses mapped, and a cellular user's mapped address is still mobile.
func TestIPv4MappedAddressesAreIPv4(t *testing.T) {
	s := newScorer(t, scoring.Config{}, withProbes(nil, "ip_type", "ip_v6", "ip_phones_10m", "net_phones_10m"), scoring.WithGeo(listsOnly(t)))
	var rec schemas.ScoreRecord
	for i := range 10 {
		ip := fmt.Sprintf("47.92.5.%d", 1+i%2)
		if i%2 == 1 {
			ip = "::ffff:" + ip
		}
		rec = process(t, s, event(fmt.Sprintf("m-%d", i), t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("137%08d", i*1234567), ip))
	}
	p := probes(rec.Hits)
	if p["ip_type"] != "idc" || p["ip_v6"] != "false" || p["ip_phones_10m"] != "5" || p["net_phones_10m"] != "10" {
		t.Errorf("mapped datacenter address: %v, want idc, not v6, 5 phones on the address, 10 on the network", p)
	}
	if rec.Score != 600 || !slices.Equal(rec.Tags, []string{"idc_proxy_ip"}) {
		t.Errorf("mapped datacenter address: score %d, tags %v, want 600 and idc_proxy_ip only", rec.Score, rec.Tags)
	}
	rec = process(t, s, event("m-cell", t0.Add(time.Minute), "13812345678", "::ffff:223.104.3.17"))
	if p := probes(rec.Hits); p["ip_type"] != "mobile" || p["ip_v6"] != "false" {
		t.Errorf("mapped cellular address: %v, want mobile, not v6", p)
	}
}

// TestCarrierMismatchPortedReason: the reason of a ported number's mismatch names the carrier it
// was compared with — the one the number moved to. It said "the segment belongs to CM" for a
// number ported from CM to CU, even when the gateway reported CM: "gateway reported CM, the
// segment belongs to CM".
func TestCarrierMismatchPortedReason(t *testing.T) {
	p, err := scoring.ParsePorted(strings.NewReader("13800138000 CU\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ phone, carrier, want string }{
		{"13800138000", "CM", "gateway reported CM but the number was ported to CU (its segment is CM's)"},
		{"13800138000", "CT", "gateway reported CT but the number was ported to CU (its segment is CM's)"},
		{"13700001111", "CU", "gateway reported CU but the number's segment is on CM's network"},
	} {
		s := newScorer(t, scoring.Config{}, nil, scoring.WithPorted(p))
		ev := event("e1", t0, c.phone, "203.0.113.10")
		ev.Carrier = c.carrier
		rec := process(t, s, ev)
		if got := rec.Detail["carrier_mismatch"]; got.Score != 300 || got.Reason != c.want {
			t.Errorf("%s reported %s: carrier_mismatch %+v, want 300 %q", schemas.MaskPhone(c.phone), c.carrier, got, c.want)
		}
	}
}

// TestIPv6AddressIsItsSlash64: an IPv6 host chooses its interface id inside its /64 and changes it
// at will (privacy addresses), and a carrier gives each cellular device a /64 that tethered devices
// share. Twenty numbers probed from one /64 (a hotspot, a broadband line), each attempt from a new
// interface id, are one address: the failing crowd steps them up as it would on one IPv4 address.
// Keyed by /128, ip_phones stayed at 1 and the farm passed. A cellular user whose device gets a
// new /64 is a new address, as a new NAT address is.
func TestIPv6AddressIsItsSlash64(t *testing.T) {
	for _, c := range []struct {
		name   string
		ip     func(i int) string
		phones string // ip_phones_10m at the last attempt
		score  int
	}{
		{"one /64 of a broadband line, new interface id per attempt", func(i int) string { return fmt.Sprintf("240e:3a1:4c2:7b10:%x:%x:%x:1", 0x1000+i*811, i*97, i*13) }, "20", 600},
		{"one cellular /64 shared by a hotspot", func(i int) string { return fmt.Sprintf("2409:8934:8a2:51c6:%x::%x", 0x200+i*7, i+1) }, "20", 600},
		{"twenty cellular devices, a /64 each (in the pool's /56s)", func(i int) string { return fmt.Sprintf("2409:8934:%x:5100::1", 0x8a2+i) }, "1", 0},
	} {
		s := newScorer(t, scoring.Config{}, withProbes(nil, "ip_phones_10m", "app_ip_phones_10m"), scoring.WithGeo(listsOnly(t)))
		checkFailingCrowd(t, c.name, s, c.phones, c.score, func(i int) schemas.VerifyEvent {
			return event(fmt.Sprintf("v6-%d", i), t0.Add(time.Duration(i)*20*time.Second), fmt.Sprintf("139%08d", i*4567891), c.ip(i))
		})
	}
}

// checkFailingCrowd sends twenty failed attempts (ev(0) … ev(19), 20 s apart) to s and checks the
// last one: ip_phones_10m and app_ip_phones_10m equal phones, and the score is score, with
// phones_per_ip_failing_crowd among the hits exactly when it is 600.
func checkFailingCrowd(t *testing.T, name string, s *scoring.Scorer, phones string, score int, ev func(i int) schemas.VerifyEvent) {
	t.Helper()
	var rec schemas.ScoreRecord
	for i := range 20 {
		e := ev(i)
		e.Outcome, e.ErrorCode = schemas.OutcomeFail, "103111"
		rec = process(t, s, e)
	}
	p := probes(rec.Hits)
	if p["ip_phones_10m"] != phones || p["app_ip_phones_10m"] != phones {
		t.Errorf("%s: ip_phones_10m %s, app_ip_phones_10m %s, want %s", name, p["ip_phones_10m"], p["app_ip_phones_10m"], phones)
	}
	if rec.Score != score || (score == 600) != hits(rec)["phones_per_ip_failing_crowd"] {
		t.Errorf("%s: score %d, tags %v, detail %v; want %d", name, rec.Score, rec.Tags, rec.Detail, score)
	}
}

// TestBroadbandLineIsItsSlash56: a fixed broadband line is delegated a /56 (or a /60) and numbers
// its LANs from it, so a SIM farm on one line can give each attempt a new /64 of its /56. The
// line is one address: twenty numbers probed from twenty /64s of one /56 are the failing crowd
// they would be on one /64 (or one IPv4 address). Keyed by /64, ip_phones_10m stayed at 1 and
// the farm scored 0. Twenty households, a /56 each, are twenty addresses. China Mobile's home
// broadband (2409:8axx) is on the mobile list with its cellular pools (the same ASes, the same
// /20: no data here tells them apart): the same farm on one of its lines, keyed by /64 as a
// cellular device was, scored 0 too — so a mobile network's /56 is one address as well, and
// twenty cellular devices, each in a /56 of the pool, are twenty.
func TestBroadbandLineIsItsSlash56(t *testing.T) {
	for _, c := range []struct {
		name   string
		ip     func(i int) string
		phones string // ip_phones_10m at the last attempt
		score  int
	}{
		{"one broadband /56, a new /64 per attempt", func(i int) string { return fmt.Sprintf("240e:3a1:4c2:7b%02x:%x::1", i*11, 0x1000+i*811) }, "20", 600},
		{"twenty broadband households, a /56 each", func(i int) string { return fmt.Sprintf("240e:3a1:4c2:%x:%x::1", 0x100*(i+1), 0x1000+i*811) }, "1", 0},
		{"one China Mobile home broadband /56, a new /64 per attempt", func(i int) string { return fmt.Sprintf("2409:8a28:77:7b%02x:%x::1", i*11, 0x1000+i*811) }, "20", 600},
		{"one China Mobile /56 read as cellular: twenty /64s of it", func(i int) string { return fmt.Sprintf("2409:8934:8a2:51%02x::1", i) }, "20", 600},
		{"twenty cellular devices of the pool, a /64 each", func(i int) string { return fmt.Sprintf("2409:8934:%x:51c6::1", 0x8a2+i*0x3b) }, "1", 0},
		{"twenty China Unicom cellular devices, a /64 each", func(i int) string { return fmt.Sprintf("2408:8456:%x:51c6::1", 0x8a2+i*0x3b) }, "1", 0},
	} {
		s := newScorer(t, scoring.Config{}, withProbes(nil, "ip_phones_10m", "app_ip_phones_10m", "net_phones_10m"), scoring.WithGeo(listsOnly(t)))
		checkFailingCrowd(t, c.name, s, c.phones, c.score, func(i int) schemas.VerifyEvent {
			ev := event(fmt.Sprintf("bb-%d", i), t0.Add(time.Duration(i)*20*time.Second), fmt.Sprintf("189%08d", i*4567891), c.ip(i))
			ev.Carrier, ev.DeviceID = "CT", fmt.Sprintf("slot-%d", i)
			return ev
		})
	}
}

// TestPrivateIPv6IsNoHouseholdLine: an address of a private network — a unique local address
// (fc00::/7), or RFC 1918 and the carrier-grade NAT range 100.64.0.0/10 — is what a verify
// service sees for the clients behind its own proxy or on its own network, never a household's
// line: every user of the app shares it. phones_per_ip_v6_line stepped up the whole app there
// (600) as a SIM farm on one line; ip_private says so, and the line rule leaves such an address to
// the crowd rules that observe.
func TestPrivateIPv6IsNoHouseholdLine(t *testing.T) {
	for _, c := range []struct {
		ip      string
		private bool
		score   int
	}{
		{"fd12:3456:789a:1::10", true, 300},
		{"::ffff:10.20.30.40", true, 300},
		{"100.64.7.9", true, 300},
		{"240e:3a1:4c2:7b10::1", false, 600},
	} {
		s := newScorer(t, scoring.Config{}, withProbes(nil, "ip_private", "app_ip_phones_10m"), scoring.WithGeo(listsOnly(t)))
		var rec schemas.ScoreRecord
		for i := range 20 {
			ev := event(fmt.Sprintf("p-%d", i), t0.Add(time.Duration(i)*20*time.Second), fmt.Sprintf("139%08d", i*4567891), c.ip)
			rec = process(t, s, ev)
		}
		p := probes(rec.Hits)
		if p["ip_private"] != fmt.Sprint(c.private) || p["app_ip_phones_10m"] != "20" {
			t.Errorf("%s: ip_private %s, app_ip_phones_10m %s; want %v, 20", c.ip, p["ip_private"], p["app_ip_phones_10m"], c.private)
		}
		if rec.Score != c.score || hits(rec)["phones_per_ip_v6_line"] != (c.score == 600) {
			t.Errorf("%s: score %d, tags %v, detail %v; want %d", c.ip, rec.Score, rec.Tags, rec.Detail, c.score)
		}
	}
}
