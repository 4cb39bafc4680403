# shellcheck shell=bash
# stop_pid NAME PID TIMEOUT: SIGTERM, then SIGKILL if PID has not exited after TIMEOUT
# seconds; prints how long it took. Sourced by infra/cassandra/stop.sh and infra/nats/stop.sh.
stop_pid() {
  local name=$1 pid=$2 timeout=$3 t0 i
  t0=$(date +%s%N)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name (pid $pid) ignored SIGTERM for ${timeout}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  echo "$name (pid $pid) stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}
