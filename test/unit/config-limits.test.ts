import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

const MAX_TIMER_MS = 2_147_483_647
const MAX_SESSION_LIFETIME_MS = 8_000_000_000_000_000

function rejects (t: Test, env: Record<string, string>, variable: string): void {
  let caught: unknown
  try {
    loadConfig(env)
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof ConfigError && caught.variable === variable, `${JSON.stringify(env)} is refused, naming ${variable}`)
}

t.test('timer-backed durations cannot exceed what a Node timer can wait', async (t) => {
  for (const name of ['SWEEP_INTERVAL_MS', 'FLUSH_INTERVAL_MS', 'HEARTBEAT_MS', 'SLOW_CONSUMER_MS']) {
    t.doesNotThrow(() => loadConfig({ [name]: String(MAX_TIMER_MS) }), `${name} at the timer maximum`)
    rejects(t, { [name]: String(MAX_TIMER_MS + 1) }, name)
  }
  rejects(t, { SHUTDOWN_GRACE_MS: '3000000000' }, 'SHUTDOWN_GRACE_MS')
})

t.test('RATE_LIMIT_WINDOW_MS is no timer (a start time compared with the clock, or a Redis PEXPIRE): longer windows are fine', async (t) => {
  const thirtyDays = 30 * 86_400_000
  t.equal(loadConfig({ RATE_LIMIT_WINDOW_MS: String(thirtyDays) }).rateLimitWindowMs, thirtyDays)
  t.equal(loadConfig({ RATE_LIMIT_WINDOW_MS: String(Number.MAX_SAFE_INTEGER) }).rateLimitWindowMs, Number.MAX_SAFE_INTEGER)
  rejects(t, { RATE_LIMIT_WINDOW_MS: '9007199254740993' }, 'RATE_LIMIT_WINDOW_MS')
})

t.test('RETRY_MS is at most half a timer: the spread shutdown hint adds up to RETRY_MS more', async (t) => {
  const maxRetryMs = Math.floor(MAX_TIMER_MS / 2)
  t.equal(loadConfig({ RETRY_MS: String(maxRetryMs) }).retryMs, maxRetryMs)
  rejects(t, { RETRY_MS: String(maxRetryMs + 1) }, 'RETRY_MS')
  t.ok(maxRetryMs + Math.max(maxRetryMs, 5000) - 1 <= MAX_TIMER_MS, 'the largest spread hint still fits a timer')
})

t.test('session lifetimes may exceed a timer: they are bounded only so an expiry stays a date', async (t) => {
  const thirtyDays = 30 * 86_400_000
  t.ok(thirtyDays > MAX_TIMER_MS, 'thirty days is more than a timer can wait')
  t.equal(loadConfig({ SESSION_MAX_AGE_MS: String(thirtyDays) }).sessionMaxAgeMs, thirtyDays)
  t.equal(loadConfig({ SESSION_TTL_MS: String(thirtyDays) }).sessionTtlMs, thirtyDays)
  for (const name of ['SESSION_TTL_MS', 'SESSION_MAX_AGE_MS']) {
    t.doesNotThrow(() => loadConfig({ [name]: String(MAX_SESSION_LIFETIME_MS) }), `${name} at its maximum`)
    rejects(t, { [name]: String(MAX_SESSION_LIFETIME_MS + 1) }, name)
  }
  // The largest lifetime, from a creation time far in the future, is still a valid ISO date.
  const year20000 = Date.UTC(20_000, 0, 1)
  t.type(new Date(year20000 + MAX_SESSION_LIFETIME_MS).toISOString(), 'string')
})

t.test('FEED_RATE is bounded so the feed cannot block the event loop', async (t) => {
  t.equal(loadConfig({ FEED_RATE: '100000' }).feedRate, 100_000)
  rejects(t, { FEED_RATE: '100001' }, 'FEED_RATE')
  rejects(t, { FEED_RATE: '1000000000' }, 'FEED_RATE')
})

t.test('PORT above 65535 is refused', async (t) => {
  rejects(t, { PORT: '65536' }, 'PORT')
})
