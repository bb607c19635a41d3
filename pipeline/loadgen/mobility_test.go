package loadgen

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/riskflow/riskflow/rules"
	"github.com/riskflow/riskflow/rules/packs"
	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
	"github.com/riskflow/riskflow/scoring/scoringtest"
)

func in(a netip.Addr, nets ...[]netip.Prefix) bool {
	for _, ns := range nets {
		for _, p := range ns {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

func allCellular() [][]netip.Prefix {
	var out [][]netip.Prefix
	for c := range cellV4 {
		out = append(out, cellV4[c], cellV6[c])
	}
	return out
}

// TestBenignMobility: the benign stream holds the behaviours of issue #14 — logins of one number
// from two cellular addresses minutes apart, wifi then 4G, IPv6 /64s that change, and flights
// Beijing ⇄ Shanghai 2.5–3.5 h apart — and every address they use is a carrier's, none a
// datacenter's.
func TestBenignMobility(t *testing.T) {
	cfg := Config{Seed: 7, Rate: 10, Duration: 6 * time.Hour, Start: DefaultStart.Add(8 * time.Hour), AttackShare: -1}
	type login struct {
		at time.Time
		ip netip.Addr
	}
	last := map[string]login{}
	var cellChanges, wifiTo4G, v6Changes, flights int
	idc := geo.DefaultIDCList()
	cell := allCellular()
	for _, l := range generate(t, cfg) {
		ev := l.Event
		if idc.Contains(ev.IP) {
			t.Fatalf("benign address %s is in the datacenter list", ev.IP)
		}
		prev, ok := last[ev.Phone]
		last[ev.Phone] = login{ev.TS, ev.IP}
		if !ok || prev.ip == ev.IP {
			continue
		}
		dt := ev.TS.Sub(prev.at)
		switch {
		case dt <= 30*time.Minute && in(prev.ip, cell...) && in(ev.IP, cell...) && prev.ip.Is4() && ev.IP.Is4():
			cellChanges++
		case dt <= 30*time.Minute && in(prev.ip, broadbandBeijing, broadbandShanghai, broadbandOther) && in(ev.IP, cell...):
			wifiTo4G++
		case dt <= 30*time.Minute && prev.ip.Is6() && ev.IP.Is6() && netip.PrefixFrom(prev.ip, 64).Masked() != netip.PrefixFrom(ev.IP, 64).Masked():
			v6Changes++
		case dt >= 150*time.Minute && dt <= 210*time.Minute &&
			(in(prev.ip, broadbandBeijing) && in(ev.IP, broadbandShanghai) || in(prev.ip, broadbandShanghai) && in(ev.IP, broadbandBeijing)):
			flights++
		}
	}
	t.Logf("cellular address changes %d, wifi→4G %d, IPv6 /64 changes %d, flights %d", cellChanges, wifiTo4G, v6Changes, flights)
	for name, n := range map[string]int{"cellular address changes": cellChanges, "wifi→4G switches": wifiTo4G, "IPv6 /64 changes": v6Changes, "flights": flights} {
		if n < 10 {
			t.Errorf("%s: %d in six hours, want at least 10", name, n)
		}
	}
}

// TestMobileRangesAreListed: the generator's cellular pools are in the shipped mobile list (so
// riskflow treats their locations as low confidence even without ASN data), its broadband ranges
// are not.
func TestMobileRangesAreListed(t *testing.T) {
	mobile := geo.DefaultMobileList()
	for _, ns := range allCellular() {
		for _, p := range ns {
			for _, a := range []netip.Addr{p.Addr(), lastAddr(p)} {
				if !mobile.Match(a, 0) {
					t.Errorf("cellular %s (%s) is not in mobile_networks.txt", a, p)
				}
			}
		}
	}
	for _, ns := range [][]netip.Prefix{broadbandBeijing, broadbandShanghai, broadbandOther} {
		for _, p := range ns {
			if mobile.Match(p.Addr(), 0) || geo.DefaultIDCList().Contains(p.Addr()) {
				t.Errorf("broadband %s is in the mobile or datacenter list", p)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// scatteredCityFixture places addresses as GeoLite2 does for the carriers' ranges: every /16 (IPv4)
// or /32 (IPv6) of a cellular pool in another city across China — China Mobile's pools scatter so —
// and broadband where it is (Beijing, Shanghai, and Xi'an, Zhengzhou, Guangzhou for the others).
func scatteredCityFixture(t *testing.T) string {
	cities := []geotest.CityEntry{
		{Province: "Sichuan", City: "Chengdu", Lat: 30.66, Lon: 104.06},
		{Province: "Heilongjiang", City: "Harbin", Lat: 45.75, Lon: 126.65},
		{Province: "Yunnan", City: "Kunming", Lat: 25.04, Lon: 102.71},
		{Province: "Zhejiang", City: "Hangzhou", Lat: 30.29, Lon: 120.16},
		{Province: "Fujian", City: "Xiamen", Lat: 24.48, Lon: 118.09},
		{Province: "Beijing", City: "Beijing", Lat: 39.90, Lon: 116.41},
	}
	var entries []geotest.CityEntry
	k := 0
	place := func(p netip.Prefix, c geotest.CityEntry) {
		c.Network, c.Country = p.String(), "CN"
		entries = append(entries, c)
	}
	split := func(nets []netip.Prefix, bits int) {
		for _, p := range nets {
			if p.Bits() >= bits {
				place(p, cities[k%len(cities)])
				k++
				continue
			}
			step := 1 << (p.Addr().BitLen() - bits)
			for a, n := p.Addr(), 0; p.Contains(a) && n < 1<<(bits-p.Bits()); n++ {
				place(netip.PrefixFrom(a, bits), cities[k%len(cities)])
				k++
				for range step / 256 { // advance a by step (a multiple of 256 addresses)
					a = advance(a, 256)
				}
			}
		}
	}
	for c := range cellV4 {
		split(cellV4[c], 16)
	}
	for c := range natV4 {
		if c != cm {
			for _, p := range natV4[c] {
				place(p, geotest.CityEntry{Province: "Shaanxi", City: "Xi'an", Lat: 34.34, Lon: 108.94})
			}
		}
	}
	for _, p := range broadbandBeijing {
		place(p, geotest.CityEntry{Province: "Beijing", City: "Beijing", Lat: 39.90, Lon: 116.41})
	}
	for _, p := range broadbandShanghai {
		place(p, geotest.CityEntry{Province: "Shanghai", City: "Shanghai", Lat: 31.23, Lon: 121.47})
	}
	place(broadbandOther[0], geotest.CityEntry{Province: "Guangdong", City: "Guangzhou", Lat: 23.13, Lon: 113.26})
	place(broadbandOther[1], geotest.CityEntry{Province: "Shaanxi", City: "Xi'an", Lat: 34.34, Lon: 108.94})
	place(broadbandOther[2], geotest.CityEntry{Province: "Henan", City: "Zhengzhou", Lat: 34.75, Lon: 113.63})
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	geotest.WriteCity(t, path, entries)
	return path
}

// advance returns a + n (IPv4 only; n < 2^32).
func advance(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// TestMobileTravelFalsePositives scores six hours of the benign stream with a City database that
// scatters the carriers' cellular pools over China, as GeoLite2 does: with the shipped mobile list
// no ordinary user gets impossible_travel (flights included); without it, users whose cellular
// address changes do — the test can tell.
func TestMobileTravelFalsePositives(t *testing.T) {
	if testing.Short() {
		t.Skip("scores six hours of traffic twice")
	}
	city := scatteredCityFixture(t)
	cfg := Config{Seed: 11, Rate: 6, Duration: 6 * time.Hour, Start: DefaultStart.Add(8 * time.Hour), AttackShare: -1}
	events := generate(t, cfg)
	withList, withListStepUps := travelHits(t, city, geo.DefaultMobileList(), events)
	without, withoutStepUps := travelHits(t, city, nil, events)
	t.Logf("%d benign events; impossible_travel with the mobile list %d (%d at 600), without it %d (%d at 600)",
		len(events), withList, withListStepUps, without, withoutStepUps)
	if withList != 0 {
		t.Errorf("impossible_travel on %d benign events with the mobile list, want 0", withList)
	}
	if without < 10 {
		t.Errorf("impossible_travel on only %d benign events without the mobile list: the fixture does not scatter the pools", without)
	}
}

// TestLargeApp: the large app takes its share of users, its numbers come from its blocks, and its
// ordinary traffic crowds blocks and NAT addresses enough to trip the shared-count rules of the
// previous default pack, but not the per-app rules of the current one.
func TestLargeApp(t *testing.T) {
	cfg := Config{Seed: 3, Rate: 30, Duration: 30 * time.Minute, Start: DefaultStart.Add(12 * time.Hour), AttackShare: -1,
		Apps: []string{"demo"}, LargeApp: "bigapp-gd", LargeAppShare: 0.6}
	events := generate(t, cfg)
	blocks := map[string]bool{}
	large := 0
	for _, l := range events {
		if l.Event.AppID == "bigapp-gd" {
			large++
			blocks[l.Event.Phone[:7]] = true
		}
	}
	if share := float64(large) / float64(len(events)); share < 0.5 || share > 0.7 {
		t.Errorf("large app has %.2f of the events, want about 0.6", share)
	}
	if len(blocks) > largeAppBlocks {
		t.Errorf("large app numbers from %d blocks, want at most %d", len(blocks), largeAppBlocks)
	}
	old := []byte(`pack: old
rules:
  - {id: prefix_burst, tag: prefix_burst, level: 600, when: "prefix_phones_1h >= 10", reason: x}
  - {id: crowd, tag: phones_per_ip, level: 300, when: "ip_type != \"idc\" && ip_phones_10m >= 20", reason: x}
`)
	count := func(pack []byte) map[string]int {
		s, err := scoring.New(scoring.Config{}, scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("k"))))
		if err != nil {
			t.Fatal(err)
		}
		p, err := rules.Compile(pack, s.Env())
		if err != nil {
			t.Fatal(err)
		}
		s.SetPack(p)
		tags := map[string]int{}
		for i := range events {
			rec, err := s.Process(&events[i].Event)
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range rec.Tags {
				tags[tag]++
			}
			for _, h := range rec.Hits {
				if h.Tag == "prefix_burst" && testing.Verbose() && tags[h.Rule] < 5 {
					t.Logf("%s %s %s: %s", events[i].Event.TS.Format(time.TimeOnly), events[i].Event.AppID, h.Rule, rec.Detail[h.Tag].Reason)
				}
				tags[h.Rule]++
			}
		}
		return tags
	}
	before, after := count(old), count(packs.Default())
	t.Logf("%d events (%d of the large app from %d blocks); shared-count rules: %v; default pack: %v", len(events), large, len(blocks), before, after)
	if before["prefix_burst"] < 20 || before["phones_per_ip"] < 20 {
		t.Errorf("the large app's ordinary traffic trips the shared-count rules only %v times: not large enough to show anything", before)
	}
	if after["prefix_burst"] != 0 || after["phones_per_ip"] != 0 {
		t.Errorf("default pack: prefix_burst %d, phones_per_ip %d on ordinary traffic, want 0", after["prefix_burst"], after["phones_per_ip"])
	}
}

func TestLargeAppConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Rate: 1, Duration: time.Minute, LargeAppShare: 0.5},
		{Rate: 1, Duration: time.Minute, LargeApp: "big", LargeAppShare: 1},
		{Rate: 1, Duration: time.Minute, LargeApp: "big"},
		{Rate: 1, Duration: time.Minute, LargeApp: "big\n", LargeAppShare: 0.5},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// travelHits scores events with the default pack on the City database at city, with the mobile
// network list mobile (nil: none), and counts the impossible_travel tags and how many of those
// events scored 600 or more.
func travelHits(t *testing.T, city string, mobile *geo.NetList, events []Labeled) (hits, stepUps int) {
	t.Helper()
	loc, err := geo.Open(city, "", geo.WithIDCList(geo.DefaultIDCList()), geo.WithMobileList(mobile))
	if err != nil {
		t.Fatal(err)
	}
	s := scoringtest.DefaultPack(t, scoring.WithGeo(loc), scoring.WithPhoneHasher(schemas.NewPhoneHasher([]byte("k"))))
	for i := range events {
		rec, err := s.Process(&events[i].Event)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(rec.Tags, "impossible_travel") {
			hits++
			if rec.Score >= 600 {
				stepUps++
			}
		}
	}
	return hits, stepUps
}
