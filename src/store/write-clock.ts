// The client timestamp every store write carries, so that a retried older write can never
// overwrite a newer one (docs/architecture.md "Persistence").

let lastWriteMicros = 0;

/**
 * Wall-clock microseconds, strictly increasing across every call on this thread (two calls in
 * one millisecond must not tie: Cassandra breaks timestamp ties by value, not by order). Wall
 * clock rather than a monotonic one, so a restarted process writes later than the old one.
 * A store on another thread is given the caller's stamp (WriteOptions.issuedAtMicros), so
 * writes keep the order in which the gateway made them.
 */
export function nextWriteMicros(): number {
  const now = Date.now() * 1000;
  lastWriteMicros = now > lastWriteMicros ? now : lastWriteMicros + 1;
  return lastWriteMicros;
}
