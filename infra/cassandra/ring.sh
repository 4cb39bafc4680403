#!/usr/bin/env bash
# A local 3-node Cassandra ring, as ccm builds one: nodes ring1..ring3 on 127.0.0.1..3, one
# cluster, seed ring1, balanced tokens, each started by start.sh (jars fetched once, data in
# .local/cassandra/ringN/). Its ports stay clear of the dev node (127.0.0.1:9042, storage
# 7000, JMX 7199) and of the outage test's node (127.0.0.2:9142, JMX 7299).
#
#   infra/cassandra/ring.sh start     # one node at a time, each waiting for CQL; then waits
#                                     # until every node sees the other two up. Idempotent:
#                                     # nodes already up are left alone (restarts a dead one)
#   infra/cassandra/ring.sh status    # per node: running, CQL answering; then whether they see
#                                     # each other (exit status 1 if not)
#   infra/cassandra/ring.sh stop      # all three (SIGTERM, drain); --wipe deletes their data
#
# Contact points for the gateway: 127.0.0.1:9242,127.0.0.2:9242,127.0.0.3:9242.
# Optional: CASSANDRA_RING_HEAP (512m per node), CASSANDRA_RING_NATIVE_PORT (9242),
# CASSANDRA_RING_STORAGE_PORT (7100), CASSANDRA_RING_JMX_BASE (7200: node i uses base + i),
# CASSANDRA_RING_WAIT (seconds to wait for the nodes to see each other, 120).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HEAP=${CASSANDRA_RING_HEAP:-512m}
NATIVE_PORT=${CASSANDRA_RING_NATIVE_PORT:-9242}
STORAGE_PORT=${CASSANDRA_RING_STORAGE_PORT:-7100}
JMX_BASE=${CASSANDRA_RING_JMX_BASE:-7200}
WAIT=${CASSANDRA_RING_WAIT:-120}
CLUSTER=readstate-ring
SEEDS=127.0.0.1:$STORAGE_PORT
# Murmur3 tokens splitting the ring in three equal ranges (i * 2^64 / 3 - 2^63).
TOKENS=(-9223372036854775808 -3074457345618258603 3074457345618258602)
NODES=(1 2 3)

usage() { echo "usage: $0 start | status | stop [--wipe]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
command=$1
shift

# Runs start.sh or stop.sh for node i with that node's settings.
node_script() {
  local i=$1 script=$2
  shift 2
  CASSANDRA_NODE=ring$i CASSANDRA_ADDRESS=127.0.0.$i CASSANDRA_NATIVE_PORT=$NATIVE_PORT \
    CASSANDRA_STORAGE_PORT=$STORAGE_PORT CASSANDRA_JMX_PORT=$((JMX_BASE + i)) \
    CASSANDRA_CLUSTER=$CLUSTER CASSANDRA_SEEDS=$SEEDS CASSANDRA_INITIAL_TOKEN=${TOKENS[i - 1]} \
    CASSANDRA_HEAP=$HEAP bash "$HERE/$script" "$@"
}

# Whether every node sees the other two up: ring-check.mjs, with the repo's cassandra-driver.
ring_check() {
  if [[ ! -d $ROOT/node_modules/cassandra-driver ]]; then
    echo "error: node_modules/cassandra-driver is missing (run npm ci): cannot check the ring" >&2
    return 1
  fi
  local points=()
  for i in "${NODES[@]}"; do points+=("ring$i=127.0.0.$i:$NATIVE_PORT"); done
  node "$HERE/ring-check.mjs" --wait "$1" "${points[@]}"
}

case $command in
  start)
    [[ $# -eq 0 ]] || usage
    t0=$(date +%s%N)
    # One at a time: the seed first, and each node joins a ring whose members answer, as
    # ccm does. (In parallel, three JVMs starting on two cores also starve each other.)
    for i in "${NODES[@]}"; do node_script "$i" start.sh; done
    echo "waiting until every ring node sees the other two (up to ${WAIT}s) ..."
    ring_check "$WAIT"
    echo "cassandra ring up: 127.0.0.1:$NATIVE_PORT,127.0.0.2:$NATIVE_PORT,127.0.0.3:$NATIVE_PORT (total $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
    ;;
  stop)
    for a in "$@"; do [[ $a == --wipe ]] || usage; done
    # In parallel: every node drains on its own, and a node stopping waits ~2 s to tell its
    # peers, so one at a time would add that up.
    pids=()
    for i in "${NODES[@]}"; do
      node_script "$i" stop.sh "$@" &
      pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    exit $status
    ;;
  status)
    [[ $# -eq 0 ]] || usage
    up=0
    for i in "${NODES[@]}"; do
      NODE=ring$i ADDRESS=127.0.0.$i PIDFILE=$ROOT/.local/cassandra/ring$i/cassandra.pid
      source "$HERE/node-pid.sh"
      if pid=$(node_pid); then
        if (exec 3<>"/dev/tcp/$ADDRESS/$NATIVE_PORT") 2>/dev/null; then
          echo "ring$i: running (pid $pid), CQL on $ADDRESS:$NATIVE_PORT"
          up=$((up + 1))
        else
          echo "ring$i: running (pid $pid), CQL on $ADDRESS:$NATIVE_PORT not answering yet"
        fi
      else
        echo "ring$i: not running"
      fi
    done
    [[ $up -eq ${#NODES[@]} ]] || exit 1
    ring_check 0
    ;;
  *) usage ;;
esac
