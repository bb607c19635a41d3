package geo_test

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oschwald/geoip2-golang"

	"github.com/riskflow/riskflow/schemas"
	"github.com/riskflow/riskflow/scoring/geo"
	"github.com/riskflow/riskflow/scoring/geo/geotest"
)

func openFixture(t testing.TB, opts ...geo.Option) *geo.Locator {
	t.Helper()
	city, asn := geotest.Fixture(t)
	l, err := geo.Open(city, asn, append([]geo.Option{geo.WithIDCList(geo.DefaultIDCList())}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

var fixtureWant = []struct {
	ip   string
	want schemas.Geo
}{
	{geotest.BeijingMobileIP, schemas.Geo{Country: "CN", Province: "Beijing", City: "Beijing",
		Lat: geotest.BeijingLat, Lon: geotest.BeijingLon, ASN: 9808}},
	{geotest.BeijingMobileIPv6, schemas.Geo{Country: "CN", Province: "Beijing", City: "Beijing",
		Lat: geotest.BeijingLat, Lon: geotest.BeijingLon, ASN: 9808}},
	{"::ffff:" + geotest.BeijingMobileIP, schemas.Geo{Country: "CN", Province: "Beijing", City: "Beijing",
		Lat: geotest.BeijingLat, Lon: geotest.BeijingLon, ASN: 9808}},
	{geotest.GuangdongIP, schemas.Geo{Country: "CN", Province: "Guangdong", City: "Guangzhou",
		Lat: geotest.GuangzhouLat, Lon: geotest.GuangzhouLon, ASN: 56040}},
	{geotest.ShanghaiIP, schemas.Geo{Country: "CN", Province: "Shanghai", City: "Shanghai",
		Lat: geotest.ShanghaiLat, Lon: geotest.ShanghaiLon, ASN: 4812}},
	{geotest.USIP, schemas.Geo{Country: "US", Province: "California", City: "Mountain View",
		Lat: 37.386, Lon: -122.0838, ASN: 15169}},
	{geotest.DatacenterIP, schemas.Geo{Country: "CN", Province: "Hebei", City: "Zhangjiakou",
		Lat: geotest.ZhangjiakouLat, Lon: geotest.ZhangjiakouLon, ASN: geotest.DatacenterASN, IPType: "idc"}},
	{geotest.CountryOnlyIP, schemas.Geo{Country: "CN",
		Lat: geotest.CNCentroidLat, Lon: geotest.CNCentroidLon, ASN: 9808}},
	{geotest.UnknownIP, schemas.Geo{}},
	{geotest.UnknownIPv6, schemas.Geo{}},
	// In the default IDC list (Amazon AWS) but not in the fixture databases.
	{"3.5.140.2", schemas.Geo{IPType: "idc"}},
	{"2600:1f18::1", schemas.Geo{IPType: "idc"}},
}

func TestLookupFixture(t *testing.T) {
	for _, cache := range []int{geo.DefaultCacheSize, 0} {
		l := openFixture(t, geo.WithCacheSize(cache))
		for round := 0; round < 2; round++ { // second round hits the cache
			for _, tc := range fixtureWant {
				if got := l.Lookup(netip.MustParseAddr(tc.ip)); got != tc.want {
					t.Errorf("cache %d round %d: Lookup(%s)\n got %+v\nwant %+v", cache, round, tc.ip, got, tc.want)
				}
			}
		}
		if n := l.LookupErrors(); n != 0 {
			t.Errorf("LookupErrors = %d", n)
		}
	}
}

// The fast decoder must agree with geoip2-golang's own City and ASN readers.
func TestLookupMatchesGeoIP2(t *testing.T) {
	city, asn := geotest.Fixture(t)
	l, err := geo.Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstGeoIP2(t, l, city, asn, fixtureIPs())
}

func fixtureIPs() []string {
	var ips []string
	for _, tc := range fixtureWant {
		ips = append(ips, tc.ip)
	}
	return ips
}

func checkAgainstGeoIP2(t *testing.T, l *geo.Locator, cityPath, asnPath string, ips []string) {
	t.Helper()
	cr, err := geoip2.Open(cityPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	var ar *geoip2.Reader
	if asnPath != "" {
		if ar, err = geoip2.Open(asnPath); err != nil {
			t.Fatal(err)
		}
		defer ar.Close()
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		rec, err := cr.City(ip)
		if err != nil {
			t.Fatalf("geoip2 City(%s): %v", s, err)
		}
		want := schemas.Geo{Country: rec.Country.IsoCode, City: rec.City.Names["en"],
			Lat: rec.Location.Latitude, Lon: rec.Location.Longitude}
		if len(rec.Subdivisions) > 0 {
			want.Province = rec.Subdivisions[0].Names["en"]
		}
		if ar != nil {
			a, err := ar.ASN(ip)
			if err != nil {
				t.Fatalf("geoip2 ASN(%s): %v", s, err)
			}
			want.ASN = uint32(a.AutonomousSystemNumber)
		}
		got := l.Lookup(netip.MustParseAddr(s))
		got.IPType = ""
		if got != want {
			t.Errorf("%s: Lookup %+v, geoip2 %+v", s, got, want)
		}
	}
}

func TestCountryDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
	geotest.WriteCountry(t, path, geotest.CityEntries())
	l, err := geo.Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Info().City.Type; got != "GeoLite2-Country" {
		t.Errorf("Info().City.Type = %q", got)
	}
	for ip, want := range map[string]schemas.Geo{
		geotest.BeijingMobileIP:   {Country: "CN"},
		geotest.BeijingMobileIPv6: {Country: "CN"},
		geotest.USIP:              {Country: "US"},
		geotest.UnknownIP:         {},
	} {
		if got := l.Lookup(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Lookup(%s) = %+v, want %+v", ip, got, want)
		}
	}
	// geoip2's Country() reads the same database.
	r, err := geoip2.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Country(net.ParseIP(geotest.GuangdongIP))
	if err != nil || c.Country.IsoCode != l.Lookup(netip.MustParseAddr(geotest.GuangdongIP)).Country {
		t.Errorf("geoip2 Country = %+v, %v", c.Country, err)
	}
}

func TestNilLocator(t *testing.T) {
	var l *geo.Locator
	if got := l.Lookup(netip.MustParseAddr(geotest.BeijingMobileIP)); got != (schemas.Geo{}) {
		t.Errorf("nil Lookup = %+v", got)
	}
	if got := l.Lookup(netip.MustParseAddr(geotest.DatacenterIP)); got != (schemas.Geo{}) {
		t.Errorf("nil Lookup = %+v", got)
	}
	if l.LookupErrors() != 0 || l.Info() != (geo.Info{}) {
		t.Error("nil Locator reports state")
	}
}

func TestLookupInvalidAddr(t *testing.T) {
	l := openFixture(t)
	if got := l.Lookup(netip.Addr{}); got != (schemas.Geo{}) {
		t.Errorf("Lookup(zero Addr) = %+v", got)
	}
	// A zone does not change the answer.
	if got := l.Lookup(netip.MustParseAddr(geotest.BeijingMobileIPv6 + "%eth0")); got.City != "Beijing" {
		t.Errorf("Lookup(with zone) = %+v", got)
	}
}

func TestWithoutASNOrIDC(t *testing.T) {
	city, _ := geotest.Fixture(t)
	l, err := geo.Open(city, "")
	if err != nil {
		t.Fatal(err)
	}
	got := l.Lookup(netip.MustParseAddr(geotest.DatacenterIP))
	if got.ASN != 0 || got.IPType != "" || got.City != "Zhangjiakou" {
		t.Errorf("Lookup = %+v, want city data only", got)
	}
	info := l.Info()
	if info.City.Type != "GeoLite2-City" || info.City.Path != city || info.City.BuildTime.IsZero() ||
		info.ASN != (geo.DBInfo{}) || info.IDCNetworks != 0 {
		t.Errorf("Info = %+v", info)
	}
}

func TestOpenErrors(t *testing.T) {
	city, asn := geotest.Fixture(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.mmdb")
	if err := os.WriteFile(junk, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.mmdb")

	for _, tc := range []struct {
		name, city, asn, want string
	}{
		{"no city", "", asn, "no city database"},
		{"missing city", missing, "", "no such file"},
		{"missing asn", city, missing, "no such file"},
		{"junk city", junk, "", "junk.mmdb"},
		{"asn as city", asn, "", `"GeoLite2-ASN" database, not a City or Country`},
		{"city as asn", city, city, `"GeoLite2-City" database, not an ASN`},
	} {
		l, err := geo.Open(tc.city, tc.asn)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, %v; want error containing %q", tc.name, l, err, tc.want)
		}
		if l != nil {
			t.Errorf("%s: non-nil Locator with error", tc.name)
		}
	}
	if _, err := geo.Open(missing, ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestLookupConcurrent(t *testing.T) {
	l := openFixture(t, geo.WithCacheSize(4)) // tiny cache: constant evictions
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				tc := fixtureWant[(g+i)%len(fixtureWant)]
				if got := l.Lookup(netip.MustParseAddr(tc.ip)); got != tc.want {
					t.Errorf("Lookup(%s) = %+v", tc.ip, got)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A lookup whose records are cached must not allocate.
func TestLookupCachedDoesNotAllocate(t *testing.T) {
	l := openFixture(t)
	ips := benchIPs()
	for _, ip := range ips {
		l.Lookup(ip)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		l.Lookup(ips[i%len(ips)])
		i++
	})
	if allocs != 0 {
		t.Errorf("cached Lookup allocates %.1f times per call", allocs)
	}
}

func benchIPs() []netip.Addr {
	var ips []netip.Addr
	for _, tc := range fixtureWant {
		ips = append(ips, netip.MustParseAddr(tc.ip))
	}
	return ips
}

func BenchmarkLookup(b *testing.B) {
	ips := benchIPs()
	b.Run("cached", func(b *testing.B) {
		l := openFixture(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			l.Lookup(ips[i%len(ips)])
		}
	})
	b.Run("uncached", func(b *testing.B) {
		l := openFixture(b, geo.WithCacheSize(0))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			l.Lookup(ips[i%len(ips)])
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := openFixture(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				l.Lookup(ips[i%len(ips)])
			}
		})
	})
	// For comparison: geoip2-golang's City(), which decodes the whole record.
	b.Run("geoip2-City", func(b *testing.B) {
		city, _ := geotest.Fixture(b)
		r, err := geoip2.Open(city)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		nips := make([]net.IP, len(ips))
		for i, ip := range ips {
			nips[i] = net.IP(ip.AsSlice())
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := r.City(nips[i%len(nips)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nil", func(b *testing.B) {
		var l *geo.Locator
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			l.Lookup(ips[i%len(ips)])
		}
	})
}

// A damaged database whose map key is a pointer to itself is refused, or its lookups fail: the
// maxminddb v1 decoder followed the pointer without end, and the stack overflow ended the
// process (no error, no recover) at Open (a key of the metadata) or at a lookup (a key of a
// record) — found by a mutation harness over FuzzOpenDamagedDatabase's seeds (seeds added).
func TestOpenRefusesAKeyPointingToItself(t *testing.T) {
	city, _ := geotest.Fixture(t)
	b, err := os.ReadFile(city)
	if err != nil {
		t.Fatal(err)
	}
	// A metadata section after the last marker: a map of one entry whose key is an 11-bit
	// pointer (0x20, 0x01) to offset 1, itself.
	b = append(b, "\xab\xcd\xefMaxMind.com\xe1\x20\x01"...)
	p := filepath.Join(t.TempDir(), "self.mmdb")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := geo.Open(p, "", geo.WithCacheSize(0)); err == nil || !strings.Contains(err.Error(), "pointer") {
		t.Errorf("Open: %v, want the pointer to a pointer named", err)
	}
}
