package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/riskflow/riskflow/schemas"
)

// IPTypeIDC is Geo.IPType for an address in the datacenter/proxy list (or of a cloud AS).
const IPTypeIDC = "idc"

// IPTypeMobile is Geo.IPType for an address of a mobile carrier network (see DefaultMobileList):
// its location is low confidence and does not drive travel.
const IPTypeMobile = "mobile"

// DefaultCacheSize is how many decoded records a Locator keeps per database
// unless WithCacheSize says otherwise.
const DefaultCacheSize = 1 << 16

// Locator answers geo lookups from in-memory MaxMind databases. It is
// immutable after Open and safe for concurrent use. There is nothing to close:
// to reload, Open a new Locator and swap the pointer (e.g. atomic.Pointer).
type Locator struct {
	city      *maxminddb.Reader
	cityLevel bool // City database (else Country: no province, city, location)
	cityInfo  DBInfo
	asn       *maxminddb.Reader // nil without an ASN database
	asnInfo   DBInfo
	idc       *CIDRSet
	cloud     *NetList  // cloud ASNs (and CIDRs): idc as well
	mobile    *NetList  // mobile carrier networks
	asnTable  *ASNTable // CSV ASN data (@ip-location-db/asn); preferred over an ASN mmdb

	places offsetCache[place]
	asns   offsetCache[uint32]
	errs   atomic.Uint64
}

// DBInfo describes one opened database.
type DBInfo struct {
	Path      string
	Type      string    // metadata database_type, e.g. "GeoLite2-City"
	BuildTime time.Time // metadata build_epoch
}

// Info describes what a Locator was opened with.
type Info struct {
	City        DBInfo
	ASN         DBInfo // zero without an ASN database
	IDCNetworks int    // networks in the IDC list (0: none)
	// ASNFiles names the CSV ASN files loaded (WithASNTable), comma-separated; ASNRanges counts
	// their IPv4 and IPv6 ranges.
	ASNFiles  string
	ASNRanges [2]int
	CloudASNs int // AS numbers classified idc (WithCloudList)
	// MobileASNs and MobileNetworks count the mobile list's entries (WithMobileList).
	MobileASNs, MobileNetworks int
}

// Option configures Open.
type Option func(*options)

type options struct {
	idc       *CIDRSet
	cloud     *NetList
	mobile    *NetList
	asnTable  *ASNTable
	cacheSize int
}

// WithCloudList adds cloud and hosting networks, usually by AS number (DefaultCloudList):
// addresses in them get IPType "idc" too. AS entries need ASN data (WithASNTable or an ASN
// database).
func WithCloudList(l *NetList) Option { return func(o *options) { o.cloud = l } }

// WithMobileList sets the mobile carrier networks (DefaultMobileList): addresses in them get
// IPType "mobile" unless they are "idc". AS entries need ASN data; CIDR entries do not.
func WithMobileList(l *NetList) Option { return func(o *options) { o.mobile = l } }

// WithASNTable sets CSV ASN data (LoadASNDir): Geo.ASN and ASOrg come from it, and it takes
// precedence over an ASN database given to Open.
func WithASNTable(t *ASNTable) Option { return func(o *options) { o.asnTable = t } }

// WithIDCList sets the datacenter/proxy networks: addresses inside them get
// IPType "idc". Without it IPType is never "idc". See DefaultIDCList and
// LoadCIDRFile.
func WithIDCList(s *CIDRSet) Option { return func(o *options) { o.idc = s } }

// WithCacheSize bounds the decoded-record cache of each database (default
// DefaultCacheSize records; n <= 0 disables caching, so every lookup decodes).
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// Open loads the databases into memory. With cityPath "" and an IDC list (and no
// asnPath), it returns a Locator that only classifies datacenter addresses. Otherwise cityPath may hold a
// City database (GeoLite2-City, GeoIP2-City, ...) or a Country database
// (GeoLite2-Country, ...), told apart by the metadata database_type; with a
// Country database Province, City, Lat and Lon stay empty. asnPath is optional
// ("" for none) and must hold an ASN-capable database (GeoLite2-ASN,
// GeoIP2-ISP, ...). The GeoLite2-City file takes about 60 MB of memory.
func Open(cityPath, asnPath string, opts ...Option) (*Locator, error) {
	o := options{cacheSize: DefaultCacheSize}
	for _, opt := range opts {
		opt(&o)
	}
	if cityPath == "" {
		if (o.idc == nil && o.asnTable == nil && o.mobile == nil && o.cloud == nil) || asnPath != "" {
			return nil, errors.New("geo: no city database path (use a nil *Locator to run without geo)")
		}
		// No databases: a locator that only knows the network lists (and the ASN table).
		return &Locator{idc: o.idc, cloud: o.cloud, mobile: o.mobile, asnTable: o.asnTable}, nil
	}
	l := &Locator{idc: o.idc, cloud: o.cloud, mobile: o.mobile, asnTable: o.asnTable}
	var err error
	var ref *geoip2.Reader
	if l.city, ref, l.cityInfo, err = load(cityPath); err != nil {
		return nil, err
	}
	// geoip2 knows which database types carry City and Country records.
	if _, err := ref.City(netip.IPv4Unspecified()); isInvalidMethod(err) {
		return nil, fmt.Errorf("geo: %s is a %q database, not a City or Country database", cityPath, l.cityInfo.Type)
	}
	l.cityLevel = !strings.Contains(l.cityInfo.Type, "Country")
	if asnPath != "" {
		if l.asn, ref, l.asnInfo, err = load(asnPath); err != nil {
			return nil, err
		}
		if _, err := ref.ASN(netip.IPv4Unspecified()); isInvalidMethod(err) {
			return nil, fmt.Errorf("geo: %s is a %q database, not an ASN database", asnPath, l.asnInfo.Type)
		}
	}
	l.places.init(o.cacheSize)
	l.asns.init(o.cacheSize)
	return l, nil
}

// load reads a database once and opens it twice over the same bytes: with
// geoip2 (type checks) and with maxminddb (the lookup path).
func load(path string) (*maxminddb.Reader, *geoip2.Reader, DBInfo, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, DBInfo{}, fmt.Errorf("geo: %w", err)
	}
	// v2 of both: v1 followed a map key's pointer to a pointer without end, and a key of a damaged
	// database that points to itself overflowed the stack (the process ended, at Open or at a
	// lookup); v2 refuses a pointer to a pointer.
	ref, err := geoip2.OpenBytes(buf)
	if err != nil {
		return nil, nil, DBInfo{}, fmt.Errorf("geo: %s: %w", path, err)
	}
	r, err := maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, nil, DBInfo{}, fmt.Errorf("geo: %s: %w", path, err)
	}
	info := DBInfo{
		Path:      path,
		Type:      r.Metadata.DatabaseType,
		BuildTime: time.Unix(int64(r.Metadata.BuildEpoch), 0).UTC(),
	}
	return r, ref, info, nil
}

func isInvalidMethod(err error) bool {
	var e geoip2.InvalidMethodError
	return errors.As(err, &e)
}

// place is what riskflow keeps of a City/Country record.
type place struct {
	country, province, city string
	lat, lon                float64
}

// cityRecord decodes the GeoLite2-City fields riskflow uses; the decoder skips
// everything else (other languages, geoname ids, postal, traits, ...).
type cityRecord struct {
	Country struct {
		IsoCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		Names struct {
			En string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	City struct {
		Names struct {
			En string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

type countryRecord struct {
	Country struct {
		IsoCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
}

type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
}

// Lookup returns what the databases know about ip; fields stay empty when
// unknown. Province is the
// English name of the first (largest) subdivision, City the English city name.
// A lookup error (a corrupt database) leaves the affected fields empty and is
// counted in LookupErrors. A nil Locator returns an empty Geo. An address embedding an IPv4
// address (ClientAddr) is looked up as that IPv4 address.
func (l *Locator) Lookup(ip netip.Addr) schemas.Geo {
	var g schemas.Geo
	if l == nil || !ip.IsValid() {
		return g
	}
	ip = ClientAddr(ip)

	if l.city != nil {
		if p, ok := l.lookupPlace(ip); ok {
			g.Country, g.Province, g.City = p.country, p.province, p.city
			g.Lat, g.Lon = p.lat, p.lon
		}
	}
	switch {
	case l.asnTable != nil:
		g.ASN, _ = l.asnTable.Lookup(ip)
	case l.asn != nil:
		g.ASN = l.lookupASN(ip)
	}
	// GeoLite2 carries no connection type: "mobile" comes from the mobile list (carrier ASes and
	// cellular pools), "idc" from the datacenter list and the cloud ASes; idc wins.
	switch {
	case l.idc.Contains(ip) || l.cloud.Match(ip, g.ASN):
		g.IPType = IPTypeIDC
	case l.mobile.Match(ip, g.ASN):
		g.IPType = IPTypeMobile
	}
	return g
}

// Confident reports whether g's location is precise enough to measure travel: a city with
// coordinates, on a network that is not a mobile carrier's (whose pools geolocate poorly).
func Confident(g *schemas.Geo) bool {
	return g.City != "" && (g.Lat != 0 || g.Lon != 0) && g.IPType != IPTypeMobile
}

// ASOrg returns the organisation of an AS number from the CSV ASN data ("" when unknown or
// without it; an ASN database carries no organisation riskflow decodes).
func (l *Locator) ASOrg(asn uint32) string {
	if l == nil {
		return ""
	}
	return l.asnTable.Org(asn)
}

// HasASN reports whether the locator has ASN data (CSV table or database).
func (l *Locator) HasASN() bool { return l != nil && (l.asnTable != nil || l.asn != nil) }

func (l *Locator) lookupPlace(ip netip.Addr) (place, bool) {
	off, ok := l.offset(l.city, ip)
	if !ok {
		return place{}, false
	}
	if p, ok := l.places.get(off); ok {
		return p, true
	}
	var p place
	if l.cityLevel {
		var rec cityRecord
		if err := l.city.LookupOffset(off).Decode(&rec); err != nil {
			l.errs.Add(1)
			return place{}, false
		}
		p = place{country: rec.Country.IsoCode, city: rec.City.Names.En,
			lat: rec.Location.Latitude, lon: rec.Location.Longitude}
		if len(rec.Subdivisions) > 0 {
			p.province = rec.Subdivisions[0].Names.En
		}
	} else {
		var rec countryRecord
		if err := l.city.LookupOffset(off).Decode(&rec); err != nil {
			l.errs.Add(1)
			return place{}, false
		}
		p.country = rec.Country.IsoCode
	}
	l.places.put(off, p)
	return p, true
}

func (l *Locator) lookupASN(ip netip.Addr) uint32 {
	off, ok := l.offset(l.asn, ip)
	if !ok {
		return 0
	}
	if n, ok := l.asns.get(off); ok {
		return n
	}
	var rec asnRecord
	if err := l.asn.LookupOffset(off).Decode(&rec); err != nil {
		l.errs.Add(1)
		return 0
	}
	l.asns.put(off, rec.Number)
	return rec.Number
}

// offset finds ip's record in r; false when there is none.
func (l *Locator) offset(r *maxminddb.Reader, ip netip.Addr) (uintptr, bool) {
	if ip.Is6() && r.Metadata.IPVersion == 4 {
		return 0, false // IPv6 address, IPv4-only database
	}
	res := r.Lookup(ip)
	if err := res.Err(); err != nil {
		l.errs.Add(1)
		return 0, false
	}
	return res.Offset(), res.Found()
}

// LookupErrors counts lookups that failed on a database error since Open.
func (l *Locator) LookupErrors() uint64 {
	if l == nil {
		return 0
	}
	return l.errs.Load()
}

// Info describes the opened databases; zero for a nil Locator.
func (l *Locator) Info() Info {
	if l == nil {
		return Info{}
	}
	v4, v6 := l.asnTable.Len()
	return Info{City: l.cityInfo, ASN: l.asnInfo, IDCNetworks: l.idc.Len(),
		ASNFiles: strings.Join(l.asnTable.Files(), ","), ASNRanges: [2]int{v4, v6},
		CloudASNs: len(l.cloud.ASNs()), MobileASNs: len(l.mobile.ASNs()), MobileNetworks: l.mobile.Networks()}
}
