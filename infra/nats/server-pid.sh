# shellcheck shell=bash
# Sourced by start.sh and stop.sh, after they set ADDRESS, PORT and PIDFILE.

# The pid of the nats-server that start.sh started on this port: the one in the pid file,
# else the one listening on the port if its command line names a pid file under .local/nats/
# (a server started from another checkout of the repo). The command line is checked, as pids
# get recycled; a nats-server started otherwise (e.g. the Debian package's systemd service)
# is not ours, and stop.sh leaves it alone.
server_pid() {
  local pid cmd
  for pid in "$(cat "$PIDFILE" 2>/dev/null)" "$(listener_pid)"; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    [[ $cmd == *nats-server* && $cmd == *"/.local/nats/server-$PORT.pid"* ]] && echo "$pid" && return 0
  done
  return 1
}

# The pid of whatever listens on ADDRESS:PORT (empty when nothing does or ss cannot tell).
listener_pid() {
  ss -Hltnp "src $ADDRESS:$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2
}

# The INFO line a NATS server sends every client on connect; fails when nothing answers on
# ADDRESS:PORT or what answers is not NATS. (In a subshell: a failed exec redirection must
# not end the caller.)
nats_info() {
  (
    exec 3<>"/dev/tcp/$ADDRESS/$PORT" || exit 1
    IFS= read -r -t 2 line <&3 || exit 1
    [[ $line == "INFO {"* ]] || exit 1
    printf '%s\n' "${line%$'\r'}"
  ) 2>/dev/null
}

# The server version from an INFO line ("2.9.10").
info_version() {
  sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$1"
}
