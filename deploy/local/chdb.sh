#!/usr/bin/env bash
# Current ClickHouse, embedded: chDB (PyPI `chdb`, which carries a whole ClickHouse release) in a
# virtualenv under the cache directory. CI runs every SQL statement riskflow ships or sends on it
# as well as on the 18.16 server (deploy/clickhouse/bothversions).
#   chdb.sh install   create the virtualenv and pip install chdb==$CHDB_VERSION if missing
#   chdb.sh python    install if needed, print the virtualenv's python
#   chdb.sh version   install if needed, print the ClickHouse version chDB embeds
#   chdb.sh run ARGS  install if needed, run deploy/clickhouse/chdb_runner.py ARGS on it
# Needs python3 (3.9 or newer) with the venv module, and PyPI.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CHDB_VERSION="${CHDB_VERSION:-4.4.0}"
venv="${RISKFLOW_CHDB_VENV:-$RISKFLOW_CACHE_DIR/chdb-venv}"
py="$venv/bin/python"
runner="$LOCAL_ROOT/deploy/clickhouse/chdb_runner.py"

installed() {
  [[ -x $py ]] && [[ $("$py" -c 'import importlib.metadata as m; print(m.version("chdb"))' 2>/dev/null) == "$CHDB_VERSION" ]]
}

install() {
  if installed; then return 0; fi
  local python
  python=$(command -v python3 || true)
  [[ -n $python ]] || die "python3 is missing (chDB needs Python 3.9 or newer): apt-get install python3 python3-venv"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "$("$python" --version 2>&1) is too old for chDB; need 3.9 or newer"
  mkdir -p "$RISKFLOW_CACHE_DIR"
  local t0=$SECONDS
  if [[ ! -x $py ]]; then
    log "creating a virtualenv for chDB in $venv"
    if ! "$python" -m venv "$venv" >"$RISKFLOW_CACHE_DIR/chdb-pip.log" 2>&1; then
      if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        log "python3 has no venv module; installing python3-venv from Debian"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null 2>&1 || true
        apt-get install -y -q python3-venv >>"$RISKFLOW_CACHE_DIR/chdb-pip.log" 2>&1 || die "apt-get install python3-venv failed (see $RISKFLOW_CACHE_DIR/chdb-pip.log)"
        rm -rf "$venv"
        "$python" -m venv "$venv" >>"$RISKFLOW_CACHE_DIR/chdb-pip.log" 2>&1 || die "python3 -m venv failed (see $RISKFLOW_CACHE_DIR/chdb-pip.log)"
      else
        die "python3 -m venv failed (see $RISKFLOW_CACHE_DIR/chdb-pip.log); install the venv module"
      fi
    fi
  fi
  log "installing chdb==$CHDB_VERSION from PyPI"
  "$py" -m pip install --disable-pip-version-check -q "chdb==$CHDB_VERSION" >>"$RISKFLOW_CACHE_DIR/chdb-pip.log" 2>&1 \
    || { tail -n 20 "$RISKFLOW_CACHE_DIR/chdb-pip.log" >&2; die "pip install chdb==$CHDB_VERSION failed (see $RISKFLOW_CACHE_DIR/chdb-pip.log)"; }
  installed || die "chdb==$CHDB_VERSION installed but not importable by $py"
  log "chdb $CHDB_VERSION installed in $((SECONDS - t0)) s"
}

case "${1:-}" in
  install) install ;;
  python) install; echo "$py" ;;
  version) install; "$py" "$runner" --version ;;
  run) shift; install; exec "$py" "$runner" "$@" ;;
  *) echo "usage: $0 install|python|version|run ARGS" >&2; exit 2 ;;
esac
