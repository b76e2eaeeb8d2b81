import { STATUS_CODES } from 'node:http'
import { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import apiHeadersPlugin from '../plugins/api-headers.js'
import authPlugin from '../plugins/auth.js'
import busPlugin from '../plugins/bus.js'
import configPlugin from '../plugins/config.js'
import errorsPlugin from '../plugins/errors.js'
import feedPlugin from '../plugins/feed.js'
import loadSheddingPlugin, { type LoadSheddingOptions } from '../plugins/load-shedding.js'
import metricsPlugin from '../plugins/metrics.js'
import pagePlugin from '../plugins/page.js'
import sessionsPlugin from '../plugins/sessions.js'
import shutdownPlugin from '../plugins/shutdown.js'
import streamsPlugin from '../plugins/streams.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import redisPlugin, { type RedisLiveness } from '../plugins/redis.js'
import healthRoutes from '../routes/health.js'
import pricesRoutes from '../routes/prices.js'
import sessionsRoutes from '../routes/sessions.js'
import streamRoutes from '../routes/stream.js'
import { monotonicClock, systemClock, type Clock } from './clock.js'
import type { Config } from './config.js'
import { isLevelEnabled } from './logger.js'
import { LazyRequestLogger } from './request-logger.js'

export interface AppOptions {
  config: Config
  /**
   * The wall clock (session times, deadlines, `ts`); injected by tests that move time. What
   * spaces flushes and heartbeats and times silences is `monotonicClock`, which a wall clock
   * stepped back cannot stall.
   */
  clock?: Clock
  /** Injected by tests that pin randomness (shutdown retry spread); Math.random otherwise. */
  random?: () => number
  /** Overload thresholds; production defaults unless a test lowers them. */
  loadShedding?: LoadSheddingOptions
  /** How Redis connections are checked for silent death; production defaults unless a test shortens them. */
  redisLiveness?: RedisLiveness
}

/** Default body limit; routes that take more (POST /prices) raise it for themselves. */
const BODY_LIMIT_BYTES = 16 * 1024

/**
 * Errors Fastify raises before any route runs. An overlong or badly escaped session id is
 * still just an unknown session (404); everything else keeps its status, in the same body
 * shape as every other error.
 */
function answerFrameworkError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const unknownSession = (error.code === 'FST_ERR_MAX_PARAM_LENGTH' || error.code === 'FST_ERR_BAD_URL') &&
    request.url.startsWith('/sessions/')
  const statusCode = unknownSession ? 404 : error.statusCode ?? 400
  const message = unknownSession ? 'session not found' : error.message
  // Routing failed, so no onRequest hook ran: the API's nosniff (api-headers.ts) is set here.
  void reply.code(statusCode).header('x-content-type-options', 'nosniff').send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message })
}

/** `/sessions/<id>...`: a session id is a capability, so logs keep only its first 8 characters. */
export function redactSessionIds (url: string): string {
  return url.replace(/^\/sessions\/([^/?#]{8})[^/?#]*/, '/sessions/$1…')
}

/**
 * pino JSON with request ids; request lines show URLs with session ids cut short. Pretty
 * printing only for a person at a terminal, never in production logs.
 */
function loggerOptions (config: Config): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    serializers: {
      req: (request: { method: string, url: string, ip?: string }) => ({ method: request.method, url: redactSessionIds(request.url), remoteAddress: request.ip })
    },
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {})
  }
}

/**
 * Fastify's two request lines, "incoming request" and "request completed", with their fields
 * built only when `info` is on. The default controller builds them (and reads the clock for
 * the response time) on every request, for the logger to drop at `warn`: 11-18 k instructions
 * per registration (BENCHMARKS.md, session 9). Same lines at the same levels otherwise; a
 * response that failed is always passed on, since it logs at `error`. (With a controller set,
 * Fastify ignores its top-level `disableRequestLogging` and `requestIdLogLabel` options; the
 * service sets neither.)
 */
export class LevelCheckedLogController extends LogController {
  override incomingRequest (request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (isLevelEnabled(request.log, 'info')) super.incomingRequest(request, reply, metadata)
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    const failed = error !== null && error !== undefined
    if (failed || isLevelEnabled(reply.log, 'info')) super.requestCompleted(error, request, reply, metadata)
  }
}

/** Each request's logger: a pino child made on its first line (see request-logger.ts). */
const childLoggerFactory: FastifyServerOptions['childLoggerFactory'] = (logger: FastifyBaseLogger, bindings, options) => {
  if (options.level !== undefined || options.serializers !== undefined) return logger.child(bindings, options)
  return new LazyRequestLogger<FastifyBaseLogger>(logger, bindings)
}

/**
 * Options for the Fastify instance that hosts the app. Timeouts bound how long a client may
 * take to *send* a request; they never cut a long-lived response such as a stream.
 */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: loggerOptions(config),
    childLoggerFactory,
    logController: new LevelCheckedLogController(),
    bodyLimit: BODY_LIMIT_BYTES,
    // Router lengths count UTF-16 units: room for any 1000-character id, even all emoji.
    routerOptions: { maxParamLength: 4096 },
    frameworkErrors: answerFrameworkError,
    // The contract forbids coercion ("12" is not a number) and silently dropping unknown keys.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true } },
    requestTimeout: 30_000,
    keepAliveTimeout: 72_000,
    connectionTimeout: 0,
    return503OnClosing: true,
    forceCloseConnections: 'idle'
  }
}

/**
 * The whole service as one plugin; `server.ts` (or a test) hosts it and decides on listening.
 * Not encapsulated (fastify-plugin), so the host sees its decorators (`drain`, `sessions`...).
 */
async function tickstreamApp (fastify: FastifyInstance, options: AppOptions): Promise<void> {
  const clock = options.clock ?? systemClock
  const random = options.random ?? Math.random
  await fastify.register(configPlugin, { config: options.config, clock })
  await fastify.register(errorsPlugin)
  await fastify.register(apiHeadersPlugin)
  await fastify.register(redisPlugin, { clock: monotonicClock, liveness: options.redisLiveness })
  await fastify.register(busPlugin, { clock })
  await fastify.register(streamsPlugin, { clock: monotonicClock, random })
  await fastify.register(sessionsPlugin, { clock })
  await fastify.register(shutdownPlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(feedPlugin, { clock })
  await fastify.register(authPlugin)
  await fastify.register(rateLimitPlugin)
  await fastify.register(loadSheddingPlugin, options.loadShedding ?? { maxEventLoopDelayMs: options.config.shedEventLoopDelayMs })
  await fastify.register(pagePlugin)

  await fastify.register(healthRoutes)
  await fastify.register(sessionsRoutes)
  await fastify.register(streamRoutes)
  await fastify.register(pricesRoutes)
}

export default fp(tickstreamApp, { name: 'tickstream', fastify: '5.x' })
