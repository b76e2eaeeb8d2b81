import type { FastifyInstance } from 'fastify'
import Fastify from 'fastify'
import type { Test } from 'tap'
import tickstreamApp, { serverOptions, type AppOptions } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'

export interface TestApp {
  app: FastifyInstance
  config: Config
  baseUrl: string
}

/**
 * Quiet, no built-in feed, any free port, no rate limit (its counters live in the shared
 * Redis in Redis mode, where parallel test files would trip over each other); a test
 * overrides what it is about.
 */
const TEST_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  PORT: '0',
  LOG_LEVEL: 'silent',
  FEED: 'none',
  RATE_LIMIT_MAX: '0'
}

export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({ ...TEST_ENV, ...env })
}

export interface BuildOptions extends Omit<AppOptions, 'config'> {
  /** Runs before the app is ready, e.g. to add a test hook. */
  beforeReady?: (app: FastifyInstance) => void
  /** Receives the pino JSON log lines (at LOG_LEVEL, or info when the test's env leaves it silent). */
  logLines?: string[]
}

/**
 * Builds the app exactly as server.ts does and listens on a real socket; closes it when the
 * test ends. The one way tests get an app.
 */
export async function startApp (t: Test, env: Record<string, string> = {}, options: BuildOptions = {}): Promise<TestApp> {
  const config = testConfig(env)
  const { beforeReady, logLines, ...appOptions } = options
  // Test files share two cores; a busy test machine is not what most tests are about, so
  // load shedding is off unless a test sets its own thresholds.
  appOptions.loadShedding ??= { maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0 }
  const fastifyOptions = serverOptions(config)
  if (logLines !== undefined) {
    const level = config.logLevel === 'silent' ? 'info' : config.logLevel
    // The service's own logger options (serializers, redaction), writing into the array.
    const serviceLogger = typeof fastifyOptions.logger === 'object' ? fastifyOptions.logger : {}
    fastifyOptions.logger = { ...serviceLogger, level, stream: { write: (line: string) => { logLines.push(line) } } }
  }
  const app = Fastify(fastifyOptions)
  await app.register(tickstreamApp, { ...appOptions, config })
  beforeReady?.(app)
  t.teardown(async () => { await app.close() })
  const address = await app.listen({ host: config.host, port: 0 })
  return { app, config, baseUrl: address }
}
