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
/**
 * A command on the commands connection that gets no answer fails after this long. A Redis
 * that stays connected but stops answering would otherwise hold every request that needs it
 * (the rate limiter's count, a publish, a snapshot's cache read) for as long as it lasts.
 */
export const COMMAND_TIMEOUT_MS = 2000
/**
 * How long a close waits for QUIT before dropping the connection. At shutdown it runs after
 * the HTTP server has closed (by SHUTDOWN_GRACE_MS at the latest), and the exit must come
 * within SHUTDOWN_GRACE_MS plus a second (src/server.ts): a Redis that is connected but no
 * longer answers gets half of that second.
 */
const QUIT_TIMEOUT_MS = 500

/**
 * The Redis connections, created here and closed here.
 *
 * Not @fastify/redis: it holds plugin registration until Redis answers, but the contract
 * wants the server up and answering 503 until then. Both clients reconnect forever with a
 * capped back-off, fail commands at once while disconnected and those in flight when the
 * connection drops (no offline queue, no re-sending, so nothing stale is replayed later),
 * and never throw connection errors at the process.
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
      // A command in flight when the connection drops fails rather than being sent again on
      // reconnect: a re-sent SUBSCRIBE would outlive the sessions that wanted it (the
      // subscriber follows `wanted` on 'ready' instead), a re-sent PUBLISH would duplicate a
      // price its publisher was already told failed.
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 100, RECONNECT_MAX_DELAY_MS),
      // Not on the subscriber: its SUBSCRIBEs are re-sent from `wanted` on every 'ready' anyway.
      ...(role === 'commands' ? { commandTimeout: COMMAND_TIMEOUT_MS } : {})
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
