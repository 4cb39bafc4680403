/**
 * Node flags for the servers the benchmarks start, as `npm start` runs the
 * gateway (infra/start-dev.sh): with two cores shared by gateway, load and Cassandra,
 * V8's parallel GC helpers are often not running when a scavenge needs them, and the main
 * thread waits (scavenges of 5-8 ms in heaps of 20 MB). One GC thread keeps those pauses
 * at a millisecond or two. The old generation may grow to four times what the last full GC
 * kept before the next one starts (V8's own largest factor, pinned). The same list as
 * infra/gateway-node-flags.sh, which says why each: change both together.
 */
export const SERVER_NODE_FLAGS = ['--single-threaded-gc', '--heap-growing-percent=300'];
