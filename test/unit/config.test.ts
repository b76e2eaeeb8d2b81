import { once } from 'node:events'
import { createServer } from 'node:net'
import { spawnServer } from '../helpers/server-process.js'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig, type Config, type Env } from '../../src/config.js'

/** Every variable the contract's configuration table names. */
const CONFIG_VARIABLES = [
  'HOST', 'PORT', 'LOG_LEVEL', 'REDIS_URL', 'MAX_SESSIONS_PER_USER', 'MAX_TICKERS_PER_SESSION',
  'SESSION_TTL_MS', 'SESSION_MAX_AGE_MS', 'SWEEP_INTERVAL_MS', 'FLUSH_INTERVAL_MS', 'HEARTBEAT_MS',
  'RETRY_MS', 'SLOW_CONSUMER_MS', 'RATE_LIMIT_MAX', 'RATE_LIMIT_WINDOW_MS', 'FEED', 'FEED_TICKERS',
  'FEED_RATE', 'PUBLISH_TOKEN', 'JWT_SECRET', 'SHUTDOWN_GRACE_MS'
]

interface NumericVariable {
  name: string
  key: keyof Config
  fallback: number
  minimum: 0 | 1
}

/** The numeric rows of the contract's table: default, and whether 0 is allowed. */
const NUMERIC: NumericVariable[] = [
  { name: 'PORT', key: 'port', fallback: 3000, minimum: 0 },
  { name: 'MAX_SESSIONS_PER_USER', key: 'maxSessionsPerUser', fallback: 3, minimum: 1 },
  { name: 'MAX_TICKERS_PER_SESSION', key: 'maxTickersPerSession', fallback: 50, minimum: 1 },
  { name: 'SESSION_TTL_MS', key: 'sessionTtlMs', fallback: 30_000, minimum: 1 },
  { name: 'SESSION_MAX_AGE_MS', key: 'sessionMaxAgeMs', fallback: 86_400_000, minimum: 1 },
  { name: 'SWEEP_INTERVAL_MS', key: 'sweepIntervalMs', fallback: 1000, minimum: 1 },
  { name: 'FLUSH_INTERVAL_MS', key: 'flushIntervalMs', fallback: 100, minimum: 1 },
  { name: 'HEARTBEAT_MS', key: 'heartbeatMs', fallback: 15_000, minimum: 1 },
  { name: 'RETRY_MS', key: 'retryMs', fallback: 3000, minimum: 1 },
  { name: 'SLOW_CONSUMER_MS', key: 'slowConsumerMs', fallback: 10_000, minimum: 1 },
  { name: 'RATE_LIMIT_MAX', key: 'rateLimitMax', fallback: 300, minimum: 0 },
  { name: 'RATE_LIMIT_WINDOW_MS', key: 'rateLimitWindowMs', fallback: 60_000, minimum: 1 },
  { name: 'FEED_RATE', key: 'feedRate', fallback: 50, minimum: 1 },
  { name: 'SHUTDOWN_GRACE_MS', key: 'shutdownGraceMs', fallback: 10_000, minimum: 1 },
  // Beyond the contract, with the same rules.
  { name: 'ACCEPT_DESCRIPTORS', key: 'acceptDescriptors', fallback: 64, minimum: 1 }
]

const CONTRACT_DEFAULT_TICKERS = [
  'AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'BRK.B', 'JPM', 'V',
  'UNH', 'XOM', 'JNJ', 'WMT', 'MA', 'PG', 'AVGO', 'HD', 'COST', 'NFLX'
]

/** Asserts that `env` is refused with a ConfigError about `variable`, named in its message. */
function assertRejects (t: Test, env: Env, variable: string): void {
  let caught: unknown
  try {
    loadConfig(env)
  } catch (err) {
    caught = err
  }
  if (!(caught instanceof ConfigError)) {
    t.fail(`expected a ConfigError about ${variable} for ${JSON.stringify(env)}, got ${String(caught)}`)
    return
  }
  t.equal(caught.variable, variable, `${JSON.stringify(env)} is refused for ${variable}`)
  t.ok(caught.message.includes(variable), `the message names ${variable}: ${caught.message}`)
}

t.test('with an empty environment every setting has its contract default', async (t) => {
  const config = loadConfig({})
  t.equal(config.host, '127.0.0.1')
  t.equal(config.logLevel, 'info')
  t.equal(config.redisUrl, undefined)
  t.equal(config.feed, 'simulated', 'FEED defaults to simulated without REDIS_URL')
  t.strictSame(config.feedTickers, CONTRACT_DEFAULT_TICKERS)
  t.equal(config.publishToken, undefined)
  t.equal(config.jwtSecret, undefined)
  for (const variable of NUMERIC) {
    t.equal(config[variable.key], variable.fallback, `${variable.name} defaults to ${variable.fallback}`)
  }
})

t.test('FEED defaults to none when REDIS_URL is set, and can still be asked for', async (t) => {
  const withRedis = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })
  t.equal(withRedis.redisUrl, 'redis://127.0.0.1:6379')
  t.equal(withRedis.feed, 'none')
  t.equal(loadConfig({ REDIS_URL: 'rediss://cache.example:6380/2' }).feed, 'none', 'rediss:// is Redis too')
  t.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', FEED: 'simulated' }).feed, 'simulated')
  t.equal(loadConfig({ FEED: 'none' }).feed, 'none')
})

t.test('an empty variable counts as unset', async (t) => {
  const env: Record<string, string> = {}
  for (const name of CONFIG_VARIABLES) env[name] = ''
  t.strictSame(loadConfig(env), loadConfig({}), 'all empty is the same as all unset')
  t.equal(loadConfig({ REDIS_URL: '', FEED: '' }).feed, 'simulated', 'an empty REDIS_URL is no Redis')
})

t.test('numbers and keywords are trimmed; a blank one is set, to nothing that parses, and refused', async (t) => {
  t.equal(loadConfig({ PORT: ' 8080 ' }).port, 8080)
  t.equal(loadConfig({ FEED: ' none ' }).feed, 'none')
  t.equal(loadConfig({ LOG_LEVEL: '\tdebug\n' }).logLevel, 'debug')
  for (const name of [...NUMERIC.map((variable) => variable.name), 'SHED_EVENT_LOOP_DELAY_MS', 'LOG_LEVEL', 'FEED']) {
    assertRejects(t, { [name]: '  ' }, name)
  }
})

t.test('PUBLISH_TOKEN: the spaces around it are trimmed; a blank token, or whitespace inside, which no bearer token can carry, is refused', async (t) => {
  t.equal(loadConfig({ PUBLISH_TOKEN: ' publish-secret \n' }).publishToken, 'publish-secret')
  assertRejects(t, { PUBLISH_TOKEN: '   ' }, 'PUBLISH_TOKEN')
  assertRejects(t, { PUBLISH_TOKEN: 'publish secret' }, 'PUBLISH_TOKEN')
  assertRejects(t, { PUBLISH_TOKEN: 'publish\tsecret' }, 'PUBLISH_TOKEN')
})

t.test('string settings are taken as given', async (t) => {
  const config = loadConfig({
    HOST: '0.0.0.0',
    LOG_LEVEL: 'debug',
    PUBLISH_TOKEN: 'publish-secret',
    JWT_SECRET: 'jwt-secret'
  })
  t.equal(config.host, '0.0.0.0')
  t.equal(config.logLevel, 'debug')
  t.equal(config.publishToken, 'publish-secret')
  t.equal(config.jwtSecret, 'jwt-secret')
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(loadConfig({ LOG_LEVEL: level }).logLevel, level, `LOG_LEVEL ${level} is a pino level`)
  }
})

t.test('numeric variables', async (t) => {
  for (const variable of NUMERIC) {
    t.test(variable.name, async (t) => {
      t.equal(loadConfig({ [variable.name]: '7' })[variable.key], 7, 'a valid integer is used')
      t.equal(loadConfig({ [variable.name]: '1' })[variable.key], 1, '1 is always allowed')
      if (variable.minimum === 0) {
        t.equal(loadConfig({ [variable.name]: '0' })[variable.key], 0, '0 is allowed for this one')
      } else {
        assertRejects(t, { [variable.name]: '0' }, variable.name)
      }
      for (const bad of ['-1', '-100', 'abc', 'ten', '1.5', '0.5', '12abc', '1,000', '0x10', 'NaN', 'Infinity']) {
        assertRejects(t, { [variable.name]: bad }, variable.name)
      }
    })
  }
})

t.test('ACCEPT_DESCRIPTORS is at most 256: each descriptor is woken for every new connection', async (t) => {
  t.equal(loadConfig({ ACCEPT_DESCRIPTORS: '256' }).acceptDescriptors, 256)
  assertRejects(t, { ACCEPT_DESCRIPTORS: '257' }, 'ACCEPT_DESCRIPTORS')
})

t.test('a non-numeric setting with a bad value is refused, naming the variable', async (t) => {
  assertRejects(t, { FEED: 'bogus' }, 'FEED')
  assertRejects(t, { FEED: 'Simulated' }, 'FEED')
  assertRejects(t, { LOG_LEVEL: 'verbose' }, 'LOG_LEVEL')
  assertRejects(t, { LOG_LEVEL: 'warning' }, 'LOG_LEVEL')
  assertRejects(t, { REDIS_URL: 'not a url' }, 'REDIS_URL')
  assertRejects(t, { REDIS_URL: '127.0.0.1:6379' }, 'REDIS_URL')
  assertRejects(t, { REDIS_URL: 'http://127.0.0.1:6379' }, 'REDIS_URL')
  assertRejects(t, { FEED_TICKERS: 'AAPL,not valid,MSFT' }, 'FEED_TICKERS')
  assertRejects(t, { FEED_TICKERS: 'AAPL,-LEADING' }, 'FEED_TICKERS')
  assertRejects(t, { FEED_TICKERS: 'AAPL,ABCDEFGHIJKLMNOP' }, 'FEED_TICKERS')
  assertRejects(t, { FEED_TICKERS: ' , ,' }, 'FEED_TICKERS')
})

t.test('the first invalid variable is reported even when others are valid', async (t) => {
  assertRejects(t, { HOST: '0.0.0.0', PORT: '8080', SESSION_TTL_MS: 'soon' }, 'SESSION_TTL_MS')
})

t.test('FEED_TICKERS is trimmed, upper-cased and deduplicated in order', async (t) => {
  const config = loadConfig({ FEED_TICKERS: ' aapl , msft,AAPL,brk.b,  Msft ,nvda' })
  t.strictSame(config.feedTickers, ['AAPL', 'MSFT', 'BRK.B', 'NVDA'])
  t.strictSame(loadConfig({ FEED_TICKERS: 'tsla' }).feedTickers, ['TSLA'])
})

t.test('the default FEED_TICKERS list is a fresh copy each time', async (t) => {
  const first = loadConfig({})
  first.feedTickers.push('ZZZ')
  t.strictSame(loadConfig({}).feedTickers, CONTRACT_DEFAULT_TICKERS)
})

/** The real entry point in a child process; see test/helpers/server-process.ts. */
async function runServer (extraEnv: Record<string, string>): Promise<{ code: number | null, stderr: string }> {
  const server = spawnServer({ LOG_LEVEL: 'silent', ...extraEnv })
  const { code } = await server.exited
  return { code, stderr: server.stderr() }
}

t.test('the server refuses to start with a negative PORT, naming it', async (t) => {
  const { code, stderr } = await runServer({ PORT: '-1' })
  t.not(code, 0, 'exit status is non-zero')
  t.not(code, null, 'it exited by itself rather than being killed')
  t.ok(stderr.includes('PORT'), `stderr names PORT: ${stderr}`)
})

t.test('a PORT in use stops the server at start, naming HOST and PORT', async (t) => {
  const occupied = createServer()
  occupied.listen(0, '127.0.0.1')
  await once(occupied, 'listening')
  t.teardown(() => occupied.close())
  const address = occupied.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const { code, stderr } = await runServer({ PORT: String(address.port) })
  t.equal(code, 1, 'exit status 1')
  t.match(stderr, `cannot listen on HOST=127.0.0.1 PORT=${address.port}: listen EADDRINUSE`, `stderr names both: ${stderr}`)
})

t.test('the server refuses to start with an unknown FEED, naming it', async (t) => {
  const { code, stderr } = await runServer({ FEED: 'bogus' })
  t.not(code, 0, 'exit status is non-zero')
  t.not(code, null, 'it exited by itself rather than being killed')
  t.ok(stderr.includes('FEED'), `stderr names FEED: ${stderr}`)
})
