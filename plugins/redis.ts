import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import type { Clock } from '../src/clock.js'
import { RateLimitedWarning } from '../src/logger.js'

export interface RedisClients {
  /** Commands: publishing, the latest-price cache. */
  commands: Redis
  /** The one connection in subscriber mode (never one per ticker). */
  subscriber: Redis
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The Redis connections in Redis mode (`REDIS_URL` set); undefined in embedded mode. */
    redis: RedisClients | undefined
  }
}

export interface RedisPluginOptions {
  clock: Clock
}

const RECONNECT_MAX_DELAY_MS = 2000
const QUIT_TIMEOUT_MS = 1000

/**
 * The Redis connections, created here and closed here.
 *
 * Not @fastify/redis: it holds plugin registration until Redis answers, but the contract
 * wants the server up and answering 503 until then. Both clients reconnect forever with a
 * capped back-off, fail commands at once while disconnected (no offline queue, so nothing
 * stale is replayed later), and never throw connection errors at the process.
 */
export default fp<RedisPluginOptions>(async function redisPlugin (fastify, options) {
  const url = fastify.config.redisUrl
  if (url === undefined) {
    fastify.decorate('redis', undefined)
    return
  }
  const warning = new RateLimitedWarning(fastify.log, 10_000, options.clock)
  const connect = (role: keyof RedisClients): Redis => {
    const client = new Redis(url, {
      connectionName: `tickstream-${role}`,
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 100, RECONNECT_MAX_DELAY_MS)
    })
    client.on('error', (err: Error) => warning.warn({ err, role }, 'redis connection error'))
    client.on('ready', () => fastify.log.info({ role }, 'redis connection ready'))
    return client
  }
  const clients: RedisClients = { commands: connect('commands'), subscriber: connect('subscriber') }
  fastify.decorate('redis', clients)
  fastify.addHook('onClose', async () => {
    await Promise.all([closeClient(clients.commands), closeClient(clients.subscriber)])
  })
}, { name: 'tickstream-redis', fastify: '5.x', dependencies: ['tickstream-config'] })

/** QUIT when connected (lets pending replies arrive), otherwise just drop the connection. */
async function closeClient (client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  const timeout = setTimeout(() => client.disconnect(), QUIT_TIMEOUT_MS)
  try {
    await client.quit()
  } catch {
    client.disconnect()
  } finally {
    clearTimeout(timeout)
  }
}
