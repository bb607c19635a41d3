// Package geotest writes small MaxMind-format databases for tests, with the
// record layout of GeoLite2-City, GeoLite2-Country and GeoLite2-ASN, using
// github.com/maxmind/mmdbwriter. Any package's tests can build a geo.Locator
// from them:
//
//	city, asn := geotest.Fixture(t)
//	loc, err := geo.Open(city, asn)
//
// The networks in CityEntries and ASNEntries are real allocations of the named
// operators, but the records are written for tests and are not authoritative
// geolocation data.
package geotest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// CityEntry is one network of a City (or Country) fixture. Empty fields and a
// zero Lat/Lon pair are left out of the record, as in GeoLite2 records that
// only know the country.
type CityEntry struct {
	Network  string // CIDR
	Country  string // ISO 3166-1 alpha-2
	Province string // first subdivision, English
	City     string // English
	Lat, Lon float64
}

// ASNEntry is one network of an ASN fixture.
type ASNEntry struct {
	Network string // CIDR
	ASN     uint32
	Org     string
}

// Addresses inside the standard fixture networks.
const (
	BeijingMobileIP   = "39.156.66.10"    // CN / Beijing / Beijing, AS9808 China Mobile
	BeijingMobileIPv6 = "2409:8c00::1"    // CN / Beijing / Beijing, AS9808 China Mobile
	BeijingFixedIP    = "123.112.10.20"   // CN / Beijing / Beijing, AS4808 China Unicom Beijing (fixed broadband)
	GuangdongIP       = "120.196.10.20"   // CN / Guangdong / Guangzhou, AS56040 China Mobile Guangdong
	ShanghaiIP        = "101.226.4.6"     // CN / Shanghai / Shanghai, AS4812 China Telecom
	USIP              = "8.8.8.8"         // US / California / Mountain View, AS15169 Google
	DatacenterIP      = "47.92.100.1"     // CN / Hebei / Zhangjiakou, AS37963 Alibaba Cloud
	CountryOnlyIP     = "36.128.0.1"      // CN, no subdivision or city (country centroid)
	UnknownIP         = "203.119.25.1"    // in no fixture network
	UnknownIPv6       = "2001:4860::8888" // in no fixture network
)

// Coordinates the standard fixture uses.
const (
	BeijingLat, BeijingLon         = 39.9042, 116.4074
	GuangzhouLat, GuangzhouLon     = 23.1291, 113.2644
	ShanghaiLat, ShanghaiLon       = 31.2304, 121.4737
	ZhangjiakouLat, ZhangjiakouLon = 40.7675, 114.8863
	CNCentroidLat, CNCentroidLon   = 34.7732, 113.722
)

// Datacenter fixture: the ASN and its network.
const (
	DatacenterASN     = 37963
	DatacenterNetwork = "47.92.0.0/14"
)

// CityEntries is the standard City fixture: a Beijing China Mobile range (v4
// and v6), a Beijing fixed-broadband range, a Guangdong range, a Shanghai range, a US range, a datacenter range
// and a country-only Chinese range.
func CityEntries() []CityEntry {
	return []CityEntry{
		{"39.156.0.0/16", "CN", "Beijing", "Beijing", BeijingLat, BeijingLon},
		{"2409:8c00::/28", "CN", "Beijing", "Beijing", BeijingLat, BeijingLon},
		{"123.112.0.0/16", "CN", "Beijing", "Beijing", BeijingLat, BeijingLon},
		{"120.196.0.0/16", "CN", "Guangdong", "Guangzhou", GuangzhouLat, GuangzhouLon},
		{"101.226.0.0/16", "CN", "Shanghai", "Shanghai", ShanghaiLat, ShanghaiLon},
		{"8.8.8.0/24", "US", "California", "Mountain View", 37.386, -122.0838},
		{DatacenterNetwork, "CN", "Hebei", "Zhangjiakou", ZhangjiakouLat, ZhangjiakouLon},
		{"36.128.0.0/10", "CN", "", "", CNCentroidLat, CNCentroidLon},
	}
}

// ASNEntries is the standard ASN fixture, covering the CityEntries networks.
func ASNEntries() []ASNEntry {
	return []ASNEntry{
		{"39.156.0.0/16", 9808, "China Mobile Communications Group Co., Ltd."},
		{"2409:8c00::/28", 9808, "China Mobile Communications Group Co., Ltd."},
		{"123.112.0.0/16", 4808, "China Unicom Beijing Province Network"},
		{"120.196.0.0/16", 56040, "China Mobile communications corporation"},
		{"101.226.0.0/16", 4812, "China Telecom (Group)"},
		{"8.8.8.0/24", 15169, "GOOGLE"},
		{DatacenterNetwork, DatacenterASN, "Hangzhou Alibaba Advertising Co.,Ltd."},
		{"36.128.0.0/10", 9808, "China Mobile Communications Group Co., Ltd."},
	}
}

// Fixture writes the standard City and ASN fixtures into a temporary
// directory of t and returns their paths.
func Fixture(t testing.TB) (cityPath, asnPath string) {
	t.Helper()
	dir := t.TempDir()
	cityPath = filepath.Join(dir, "GeoLite2-City.mmdb")
	asnPath = filepath.Join(dir, "GeoLite2-ASN.mmdb")
	WriteCity(t, cityPath, CityEntries())
	WriteASN(t, asnPath, ASNEntries())
	return cityPath, asnPath
}

// WriteCity writes a GeoLite2-City-shaped database (database_type
// "GeoLite2-City") holding entries to path. Records carry country.iso_code,
// subdivisions[0].names.en, city.names.en and location.latitude/longitude
// (plus a zh-CN name and a few of the other GeoLite2 keys, which readers must
// skip). It fails t on any error.
func WriteCity(t testing.TB, path string, entries []CityEntry) {
	t.Helper()
	write(t, path, "GeoLite2-City", "GeoLite2 City fixture", func(tree *mmdbwriter.Tree) {
		for _, e := range entries {
			insert(t, tree, e.Network, cityRecord(e))
		}
	})
}

// WriteCountry writes a GeoLite2-Country-shaped database (database_type
// "GeoLite2-Country"): only the countries of entries are kept.
func WriteCountry(t testing.TB, path string, entries []CityEntry) {
	t.Helper()
	write(t, path, "GeoLite2-Country", "GeoLite2 Country fixture", func(tree *mmdbwriter.Tree) {
		for _, e := range entries {
			insert(t, tree, e.Network, mmdbtype.Map{
				"country":            country(e.Country),
				"registered_country": country(e.Country),
			})
		}
	})
}

// WriteASN writes a GeoLite2-ASN-shaped database (database_type
// "GeoLite2-ASN"): records carry autonomous_system_number and
// autonomous_system_organization.
func WriteASN(t testing.TB, path string, entries []ASNEntry) {
	t.Helper()
	write(t, path, "GeoLite2-ASN", "GeoLite2 ASN fixture", func(tree *mmdbwriter.Tree) {
		for _, e := range entries {
			insert(t, tree, e.Network, mmdbtype.Map{
				"autonomous_system_number":       mmdbtype.Uint32(e.ASN),
				"autonomous_system_organization": mmdbtype.String(e.Org),
			})
		}
	})
}

func write(t testing.TB, path, dbType, desc string, fill func(*mmdbwriter.Tree)) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		Description:  map[string]string{"en": desc},
		Languages:    []string{"en", "zh-CN"},
		RecordSize:   28,
		IPVersion:    6,
	})
	if err != nil {
		t.Fatalf("geotest: new %s tree: %v", dbType, err)
	}
	fill(tree)
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		t.Fatalf("geotest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geotest: close %s: %v", path, err)
	}
}

func insert(t testing.TB, tree *mmdbwriter.Tree, cidr string, rec mmdbtype.Map) {
	t.Helper()
	_, network, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatalf("geotest: bad network %q: %v", cidr, err)
	}
	if err := tree.Insert(network, rec); err != nil {
		t.Fatalf("geotest: insert %s: %v", cidr, err)
	}
}

func country(iso string) mmdbtype.Map {
	return mmdbtype.Map{
		"iso_code": mmdbtype.String(iso),
		"names":    mmdbtype.Map{"en": mmdbtype.String(countryNames[iso])},
	}
}

var countryNames = map[string]string{"CN": "China", "US": "United States"}

// zhNames gives the fixture records a second language, as GeoLite2 has.
var zhNames = map[string]string{
	"Beijing": "北京市", "Guangdong": "广东", "Guangzhou": "广州市", "Shanghai": "上海",
	"Hebei": "河北省", "Zhangjiakou": "张家口市", "California": "加利福尼亚州", "Mountain View": "芒廷维尤",
}

func names(en string) mmdbtype.Map {
	m := mmdbtype.Map{"en": mmdbtype.String(en)}
	if zh, ok := zhNames[en]; ok {
		m["zh-CN"] = mmdbtype.String(zh)
	}
	return m
}

func cityRecord(e CityEntry) mmdbtype.Map {
	rec := mmdbtype.Map{
		"continent":          mmdbtype.Map{"code": mmdbtype.String(continent(e.Country))},
		"country":            country(e.Country),
		"registered_country": country(e.Country),
	}
	if e.Province != "" {
		rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": names(e.Province)}}
	}
	if e.City != "" {
		rec["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(1), "names": names(e.City)}
	}
	if e.Lat != 0 || e.Lon != 0 {
		rec["location"] = mmdbtype.Map{
			"accuracy_radius": mmdbtype.Uint16(accuracy(e)),
			"latitude":        mmdbtype.Float64(e.Lat),
			"longitude":       mmdbtype.Float64(e.Lon),
		}
	}
	return rec
}

func continent(iso string) string {
	if iso == "US" {
		return "NA"
	}
	return "AS"
}

func accuracy(e CityEntry) uint16 {
	if e.City == "" {
		return 1000
	}
	return 50
}
