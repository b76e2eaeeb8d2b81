import t from 'tap'
import { startApp } from './helpers/app.js'
import { register, request } from './helpers/http.js'
import { assertNothingLeft, recordDeactivations } from './helpers/leaks.js'
import { publish } from './helpers/prices.js'
import { SseClient } from './helpers/sse-client.js'

/**
 * The seed system's race: eviction, the expiry sweeper, DELETE and the connection-close path
 * all hit the same session at once. Here each of many streaming sessions gets all four in the
 * same instant (the sweeper runs every millisecond and the sessions reach their max age right
 * then). Whichever wins, each session is deactivated exactly once, nothing answers 5xx,
 * nothing crashes, and everything is released.
 */
const USERS = 60
const TICKERS = ['AAPL', 'MSFT', 'NVDA', 'TSLA']

t.test('expiry, eviction, DELETE and disconnect racing on the same sessions', async (t) => {
  const maxAgeMs = 1500
  const { app, baseUrl } = await startApp(t, {
    MAX_SESSIONS_PER_USER: '1',
    SESSION_MAX_AGE_MS: String(maxAgeMs),
    SWEEP_INTERVAL_MS: '1',
    FLUSH_INTERVAL_MS: '10',
    RATE_LIMIT_MAX: '0'
  })
  const seen = recordDeactivations(app)
  let price = 1
  const flow = setInterval(() => { void publish(app, TICKERS.map((ticker) => ({ ticker, price: price++ }))) }, 3)
  t.teardown(() => clearInterval(flow))

  const racers = await Promise.all(Array.from({ length: USERS }, async (_, i) => {
    const session = await register(baseUrl, `racer-${i}`, [TICKERS[i % 4] ?? 'AAPL', TICKERS[(i + 1) % 4] ?? 'MSFT'])
    const client = await SseClient.open(baseUrl, session.streamUrl)
    await client.next()
    return { i, session, client, createdAt: Date.parse(String(session.createdAt)) }
  }))

  // Fire the other three paths around each session's expiry instant, spread from 30 ms
  // before to 10 ms after it, so that every path wins somewhere. Waiting for a moment in
  // time is the one wait here that no event can replace.
  const outcomes = await Promise.all(racers.map(async ({ i, session, client, createdAt }) => {
    const fireAt = createdAt + maxAgeMs + ((i % 5) - 3) * 10
    await new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, fireAt - Date.now())))
    // Which path starts first rotates, so each of them gets to win somewhere.
    const del = async (): Promise<number> => (await request(baseUrl, `/sessions/${session.sessionId}`, { method: 'DELETE' })).status
    const reRegister = async (): Promise<{ status: number, body: any }> => await request(baseUrl, '/sessions', { method: 'POST', body: { userId: `racer-${i}`, tickers: ['AAPL'] } })
    let deleted: number
    let reRegistered: { status: number, body: any }
    if (i % 3 === 0) {
      client.close()
      ;[deleted, reRegistered] = await Promise.all([del(), reRegister()])
    } else if (i % 3 === 1) {
      const deleting = del()
      reRegistered = await reRegister()
      client.close()
      deleted = await deleting
    } else {
      const registering = reRegister()
      deleted = await del()
      client.close()
      reRegistered = await registering
    }
    return { deleted, registered: reRegistered.status, replacement: reRegistered.body.sessionId as string }
  }))
  clearInterval(flow)

  t.same(new Set(outcomes.map((o) => o.registered)), new Set([201]), 'every re-registration succeeded')
  t.ok(outcomes.every((o) => o.deleted === 204 || o.deleted === 404), 'DELETE answers 204 or 404, never 5xx')
  await Promise.all(racers.map(async ({ client }) => await client.finished))

  const reasons = new Map<string, number>()
  for (const { session } of racers) {
    const record = seen.get(session.sessionId) ?? []
    t.equal(record.length, 1, `session ${session.sessionId.slice(0, 6)} deactivated exactly once (${record.join(',')})`)
    for (const reason of record) reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
  }
  t.comment(`winners: ${JSON.stringify(Object.fromEntries(reasons))}`)

  // The replacements from the re-registrations: end them too, then nothing may be left.
  await Promise.all(outcomes.map(async (o) => await request(baseUrl, `/sessions/${o.replacement}`, { method: 'DELETE' })))
  t.equal((await request(baseUrl, '/health')).status, 200, 'still serving')
  await assertNothingLeft(t, app, baseUrl)
})
