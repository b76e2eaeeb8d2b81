import fp from 'fastify-plugin'
import type { Clock } from '../src/clock.js'
import { SimulatedFeed } from '../src/feed/simulated-feed.js'

export interface FeedPluginOptions {
  clock: Clock
}

/** The built-in random-walk feed (`FEED=simulated`), publishing through the bus. */
export default fp<FeedPluginOptions>(async function feedPlugin (fastify, options) {
  const { config, bus } = fastify
  if (config.feed !== 'simulated') return
  const feed = new SimulatedFeed({
    tickers: config.feedTickers,
    ratePerSecond: config.feedRate,
    publish: async (updates) => await bus.publish(updates),
    clock: options.clock,
    logger: fastify.log
  })
  fastify.addHook('onReady', async () => {
    feed.start()
    fastify.log.info({ tickers: config.feedTickers.length, ratePerSecond: config.feedRate }, 'simulated price feed started')
  })
  fastify.addHook('preClose', async () => {
    feed.stop()
  })
}, { name: 'tickstream-feed', fastify: '5.x', dependencies: ['tickstream-config', 'tickstream-bus'] })
