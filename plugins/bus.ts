import fp from 'fastify-plugin'
import { InProcessTransport } from '../src/bus/in-process-transport.js'
import { PriceBus } from '../src/bus/price-bus.js'
import { RedisTransport } from '../src/bus/redis-transport.js'
import type { Clock } from '../src/clock.js'

declare module 'fastify' {
  interface FastifyInstance {
    bus: PriceBus
  }
}

export interface BusPluginOptions {
  clock: Clock
}

/**
 * The price bus with its ref-counted ticker subscriptions: over Redis pub/sub when
 * `REDIS_URL` is set, in-process otherwise. The rest of the app cannot tell which.
 */
export default fp<BusPluginOptions>(async function busPlugin (fastify, options) {
  const { redis } = fastify
  const bus = new PriceBus({
    createTransport: (inbox) => redis === undefined
      ? new InProcessTransport(inbox)
      : new RedisTransport(inbox, { ...redis, clock: options.clock, logger: fastify.log }),
    clock: options.clock,
    logger: fastify.log
  })
  fastify.decorate('bus', bus)
  fastify.addHook('onClose', async () => {
    await bus.close()
  })
}, { name: 'tickstream-bus', fastify: '5.x', dependencies: ['tickstream-config', 'tickstream-redis'] })
