import fp from 'fastify-plugin'
import type { Clock } from '../src/clock.js'
import { SessionRegistry } from '../src/sessions/session-registry.js'
import { Sweeper } from '../src/sessions/sweeper.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionRegistry
  }
}

export interface SessionsPluginOptions {
  clock: Clock
}

/**
 * The session registry (and its one deactivate) plus the expiry sweeper. Ending the live
 * sessions at shutdown is the drain's job (plugins/shutdown.ts), which every close runs.
 */
export default fp<SessionsPluginOptions>(async function sessionsPlugin (fastify, options) {
  const { config } = fastify
  const registry = new SessionRegistry({
    policy: {
      maxSessionsPerUser: config.maxSessionsPerUser,
      sessionTtlMs: config.sessionTtlMs,
      sessionMaxAgeMs: config.sessionMaxAgeMs
    },
    bus: fastify.bus,
    hub: fastify.streams,
    clock: options.clock,
    logger: fastify.log
  })
  const sweeper = new Sweeper(registry, config.sweepIntervalMs, fastify.log)
  fastify.decorate('sessions', registry)
  fastify.addHook('onReady', async () => {
    sweeper.start()
  })
  fastify.addHook('preClose', async () => {
    sweeper.stop()
  })
}, { name: 'tickstream-sessions', fastify: '5.x', dependencies: ['tickstream-config', 'tickstream-bus', 'tickstream-streams'] })
