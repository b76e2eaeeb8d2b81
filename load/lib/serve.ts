import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../../src/config.js'
import { addExtraAcceptors, LISTEN_BACKLOG } from '../../src/extra-acceptors.js'
import type { Logger } from '../../src/logger.js'

/**
 * How the load runs' own servers (baseline, breakdown) listen and stop: the accept backlog and
 * the extra accept descriptors of tickstream's `src/server.ts`, so that a connection burst
 * treats every target alike (BENCHMARKS.md, "The accept queue"), and a clean exit on SIGTERM
 * (how the load runs stop them), so that a `--cpu-prof` profile gets written.
 */
export async function serveUntilSigterm (app: FastifyInstance, address: { host: string, port: number }, logger: Logger): Promise<void> {
  await app.listen({ ...address, backlog: LISTEN_BACKLOG })
  // ACCEPT_DESCRIPTORS as tickstream reads it: a run that sets it sets it for every target.
  const count = loadConfig(process.env).acceptDescriptors - 1
  const acceptors = await addExtraAcceptors(app.server, { count, backlog: LISTEN_BACKLOG, logger })
  process.once('SIGTERM', () => {
    void acceptors.stopAccepting()
    void app.close().then(() => process.exit(0))
  })
}
