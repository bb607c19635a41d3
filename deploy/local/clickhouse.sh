#!/usr/bin/env bash
# ClickHouse server on 127.0.0.1 with its own data directory (never the system one).
#   clickhouse.sh install   apt-get install clickhouse-server if it is missing
#   clickhouse.sh start     install if needed, start, wait until it answers a query
#   clickhouse.sh stop      stop cleanly
#   clickhouse.sh status    exit 0 if running
#   clickhouse.sh reset     stop and delete the data directory
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

dir="$RISKFLOW_LOCAL_DIR/clickhouse"
pidfile="$dir/clickhouse.pid"

server_bin() { command -v clickhouse-server || { [[ -x /usr/bin/clickhouse ]] && echo "/usr/bin/clickhouse server"; } || true; }

install() {
  if [[ -n $(server_bin) ]]; then return 0; fi
  command -v apt-get >/dev/null || die "clickhouse-server is missing and apt-get is not available: install ClickHouse by hand"
  [[ $(id -u) == 0 ]] || die "clickhouse-server is missing: run 'sudo apt-get install clickhouse-server' (needs root)"
  log "installing clickhouse-server from Debian"
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$RISKFLOW_CACHE_DIR"
  apt-get update -q >/dev/null 2>&1 || log "apt-get update failed; trying the install anyway"
  apt-get install -y -q clickhouse-server clickhouse-client >"$RISKFLOW_CACHE_DIR/clickhouse-apt.log" 2>&1 \
    || die "apt-get install clickhouse-server failed (see $RISKFLOW_CACHE_DIR/clickhouse-apt.log)"
  [[ -n $(server_bin) ]] || die "clickhouse-server installed but not found on PATH"
}

write_config() {
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  # Settings valid on 18.16 (what Debian ships) and on current releases.
  cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>$dir/server.log</log>
    <errorlog>$dir/server.err.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$RISKFLOW_CLICKHOUSE_PORT</tcp_port>
  <http_port>$RISKFLOW_CLICKHOUSE_HTTP_PORT</http_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <max_connections>256</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <timezone>UTC</timezone>
</yandex>
XML
  cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
}

ready() {
  # The HTTP interface answers "Ok." once the server accepts queries.
  (exec 3<>"/dev/tcp/127.0.0.1/$RISKFLOW_CLICKHOUSE_HTTP_PORT" && printf 'GET /ping HTTP/1.0\r\n\r\n' >&3 && grep -q 'Ok' <&3) 2>/dev/null
}

start() {
  if pid_alive "$pidfile"; then log "clickhouse already running (pid $(cat "$pidfile"))"; return 0; fi
  install
  write_config
  log "starting clickhouse on 127.0.0.1:$RISKFLOW_CLICKHOUSE_PORT (native), :$RISKFLOW_CLICKHOUSE_HTTP_PORT (http)"
  # shellcheck disable=SC2046
  nohup $(server_bin) --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if ready; then log "clickhouse ready"; return 0; fi
    pid_alive "$pidfile" || { tail -n 30 "$dir/server.err.log" "$dir/stdout.log" >&2 || true; die "clickhouse exited during startup"; }
    sleep 0.5
  done
  die "clickhouse did not answer on 127.0.0.1:$RISKFLOW_CLICKHOUSE_HTTP_PORT within 60 s"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop_pid "$pidfile" clickhouse ;;
  status) pid_alive "$pidfile" ;;
  reset) stop_pid "$pidfile" clickhouse; rm -rf "$dir" ;;
  *) echo "usage: $0 install|start|stop|status|reset" >&2; exit 2 ;;
esac
