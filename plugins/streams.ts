import fp from 'fastify-plugin'
import type { Clock } from '../src/clock.js'
import { StreamHub } from '../src/stream/stream-hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    streams: StreamHub
  }
}

export interface StreamsPluginOptions {
  clock: Clock
  random: () => number
}

/** What all SSE streams share: the flush wheel, heartbeats, counters, open responses. */
export default fp<StreamsPluginOptions>(async function streamsPlugin (fastify, options) {
  const { config } = fastify
  const hub = new StreamHub({
    settings: {
      flushIntervalMs: config.flushIntervalMs,
      heartbeatMs: config.heartbeatMs,
      retryMs: config.retryMs,
      slowConsumerMs: config.slowConsumerMs
    },
    clock: options.clock,
    random: options.random,
    logger: fastify.log
  })
  fastify.decorate('streams', hub)
  fastify.addHook('onClose', async () => {
    hub.stop()
  })
}, { name: 'tickstream-streams', fastify: '5.x', dependencies: ['tickstream-config'] })
