# Sourced by start.sh and stop.sh, after they set NODE, ADDRESS, NATIVE_PORT and PIDFILE.

# The pid of this node's JVM: the one in the pid file, else the one listening on its CQL
# port (a node of the same name started from another checkout of the repo, e.g. CI's fresh
# clone next to a dev node left running). The command line is checked, as pids get recycled.
node_pid() {
  local pid cmd
  for pid in "$(cat "$PIDFILE" 2>/dev/null)" \
    "$(ss -Hltnp "src $ADDRESS:$NATIVE_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)"; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    [[ $cmd == *CassandraDaemon* && $cmd == *"/cassandra/$NODE/conf"* ]] && echo "$pid" && return 0
  done
  return 1
}
