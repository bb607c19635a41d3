//go:build integration

package scoring_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/geo"
)

// simEv is one synthetic attempt and the stream (ordinary population or attack) it belongs to.
type simEv struct {
	ev     schemas.VerifyEvent
	stream string
}

// simGen draws the streams of TestMobileNetworkStreams: fresh numbers, apps, devices, times.
type simGen struct {
	r    *rand.Rand
	evs  []simEv
	n    int
	seen map[string]bool
}

func (g *simGen) phone(c string) string {
	for {
		segs := basicPrefixes[c]
		ph := fmt.Sprintf("%s%08d", segs[g.r.IntN(len(segs))], g.r.IntN(100_000_000))
		if !g.seen[ph] {
			g.seen[ph] = true
			return ph
		}
	}
}

func (g *simGen) add(stream string, ts time.Time, app, phone, carrier string, ip netip.Addr, dev string, fail bool) {
	g.n++
	ev := schemas.VerifyEvent{EventID: fmt.Sprintf("e%d", g.n), TS: ts, AppID: app, Flow: schemas.FlowOneClickLogin,
		Phone: phone, IP: ip, Carrier: carrier, Platform: "android", DeviceID: dev, Outcome: schemas.OutcomeSuccess}
	if dev == "" {
		ev.Platform, ev.Flow = "h5", schemas.FlowH5QuickLogin
	}
	if fail {
		ev.Outcome, ev.ErrorCode = schemas.OutcomeFail, "103111"
	}
	g.evs = append(g.evs, simEv{ev, stream})
}

func (g *simGen) app() string {
	switch x := g.r.IntN(10); {
	case x < 6:
		return "bigapp"
	case x < 8:
		return "app-a"
	default:
		return "app-b"
	}
}

func (g *simGen) dev() string {
	if g.r.IntN(5) == 0 {
		return ""
	}
	return fmt.Sprintf("dev-%016x", g.r.Uint64())
}

func v6(prefix string, a, b, c, d uint16) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("%s%x:%x:%x::%x", prefix, a, b, c, d))
}

const simSpan = 3 * time.Hour

var simT0 = time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC) // 09:00 in China

func (g *simGen) when() time.Time { return simT0.Add(time.Duration(g.r.Int64N(int64(simSpan)))) }

// TestMobileNetworkStreams plays three hours of synthetic ordinary traffic of the networks users
// in China log in through — IPv4 carrier NAT shared by thousands, cellular IPv6 with a new /64 per
// data session, households on broadband IPv6 (a /56 or /60 each, renumbered), travellers — and
// attacks on them — SIM farms on one broadband line rotating /64s of its /56, a device farm behind
// carrier NAT, datacenter farms over IPv4, an IPv6 /48, 6to4 and Teredo — through the default pack
// with the real GeoLite2 City and ASN data, and prints each stream's rates. No ordinary stream may
// be stepped up (≥ 600); the farms must be, from the attempt that crowds their address on — on a
// broadband IPv6 line even when most of their attempts succeed. An office of 150 on one IPv6 /56
// is printed, not judged: it is stepped up from its app's twentieth number (allow-list it).
//
//	RISKFLOW_GEO_CITY=$(deploy/local/geo.sh path) RISKFLOW_GEO_ASN=$(deploy/local/geo.sh asn-path) \
//	  go test -tags integration -run MobileNetworkStreams -v ./scoring/
func TestMobileNetworkStreams(t *testing.T) {
	loc := realGeo(t)
	g := &simGen{r: rand.New(rand.NewPCG(6, 6)), seen: map[string]bool{}}
	// --- legit: IPv4 CGNAT on cellular: few NAT addresses, thousands of users each ---
	nat := map[string][]netip.Addr{}
	for i := range 24 {
		nat["CM"] = append(nat["CM"], netip.AddrFrom4([4]byte{223, 104, byte(3 + i*7), byte(17 + i)}))
	}
	for i := range 8 {
		nat["CU"] = append(nat["CU"], netip.AddrFrom4([4]byte{112, 96, byte(100 + i*3), byte(40 + i)}))
	}
	for i := range 8 { // China Telecom 4G CGNAT (AS4134, not on the mobile list)
		nat["CT"] = append(nat["CT"], netip.AddrFrom4([4]byte{115, 168, byte(10 + i*9), byte(90 + i)}))
	}
	carriers := []string{"CM", "CM", "CM", "CU", "CT"}
	for range 9000 {
		c := carriers[g.r.IntN(len(carriers))]
		ph, dev, app := g.phone(c), g.dev(), g.app()
		k := 1 + g.r.IntN(5)
		ip := nat[c][g.r.IntN(len(nat[c]))]
		for range k {
			if g.r.IntN(2) == 0 {
				ip = nat[c][g.r.IntN(len(nat[c]))]
			}
			g.add("legit_cgnat_v4", g.when(), app, ph, c, ip, dev, g.r.IntN(40) == 0)
		}
	}
	// --- legit: IPv6 cellular, a /64 per device, new /64 per data session ---
	cell6 := map[string]string{"CM": "2409:8934:", "CU": "2408:8456:", "CT": "240e:468:"}
	for range 5000 {
		c := carriers[g.r.IntN(len(carriers))]
		ph, dev, app := g.phone(c), g.dev(), g.app()
		k := 1 + g.r.IntN(5)
		for range k {
			ip := v6(cell6[c], uint16(g.r.IntN(65536)), uint16(g.r.IntN(65536)), uint16(g.r.IntN(65536)), uint16(g.r.IntN(65536)))
			g.add("legit_cell_v6", g.when(), app, ph, c, ip, dev, g.r.IntN(40) == 0)
		}
	}
	// --- legit: IPv6 cellular from a dense pool: one city's China Mobile 5G users, each session
	// a /64 drawn from one /48 (256 /56s), so a /56 holds many users' sessions — the worst case for
	// counting a mobile network's /56 as one address ---
	for range 3000 {
		ph, dev, app := g.phone("CM"), g.dev(), g.app()
		for range 1 + g.r.IntN(5) {
			ip := v6("2409:8954:", 0x1a2, uint16(g.r.IntN(65536)), uint16(g.r.IntN(65536)), uint16(g.r.IntN(65536)))
			g.add("legit_cell_v6_dense", g.when(), app, ph, "CM", ip, dev, g.r.IntN(40) == 0)
		}
	}
	// --- legit: households on broadband IPv6 (a /56 or /60 each; LAN /64 + privacy addresses;
	// some are renumbered in the span) ---
	bb6 := []struct{ c, pfx string }{{"CT", "240e:3a1:"}, {"CU", "2408:8207:"}, {"CM", "2409:8a28:"}}
	for h := range 1500 {
		b := bb6[h%3]
		site := uint16(g.r.IntN(65536))
		sub := uint16(g.r.IntN(256)) << 8
		if b.c == "CU" { // /60s
			sub = uint16(g.r.IntN(4096)) << 4
		}
		renumber := g.r.IntN(4) == 0
		members := 1 + g.r.IntN(4)
		for range members {
			c := carriers[g.r.IntN(len(carriers))]
			ph, dev, app := g.phone(c), g.dev(), g.app()
			for range 1 + g.r.IntN(4) {
				ts := g.when()
				s2, sb := site, sub
				if renumber && ts.Sub(simT0) > simSpan/2 {
					s2 ^= 0x5a5a
				}
				lan := uint16(0)
				if g.r.IntN(10) == 0 {
					lan = 1 // guest network
				}
				ip := v6(b.pfx, s2, sb|lan, uint16(g.r.IntN(65536)), uint16(g.r.IntN(65536)))
				g.add("legit_broadband_v6", ts, app, ph, c, ip, dev, g.r.IntN(40) == 0)
			}
		}
	}
	// --- legit: roaming / travel: home cellular in Beijing, then hotel wifi in Guangzhou 3 h later
	// is too long for the span; take home cellular then a cellular pool of the visited province and
	// hotel wifi (broadband IPv4) a while later ---
	for range 400 {
		c := carriers[g.r.IntN(len(carriers))]
		ph, dev, app := g.phone(c), g.dev(), g.app()
		ts := simT0.Add(time.Duration(g.r.Int64N(int64(simSpan / 3))))
		g.add("legit_roaming", ts, app, ph, c, nat[c][g.r.IntN(len(nat[c]))], dev, false)
		ts = ts.Add(100*time.Minute + time.Duration(g.r.IntN(1800))*time.Second)
		g.add("legit_roaming", ts, app, ph, c, netip.AddrFrom4([4]byte{120, 229, byte(g.r.IntN(256)), byte(g.r.IntN(256))}), dev, false)
		ts = ts.Add(time.Duration(5+g.r.IntN(20)) * time.Minute)
		g.add("legit_roaming", ts, app, ph, c, netip.AddrFrom4([4]byte{14, 215, byte(g.r.IntN(256)), byte(1 + g.r.IntN(250))}), dev, false)
	}

	// --- attacks ---
	// SIM farm on one broadband line: every attempt a new /64 of its /56, a device id per SIM.
	for variant, failRate := range map[string]int{"atk_simfarm_bb56_probe": 7, "atk_simfarm_bb56_login": 2, "atk_simfarm_bb56_success": 0} {
		site := uint16(0x4c2 + 7*failRate)
		start := simT0.Add(time.Hour)
		for i := range 80 {
			ph := g.phone(carriers[i%5])
			ip := v6("240e:3a1:", site, uint16(0x7b00|g.r.IntN(256)), uint16(g.r.IntN(65536)), 1)
			g.add(variant, start.Add(time.Duration(i)*15*time.Second), "app-a", ph, carriers[i%5], ip, fmt.Sprintf("rig-%s-%d", variant, i), g.r.IntN(10) < failRate)
		}
	}
	// The farms on a China Mobile home broadband line (2409:8axx, listed mobile).
	for variant, failRate := range map[string]int{"atk_simfarm_cmbb56_probe": 7, "atk_simfarm_cmbb56_login": 2} {
		start := simT0.Add(70 * time.Minute)
		for i := range 80 {
			ph := g.phone(carriers[i%5])
			ip := v6("2409:8a28:", uint16(0x77+failRate), uint16(0x7b00|g.r.IntN(256)), uint16(g.r.IntN(65536)), 1)
			g.add(variant, start.Add(time.Duration(i)*15*time.Second), "app-a", ph, carriers[i%5], ip, fmt.Sprintf("rigm-%s-%d", variant, i), g.r.IntN(10) < failRate)
		}
	}
	// The same farm with one /64 (control).
	{
		start := simT0.Add(90 * time.Minute)
		for i := range 80 {
			ph := g.phone(carriers[i%5])
			ip := v6("240e:3a1:", 0x9999, 0x7b10, uint16(g.r.IntN(65536)), uint16(g.r.IntN(65536)))
			g.add("atk_simfarm_one64_probe", start.Add(time.Duration(i)*15*time.Second), "app-a", ph, carriers[i%5], ip, fmt.Sprintf("rigc-%d", i), g.r.IntN(10) < 7)
		}
	}
	// Not a farm, a measured trade: an office of 150 on one enterprise IPv6 /56, its staff logging
	// in from 09:00 to 09:30 (a /64 per floor, privacy addresses).
	for range 150 {
		c := carriers[g.r.IntN(len(carriers))]
		ts := simT0.Add(time.Duration(g.r.Int64N(int64(30 * time.Minute))))
		g.add("trade_office_v6", ts, g.app(), g.phone(c), c, v6("240e:3a1:", 0x0ff1, uint16(0xce00|g.r.IntN(8)), uint16(g.r.IntN(65536)), uint16(g.r.IntN(65536))), g.dev(), g.r.IntN(40) == 0)
	}
	// Device farm (猫池) behind cellular CGNAT: 8 rigs × 10 SIMs.
	{
		start := simT0.Add(30 * time.Minute)
		for i := range 80 {
			ph := g.phone("CM")
			g.add("atk_devicefarm_cgnat", start.Add(time.Duration(i)*20*time.Second), "app-b", ph, "CM", nat["CM"][i%3], fmt.Sprintf("modem-%d", i%8), g.r.IntN(3) == 0)
		}
	}
	// Datacenter proxies: Alibaba IPv4 rotating in a /24; a cloud IPv6 /48 rotating /64s;
	// 6to4 and Teredo forms of one cloud IPv4 address rotating their subnet/port fields.
	{
		start := simT0.Add(2 * time.Hour)
		for i := range 60 {
			ts := start.Add(time.Duration(i) * 10 * time.Second)
			g.add("atk_dc_v4", ts, "app-a", g.phone("CM"), "CM", netip.AddrFrom4([4]byte{47, 92, 10, byte(1 + i)}), fmt.Sprintf("dc4-%d", i), g.r.IntN(2) == 0)
			g.add("atk_dc_v6_48", ts, "app-a", g.phone("CU"), "CU", v6("2408:4005:", 0x3a0, uint16(i), 0, 1), fmt.Sprintf("dc6-%d", i), g.r.IntN(2) == 0)
			g.add("atk_dc_6to4", ts, "app-b", g.phone("CT"), "CT", v6("2002:", 0x2f5c, 0x0b14, uint16(i), 1), fmt.Sprintf("6to4-%d", i), g.r.IntN(2) == 0)
			// Teredo: 2001:0:server:flags:port^ffff:client^ffffffff; client 47.92.10.20
			g.add("atk_dc_teredo", ts, "app-b", g.phone("CT"), "CT",
				netip.MustParseAddr(fmt.Sprintf("2001:0:4136:e378:8000:%x:d0a3:f3eb", 0xffff^uint16(40000+i))), fmt.Sprintf("ter-%d", i), g.r.IntN(2) == 0)
		}
	}
	// Carrier mismatch: tokens of CU numbers verified through a CM gateway claim.
	{
		start := simT0.Add(100 * time.Minute)
		for i := range 40 {
			ph := g.phone("CU")
			g.add("atk_carrier_mismatch", start.Add(time.Duration(i)*45*time.Second), "bigapp", ph, "CM", nat["CM"][g.r.IntN(4)], g.dev(), false)
		}
	}

	sort.SliceStable(g.evs, func(i, j int) bool { return g.evs[i].ev.TS.Before(g.evs[j].ev.TS) })

	s := newScorer(t, scoring.Config{}, nil, scoring.WithGeo(loc))
	type stat struct {
		n, s300, s600 int
		tags          map[string]int
	}
	st := map[string]*stat{}
	for _, e := range g.evs {
		rec, err := s.Process(&e.ev)
		if err != nil {
			t.Fatal(err)
		}
		x := st[e.stream]
		if x == nil {
			x = &stat{tags: map[string]int{}}
			st[e.stream] = x
		}
		x.n++
		if rec.Score >= 300 {
			x.s300++
		}
		if rec.Score >= 600 {
			x.s600++
		}
		for _, tg := range rec.Tags {
			x.tags[tg]++
		}
	}
	var names []string
	for k := range st {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		x := st[k]
		var tags []string
		for tg, c := range x.tags {
			tags = append(tags, fmt.Sprintf("%s %d", tg, c))
		}
		sort.Slice(tags, func(i, j int) bool { return tags[i] < tags[j] })
		t.Logf("%-26s %6d  ≥300 %5.1f%%  ≥600 %5.1f%%  %s", k, x.n, 100*float64(x.s300)/float64(x.n), 100*float64(x.s600)/float64(x.n), strings.Join(tags, ", "))
	}
	// Ordinary streams: nobody stepped up. Farms: stepped up once their address is crowded — the
	// crowd rules need 20 numbers (datacenter: 10), so the first ones pass.
	for k, x := range st {
		rate := float64(x.s600) / float64(x.n)
		switch {
		case strings.HasPrefix(k, "legit_") && x.s600 > 0:
			t.Errorf("%s: %d of %d ordinary logins stepped up (≥ 600)", k, x.s600, x.n)
		case strings.HasPrefix(k, "atk_simfarm_") && rate < 0.7,
			strings.HasPrefix(k, "atk_dc_") && rate < 1,
			k == "atk_devicefarm_cgnat" && rate < 0.7:
			t.Errorf("%s: %.1f%% of %d farm attempts stepped up (≥ 600)", k, 100*rate, x.n)
		}
	}
}

// TestEmbeddedAddressesOnRealASNData: with the real ASN data (which answers 2002::/16 and
// 2001::/32 with the relays' AS, Hurricane Electric) every form of an address that embeds an IPv4
// address is attributed to the IPv4 address's network.
func TestEmbeddedAddressesOnRealASNData(t *testing.T) {
	loc := realGeo(t)
	for _, c := range []struct {
		ip   []string
		asn  uint32
		typ  string
		ctry string
	}{
		{[]string{"223.104.3.17", "::ffff:223.104.3.17", "64:ff9b::223.104.3.17", "2002:df68:311:1::1", "2001:0:4136:e378:8000:63bf:2097:fcee"}, 56048, geo.IPTypeMobile, "CN"},
		{[]string{"47.92.100.1", "::ffff:47.92.100.1", "64:ff9b::47.92.100.1", "2002:2f5c:6401:5::1", "2001:0:4136:e378:8000:63bf:d0a3:9bfe"}, 37963, geo.IPTypeIDC, "CN"},
	} {
		for _, ip := range c.ip {
			g := loc.Lookup(netip.MustParseAddr(ip))
			if g.ASN != c.asn || g.IPType != c.typ || g.Country != c.ctry {
				t.Errorf("%s: AS%d %q, ip type %q, country %q; want AS%d, %q, %q", ip, g.ASN, loc.ASOrg(g.ASN), g.IPType, g.Country, c.asn, c.typ, c.ctry)
			}
		}
	}
}

func realGeo(t *testing.T) *geo.Locator {
	t.Helper()
	city, asn := os.Getenv("RISKFLOW_GEO_CITY"), os.Getenv("RISKFLOW_GEO_ASN")
	if city == "" || asn == "" {
		t.Skip("RISKFLOW_GEO_CITY or RISKFLOW_GEO_ASN is not set (see deploy/local/geo.sh)")
	}
	tab, err := geo.LoadASNDir(asn)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.Open(city, "", geo.WithIDCList(geo.DefaultIDCList()),
		geo.WithCloudList(geo.DefaultCloudList()), geo.WithMobileList(geo.DefaultMobileList()), geo.WithASNTable(tab))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
