//go:build integration

package loadgen

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/geo"
)

// TestRangesInGeoLite2 checks the generator's address ranges against the real GeoLite2 data:
// carrier NAT and domestic-cloud addresses are in mainland China, overseas-proxy addresses are in
// the country they are listed under.
//
//	RISKFLOW_GEO_CITY=$(deploy/local/geo.sh path) go test -tags integration ./pipeline/loadgen/
func TestRangesInGeoLite2(t *testing.T) {
	city := os.Getenv("RISKFLOW_GEO_CITY")
	if city == "" {
		t.Skip("RISKFLOW_GEO_CITY is not set (see deploy/local/geo.sh)")
	}
	loc, err := geo.Open(city, "", geo.WithIDCList(geo.DefaultIDCList()))
	if err != nil {
		t.Fatal(err)
	}
	r := rng{s: 77}
	check := func(what, want string, nets []netip.Prefix) {
		t.Helper()
		for _, p := range nets {
			for range 200 {
				a := addrIn(p, r.next(), r.next())
				if got := loc.Lookup(a).Country; got != want {
					t.Errorf("%s %s (%s): country %q, want %q", what, a, p, got, want)
					break
				}
			}
		}
	}
	for c := range natV4 {
		check("carrier NAT", "CN", natV4[c])
		check("carrier IPv6", "CN", natV6[c])
	}
	for c := range cellV4 {
		check("cellular", "CN", cellV4[c])
		check("cellular IPv6", "CN", cellV6[c])
	}
	for _, ns := range [][]netip.Prefix{broadbandBeijing, broadbandShanghai, broadbandOther} {
		check("broadband", "CN", ns)
	}
	// Travellers fly between broadband placed in Beijing and in Shanghai.
	for city, nets := range map[string][]netip.Prefix{"Beijing": broadbandBeijing, "Shanghai": broadbandShanghai} {
		in := 0
		for range 400 {
			if loc.Lookup(addrIn(pick(&r, nets), r.next(), r.next())).Province == city {
				in++
			}
		}
		if in < 360 {
			t.Errorf("broadband of %s: %d of 400 addresses placed there, want 90%%", city, in)
		}
	}
	check("domestic cloud", "CN", idcDomestic)
	for _, o := range overseas {
		check("overseas proxy", o.country, o.nets)
	}

	// And the benign stream as a whole never leaves mainland China.
	for _, l := range sharedStream(t) {
		if l.Label == LabelBenign {
			if g := loc.Lookup(l.Event.IP); g.Country != "CN" || g.IPType != "" {
				t.Fatalf("benign address %s: %+v", l.Event.IP, g)
			}
		}
	}
}

// TestTravelOnRealGeoLite2 scores six hours of the benign stream (cellular address changes, wifi→4G,
// IPv6, flights) with the real GeoLite2 City data and the default pack: with the shipped mobile
// list no ordinary login gets impossible_travel; without it some do (the data scatters China
// Mobile's pools), which shows the check can fail.
//
//	RISKFLOW_GEO_CITY=$(deploy/local/geo.sh path) go test -tags integration -run TravelOnRealGeoLite2 -v ./pipeline/loadgen/
func TestTravelOnRealGeoLite2(t *testing.T) {
	city := os.Getenv("RISKFLOW_GEO_CITY")
	if city == "" {
		t.Skip("RISKFLOW_GEO_CITY is not set (see deploy/local/geo.sh)")
	}
	events := generate(t, Config{Seed: 21, Rate: 6, Duration: 6 * time.Hour, Start: DefaultStart.Add(8 * time.Hour), AttackShare: -1})
	with, withUp := travelHits(t, city, geo.DefaultMobileList(), events)
	without, withoutUp := travelHits(t, city, nil, events)
	t.Logf("%d benign events on real GeoLite2: impossible_travel with the mobile list %d (%d at 600), without it %d (%d at 600)",
		len(events), with, withUp, without, withoutUp)
	if with != 0 {
		t.Errorf("impossible_travel on %d ordinary logins with the mobile list, want 0", with)
	}
	if without == 0 {
		t.Error("no impossible_travel without the mobile list either: the check cannot tell")
	}
}

// TestBenignRangesAreNoDatacenterInASNData checks the benign population's ranges against the real
// ASN data and the shipped datacenter lists: none of their addresses is a datacenter's (IPType
// "idc"), or ordinary users would get idc_proxy_ip and every demo and bench would count false
// positives. (AS23724, China Telecom's national IDC network, holds 106.120.144.0/20 and more, so
// the Beijing broadband range is 106.120.0.0/17.)
//
//	RISKFLOW_GEO_ASN=$(deploy/local/geo.sh asn-path) go test -tags integration -run NoDatacenter ./pipeline/loadgen/
func TestBenignRangesAreNoDatacenterInASNData(t *testing.T) {
	dir := os.Getenv("RISKFLOW_GEO_ASN")
	if dir == "" {
		t.Skip("RISKFLOW_GEO_ASN is not set (see deploy/local/geo.sh asn-path)")
	}
	tab, err := geo.LoadASNDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.Open("", "", geo.WithASNTable(tab), geo.WithIDCList(geo.DefaultIDCList()),
		geo.WithCloudList(geo.DefaultCloudList()), geo.WithMobileList(geo.DefaultMobileList()))
	if err != nil {
		t.Fatal(err)
	}
	r := rng{s: 78}
	var benign [][]netip.Prefix
	for c := range natV4 {
		benign = append(benign, natV4[c], natV6[c])
	}
	for c := range cellV4 {
		benign = append(benign, cellV4[c], cellV6[c])
	}
	benign = append(benign, broadbandBeijing, broadbandShanghai, broadbandOther)
	for _, nets := range benign {
		for _, p := range nets {
			for range 500 {
				a := addrIn(p, r.next(), r.next())
				if g := loc.Lookup(a); g.IPType == geo.IPTypeIDC {
					t.Errorf("benign %s (%s) is a datacenter address: AS%d %s", a, p, g.ASN, loc.ASOrg(g.ASN))
					break
				}
			}
		}
	}
}
