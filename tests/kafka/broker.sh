#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for tests and CI,
# run from Maven Central's jars: there is no Docker here and no broker in PyPI/npm/Debian.
#
#   broker.sh install            fetch the broker's classpath into the cache (skipped when current)
#   broker.sh start DIR PORT     format DIR once, start on 127.0.0.1:PORT, wait until the port
#                                answers and the log says "Kafka Server started" (max 60 s)
#   broker.sh stop DIR           SIGTERM the recorded PID, SIGKILL after RETURNFLOW_KAFKA_STOP_TIMEOUT s
#   broker.sh status DIR         exit 0 and print "running PID PORT" if it runs, else exit 3
#
# Environment:
#   RETURNFLOW_KAFKA_CACHE       where the jars go (default ~/.cache/returnflow-kafka; jars in ./libs)
#   RETURNFLOW_KAFKA_VERSION     override the pom's kafka.version (e.g. to try another release)
#   RETURNFLOW_KAFKA_JAVA_OPTS   replace the default JVM options (small heap, fast start)
#   RETURNFLOW_KAFKA_CDS=0       do not use/record the class-data-sharing archive (see cds_opts)
#
# DIR keeps server.properties, data/, broker.log, broker.pid and controller.port, so
# `stop DIR` then `start DIR PORT` brings the same broker back with its data: tests do this
# to simulate an outage. Topics are not auto-created (auto.create.topics.enable=false): the
# relay creates its own topics, and a test that forgets to must fail rather than pass by luck.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
cache="${RETURNFLOW_KAFKA_CACHE:-$HOME/.cache/returnflow-kafka}"
libs="$cache/libs"
start_timeout="${RETURNFLOW_KAFKA_START_TIMEOUT:-60}"
stop_timeout="${RETURNFLOW_KAFKA_STOP_TIMEOUT:-20}"
# C1 only and the serial collector start the JVM about a third faster and are plenty for tests.
java_opts="${RETURNFLOW_KAFKA_JAVA_OPTS:--Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Djava.awt.headless=true}"

die() { echo "broker.sh: $*" >&2; exit 1; }

kafka_version() {
  if [ -n "${RETURNFLOW_KAFKA_VERSION:-}" ]; then echo "$RETURNFLOW_KAFKA_VERSION"; return; fi
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n 1
}

# The stamp names what the libs were fetched for, so a version bump in the pom refetches.
stamp() { echo "kafka $(kafka_version) pom $(sha256sum "$pom" | cut -c1-16)"; }

installed() { [ -f "$libs/.installed" ] && [ "$(cat "$libs/.installed")" = "$(stamp)" ]; }

install() {
  if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    echo "broker.sh: java or mvn missing, installing them with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  fi
  installed && return 0
  mkdir -p "$cache"
  # One fetch at a time (parallel test runs share the cache).
  exec 9>"$cache/.lock"
  flock 9
  if ! installed; then
    # libs is a symlink to a directory per version: a broker still running from the previous
    # version keeps its own jars (it is started on the resolved path), a new start gets these.
    local name
    name="kafka-$(kafka_version)-$(sha256sum "$pom" | cut -c1-8)"
    if [ "$(cat "$cache/$name/.installed" 2>/dev/null)" != "$(stamp)" ]; then
      fetch "$cache/$name"
    fi
    [ -L "$libs" ] || rm -rf "$libs"  # a plain directory from an older broker.sh
    ln -sfn "$name" "$cache/libs.new.$$"
    mv -T "$cache/libs.new.$$" "$libs"
    prune_old_versions "$name"
  fi
  exec 9>&-
}

fetch() {
  local target="$1" tmp="$1.tmp.$$"
  rm -rf "$tmp"
  local version_flag=()
  [ -n "${RETURNFLOW_KAFKA_VERSION:-}" ] && version_flag=("-Dkafka.version=$RETURNFLOW_KAFKA_VERSION")
  # Debian's Maven 3.8 prints bare ANSI resets even with -q -B: strip them (pipefail keeps rc).
  if ! mvn -q -B -f "$pom" "${version_flag[@]}" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1 \
      | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
    rm -rf "$tmp"
    die "mvn could not fetch the Kafka $(kafka_version) jars (is Maven Central reachable?)"
  fi
  stamp >"$tmp/.installed"
  rm -rf "$target"
  mv "$tmp" "$target"
}

# Drop other versions' jars unless a running process still has them on its classpath.
prune_old_versions() {
  local keep="$1" old
  for old in "$cache"/kafka-*; do
    [ -d "$old" ] && [ "$(basename "$old")" != "$keep" ] || continue
    if ! grep -qsF "$old/" /proc/[0-9]*/cmdline 2>/dev/null; then rm -rf "$old"; fi
  done
}

# The jars' real directory, so a running broker never sees a later version's jars.
classpath() { echo "$(readlink -f "$libs")/*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Alive and not a zombie: where PID 1 does not reap (some containers) a dead broker lingers as Z.
alive() {
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# A PID file alone can outlive its process and the PID be reused: also check it is our broker.
running_pid() {
  local dir="$1" pid
  [ -f "$dir/broker.pid" ] || return 1
  pid="$(cat "$dir/broker.pid")"
  [ -n "$pid" ] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $dir/server.properties" || return 1
  echo "$pid"
}

# Class-data sharing halves the JVM start (about 4 s -> 2 s here): the first broker that
# stops cleanly records the classes it loaded into an archive next to the jars (keyed to them
# and to this JDK; the JVM silently ignores a stale one), later starts map it.
cds_opts() {
  local dir="$1" cds_archive
  [ "${RETURNFLOW_KAFKA_CDS:-1}" = 0 ] && return 0
  cds_archive="$(readlink -f "$libs")/broker.jsa"
  # -Xlog:cds*=off: recording lists hundreds of classes it skips; a stale archive is just unused.
  if [ -f "$cds_archive" ]; then
    echo "-Xlog:cds*=off -XX:SharedArchiveFile=$cds_archive"
  elif [ "${2:-}" = record ]; then
    echo "$cds_archive.$$" >"$dir/cds.pending"
    echo "-Xlog:cds*=off -XX:ArchiveClassesAtExit=$cds_archive.$$"
  fi
}

# After the broker exited cleanly, move its recorded archive into place (atomic rename);
# after a SIGKILL or a crash the file may be half written, so it is dropped instead.
settle_cds_archive() {
  local dir="$1" verdict="$2" recorded
  [ -f "$dir/cds.pending" ] || return 0
  recorded="$(cat "$dir/cds.pending")"
  rm -f "$dir/cds.pending"
  # The archive belongs next to the jars it was recorded with: the name says which.
  if [ "$verdict" = adopt ] && [ -s "$recorded" ] && [ ! -f "${recorded%.*}" ]; then
    mv -f "$recorded" "${recorded%.*}"
  fi
  rm -f "$recorded"
}

write_properties() {
  local dir="$1" port="$2" controller="$3"
  cat >"$dir/server.properties" <<PROPS
# Written by tests/kafka/broker.sh on every start; edits are lost. Static quorum (voters).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.cleaner.dedupe.buffer.size=16777216
# After a SIGKILL the restarted broker waits out its old session: 3 s instead of 9 s.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
PROPS
}

start() {
  local dir port pid controller
  [ $# -eq 2 ] || die "usage: start DIR PORT"
  install
  mkdir -p "$1"
  dir="$(cd "$1" && pwd)"
  port="$2"
  if pid="$(running_pid "$dir")"; then
    grep -qx "advertised.listeners=PLAINTEXT://127.0.0.1:$port" "$dir/server.properties" \
      || die "a broker already runs in $dir (pid $pid) on another port"
    echo "already running in $dir (pid $pid)" >&2
    return 0
  fi
  port_open "$port" && die "port $port is already in use by another process"
  # The controller port is kept across restarts: the quorum's address must not move.
  if [ -f "$dir/controller.port" ]; then
    controller="$(cat "$dir/controller.port")"
  else
    controller="$(free_port)"
    while [ "$controller" = "$port" ]; do controller="$(free_port)"; done
    echo "$controller" >"$dir/controller.port"
  fi
  [ "$controller" = "$port" ] && die "port $port is this broker's controller port (see $dir/controller.port)"
  port_open "$controller" && die "controller port $controller is already in use by another process"
  write_properties "$dir" "$port" "$controller"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # Static quorum (controller.quorum.voters), so no --standalone: that flag is only for
    # controller.quorum.bootstrap.servers and StorageTool refuses it with voters set.
    local cluster_id
    # `--cluster-id=ID`, not `-t ID`: one random id in 64 starts with '-' and reads as an option.
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    # shellcheck disable=SC2086
    java $java_opts $(cds_opts "$dir") -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
        -cp "$(classpath)" kafka.tools.StorageTool format \
        --cluster-id="$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "formatting $dir/data failed"; }
  fi
  settle_cds_archive "$dir" drop
  local log_offset=0
  [ -f "$dir/broker.log" ] && log_offset="$(stat -c %s "$dir/broker.log")"
  # slf4j-simple logs to stderr: WARN and up, plus KafkaRaftServer's INFO "Kafka Server started".
  # shellcheck disable=SC2086
  nohup java $java_opts $(cds_opts "$dir" record) \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info \
      -Dorg.slf4j.simpleLogger.showDateTime=true \
      -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \
      -cp "$(classpath)" kafka.Kafka "$dir/server.properties" >>"$dir/broker.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/broker.pid"
  local deadline=$((SECONDS + start_timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! alive "$pid"; then
      echo "Kafka broker exited during start; last lines of $dir/broker.log:" >&2
      tail -n 40 "$dir/broker.log" >&2
      rm -f "$dir/broker.pid"
      return 1
    fi
    # The port alone can accept before the broker serves; the log line comes after it does.
    if port_open "$port" && tail -c "+$((log_offset + 1))" "$dir/broker.log" | grep -q "Kafka Server started"; then
      echo "Kafka broker up on 127.0.0.1:$port (pid $pid, dir $dir)" >&2
      return 0
    fi
    sleep 0.1
  done
  echo "Kafka broker did not answer on 127.0.0.1:$port and log \"Kafka Server started\" within" \
    "${start_timeout}s; last lines of $dir/broker.log:" >&2
  tail -n 40 "$dir/broker.log" >&2
  kill -KILL "$pid" 2>/dev/null || true
  while alive "$pid"; do sleep 0.05; done
  rm -f "$dir/broker.pid"
  return 1
}

stop() {
  local dir pid
  [ $# -eq 1 ] || die "usage: stop DIR"
  [ -d "$1" ] || return 0
  dir="$(cd "$1" && pwd)"
  if pid="$(running_pid "$dir")"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout))
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    if alive "$pid"; then
      echo "Kafka broker $pid did not stop within ${stop_timeout}s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.05; done
      settle_cds_archive "$dir" drop
    else
      settle_cds_archive "$dir" adopt
    fi
  fi
  rm -f "$dir/broker.pid"
}

status() {
  local dir pid
  [ $# -eq 1 ] || die "usage: status DIR"
  [ -d "$1" ] || { echo "stopped"; return 3; }
  dir="$(cd "$1" && pwd)"
  if pid="$(running_pid "$dir")"; then
    echo "running $pid $(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\)$/\1/p' \
      "$dir/server.properties")"
    return 0
  fi
  echo "stopped"
  return 3
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  install) install ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status "$@" ;;
  *) echo "usage: $0 install | start DIR PORT | stop DIR | status DIR" >&2; exit 2 ;;
esac
