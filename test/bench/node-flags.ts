/**
 * Node flags for the servers the benchmarks start, as `npm start` runs the
 * gateway (infra/start-dev.sh):
 * - One GC thread: with two cores shared by gateway, load and Cassandra, V8's parallel GC
 *   helpers are often not running when a scavenge needs them, and the main thread waits
 *   (scavenges of 5-8 ms in heaps of 20 MB). One GC thread keeps those pauses at a
 *   millisecond or two.
 * - No memory reducer: once the allocation rate looks low, V8 runs a memory-reducing full GC
 *   that compacts the whole old space to hand a few tens of MB back to the OS. In a gateway
 *   holding 8M read states that was the one long GC pause of each 300 s run (19-40 ms, against
 *   3-7 ms for every other major GC), to shrink a 56 MB heap beside 530 MB of typed arrays.
 */
export const SERVER_NODE_FLAGS = ['--single-threaded-gc', '--no-memory-reducer'];
