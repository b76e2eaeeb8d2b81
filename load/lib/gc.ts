import { disableAllocationSitePretenuring } from '../../src/gc-tuning.js'

/**
 * The V8 setting `src/server.ts` makes, for the load runs' own servers, so that every target
 * of a run collects garbage alike. `KEEP_V8_PRETENURING=1` leaves V8's default instead:
 * `npm run load:gc-promotion` measures the servers both ways.
 */
export function tuneGcAsTheServerDoes (): void {
  if (process.env.KEEP_V8_PRETENURING !== '1') disableAllocationSitePretenuring()
}
