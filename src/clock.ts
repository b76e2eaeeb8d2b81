/** Milliseconds. Injected so tests can move time without sleeping. */
export type Clock = () => number

/** Epoch milliseconds: session times and deadlines, a price's `ts`. */
export const systemClock: Clock = () => Date.now()

/** Read once: the getter costs as much as `performance.now()` itself, and a stream calls the clock per write. */
const TIME_ORIGIN = performance.timeOrigin

/**
 * Milliseconds that never go backwards, for spacing things out: flushes, heartbeats, how long
 * a socket has been congested, how long a Redis handshake has been silent. The wall clock can
 * be stepped back (NTP, a virtual machine resumed or migrated), and each stream would then
 * wait that much longer for its next flush. Near epoch milliseconds, never to be compared
 * with them.
 */
export const monotonicClock: Clock = () => TIME_ORIGIN + performance.now()
