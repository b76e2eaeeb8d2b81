import fp from 'fastify-plugin'
import { Redis, ReplyError } from 'ioredis'
import type { Clock } from '../src/clock.js'
import { RateLimitedWarning } from '../src/logger.js'

export interface RedisClients {
  /** Commands: publishing, the latest-price cache. */
  commands: Redis
  /** The one connection in subscriber mode (never one per ticker). */
  subscriber: Redis
  /** Connections dropped because they went silent (the liveness probe below). */
  readonly counters: { silentConnectionsDropped: number }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The Redis connections in Redis mode (`REDIS_URL` set); undefined in embedded mode. */
    redis: RedisClients | undefined
  }
}

export interface RedisPluginOptions {
  /** Times silences (a handshake's) and rate-limits warnings: a clock that never goes back. */
  clock: Clock
  /** Tests shorten it; production uses DEFAULT_LIVENESS. */
  liveness?: RedisLiveness
}

export interface RedisLiveness {
  /** How often a ready connection is PINGed. */
  intervalMs: number
  /** How long a PING may go unanswered before the connection counts as lost. */
  timeoutMs: number
}

/**
 * A connection that dies without a FIN or an RST (a NAT or a load balancer that forgot it, a
 * host that vanished) raises nothing: the subscriber only listens, so it would wait for
 * messages forever while /ready stayed 200. Each connection is PINGed every interval, and
 * one that stays silent for the timeout is destroyed: ioredis reconnects, the transport
 * resubscribes, and open streams resume. The timeout is longer than COMMAND_TIMEOUT_MS: a
 * Redis that stalls for a moment (a fork, a slow command) fails a few commands with a 503,
 * but is not dropped by every instance at once.
 */
const DEFAULT_LIVENESS: RedisLiveness = { intervalMs: 5000, timeoutMs: 5000 }

const RECONNECT_MAX_DELAY_MS = 2000
/**
 * A command on the commands connection that gets no answer fails after this long. A Redis
 * that stays connected but stops answering would otherwise hold every request that needs it
 * (the rate limiter's count, a publish, a snapshot's cache read) for as long as it lasts.
 */
const COMMAND_TIMEOUT_MS = 2000
/**
 * How long a close waits for QUIT before dropping the connection. At shutdown it runs after
 * the HTTP server has closed (by SHUTDOWN_GRACE_MS at the latest), and the exit must come
 * within SHUTDOWN_GRACE_MS plus a second (src/server.ts): a Redis that is connected but no
 * longer answers gets a quarter of that second, which leaves the rest to a busy machine: a
 * healthy Redis answers QUIT within a millisecond.
 */
const QUIT_TIMEOUT_MS = 250

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
  const connect = (role: 'commands' | 'subscriber'): Redis => {
    const client = new Redis(url, {
      connectionName: `tickstream-${role}`,
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 100, RECONNECT_MAX_DELAY_MS),
      // Commands only. A command left unanswered by a dropped connection is not sent again
      // on reconnect (a PUBLISH could land long after its publisher got a 503); ioredis then
      // never settles it, so the timeout is what fails it. The subscriber keeps ioredis'
      // re-sending, which settles its commands, and rebuilds its subscriptions from
      // `wanted` after every reconnect (src/bus/redis-transport.ts).
      ...(role === 'commands' ? { commandTimeout: COMMAND_TIMEOUT_MS, autoResendUnfulfilledCommands: false } : {})
    })
    client.on('error', (err: Error) => warning.warn({ err, role }, 'redis connection error'))
    client.on('ready', () => fastify.log.info({ role }, 'redis connection ready'))
    return client
  }
  const clients: RedisClients = { commands: connect('commands'), subscriber: connect('subscriber'), counters: { silentConnectionsDropped: 0 } }
  const liveness = options.liveness ?? DEFAULT_LIVENESS
  // Its own limiter: a burst of connection errors must not hide these.
  const silentWarning = new RateLimitedWarning(fastify.log, 10_000, options.clock)
  const stopProbes = (['commands', 'subscriber'] as const).map((role) => probeLiveness(clients[role], liveness, options.clock, () => {
    clients.counters.silentConnectionsDropped++
    silentWarning.warn({ role, timeoutMs: liveness.timeoutMs }, 'redis connection silent while a PING was pending; reconnecting')
  }))
  fastify.decorate('redis', clients)
  fastify.addHook('onClose', async () => {
    for (const stop of stopProbes) stop()
    await Promise.all([closeClient(clients.commands), closeClient(clients.subscriber)])
  })
}, { name: 'tickstream-redis', fastify: '5.x', dependencies: ['tickstream-config'] })

/**
 * Watches `client` for silence, every interval:
 * - a ready connection is PINGed, and counts as lost when not one byte arrives from Redis
 *   during the timeout after it. Any byte is life: the PONG, a message ahead of it on a busy
 *   subscriber, an error reply (BUSY, LOADING), or a PONG that came after the commands
 *   connection's own 2 s timeout had failed the PING;
 * - a connection stuck in its handshake (TCP up, status `connect`: ioredis has no timeout for
 *   that step) counts as lost when nothing arrives on it for the timeout.
 * The verdict on a PING waits for the next poll of the event loop, so that input which came
 * in while this process itself stalled is read first. A lost connection is destroyed (that
 * one only: a reconnect may have replaced it) and ioredis makes it again. Returns the
 * function that stops the probe.
 */
function probeLiveness (client: Redis, liveness: RedisLiveness, clock: Clock, onLost: () => void): () => void {
  let stopped = false
  /** The PING in flight: the connection it went out on, its bytes read then, its timer. */
  let pending: { stream: Redis['stream'], bytesSeen: number, timer: NodeJS.Timeout } | undefined
  /** A handshake under watch: its connection, when its bytes read were last seen to change. */
  let handshake: { stream: Redis['stream'], bytesSeen: number, since: number } | undefined

  const lose = (stream: Redis['stream']): void => {
    onLost()
    stream.destroy()
  }
  const settle = (entry: NonNullable<typeof pending>): void => {
    clearTimeout(entry.timer)
    if (pending === entry) pending = undefined
  }
  const ping = (stream: Redis['stream']): void => {
    const entry = {
      stream,
      bytesSeen: stream.bytesRead,
      timer: setTimeout(() => setImmediate(() => {
        if (stopped || pending !== entry) return
        pending = undefined
        // Replaced or closed meanwhile (the connection in its place gets a probe of its own),
        // or alive.
        if (client.stream !== stream || stream.destroyed || stream.bytesRead !== entry.bytesSeen) return
        lose(stream)
      }), liveness.timeoutMs)
    }
    entry.timer.unref()
    if (pending !== undefined) clearTimeout(pending.timer)
    pending = entry
    // A rejection proves nothing either way (the commands connection's own timeout, a closed
    // connection): the bytes decide.
    client.ping().then(() => settle(entry), (err: unknown) => { if (err instanceof ReplyError) settle(entry) })
  }
  const watchHandshake = (stream: Redis['stream']): void => {
    const now = clock()
    if (handshake?.stream !== stream || handshake.bytesSeen !== stream.bytesRead) {
      handshake = { stream, bytesSeen: stream.bytesRead, since: now }
    } else if (now - handshake.since >= liveness.timeoutMs) {
      handshake = undefined
      lose(stream)
    }
  }

  const interval = setInterval(() => {
    if (stopped) return
    if (client.status === 'connect') {
      watchHandshake(client.stream)
      return
    }
    handshake = undefined
    if (client.status !== 'ready' || pending?.stream === client.stream) return
    ping(client.stream)
  }, liveness.intervalMs)
  // The probes alone must not keep a process alive.
  interval.unref()
  return () => {
    stopped = true
    clearInterval(interval)
    if (pending !== undefined) clearTimeout(pending.timer)
  }
}

/** QUIT when connected (lets pending replies arrive), otherwise just drop the connection. */
async function closeClient (client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    dropConnection(client)
    return
  }
  const timeout = setTimeout(() => dropConnection(client), QUIT_TIMEOUT_MS)
  try {
    await client.quit()
  } catch {
    dropConnection(client)
  } finally {
    clearTimeout(timeout)
  }
}

/**
 * Closes the connection now. ioredis' `disconnect()` alone only half-closes the socket, and
 * destroys it 2 s later (its `disconnectTimeout`) unless Redis closes its side, which a Redis
 * that answers nothing never does: an unanswered QUIT then settled only after those 2 s, and
 * the exit came past its deadline, with status 1. A destroyed socket settles it at once.
 */
function dropConnection (client: Redis): void {
  // Already closed (the QUIT that the timeout's drop rejected): disconnecting again would only
  // start ioredis' 2 s timer on a dead socket.
  if (client.status === 'end') return
  client.disconnect()
  client.stream?.destroy()
}
