package geo_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

func TestNetList(t *testing.T) {
	l, err := geo.LoadNetList(strings.NewReader("# mobile\nAS9808 China Mobile\nas56048\n\n112.96.0.0/15 CU Guangdong mobile\n2409:8900::/24\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ip   string
		asn  uint32
		want bool
	}{
		{"1.2.3.4", 9808, true},           // by AS
		{"1.2.3.4", 56048, true},          // lower-case "as"
		{"1.2.3.4", 4134, false},          // another AS
		{"1.2.3.4", 0, false},             // unknown AS
		{"112.97.1.1", 0, true},           // by CIDR, without ASN data
		{"112.98.1.1", 0, false},          // outside
		{"2409:8962::1", 0, true},         // IPv6 CIDR
		{"::ffff:112.96.0.1", 4837, true}, // mapped
	}
	for _, c := range cases {
		if got := l.Match(netip.MustParseAddr(c.ip), c.asn); got != c.want {
			t.Errorf("Match(%s, AS%d) = %v, want %v", c.ip, c.asn, got, c.want)
		}
	}
	if got := l.ASNs(); len(got) != 2 || got[0] != 9808 || got[1] != 56048 {
		t.Errorf("ASNs = %v", got)
	}
	var nilList *geo.NetList
	if nilList.Match(netip.MustParseAddr("112.97.1.1"), 9808) {
		t.Error("nil list matches")
	}
}

func TestNetListErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"ASX\n", `line 1: "ASX" is not an AS number`},
		{"AS0\n", `line 1: "AS0" is not an AS number`},
		{"AS9808\n\n10.1.2.3/8\n", "geo: network list line 3: \"10.1.2.3/8\" has host bits set"},
		{"AS9808\nchina-mobile\n", "line 2: \"china-mobile\" is not a CIDR network or IP address"},
	}
	for _, c := range cases {
		_, err := geo.LoadNetList(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

// TestDefaultLists: the shipped lists parse, hold the carriers' and clouds' main systems, and do
// not overlap each other (an address cannot be both a carrier's cellular pool and a datacenter).
func TestDefaultLists(t *testing.T) {
	mobile, cloud, idc := geo.DefaultMobileList(), geo.DefaultCloudList(), geo.DefaultIDCList()
	for _, asn := range []uint32{9808, 56040, 24400} {
		if !mobile.Match(netip.Addr{}, asn) {
			t.Errorf("mobile list lacks AS%d (China Mobile)", asn)
		}
	}
	// Domestic and international clouds, China Telecom's IDC networks, and the hosting commercial
	// VPNs exit through (M247, Datacamp, xTom, Linode, BandwagonHost's IT7).
	for _, asn := range []uint32{37963, 45090, 16509, 137697, 134765, 9009, 60068, 212238, 3258, 63949, 25820} {
		if !cloud.Match(netip.Addr{}, asn) {
			t.Errorf("cloud list lacks AS%d", asn)
		}
		if mobile.Match(netip.Addr{}, asn) {
			t.Errorf("AS%d is both cloud and mobile", asn)
		}
	}
	for _, asn := range mobile.ASNs() {
		if cloud.Match(netip.Addr{}, asn) {
			t.Errorf("AS%d is both cloud and mobile", asn)
		}
	}
	// The cellular pools the issue names, matched without ASN data.
	for _, ip := range []string{"223.104.3.17", "117.136.200.3", "120.229.5.5", "112.97.1.1", "2409:8962::1", "2408:8456::1", "240e:468::1",
		// China Mobile beyond those pools (it is mobile by AS, so by its allocations without ASN
		// data): Guangdong 120.196, Beijing 223.72 and 39.156, IPv6 cellular 2409:8c54.
		"120.196.10.20", "223.72.5.5", "39.156.66.10", "2409:8c54:1020:5a1::1", "2409:8a55:3c1::1"} {
		a := netip.MustParseAddr(ip)
		if !mobile.Match(a, 0) {
			t.Errorf("%s: not in the mobile list's CIDRs", ip)
		}
		if idc.Contains(a) {
			t.Errorf("%s: in the datacenter list", ip)
		}
	}
	// Fixed broadband of China Unicom and China Telecom stays confident.
	for _, ip := range []string{"123.112.10.20", "101.226.4.6", "180.160.1.1", "2408:8207::1", "240e:3a1::1"} {
		if mobile.Match(netip.MustParseAddr(ip), 0) {
			t.Errorf("%s (fixed broadband) is in the mobile list", ip)
		}
	}
}

// TestLocatorClassifies: with ASN data and the shipped lists, a China Mobile address is "mobile"
// and not confident, a cloud AS is "idc" even outside the CIDR list, fixed broadband is confident;
// without ASN data the mobile CIDRs still classify.
func TestLocatorClassifies(t *testing.T) {
	city, _ := geotest.Fixture(t)
	tab := loadASN(t, asnCSV+"120.196.0.0,120.196.255.255,56040,China Mobile Communications Corporation\n"+
		"39.156.0.0,39.156.255.255,9808,China Mobile\n8.8.8.0,8.8.8.255,15169,Google LLC\n"+
		"99.77.0.0,99.77.255.255,16509,\"Amazon.com, Inc.\"\n")
	lists := []geo.Option{geo.WithIDCList(geo.DefaultIDCList()), geo.WithCloudList(geo.DefaultCloudList()), geo.WithMobileList(geo.DefaultMobileList())}
	withASN, err := geo.Open(city, "", append(lists, geo.WithASNTable(tab))...)
	if err != nil {
		t.Fatal(err)
	}
	without, err := geo.Open(city, "", lists...)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ip        string
		loc       *geo.Locator
		asn       uint32
		typ       string
		confident bool
		desc      string
	}{
		{geotest.BeijingMobileIP, withASN, 9808, geo.IPTypeMobile, false, "China Mobile Beijing, by AS (and CIDR)"},
		{geotest.GuangdongIP, withASN, 56040, geo.IPTypeMobile, false, "China Mobile Guangdong, by AS only"},
		{geotest.GuangdongIP, without, 0, geo.IPTypeMobile, false, "the same without ASN data: China Mobile's 120.192.0.0/10 by CIDR"},
		{geotest.BeijingMobileIP, without, 0, geo.IPTypeMobile, false, "China Mobile Beijing without ASN data: by CIDR"},
		{geotest.BeijingFixedIP, withASN, 4808, "", true, "China Unicom fixed broadband"},
		{geotest.ShanghaiIP, without, 0, "", true, "China Telecom Shanghai"},
		{"99.77.1.2", withASN, 16509, geo.IPTypeIDC, false, "AWS by AS, not in idc_cidrs.txt"},
		{"99.77.1.2", without, 0, "", false, "AWS without ASN data: not classified"},
		{geotest.DatacenterIP, without, 0, geo.IPTypeIDC, true, "datacenter CIDR list (a city, but idc)"},
		{geotest.CountryOnlyIP, withASN, 0, geo.IPTypeMobile, false, "country-only record (China Mobile's 36.128.0.0/10 by CIDR): no city, not confident"},
	}
	for _, c := range cases {
		g := c.loc.Lookup(netip.MustParseAddr(c.ip))
		if g.ASN != c.asn || g.IPType != c.typ || geo.Confident(&g) != c.confident {
			t.Errorf("%s (%s): AS%d type %q confident %v; want AS%d %q %v", c.ip, c.desc, g.ASN, g.IPType, geo.Confident(&g), c.asn, c.typ, c.confident)
		}
	}
	if got := withASN.ASOrg(9808); got != "China Mobile" {
		t.Errorf("ASOrg(9808) = %q", got)
	}
	if !withASN.HasASN() || without.HasASN() {
		t.Error("HasASN wrong")
	}
	// No City database: the lists and the ASN data still classify.
	lists2, err := geo.Open("", "", append(lists, geo.WithASNTable(tab))...)
	if err != nil {
		t.Fatal(err)
	}
	if g := lists2.Lookup(netip.MustParseAddr("223.104.3.17")); g.IPType != geo.IPTypeMobile || g.ASN != 56048 || g.City != "" {
		t.Errorf("lists-only locator: %+v", g)
	}
}
