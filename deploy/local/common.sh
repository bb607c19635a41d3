# Shared settings for the deploy/local scripts. Source it; do not run it.
# Every value can be overridden from the environment.
set -euo pipefail

LOCAL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Where downloaded artifacts live; survives `down` so a second `up` reuses them.
RISKFLOW_CACHE_DIR="${RISKFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/riskflow}"
# Where data, logs and pid files of the running services live.
RISKFLOW_LOCAL_DIR="${RISKFLOW_LOCAL_DIR:-$LOCAL_ROOT/.local}"

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
RISKFLOW_KAFKA_PORT="${RISKFLOW_KAFKA_PORT:-19092}"
RISKFLOW_KAFKA_CONTROLLER_PORT="${RISKFLOW_KAFKA_CONTROLLER_PORT:-19093}"
RISKFLOW_CLICKHOUSE_PORT="${RISKFLOW_CLICKHOUSE_PORT:-19000}"
RISKFLOW_CLICKHOUSE_HTTP_PORT="${RISKFLOW_CLICKHOUSE_HTTP_PORT:-18123}"

log() { printf '[deploy/local] %s\n' "$*" >&2; }
die() { printf '[deploy/local] error: %s\n' "$*" >&2; exit 1; }

# wait_port HOST PORT SECONDS [PIDFILE]: true once something accepts TCP connections there; false
# after SECONDS, or as soon as the process PIDFILE names has exited (status 2 then).
wait_port() {
  local host=$1 port=$2 deadline=$((SECONDS + $3)) pidfile=${4:-}
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    if [[ -n $pidfile ]] && ! pid_alive "$pidfile"; then return 2; fi
    sleep 0.5
  done
  return 1
}

# pid_alive FILE: true if FILE names a running process.
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid FILE NAME: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
  local file=$1 name=$2 pid
  if ! pid_alive "$file"; then rm -f "$file"; log "$name is not running"; return 0; fi
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 30 s, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$file"
  log "$name stopped"
}
