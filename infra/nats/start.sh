#!/usr/bin/env bash
# Start a local NATS server for the gateway cluster (nodes publish read-state changes to each
# other and forward requests over core NATS pub/sub and request/reply; no JetStream), in the
# background, and wait until it answers. Idempotent: a NATS server already answering on the
# port is left alone (one this script did not start too, e.g. the Debian package's systemd
# service; stop.sh then leaves it alone as well). Pid file and log in .local/nats/.
#
#   infra/nats/start.sh                                 # nats://127.0.0.1:4222, monitor :8222
#   NATS_PORT=4223 NATS_HTTP_PORT=8223 infra/nats/start.sh   # a second, independent server
#
# The binary: nats-server on PATH or /usr/sbin/nats-server (Debian's package); when there is
# none, `apt-get install nats-server` (as root), else `go install` of nats-server
# v2.15.3 into .local/bin/ (about a minute). Optional: NATS_START_TIMEOUT (15 s).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ADDRESS=127.0.0.1
PORT=${NATS_PORT:-4222}
HTTP_PORT=${NATS_HTTP_PORT:-8222}
TIMEOUT=${NATS_START_TIMEOUT:-15}
GO_VERSION=v2.15.3

DIR=$ROOT/.local/nats
PIDFILE=$DIR/server-$PORT.pid
LOG=$DIR/server-$PORT.log

# server_pid, listener_pid, nats_info, info_version: shared with stop.sh.
# shellcheck source-path=SCRIPTDIR
source "$HERE/server-pid.sh"
port_open() { (exec 3<>"/dev/tcp/$ADDRESS/$PORT") 2>/dev/null; }

t0=$(date +%s%N)
mkdir -p "$DIR"
# One start at a time per port: two parallel calls would otherwise both launch a server, and
# the loser's pid would overwrite the winner's in the pid file.
exec 9>"$DIR/.start-$PORT.lock"
flock 9

# 1. Already answering: nothing to do.
if info=$(nats_info); then
  if pid=$(server_pid); then
    echo "$pid" >"$PIDFILE"  # adopt it, so stop.sh finds it too
    echo "nats-server $(info_version "$info") on nats://$ADDRESS:$PORT (pid $pid, already running)"
  else
    echo "nats-server $(info_version "$info") on nats://$ADDRESS:$PORT (pid $(listener_pid || true), already running, not started by this script: stop.sh leaves it alone)"
  fi
  exit 0
fi
# Something that is not NATS on the port would make the gateway fail in confusing ways.
if port_open; then echo "error: $ADDRESS:$PORT is taken by a process that is not a NATS server (pid $(listener_pid || true))" >&2; exit 1; fi

# 2. A binary. PATH first, then Debian's location (/usr/sbin is not on every user's PATH),
#    then the one a previous run built.
find_binary() {
  local bin
  for bin in "$(command -v nats-server || true)" /usr/sbin/nats-server "$ROOT/.local/bin/nats-server"; do
    [[ -n $bin && -x $bin ]] && echo "$bin" && return 0
  done
  return 1
}
if ! BIN=$(find_binary); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "nats-server not found; installing it with apt-get (log: $DIR/install.log) ..."
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be stale or absent on a fresh machine: update only if needed.
    { apt-get install -y -q nats-server || { apt-get update -q && apt-get install -y -q nats-server; }; } \
      >"$DIR/install.log" 2>&1 || echo "apt-get could not install nats-server (see $DIR/install.log)"
  fi
  if ! BIN=$(find_binary); then
    go=$(command -v go || echo /usr/local/go/bin/go)
    if [[ ! -x $go ]]; then
      echo "error: no nats-server binary, and neither apt-get (needs root) nor go could provide one; install nats-server (https://github.com/nats-io/nats-server/releases)" >&2
      exit 1
    fi
    echo "building nats-server $GO_VERSION with go install into $ROOT/.local/bin (about a minute) ..."
    GOBIN=$ROOT/.local/bin "$go" install "github.com/nats-io/nats-server/v2@$GO_VERSION" >>"$DIR/install.log" 2>&1 ||
      { cat "$DIR/install.log" >&2; echo "error: go install of nats-server failed" >&2; exit 1; }
    BIN=$ROOT/.local/bin/nats-server
  fi
fi

# 3. A server of ours that is alive but not answering (hung, or its port was in use when
#    it came up) would hold the pid file: end it first.
if pid=$(server_pid); then
  echo "nats-server (pid $pid) is running but not answering on $ADDRESS:$PORT; stopping it"
  bash "$HERE/stop.sh" >/dev/null
fi
rm -f "$PIDFILE"

# 4. Launch detached (setsid: own session, so the caller's Ctrl-C does not take it down;
#    9>&-: the server must not inherit the start lock). nats-server writes its own log (-l)
#    and pid file (-P); stdout catches what it prints before the log is open.
log_from=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
setsid "$BIN" -a "$ADDRESS" -p "$PORT" -m "$HTTP_PORT" -P "$PIDFILE" -l "$LOG" \
  </dev/null >>"$DIR/stdout-$PORT.log" 2>&1 9>&- &
pid=$!
echo "$pid" >"$PIDFILE"

# 5. Ready = /healthz on the monitoring port says 200 and the client port sends INFO. Fail
#    early if the process dies (e.g. a port in use).
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  if curl -fsS -o /dev/null --max-time 1 "http://$ADDRESS:$HTTP_PORT/healthz" 2>/dev/null && info=$(nats_info); then
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: nats-server exited during start-up; last log lines:" >&2
    tail -n 20 "$DIR/stdout-$PORT.log" >&2 2>/dev/null || true
    tail -c +$((log_from + 1)) "$LOG" 2>/dev/null | tail -n 20 >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  if (( $(date +%s) >= deadline )); then
    echo "error: nats-server (pid $pid) not answering on $ADDRESS:$PORT / :$HTTP_PORT/healthz after ${TIMEOUT}s; last log lines:" >&2
    tail -c +$((log_from + 1)) "$LOG" 2>/dev/null | tail -n 20 >&2 || true
    exit 1
  fi
  sleep 0.1
done
echo "nats-server $(info_version "$info") on nats://$ADDRESS:$PORT (pid $pid, monitor http://$ADDRESS:$HTTP_PORT, log $LOG, $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
