# shellcheck shell=bash
# Sourced by the scripts that start gateway processes (start-dev.sh for `npm start`,
# cluster.sh): the Node flags they run dist/src/main.js with. The benchmarks' servers read
# the same list from here (test/bench/node-flags.ts): keep it one line of plain flags.
#
# --single-threaded-gc: the read states live off-heap in typed arrays, so the V8 heap stays
#   small and parallel GC helpers buy little; on a few shared cores they contend with the
#   event loop, and a scavenge then waits on a helper that is not running (README, GC spikes).
# --heap-growing-percent=300: with one GC thread a full GC also marks on the event loop
#   (20-28 ms of steps over 40-70 ms in a 15 MB heap); V8 sized the old generation at about
#   twice what survived, so under steady fan-out one came every 8 s. Pinning the growth factor
#   at V8's own largest, four, leaves the old generation room to grow for minutes between
#   them (docs/architecture.md).
# shellcheck disable=SC2034 # used by the scripts that source this file
GATEWAY_NODE_FLAGS=(--single-threaded-gc --heap-growing-percent=300)
