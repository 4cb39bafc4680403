#!/usr/bin/env bash
# Start a local Apache Cassandra 5.0 node from Maven Central jars (no Docker, no tarball),
# in the background, and wait until it answers CQL. Idempotent: a node that is already up
# is left alone. Data lives in .local/cassandra/<node>/ and survives restarts.
#
#   infra/cassandra/start.sh                      # node "dev" on 127.0.0.1:9042
#   CASSANDRA_NODE=fault CASSANDRA_ADDRESS=127.0.0.2 CASSANDRA_NATIVE_PORT=9142 \
#     CASSANDRA_JMX_PORT=7299 infra/cassandra/start.sh   # a second, independent node
#
# Optional: CASSANDRA_CLUSTER, CASSANDRA_SEEDS, CASSANDRA_INITIAL_TOKEN (to make nodes join
# one cluster instead), CASSANDRA_HEAP (1g), CASSANDRA_START_TIMEOUT (180 s),
# CASSANDRA_JVM_OPTS (extra JVM flags).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NODE=${CASSANDRA_NODE:-dev}
ADDRESS=${CASSANDRA_ADDRESS:-127.0.0.1}
NATIVE_PORT=${CASSANDRA_NATIVE_PORT:-9042}
STORAGE_PORT=${CASSANDRA_STORAGE_PORT:-7000}
JMX_PORT=${CASSANDRA_JMX_PORT:-7199}
CLUSTER=${CASSANDRA_CLUSTER:-readstate-$NODE}
SEEDS=${CASSANDRA_SEEDS:-$ADDRESS:$STORAGE_PORT}
INITIAL_TOKEN=${CASSANDRA_INITIAL_TOKEN:-0}
HEAP=${CASSANDRA_HEAP:-1g}
TIMEOUT=${CASSANDRA_START_TIMEOUT:-180}

BASE=$ROOT/.local/cassandra
LIB=$BASE/lib
DIR=$BASE/$NODE
PIDFILE=$DIR/cassandra.pid
LOG=$DIR/logs/system.log

# node_pid: the pid of this node's JVM, found the same way by start.sh and stop.sh.
source "$HERE/node-pid.sh"
port_open() { (exec 3<>"/dev/tcp/$ADDRESS/$NATIVE_PORT") 2>/dev/null; }

t0=$(date +%s%N)

# 1. Already running? Up and answering: nothing to do. Alive but still starting (another
#    start.sh call): just wait for it below.
mkdir -p "$DIR"
if pid=$(node_pid); then
  echo "$pid" >"$PIDFILE"  # adopt it, so stop.sh finds it too
  if port_open; then echo "cassandra node '$NODE' already up (pid $pid) on $ADDRESS:$NATIVE_PORT"; exit 0; fi
  echo "cassandra node '$NODE' (pid $pid) is starting; waiting"
  log_from=0
else
  rm -f "$PIDFILE"
  # Something else (e.g. a Docker Cassandra) on the port would make the wait below lie.
  if port_open; then echo "error: $ADDRESS:$NATIVE_PORT is already taken by another process" >&2; exit 1; fi

  # 2. Jars, once. The lock keeps two nodes started in parallel from fetching at the same
  #    time; the marker (a copy of the pom) marks a complete fetch of this very version.
  (
    flock 9
    if ! cmp -s "$HERE/pom.xml" "$LIB/.fetched-pom.xml"; then
      echo "fetching Cassandra jars into $LIB ..."
      rm -rf "$LIB"
      # Maven's output (only stray colour codes with -q) is shown only when it fails.
      mvn -B -q -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIB" >"$BASE/mvn.log" 2>&1 || { cat "$BASE/mvn.log" >&2; exit 1; }
      cp "$HERE/pom.xml" "$LIB/.fetched-pom.xml"
      echo "jars fetched in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    fi
  ) 9>"$BASE/.fetch.lock"

  # 3. Directories and config, rendered on every start so env changes take effect.
  mkdir -p "$DIR"/{data,commitlog,saved_caches,hints,logs,conf/triggers}
  sed -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@INITIAL_TOKEN@|$INITIAL_TOKEN|g" \
      -e "s|@SEEDS@|$SEEDS|g" -e "s|@ADDRESS@|$ADDRESS|g" \
      -e "s|@STORAGE_PORT@|$STORAGE_PORT|g" -e "s|@NATIVE_PORT@|$NATIVE_PORT|g" \
      -e "s|@NODE_DIR@|$DIR|g" "$HERE/cassandra.yaml" >"$DIR/conf/cassandra.yaml"
  cp "$HERE/logback.xml" "$DIR/conf/logback.xml"

  # 4. JVM flags. The --add-exports/--add-opens list is Cassandra's conf/jvm17-server.options:
  #    without it Java 17 refuses the internals Cassandra uses.
  #    -XX:TieredStopAtLevel=1 compiles with C1 only. A local node shares a few cores with the
  #    gateway, its tests and its benchmarks, and with C2 it spent minutes after every start
  #    compiling on them: per-thread CPU during the fan-out benchmark showed the C2 compiler
  #    thread at 0.3-0.9 of a core through set-up and every write-behind wave (20 rounds of
  #    2,000-row waves beforehand did not finish it), against 0.1-0.2 of a core for a wave
  #    with C1 alone. C1's code costs more per request at high rates; the GC-spike
  #    benchmark's churn (about 5,800 requests/s) ran no worse with it.
  #    CASSANDRA_JVM_OPTS="-XX:TieredStopAtLevel=4" brings C2 back.
  JVM=(-Xms"$HEAP" -Xmx"$HEAP" -Xss256k -XX:TieredStopAtLevel=1 -XX:+UseG1GC -XX:+ParallelRefProcEnabled
    -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m -XX:MaxGCPauseMillis=300
    -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError -XX:ErrorFile="$DIR/logs/hs_err_%p.log"
    -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true -Dio.netty.allocator.maxOrder=11)
  for m in java.base/jdk.internal.misc java.management.rmi/com.sun.jmx.remote.internal.rmi \
           java.rmi/sun.rmi.registry java.rmi/sun.rmi.server java.sql/java.sql \
           java.base/java.lang.ref jdk.unsupported/sun.misc \
           jdk.compiler/com.sun.tools.javac.file jdk.attach/sun.tools.attach; do
    JVM+=(--add-exports "$m=ALL-UNNAMED")
  done
  for m in java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref \
           java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module \
           java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal \
           java.base/sun.nio.ch java.base/java.io java.base/java.lang.reflect \
           jdk.compiler/com.sun.tools.javac java.base/java.lang java.base/java.util java.base/java.nio; do
    JVM+=(--add-opens "$m=ALL-UNNAMED")
  done
  # jamm measures object sizes for memtable accounting; recommended, not required, in 5.0.
  jamm=$(ls "$LIB"/jamm-*.jar 2>/dev/null | head -n1 || true)
  [[ -n $jamm ]] && JVM+=(-javaagent:"$jamm")
  # Cassandra reads its settings from system properties. Foreground mode keeps stdout open
  # (else it is closed after start-up and late errors are lost); the skip/load flags cut
  # the gossip settling wait a one-node cluster does not need.
  JVM+=(-Dcassandra.config="file://$DIR/conf/cassandra.yaml"
    -Dlogback.configurationFile="$DIR/conf/logback.xml"
    -Dcassandra.storagedir="$DIR" -Dcassandra.logdir="$DIR/logs"
    -Dcassandra.triggers_dir="$DIR/conf/triggers"
    -Dcassandra.jmx.local.port="$JMX_PORT" -Dcassandra-foreground=yes
    -Dcassandra-pidfile="$PIDFILE"
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.load_ring_state=false)
  # A node that seeds only itself has no peers to tell it is going down: skip the 2 s
  # "announce shutdown" sleep so stop.sh (and fault tests) are quicker.
  [[ $SEEDS == "$ADDRESS:$STORAGE_PORT" ]] && JVM+=(-Dcassandra.shutdown_announce_in_ms=0)
  # Extra flags for experiments, e.g. CASSANDRA_JVM_OPTS="-Xlog:gc" (split on spaces).
  read -r -a extra <<<"${CASSANDRA_JVM_OPTS:-}" && JVM+=("${extra[@]}")

  # 5. Launch detached (setsid: own session, so the caller's Ctrl-C or process-group kill
  #    does not take the node down). Only lines logged after this offset count as "ready".
  log_from=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
  setsid java "${JVM[@]}" -cp "$DIR/conf:$LIB/*" org.apache.cassandra.service.CassandraDaemon \
    </dev/null >>"$DIR/logs/stdout.log" 2>&1 &
  echo $! >"$PIDFILE"
  echo "starting cassandra node '$NODE' (pid $!) on $ADDRESS:$NATIVE_PORT, data in $DIR"
fi

# 6. Ready = the CQL port answers AND the log says so (the port alone can open a moment
#    before the server is fully initialised). Fail early if the JVM dies.
deadline=$(( $(date +%s) + TIMEOUT ))
ts=$(date +%s%N)
while :; do
  size=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
  (( size < log_from )) && log_from=0  # log rolled over
  # (grep -q from a process substitution: in a pipe, tail's SIGPIPE would fail pipefail)
  if port_open && grep -qF "Starting listening for CQL clients" < <(tail -c +$((log_from + 1)) "$LOG" 2>/dev/null); then
    break
  fi
  if ! node_pid >/dev/null; then
    echo "error: cassandra node '$NODE' exited during start-up; last log lines:" >&2
    tail -n 40 "$DIR/logs/stdout.log" "$LOG" >&2 2>/dev/null || true
    exit 1
  fi
  if (( $(date +%s) >= deadline )); then
    echo "error: cassandra node '$NODE' not ready after ${TIMEOUT}s; last log lines:" >&2
    tail -n 40 "$LOG" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done
echo "cassandra node '$NODE' ready on $ADDRESS:$NATIVE_PORT (start-up $(( ($(date +%s%N) - ts) / 1000000 )) ms, total $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
