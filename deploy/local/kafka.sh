#!/usr/bin/env bash
# Apache Kafka, single KRaft node on 127.0.0.1, from Maven Central jars.
#   kafka.sh install   fetch the broker and its runtime deps with mvn into the cache (once)
#   kafka.sh start     install if needed, format storage if new, start, wait until it answers
#   kafka.sh stop      stop cleanly
#   kafka.sh status    exit 0 if running
#   kafka.sh reset     stop and delete the data directory
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

libs="$RISKFLOW_CACHE_DIR/kafka-$KAFKA_VERSION/libs"
dir="$RISKFLOW_LOCAL_DIR/kafka"
pidfile="$dir/kafka.pid"

install() {
  if [[ -f $libs/.complete ]]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to fetch Kafka from Maven Central"
  command -v java >/dev/null || die "java not found: Kafka needs Java 17+ (apt-get install openjdk-17-jre-headless)"
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $libs"
  mkdir -p "$libs"
  mvn -q -B -f "$(dirname "${BASH_SOURCE[0]}")/kafka-pom.xml" \
      -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >"$RISKFLOW_CACHE_DIR/kafka-mvn.log" 2>&1 \
    || die "mvn could not fetch Kafka (see $RISKFLOW_CACHE_DIR/kafka-mvn.log)"
  touch "$libs/.complete"
}

write_config() {
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$RISKFLOW_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$RISKFLOW_KAFKA_PORT,CONTROLLER://127.0.0.1:$RISKFLOW_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$RISKFLOW_KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# riskflow creates its topics itself (EnsureTopics, RestoringWriter): a deleted topic must not come
# back with this broker's defaults at some reader's metadata request.
auto.create.topics.enable=false
log.retention.hours=168
PROPS
  cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
PROPS
}

java_run() {
  java -Xms256m -Xmx1g -Dlog4j.configuration="file:$dir/log4j.properties" -cp "$libs/*" "$@"
}

start() {
  if pid_alive "$pidfile"; then log "kafka already running (pid $(cat "$pidfile"))"; return 0; fi
  install
  write_config
  if [[ ! -f $dir/data/meta.properties ]]; then
    local id
    id=$(java_run kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    java_run kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || die "formatting Kafka storage failed (see $dir/format.log)"
  fi
  log "starting kafka on 127.0.0.1:$RISKFLOW_KAFKA_PORT"
  # server.log is appended to across restarts: only lines written by this start count below.
  local logged=0
  [[ -f $dir/server.log ]] && logged=$(wc -l <"$dir/server.log")
  # RISKFLOW_KAFKA_CPU=idle runs the broker under SCHED_IDLE: it gets a core only when nothing else
  # wants it, so a benchmark on one machine sees the checks' latency as with a broker on its own
  # machine (see README, riskflow bench). Never for tests: a busy machine starves such a broker.
  local sched=()
  case "${RISKFLOW_KAFKA_CPU:-normal}" in
    normal) ;;
    idle)
      command -v chrt >/dev/null || die "RISKFLOW_KAFKA_CPU=idle needs chrt (util-linux)"
      sched=(chrt --idle 0)
      log "the broker runs under SCHED_IDLE (RISKFLOW_KAFKA_CPU=idle)" ;;
    *) die "RISKFLOW_KAFKA_CPU: \"$RISKFLOW_KAFKA_CPU\" is neither normal nor idle" ;;
  esac
  nohup "${sched[@]}" java -Xms256m -Xmx1g -XX:+UseG1GC -Dlog4j.configuration="file:$dir/log4j.properties" \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  local rc=0
  wait_port 127.0.0.1 "$RISKFLOW_KAFKA_PORT" 90 "$pidfile" || rc=$?
  if ((rc != 0)); then
    tail -n 30 "$dir/server.log" "$dir/stdout.log" >&2 || true
    ((rc == 2)) && die "kafka exited during startup (a port taken? see $dir/server.log)"
    die "kafka did not open 127.0.0.1:$RISKFLOW_KAFKA_PORT within 90 s"
  fi
  # A listening socket is not a ready broker: wait for the "started" line. A data directory holding
  # many partitions (a long-lived dev broker) takes minutes to load, hence the generous default.
  local started="" limit="${RISKFLOW_KAFKA_START_TIMEOUT:-300}"
  for _ in $(seq 1 $((limit * 2))); do
    # grep reads to the end (no -q): under pipefail, a grep that quits at the first match
    # kills tail with SIGPIPE once the lines after the match outgrow the pipe, failing the test.
    if tail -n "+$((logged + 1))" "$dir/server.log" 2>/dev/null | grep 'Kafka Server started' >/dev/null; then started=1; break; fi
    pid_alive "$pidfile" || die "kafka exited during startup (see $dir/server.log)"
    sleep 0.5
  done
  if [[ -z $started ]]; then
    tail -n 30 "$dir/server.log" >&2 || true
    die "kafka did not report 'Kafka Server started' within $limit s (RISKFLOW_KAFKA_START_TIMEOUT; see $dir/server.log)"
  fi
  log "kafka ready"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop_pid "$pidfile" kafka ;;
  status) pid_alive "$pidfile" ;;
  reset) stop_pid "$pidfile" kafka; rm -rf "$dir" ;;
  *) echo "usage: $0 install|start|stop|status|reset" >&2; exit 2 ;;
esac
