import fp from 'fastify-plugin'
import { InProcessTransport } from '../src/bus/in-process-transport.js'
import { PriceBus } from '../src/bus/price-bus.js'
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
 * The price bus with its ref-counted ticker subscriptions. Embedded mode uses the
 * in-process transport; the Redis transport plugs in behind the same interface.
 */
export default fp<BusPluginOptions>(async function busPlugin (fastify, options) {
  const bus = new PriceBus({
    createTransport: (inbox) => new InProcessTransport(inbox),
    clock: options.clock,
    logger: fastify.log
  })
  fastify.decorate('bus', bus)
  fastify.addHook('onClose', async () => {
    await bus.close()
  })
}, { name: 'tickstream-bus', fastify: '5.x', dependencies: ['tickstream-config'] })
