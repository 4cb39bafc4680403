#!/usr/bin/env bash
# `npm run cluster`: a local gateway cluster of N nodes in the background, sharing one NATS
# server and one Cassandra keyspace, to try cluster mode by hand (connect to any node; a
# change made on one reaches the sessions on the others over NATS).
#
#   npm run cluster -- --nodes 3 [--cassandra 1|3] [--base-port 8081]
#   npm run cluster:stop
#
# start (the default):
#   1. installs the npm dependencies when they are missing or older than package-lock.json,
#      and builds (dist/src/main.js);
#   2. starts NATS (infra/nats/start.sh) and Cassandra: --cassandra 1 (default) the dev node
#      on 127.0.0.1:9042 (infra/cassandra/start.sh), --cassandra 3 the local ring on
#      127.0.0.1-3:9242 (infra/cassandra/ring.sh start) with replication factor 3 and QUORUM;
#   3. starts node i = 1..N with the flags of `npm start` (infra/gateway-node-flags.sh) on port
#      base-port + i - 1 with GATEWAY_NODE_ID=i (also its snowflake worker id), one at a
#      time, each waiting for /readyz 200 (60 s): the first node seeds the demo data before
#      the others look for it.
#   Nodes already running from an earlier start with the same options are left alone (a
#   larger --nodes adds nodes to them); with other options the start is refused.
#   Keyspace: readstates_cluster, not `npm start`'s readstates, so a single dev gateway and
#   the cluster never serve the same users from one keyspace (and, on the ring, not a
#   readstates keyspace an earlier run created with replication factor 1).
#   Overrides: CASSANDRA_KEYSPACE, CASSANDRA_REPLICATION_FACTOR, CASSANDRA_CONSISTENCY,
#   NATS_PORT / NATS_HTTP_PORT, GATEWAY_JWT_SECRET / GATEWAY_ADMIN_TOKEN (development
#   secrets when unset, printed, as `npm start` does), CLUSTER_READY_TIMEOUT (60 s per
#   node), and any other gateway setting (e.g. GATEWAY_SHARDS, LOG_LEVEL), which every node
#   inherits.
# stop: SIGTERM to every recorded node (each writes its changed read states, then exits;
#   SIGKILL after 30 s), then stops NATS. Cassandra is left running.
#
# Logs and pid files: .local/cluster/node-<i>.log, node-<i>.pid.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
source infra/gateway-node-flags.sh
DIR=$ROOT/.local/cluster
LAYOUT=$DIR/layout
READY_TIMEOUT=${CLUSTER_READY_TIMEOUT:-60}
STOP_TIMEOUT=30

usage() {
  echo "usage: $0 [start] [--nodes N] [--cassandra 1|3] [--base-port P]" >&2
  echo "       $0 stop" >&2
  exit 2
}

# A gateway node this script started: the pid's command line is checked, as pids get recycled.
node_alive() {
  local cmd
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  [[ $cmd == *--single-threaded-gc*dist/src/main.js* ]]
}

# The pid listening on 127.0.0.1:port (empty when none, or when ss may not tell).
port_owner() {
  ss -Hltnp "src 127.0.0.1:$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

# The pids of the running nodes, as "id pid" lines, from the pid files.
running_nodes() {
  local file id pid
  for file in "$DIR"/node-*.pid; do
    [[ -e $file ]] || continue
    id=${file##*/node-}
    id=${id%.pid}
    pid=$(cat "$file" 2>/dev/null || true)
    if [[ -n $pid ]] && node_alive "$pid"; then echo "$id $pid"; else rm -f "$file"; fi
  done
}

# SIGTERM to every pid given as "id pid" lines on stdin, then wait for all of them (they
# drain in parallel); SIGKILL what is left after STOP_TIMEOUT seconds.
stop_nodes() {
  local id pid ids=() pids=() i t0
  while read -r id pid; do ids+=("$id"); pids+=("$pid"); done
  (( ${#pids[@]} > 0 )) || { echo "no gateway node running"; return 0; }
  t0=$(date +%s%N)
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    local left=0
    for pid in "${pids[@]}"; do node_alive "$pid" && left=1; done
    (( left )) || break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    pid=${pids[i]}
    if node_alive "$pid"; then
      echo "node ${ids[i]} (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; killing it (log $DIR/node-${ids[i]}.log)"
      kill -KILL "$pid" 2>/dev/null || true
      while node_alive "$pid"; do sleep 0.1; done
    else
      echo "node ${ids[i]} (pid $pid) stopped"
    fi
    rm -f "$DIR/node-${ids[i]}.pid"
  done
  echo "gateway nodes stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

command=start
if [[ $# -gt 0 && ( $1 == start || $1 == stop ) ]]; then command=$1; shift; fi

if [[ $command == stop ]]; then
  [[ $# -eq 0 ]] || usage
  mkdir -p "$DIR"
  running_nodes | stop_nodes
  bash infra/nats/stop.sh
  cassandra=$(sed -n 's/.*cassandra=\([0-9]*\).*/\1/p' "$LAYOUT" 2>/dev/null || true)
  case $cassandra in
    1) echo "Cassandra left running (npm run cassandra:stop stops it)" ;;
    3) echo "Cassandra ring left running (npm run cassandra:ring:stop stops it)" ;;
    *) echo "Cassandra is not stopped here (npm run cassandra:stop / npm run cassandra:ring:stop)" ;;
  esac
  rm -f "$LAYOUT"
  exit 0
fi

NODES=1 CASSANDRA=1 BASE_PORT=8081
while [[ $# -gt 0 ]]; do
  case $1 in
    --nodes) [[ $# -ge 2 ]] || usage; NODES=$2; shift 2 ;;
    --nodes=*) NODES=${1#*=}; shift ;;
    --cassandra) [[ $# -ge 2 ]] || usage; CASSANDRA=$2; shift 2 ;;
    --cassandra=*) CASSANDRA=${1#*=}; shift ;;
    --base-port) [[ $# -ge 2 ]] || usage; BASE_PORT=$2; shift 2 ;;
    --base-port=*) BASE_PORT=${1#*=}; shift ;;
    *) usage ;;
  esac
done
if ! [[ $NODES =~ ^[1-9][0-9]*$ ]] || (( NODES > 64 )); then
  echo "--nodes must be 1..64, got '$NODES'" >&2; exit 2
fi
[[ $CASSANDRA == 1 || $CASSANDRA == 3 ]] || { echo "--cassandra must be 1 (dev node) or 3 (ring), got '$CASSANDRA'" >&2; exit 2; }
if ! [[ $BASE_PORT =~ ^[1-9][0-9]*$ ]] || (( BASE_PORT < 1024 || BASE_PORT + NODES - 1 > 65535 )); then
  echo "--base-port must leave room for $NODES ports in 1024..65535, got '$BASE_PORT'" >&2; exit 2
fi

if [[ ${NODE_ENV:-} == production && ( -z ${GATEWAY_JWT_SECRET:-} || -z ${GATEWAY_ADMIN_TOKEN:-} ) ]]; then
  echo "NODE_ENV=production: set GATEWAY_JWT_SECRET and GATEWAY_ADMIN_TOKEN (development secrets are refused)" >&2
  exit 2
fi

if [[ $CASSANDRA == 3 ]]; then
  ring_port=${CASSANDRA_RING_NATIVE_PORT:-9242}
  export CASSANDRA_CONTACT_POINTS=127.0.0.1:$ring_port,127.0.0.2:$ring_port,127.0.0.3:$ring_port
  export CASSANDRA_REPLICATION_FACTOR=${CASSANDRA_REPLICATION_FACTOR:-3}
  export CASSANDRA_CONSISTENCY=${CASSANDRA_CONSISTENCY:-QUORUM}
else
  export CASSANDRA_CONTACT_POINTS=127.0.0.1:9042
  export CASSANDRA_REPLICATION_FACTOR=${CASSANDRA_REPLICATION_FACTOR:-1}
  export CASSANDRA_CONSISTENCY=${CASSANDRA_CONSISTENCY:-LOCAL_QUORUM}
fi
export CASSANDRA_KEYSPACE=${CASSANDRA_KEYSPACE:-readstates_cluster}
export GATEWAY_NATS_URL=nats://127.0.0.1:${NATS_PORT:-4222}
# On a cluster node the node id is the worker id; one inherited from the shell would clash.
unset GATEWAY_WORKER_ID
layout="cassandra=$CASSANDRA base_port=$BASE_PORT keyspace=$CASSANDRA_KEYSPACE nats=$GATEWAY_NATS_URL"

# Nodes still running from an earlier start are kept only if they were started the same way
# (the node count aside: a larger --nodes adds nodes): otherwise the cluster would mix nodes
# on different Cassandra clusters, keyspaces or NATS servers.
mkdir -p "$DIR"
running=$(running_nodes)
if [[ -n $running ]]; then
  previous=$(cat "$LAYOUT" 2>/dev/null || echo unknown)
  if [[ $previous != "$layout" ]]; then
    echo "error: gateway nodes are running from an earlier start ($previous);" >&2
    echo "       run npm run cluster:stop first, then start with the new options" >&2
    exit 1
  fi
fi

# Every port a new node needs must be free before anything starts.
for ((i = 1; i <= NODES; i++)); do
  port=$((BASE_PORT + i - 1))
  grep -q "^$i " <<<"$running" && continue
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: port $port (node $i) is taken by another process; choose another --base-port" >&2
    exit 1
  fi
done

# 1. Dependencies and build.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "installing npm dependencies ..."
  npm ci --engine-strict --no-audit --no-fund
fi
echo "building ..."
npm run build --silent

# 2. NATS and Cassandra (both idempotent: left alone when already up).
bash infra/nats/start.sh
if [[ $CASSANDRA == 3 ]]; then bash infra/cassandra/ring.sh start; else bash infra/cassandra/start.sh; fi

# The same secrets on every node, so a token is valid on all of them: every node inherits
# this environment, and falls back to the same development secrets when they are unset
# (shown in the summary, as `npm start` does; the nodes log a warning about them too).
if [[ -z ${GATEWAY_JWT_SECRET:-} || -z ${GATEWAY_ADMIN_TOKEN:-} ]]; then
  dev_jwt_secret=$(node --input-type=module -e "import { DEV_JWT_SECRET } from './dist/src/config.js'; process.stdout.write(process.env.GATEWAY_JWT_SECRET || DEV_JWT_SECRET)")
  dev_admin_token=$(node --input-type=module -e "import { DEV_ADMIN_TOKEN } from './dist/src/config.js'; process.stdout.write(process.env.GATEWAY_ADMIN_TOKEN || DEV_ADMIN_TOKEN)")
fi

# 3. The nodes, one at a time. A node that fails takes down the nodes this run started (the
#    ones from an earlier start, NATS and Cassandra stay), and its log tail is shown.
echo "$layout" >"$LAYOUT"
started=()
fail() {
  echo "error: $1; last lines of $DIR/node-$2.log:" >&2
  tail -n 30 "$DIR/node-$2.log" >&2 2>/dev/null || true
  if (( ${#started[@]} > 0 )); then
    echo "stopping the nodes this run started:" >&2
    printf '%s\n' "${started[@]}" | stop_nodes >&2
  fi
  exit 1
}
for ((i = 1; i <= NODES; i++)); do
  port=$((BASE_PORT + i - 1))
  log=$DIR/node-$i.log
  if pid=$(grep "^$i " <<<"$running" | cut -d' ' -f2) && [[ -n $pid ]]; then
    echo "node $i already running (pid $pid) on port $port: left as is (npm run cluster:stop first to run a new build)"
    continue
  fi
  [[ -s $log ]] && mv -f "$log" "$log.1"  # keep the previous run's log for a post-mortem
  # setsid: own session, so a Ctrl-C here does not take the node down (cluster:stop does).
  PORT=$port HOST=127.0.0.1 GATEWAY_NODE_ID=$i \
    GATEWAY_PUBLIC_URL=ws://127.0.0.1:$port/gateway \
    setsid node "${GATEWAY_NODE_FLAGS[@]}" dist/src/main.js </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/node-$i.pid"
  started+=("$i $pid")
  t0=$(date +%s%N)
  deadline=$(( $(date +%s) + READY_TIMEOUT ))
  while :; do
    # Ready only if it is this node that answers: another process may have taken the port
    # since the check above (then this node fails to listen and exits).
    owner=$(port_owner "$port")
    if [[ -n $owner && $owner != "$pid" ]]; then
      kill -TERM "$pid" 2>/dev/null || true
      fail "port $port (node $i) was taken by another process (pid $owner) meanwhile; choose another --base-port" "$i"
    fi
    code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
    [[ $code == 200 && $owner == "$pid" ]] && break
    node_alive "$pid" || { rm -f "$DIR/node-$i.pid"; started=("${started[@]:0:${#started[@]}-1}"); fail "node $i (pid $pid) exited during start-up" "$i"; }
    (( $(date +%s) < deadline )) || fail "node $i (pid $pid) not ready after ${READY_TIMEOUT}s (/readyz: $code)" "$i"
    sleep 0.2
  done
  echo "node $i ready on port $port (pid $pid, $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
done

# Nodes beyond --nodes left from an earlier, larger start are part of the cluster too.
extra=$(awk -v n="$NODES" '$1 > n { print $1 }' <<<"$running" | paste -sd, -)

echo
echo "  Gateway cluster: $NODES node(s), NATS $GATEWAY_NATS_URL, Cassandra $CASSANDRA_CONTACT_POINTS"
echo "  (keyspace $CASSANDRA_KEYSPACE, replication factor $CASSANDRA_REPLICATION_FACTOR, $CASSANDRA_CONSISTENCY)"
for ((i = 1; i <= NODES; i++)); do
  port=$((BASE_PORT + i - 1))
  echo "    node $i: ws://127.0.0.1:$port/gateway?encoding=json   http://127.0.0.1:$port (pid $(cat "$DIR/node-$i.pid"))"
done
[[ -z $extra ]] || echo "    also still running from an earlier start: node(s) $extra"
if [[ -n ${dev_jwt_secret:-} ]]; then
  echo "  Development secrets (refused when NODE_ENV=production):"
  echo "    GATEWAY_JWT_SECRET=$dev_jwt_secret"
  echo "    GATEWAY_ADMIN_TOKEN=$dev_admin_token"
fi
echo "  A user token:  npm run -s token -- <user_id>   (valid on every node)"
echo "  Logs:          $DIR/node-<i>.log"
echo "  Stop:          npm run cluster:stop   (leaves Cassandra running)"
