import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface ConfigPluginOptions {
  config: Config
}

/** The validated configuration, parsed once by the caller (server.ts or the test helper). */
export default fp<ConfigPluginOptions>(async function configPlugin (fastify, options) {
  fastify.decorate('config', options.config)
}, { name: 'tickstream-config', fastify: '5.x' })
