#!/usr/bin/env bash
# Stop the local NATS server started by start.sh. Idempotent: a server that is not running
# is fine. SIGTERM first (nats-server closes its clients and exits), SIGKILL if it has not
# exited after NATS_STOP_TIMEOUT seconds (default 10). A NATS server on the port that
# start.sh did not start (e.g. a systemd service) is left alone.
# Takes the same NATS_PORT as start.sh.
#
#   infra/nats/stop.sh                   # the server on 127.0.0.1:4222
#   NATS_PORT=4223 infra/nats/stop.sh    # the one on 4223
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ADDRESS=127.0.0.1
PORT=${NATS_PORT:-4222}
TIMEOUT=${NATS_STOP_TIMEOUT:-10}
PIDFILE=$ROOT/.local/nats/server-$PORT.pid

# stop_pid: TERM, then KILL after a timeout.
# shellcheck source=infra/stop-pid.sh
source "$HERE/../stop-pid.sh"
# server_pid, listener_pid, nats_info, info_version: shared with start.sh.
# shellcheck source-path=SCRIPTDIR
source "$HERE/server-pid.sh"

if pid=$(server_pid); then
  stop_pid "nats-server on $ADDRESS:$PORT" "$pid" "$TIMEOUT"
elif nats_info >/dev/null; then
  echo "a nats-server not started by start.sh answers on $ADDRESS:$PORT (pid $(listener_pid || true)); left alone"
else
  echo "nats-server on $ADDRESS:$PORT is not running"
fi
rm -f "$PIDFILE"
