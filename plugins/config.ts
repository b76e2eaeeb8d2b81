import fp from 'fastify-plugin'
import type { Clock } from '../src/clock.js'
import type { Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    /** Epoch ms; the system clock unless a test moves time. */
    clock: Clock
  }
}

export interface ConfigPluginOptions {
  config: Config
  clock: Clock
}

/** The validated configuration, parsed once by the caller (server.ts or the test helper), and the clock. */
export default fp<ConfigPluginOptions>(async function configPlugin (fastify, options) {
  fastify.decorate('config', options.config)
  fastify.decorate('clock', options.clock)
}, { name: 'tickstream-config', fastify: '5.x' })
