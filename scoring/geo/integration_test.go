//go:build integration

package geo_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/riskflow/riskflow/scoring/geo"
)

// Run with the real GeoLite2 data:
//
//	deploy/local/geo.sh install
//	RISKFLOW_GEO_CITY=$(deploy/local/geo.sh path) go test -tags integration ./scoring/geo/
//
// The Country database next to the City one (as geo.sh lays them out) is
// checked too when it is there.
func TestRealGeoLite2(t *testing.T) {
	city := os.Getenv("RISKFLOW_GEO_CITY")
	if city == "" {
		t.Skip("RISKFLOW_GEO_CITY is not set (see deploy/local/geo.sh)")
	}
	l, err := geo.Open(city, "", geo.WithIDCList(geo.DefaultIDCList()))
	if err != nil {
		t.Fatal(err)
	}
	info := l.Info()
	t.Logf("city database: %s, built %s", info.City.Type, info.City.BuildTime.Format(time.DateOnly))
	if info.City.Type != "GeoLite2-City" {
		t.Errorf("database type %q, want GeoLite2-City", info.City.Type)
	}

	// Well-known, long-lived public addresses.
	cases := []struct{ ip, country string }{
		{"114.114.114.114", "CN"}, // 114DNS, Nanjing
		{"223.5.5.5", "CN"},       // AliDNS
		{"180.76.76.76", "CN"},    // Baidu public DNS
		{"8.8.8.8", "US"},         // Google public DNS
		{"2001:4860:4860::8888", "US"},
		{"2400:3200::1", "CN"}, // AliDNS IPv6
	}
	for _, tc := range cases {
		g := l.Lookup(netip.MustParseAddr(tc.ip))
		t.Logf("%-22s %+v", tc.ip, g)
		if g.Country != tc.country {
			t.Errorf("%s: country %q, want %q", tc.ip, g.Country, tc.country)
		}
	}
	// AliDNS has city-level data: a province, a city and coordinates inside
	// China's bounding box.
	g := l.Lookup(netip.MustParseAddr("223.5.5.5"))
	if g.Province == "" || g.City == "" || g.Lat < 18 || g.Lat > 54 || g.Lon < 73 || g.Lon > 135 {
		t.Errorf("223.5.5.5: want a Chinese province, city and coordinates, got %+v", g)
	}
	// The datacenter list applies on top of the database.
	if g := l.Lookup(netip.MustParseAddr("47.92.1.1")); g.Country != "CN" || g.IPType != geo.IPTypeIDC {
		t.Errorf("47.92.1.1 (Alibaba Cloud): %+v", g)
	}
	if n := l.LookupErrors(); n != 0 {
		t.Errorf("LookupErrors = %d", n)
	}

	// The fast decoder agrees with geoip2-golang on the real data.
	var ips []string
	for _, tc := range cases {
		ips = append(ips, tc.ip)
	}
	ips = append(ips, "1.1.1.1", "39.156.66.10", "120.196.10.20", "101.226.4.6", "47.92.1.1", "2409:8c00::1")
	for _, ip := range ips[len(cases):] {
		t.Logf("%-22s %+v", ip, l.Lookup(netip.MustParseAddr(ip)))
	}
	checkAgainstGeoIP2(t, l, city, "", ips)

	country := filepath.Join(filepath.Dir(city), "GeoLite2-Country.mmdb")
	if _, err := os.Stat(country); err != nil {
		t.Logf("no Country database at %s: skipped", country)
		return
	}
	lc, err := geo.Open(country, "")
	if err != nil {
		t.Fatal(err)
	}
	if typ := lc.Info().City.Type; typ != "GeoLite2-Country" {
		t.Errorf("%s: database type %q", country, typ)
	}
	for _, tc := range cases {
		g := lc.Lookup(netip.MustParseAddr(tc.ip))
		if g.Country != tc.country || g.City != "" || g.Lat != 0 {
			t.Errorf("Country db %s: %+v, want only country %q", tc.ip, g, tc.country)
		}
	}
}

func BenchmarkLookupReal(b *testing.B) {
	city := os.Getenv("RISKFLOW_GEO_CITY")
	if city == "" {
		b.Skip("RISKFLOW_GEO_CITY is not set")
	}
	l, err := geo.Open(city, "", geo.WithIDCList(geo.DefaultIDCList()))
	if err != nil {
		b.Fatal(err)
	}
	ips := []netip.Addr{
		netip.MustParseAddr("114.114.114.114"), netip.MustParseAddr("39.156.66.10"),
		netip.MustParseAddr("120.196.10.20"), netip.MustParseAddr("101.226.4.6"),
		netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2409:8c00::1"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Lookup(ips[i%len(ips)])
	}
}

// TestRealASNData loads the @ip-location-db/asn CSV files deploy/local/geo.sh installs:
//
//	RISKFLOW_GEO_ASN=$(deploy/local/geo.sh asn-path) go test -tags integration -run RealASN ./scoring/geo/
//
// and checks the classification of the addresses issue #14 names.
func TestRealASNData(t *testing.T) {
	dir := os.Getenv("RISKFLOW_GEO_ASN")
	if dir == "" {
		t.Skip("RISKFLOW_GEO_ASN is not set (see deploy/local/geo.sh asn-path)")
	}
	start := time.Now()
	tab, err := geo.LoadASNDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	v4, v6 := tab.Len()
	t.Logf("loaded %d IPv4 and %d IPv6 ranges in %s", v4, v6, time.Since(start).Round(time.Millisecond))
	if v4 < 100_000 || v6 < 10_000 {
		t.Errorf("only %d IPv4 and %d IPv6 ranges: truncated files?", v4, v6)
	}
	l, err := geo.Open("", "", geo.WithASNTable(tab), geo.WithIDCList(geo.DefaultIDCList()),
		geo.WithCloudList(geo.DefaultCloudList()), geo.WithMobileList(geo.DefaultMobileList()))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ip  string
		typ string
	}{
		{"223.104.3.17", geo.IPTypeMobile},  // China Mobile 4G pool
		{"117.136.200.3", geo.IPTypeMobile}, // China Mobile GPRS/4G
		{"120.229.5.5", geo.IPTypeMobile},   // China Mobile Guangdong
		{"183.192.1.1", geo.IPTypeMobile},   // China Mobile
		{"2409:8962::1", geo.IPTypeMobile},  // China Mobile IPv6 cellular
		{"47.92.10.20", geo.IPTypeIDC},      // Alibaba Cloud
		{"119.29.29.29", geo.IPTypeIDC},     // Tencent Cloud (DNSPod)
		{"114.114.114.114", geo.IPTypeIDC},  // hosted on Zenlayer
		{"89.187.160.1", geo.IPTypeIDC},     // Datacamp Tokyo (commercial VPN exits)
		{"43.242.196.1", geo.IPTypeIDC},     // China Telecom Yangzhou IDC (AS137697)
		{"106.120.150.1", geo.IPTypeIDC},    // China Telecom national IDC network (AS23724)
		{"193.176.84.1", geo.IPTypeIDC},     // M247 Bucharest (commercial VPN exits)
		{"123.112.10.20", ""},               // China Unicom Beijing broadband
		{"180.160.1.1", ""},                 // China Telecom Shanghai broadband
	}
	for _, c := range cases {
		g := l.Lookup(netip.MustParseAddr(c.ip))
		t.Logf("%-16s AS%-6d %-45q %s", c.ip, g.ASN, l.ASOrg(g.ASN), g.IPType)
		if g.ASN == 0 {
			t.Errorf("%s: no AS", c.ip)
		}
		if g.IPType != c.typ {
			t.Errorf("%s: ip type %q, want %q", c.ip, g.IPType, c.typ)
		}
	}
	// Every AS of the shipped lists is in the data under the organisation the lists name.
	for _, asn := range append(geo.DefaultMobileList().ASNs(), geo.DefaultCloudList().ASNs()...) {
		if tab.Org(asn) == "" {
			t.Errorf("AS%d of the shipped lists is not in the ASN data", asn)
		}
	}
}
