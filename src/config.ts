import { normalizeTicker } from './price.js'

/**
 * The whole runtime configuration, parsed and validated once at start.
 *
 * Hand-written rather than env-schema/@fastify/env because the contract's rules are not
 * JSON-schema shaped: an empty variable counts as unset, `FEED` defaults differently with
 * and without Redis, and `FEED_TICKERS` must be normalized like any ticker. The core must
 * not import Fastify either. Every error names the variable it is about.
 */
export interface Config {
  host: string
  port: number
  logLevel: LogLevel
  redisUrl: string | undefined
  maxSessionsPerUser: number
  maxTickersPerSession: number
  sessionTtlMs: number
  sessionMaxAgeMs: number
  sweepIntervalMs: number
  flushIntervalMs: number
  heartbeatMs: number
  retryMs: number
  slowConsumerMs: number
  rateLimitMax: number
  rateLimitWindowMs: number
  feed: FeedMode
  feedTickers: string[]
  feedRate: number
  publishToken: string | undefined
  jwtSecret: string | undefined
  shutdownGraceMs: number
  /** Beyond the contract: mean event-loop delay above which new work is refused; 0 = never. */
  shedEventLoopDelayMs: number
  /**
   * Beyond the contract: descriptors of the listening socket, the server's own included
   * (src/extra-acceptors.ts); 1 = the server's own only.
   */
  acceptDescriptors: number
}

export type FeedMode = 'simulated' | 'none'

/**
 * Descriptors of the listening socket, the server's own included (src/extra-acceptors.ts).
 * With 64, a burst of 1500 connections on a busy server is accepted within a few seconds
 * instead of 20 or more. The price: every descriptor is woken for each new connection, and on
 * a server that is not busy all but one of their accept() calls fail, which made a new
 * connection with one tiny request cost 1.6-1.9x the CPU (`npm run load:accept-cost`, about
 * 60 us more); on a busy server each wake-up accepts a waiting connection instead.
 */
export const DEFAULT_ACCEPT_DESCRIPTORS = 64
/** Each descriptor is woken for every new connection: past this, the wake-ups cost more than they bring. */
export const MAX_ACCEPT_DESCRIPTORS = 256

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export const DEFAULT_FEED_TICKERS = [
  'AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'BRK.B', 'JPM', 'V',
  'UNH', 'XOM', 'JNJ', 'WMT', 'MA', 'PG', 'AVGO', 'HD', 'COST', 'NFLX'
]

export class ConfigError extends Error {
  constructor (readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`)
    this.name = 'ConfigError'
  }
}

export type Env = Readonly<Record<string, string | undefined>>

/** An empty variable counts as unset (contract). */
function read (env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

/**
 * A number's, a keyword's or a token's text, trimmed: a stray space from a `.env` file is not
 * an error. Only an empty variable is unset; a blank one is set, to nothing that parses.
 */
function readTrimmed (env: Env, name: string): string | undefined {
  return read(env, name)?.trim()
}

const MAX_PORT = 65535
/**
 * Node clamps a timer delay above 2^31-1 ms to 1 ms, and browsers do the same with `retry:`:
 * a longer value would silently mean "now".
 */
const MAX_TIMER_MS = 2_147_483_647
/**
 * The session lifetimes are never a timer's delay, only added to a creation time, so they may
 * exceed MAX_TIMER_MS (a 30-day SESSION_MAX_AGE_MS is 2.6e9). Their bound keeps the expiry a
 * valid Date (at most 8.64e15 ms after 1970) for any creation time before the year 22 000;
 * past it, `expiresAt` could not be written as ISO 8601 and every registration would fail.
 */
const MAX_SESSION_LIFETIME_MS = 8_000_000_000_000_000
/**
 * A shutdown's `retry:` is spread over [RETRY_MS, RETRY_MS + max(RETRY_MS, 5 s)): this bound
 * keeps even the spread hint a delay a browser's timer can wait.
 */
const MAX_RETRY_MS = Math.floor(MAX_TIMER_MS / 2)
/** Past this the simulated feed would build millions of prices per tick and block the loop. */
const MAX_FEED_RATE = 100_000

function integer (env: Env, name: string, fallback: number, minimum: 0 | 1, maximum = Number.MAX_SAFE_INTEGER): number {
  const text = readTrimmed(env, name)
  if (text === undefined) return fallback
  if (!/^\d+$/.test(text)) {
    throw new ConfigError(name, `must be a non-negative integer, got ${JSON.stringify(env[name])}`)
  }
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value > maximum) {
    throw new ConfigError(name, `must be at most ${maximum}, got ${JSON.stringify(env[name])}`)
  }
  if (value < minimum) {
    throw new ConfigError(name, `must be at least ${minimum}, got ${JSON.stringify(env[name])}`)
  }
  return value
}

function oneOf<T extends string> (env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const text = readTrimmed(env, name)
  if (text === undefined) return fallback
  const match = allowed.find((candidate) => candidate === text)
  if (match === undefined) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(env[name])}`)
  }
  return match
}

/**
 * Presented as `Authorization: Bearer <token>`: HTTP drops the spaces around a header value,
 * and a bearer token has none inside, so a token with whitespace could never be presented.
 * Surrounding whitespace (a `.env` accident) is trimmed; a blank token, or whitespace inside
 * one, is refused.
 */
function publishToken (env: Env): string | undefined {
  const token = readTrimmed(env, 'PUBLISH_TOKEN')
  if (token !== undefined && (token === '' || /\s/.test(token))) {
    throw new ConfigError('PUBLISH_TOKEN', 'must be a bearer token: not blank, no whitespace inside')
  }
  return token
}

function feedTickers (env: Env): string[] {
  const raw = read(env, 'FEED_TICKERS')
  if (raw === undefined) return [...DEFAULT_FEED_TICKERS]
  const tickers = new Set<string>()
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue
    const ticker = normalizeTicker(part)
    if (ticker === undefined) {
      throw new ConfigError('FEED_TICKERS', `${JSON.stringify(part)} is not a valid ticker symbol`)
    }
    tickers.add(ticker)
  }
  if (tickers.size === 0) throw new ConfigError('FEED_TICKERS', 'lists no ticker')
  return [...tickers]
}

function redisUrl (env: Env): string | undefined {
  const raw = read(env, 'REDIS_URL')
  if (raw === undefined) return undefined
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError('REDIS_URL', `is not a URL, got ${JSON.stringify(raw)}`)
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError('REDIS_URL', `must start with redis:// or rediss://, got ${JSON.stringify(raw)}`)
  }
  return raw
}

export function loadConfig (env: Env = process.env): Config {
  const redis = redisUrl(env)
  return {
    host: read(env, 'HOST') ?? '127.0.0.1',
    port: integer(env, 'PORT', 3000, 0, MAX_PORT),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    redisUrl: redis,
    maxSessionsPerUser: integer(env, 'MAX_SESSIONS_PER_USER', 3, 1),
    maxTickersPerSession: integer(env, 'MAX_TICKERS_PER_SESSION', 50, 1),
    sessionTtlMs: integer(env, 'SESSION_TTL_MS', 30_000, 1, MAX_SESSION_LIFETIME_MS),
    sessionMaxAgeMs: integer(env, 'SESSION_MAX_AGE_MS', 86_400_000, 1, MAX_SESSION_LIFETIME_MS),
    sweepIntervalMs: integer(env, 'SWEEP_INTERVAL_MS', 1000, 1, MAX_TIMER_MS),
    flushIntervalMs: integer(env, 'FLUSH_INTERVAL_MS', 100, 1, MAX_TIMER_MS),
    heartbeatMs: integer(env, 'HEARTBEAT_MS', 15_000, 1, MAX_TIMER_MS),
    retryMs: integer(env, 'RETRY_MS', 3000, 1, MAX_RETRY_MS),
    slowConsumerMs: integer(env, 'SLOW_CONSUMER_MS', 10_000, 1, MAX_TIMER_MS),
    rateLimitMax: integer(env, 'RATE_LIMIT_MAX', 300, 0),
    // Not a timer: the window is a start time compared with the clock, or a Redis key's PEXPIRE.
    rateLimitWindowMs: integer(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1),
    feed: oneOf<FeedMode>(env, 'FEED', ['simulated', 'none'], redis === undefined ? 'simulated' : 'none'),
    feedTickers: feedTickers(env),
    feedRate: integer(env, 'FEED_RATE', 50, 1, MAX_FEED_RATE),
    publishToken: publishToken(env),
    jwtSecret: read(env, 'JWT_SECRET'),
    // The process-level deadline adds a margin on top, which must still fit a timer.
    shutdownGraceMs: integer(env, 'SHUTDOWN_GRACE_MS', 10_000, 1, MAX_TIMER_MS - 1000),
    shedEventLoopDelayMs: integer(env, 'SHED_EVENT_LOOP_DELAY_MS', 1000, 0, MAX_TIMER_MS),
    acceptDescriptors: integer(env, 'ACCEPT_DESCRIPTORS', DEFAULT_ACCEPT_DESCRIPTORS, 1, MAX_ACCEPT_DESCRIPTORS)
  }
}
