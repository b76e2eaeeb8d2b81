import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

const MAX_TIMER_MS = 2_147_483_647

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
  for (const name of ['SESSION_TTL_MS', 'SESSION_MAX_AGE_MS', 'SWEEP_INTERVAL_MS', 'FLUSH_INTERVAL_MS', 'HEARTBEAT_MS', 'RETRY_MS', 'SLOW_CONSUMER_MS', 'RATE_LIMIT_WINDOW_MS']) {
    t.doesNotThrow(() => loadConfig({ [name]: String(MAX_TIMER_MS) }), `${name} at the timer maximum`)
    rejects(t, { [name]: String(MAX_TIMER_MS + 1) }, name)
  }
  rejects(t, { SHUTDOWN_GRACE_MS: '3000000000' }, 'SHUTDOWN_GRACE_MS')
})

t.test('FEED_RATE is bounded so the feed cannot block the event loop', async (t) => {
  t.equal(loadConfig({ FEED_RATE: '100000' }).feedRate, 100_000)
  rejects(t, { FEED_RATE: '100001' }, 'FEED_RATE')
  rejects(t, { FEED_RATE: '1000000000' }, 'FEED_RATE')
})

t.test('PORT above 65535 is refused', async (t) => {
  rejects(t, { PORT: '65536' }, 'PORT')
})
