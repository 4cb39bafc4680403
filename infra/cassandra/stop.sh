#!/usr/bin/env bash
# Stop a local Cassandra node started by start.sh. Idempotent: a node that is not running
# is fine. SIGTERM first (Cassandra drains: flushes memtables, closes the commit log),
# SIGKILL if it has not exited after CASSANDRA_STOP_TIMEOUT seconds (default 60).
# Takes the same CASSANDRA_NODE / CASSANDRA_ADDRESS / CASSANDRA_NATIVE_PORT as start.sh.
#
#   infra/cassandra/stop.sh                        # node "dev"
#   CASSANDRA_NODE=fault CASSANDRA_ADDRESS=127.0.0.2 CASSANDRA_NATIVE_PORT=9142 \
#     infra/cassandra/stop.sh                      # node "fault"
#   infra/cassandra/stop.sh --wipe                 # and delete its data (keeps logs)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NODE=${CASSANDRA_NODE:-dev}
ADDRESS=${CASSANDRA_ADDRESS:-127.0.0.1}
NATIVE_PORT=${CASSANDRA_NATIVE_PORT:-9042}
TIMEOUT=${CASSANDRA_STOP_TIMEOUT:-60}
DIR=$ROOT/.local/cassandra/$NODE
PIDFILE=$DIR/cassandra.pid
WIPE=no
for a in "$@"; do
  case $a in
    --wipe) WIPE=yes ;;
    *) echo "usage: $0 [--wipe]" >&2; exit 2 ;;
  esac
done

# stop_pid: TERM, then KILL after a timeout.
# shellcheck source=infra/stop-pid.sh
source "$HERE/../stop-pid.sh"
# node_pid: the pid of this node's JVM, found the same way by start.sh and stop.sh.
source "$HERE/node-pid.sh"

if pid=$(node_pid); then
  stop_pid "cassandra node '$NODE'" "$pid" "$TIMEOUT"
else
  echo "cassandra node '$NODE' is not running"
fi
rm -f "$PIDFILE"

if [[ $WIPE == yes ]]; then
  rm -rf "$DIR"/{data,commitlog,saved_caches,hints,cdc_raw}
  echo "wiped data of cassandra node '$NODE'"
fi
