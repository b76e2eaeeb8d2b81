import t, { type Test } from 'tap'
import { startApp } from './helpers/app.js'
import { request } from './helpers/http.js'
import { redisClient, redisReady, SHARED_REDIS_URL } from './helpers/redis.js'

const body = { userId: 'alice', tickers: ['AAPL'] }

t.test('registrations beyond RATE_LIMIT_MAX per window get a 429 with retry-after', async (t) => {
  const { baseUrl } = await startApp(t, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000', MAX_SESSIONS_PER_USER: '10' })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await request(baseUrl, '/sessions', { method: 'POST', body })).status)
  t.same(statuses, [201, 201, 201])
  const limited = await request(baseUrl, '/sessions', { method: 'POST', body })
  t.equal(limited.status, 429)
  t.equal(limited.body.error, 'Too Many Requests')
  t.equal(limited.body.statusCode, 429)
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 60, `retry-after in seconds (${retryAfter})`)
  t.equal((await request(baseUrl, '/health')).status, 200, 'other routes are not limited')
})

t.test('every request counts, including refused ones', async (t) => {
  const { baseUrl } = await startApp(t, { RATE_LIMIT_MAX: '2' })
  t.equal((await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'a', tickers: [] } })).status, 400)
  t.equal((await request(baseUrl, '/sessions', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } })).status, 415)
  t.equal((await request(baseUrl, '/sessions', { method: 'POST', body })).status, 429)
})

t.test('the window resets', async (t) => {
  const { baseUrl } = await startApp(t, { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: '300' })
  t.equal((await request(baseUrl, '/sessions', { method: 'POST', body })).status, 201)
  const limited = await request(baseUrl, '/sessions', { method: 'POST', body })
  t.equal(limited.status, 429)
  // Waiting out the window is the behaviour under test; no event marks it.
  await new Promise((resolve) => setTimeout(resolve, 350))
  t.equal((await request(baseUrl, '/sessions', { method: 'POST', body })).status, 201)
})

t.test('RATE_LIMIT_MAX=0 turns the limit off', async (t) => {
  const { baseUrl } = await startApp(t, { RATE_LIMIT_MAX: '0', MAX_SESSIONS_PER_USER: '1' })
  const statuses = new Set<number>()
  for (let i = 0; i < 30; i++) statuses.add((await request(baseUrl, '/sessions', { method: 'POST', body })).status)
  t.same([...statuses], [201])
})

/** The Redis-mode counter key is per client IP (127.0.0.1 here): a test starts from a clean count and leaves none. */
async function cleanRedisCounters (t: Test): Promise<void> {
  // The other Redis-mode tests run with the limit off, so nothing else touches these keys.
  const admin = redisClient(t)
  const clear = async (): Promise<void> => {
    const keys = await admin.keys('tickstream:rate-limit:*')
    if (keys.length > 0) await admin.del(...keys)
  }
  await clear()
  t.teardown(clear)
}

t.test('a window longer than a timer can wait (30 days) holds, in memory and in Redis', async (t) => {
  const thirtyDaysMs = 30 * 86_400_000
  await cleanRedisCounters(t)
  const env = { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: String(thirtyDaysMs) }
  const local = await startApp(t, env)
  const shared = await startApp(t, { ...env, REDIS_URL: SHARED_REDIS_URL })
  await redisReady(shared.app)
  for (const { baseUrl } of [local, shared]) {
    t.equal((await request(baseUrl, '/sessions', { method: 'POST', body })).status, 201)
    const limited = await request(baseUrl, '/sessions', { method: 'POST', body })
    t.equal(limited.status, 429)
    const retryAfter = Number(limited.headers['retry-after'])
    t.ok(retryAfter > thirtyDaysMs / 1000 - 60 && retryAfter <= thirtyDaysMs / 1000, `retry-after about 30 days (${retryAfter} s)`)
  }
})

t.test('in Redis mode the limit holds across instances', async (t) => {
  await cleanRedisCounters(t)
  const env = { REDIS_URL: SHARED_REDIS_URL, RATE_LIMIT_MAX: '4', MAX_SESSIONS_PER_USER: '10' }
  const a = await startApp(t, env)
  const b = await startApp(t, env)
  await redisReady(a.app)
  await redisReady(b.app)
  const statuses = []
  for (const instance of [a, b, a, b, a, b]) statuses.push((await request(instance.baseUrl, '/sessions', { method: 'POST', body })).status)
  t.same(statuses, [201, 201, 201, 201, 429, 429], 'four in all, whichever instance serves them')
})
