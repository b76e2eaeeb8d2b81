import { Redis } from 'ioredis'
import pino from 'pino'
import { publishToRedis } from './bus/redis-transport.js'
import { systemClock } from './clock.js'
import { ConfigError, loadConfig } from './config.js'
import { SimulatedFeed } from './feed/simulated-feed.js'

/**
 * `npm run feed`: the simulated feed as a separate publisher into Redis, for demos of several
 * instances and for load runs. Uses REDIS_URL, FEED_TICKERS, FEED_RATE and LOG_LEVEL.
 */
function main (): void {
  let config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    /* c8 ignore next 2 -- same ConfigError handling as server.ts, tested there */
    process.stderr.write(`tickstream feed: invalid configuration: ${err instanceof ConfigError ? err.message : String(err)}\n`)
    process.exit(1)
  }
  if (config.redisUrl === undefined) {
    process.stderr.write('tickstream feed: REDIS_URL must be set (the feed publishes into Redis)\n')
    process.exit(1)
  }
  const logger = pino({ level: config.logLevel })
  const redis = new Redis(config.redisUrl, { connectionName: 'tickstream-feed', enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  redis.on('error', (err: Error) => logger.debug({ err }, 'redis connection error'))
  const feed = new SimulatedFeed({
    tickers: config.feedTickers,
    ratePerSecond: config.feedRate,
    publish: async (updates) => await publishToRedis(redis, updates),
    clock: systemClock,
    logger
  })
  feed.start()
  // The feed's timer is unref'd; this keeps the publisher alive until a signal.
  const keepAlive = setInterval(() => {}, 60_000)
  logger.info({ tickers: config.feedTickers.length, ratePerSecond: config.feedRate }, 'publishing the simulated feed into redis')
  const stop = (signal: string): void => {
    logger.info({ signal, published: feed.publishedCount }, 'feed stopping')
    feed.stop()
    clearInterval(keepAlive)
    redis.quit().catch(() => redis.disconnect()).finally(() => process.exit(0))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main()
