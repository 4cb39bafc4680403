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
# --no-memory-reducer: V8's memory reducer starts full GCs of its own to shrink the heap, and
#   they compact, so they are the longest of them: 9.6-10.3 ms under eviction churn, when no
#   scavenge passed 6.6 ms and the other full GCs stayed under 3 ms (churn runs 14 and 15,
#   docs/benchmarks.md). The read states are off-heap; the heap it would give back is tens of MB.
# shellcheck disable=SC2034 # used by the scripts that source this file
GATEWAY_NODE_FLAGS=(--single-threaded-gc --heap-growing-percent=300 --no-memory-reducer)
