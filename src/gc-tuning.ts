import v8 from 'node:v8'

/**
 * Turns off V8's allocation-site pretenuring for this process. Called first thing by the
 * server (src/server.ts), before it takes any load.
 *
 * Why: V8 watches how many objects from each allocation site survive a young-generation GC,
 * and once most do, it allocates that site's objects straight into the old generation. Under
 * a registration burst a request lives about as long as the gap between two young GCs (1500
 * connections, 30-50 ms each), so per-request sites get pretenured. A pretenured object that
 * points at young ones keeps them alive until the next full GC, even after it is itself
 * garbage. Fastify adds one per-request `finish` listener to each response whenever a logger
 * (or an `onResponse` hook) is configured, and with it about 2.4 KB of every request was
 * copied into the old generation: 482 MB in 10 s at 19 000 registrations a second, against
 * 15 MB for a bare route without a logger, and three times the young-GC time (BENCHMARKS.md). A bare route
 * with only a shared (not per-request) listener had none of it, and neither did any route
 * once pretenuring was off (BENCHMARKS.md, "Pretenuring").
 *
 * The flag is read at every GC, so setting it at runtime takes effect (a test checks this
 * with V8's own `%InYoungGeneration`); Node 20 does not freeze V8 flags after start.
 */
export function disableAllocationSitePretenuring (): void {
  v8.setFlagsFromString('--no-allocation-site-pretenuring')
}
