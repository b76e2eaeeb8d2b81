import t from 'tap'
import { startApp } from '../helpers/app.js'
import { register, request } from '../helpers/http.js'
import { publish } from '../helpers/prices.js'
import { SseClient } from '../helpers/sse-client.js'

t.test('a stream starts with retry, then a snapshot of the latest published prices', async (t) => {
  const { app, baseUrl } = await startApp(t, { RETRY_MS: '4321' })
  // Published before anyone watched AAPL: the snapshot still has it.
  await publish(app, [{ ticker: 'AAPL', price: 1, ts: 1 }, { ticker: 'AAPL', price: 2, ts: 2 }, { ticker: 'TSLA', price: 9, ts: 3, venue: 'X' }])
  const session = await register(baseUrl, 'alice', ['AAPL', 'MSFT', 'TSLA'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  t.equal(client.status, 200)
  t.match(client.response.headers['content-type'], /^text\/event-stream/)
  t.equal(client.response.headers['cache-control'], 'no-cache')
  t.equal(client.response.headers['x-accel-buffering'], 'no')
  const snapshot = await client.next()
  t.ok(client.raw.startsWith('retry: 4321\n'), 'the retry line comes first')
  t.same(client.retries, [4321])
  t.equal(snapshot.event, 'snapshot')
  t.equal(snapshot.id, '1')
  t.same(snapshot.json, { prices: [{ ticker: 'AAPL', price: 2, ts: 2 }, { ticker: 'TSLA', price: 9, ts: 3, venue: 'X' }] },
    'latest value of each ticker that has one; extra fields pass through; MSFT has none')
})

t.test('an empty snapshot when no ticker has a price yet', async (t) => {
  const { baseUrl } = await startApp(t)
  const session = await register(baseUrl, 'bob', ['ZZZZ'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  const snapshot = await client.next()
  t.same(snapshot.json, { prices: [] })
})

t.test('opening the stream makes the session streaming, expiring at max age', async (t) => {
  const { baseUrl, config } = await startApp(t, { SESSION_MAX_AGE_MS: '7200000' })
  const session = await register(baseUrl, 'carol', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  const view = await request(baseUrl, `/sessions/${session.sessionId}`)
  t.equal(view.body.state, 'streaming')
  t.equal(Date.parse(view.body.expiresAt) - Date.parse(view.body.createdAt), config.sessionMaxAgeMs)
})

t.test('prices arrive batched, conflated, with increasing ids, at most once per window', async (t) => {
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '150' })
  const session = await register(baseUrl, 'dave', ['AAPL', 'MSFT'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()

  // Three AAPL updates in one synchronous burst: one flush window, so one value survives.
  await publish(app, [
    { ticker: 'AAPL', price: 10, ts: 100 },
    { ticker: 'MSFT', price: 20, ts: 100 },
    { ticker: 'AAPL', price: 11, ts: 101 },
    { ticker: 'AAPL', price: 12, ts: 102 },
    { ticker: 'NVDA', price: 99, ts: 102 }
  ])
  const first = await client.next()
  t.equal(first.event, 'prices')
  t.equal(first.id, '2')
  t.same(first.json, { prices: [{ ticker: 'AAPL', price: 12, ts: 102 }, { ticker: 'MSFT', price: 20, ts: 100 }] },
    'latest AAPL only, each ticker once, nothing the session does not watch')
  t.equal(app.streams.counters.pricesConflated, 2)

  await publish(app, [{ ticker: 'MSFT', price: 21, ts: 103 }])
  const second = await client.next()
  t.equal(second.id, '3')
  t.same(second.json, { prices: [{ ticker: 'MSFT', price: 21, ts: 103 }] })
  t.ok(second.receivedAt - first.receivedAt >= 150 - 5, `at most one prices event per window (${second.receivedAt - first.receivedAt} ms apart)`)
})

t.test('a steady flow never yields two prices events within one window', async (t) => {
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '50' })
  const session = await register(baseUrl, 'erin', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  let price = 1
  const publisher = setInterval(() => { void publish(app, [{ ticker: 'AAPL', price: price++ }]) }, 5)
  t.teardown(() => clearInterval(publisher))
  const received = []
  for (let i = 0; i < 8; i++) received.push(await client.next())
  clearInterval(publisher)
  const ids = received.map((event) => Number(event.id))
  t.same(ids, [2, 3, 4, 5, 6, 7, 8, 9], 'ids increase by one per event')
  for (let i = 1; i < received.length; i++) {
    const gap = (received[i]?.receivedAt ?? 0) - (received[i - 1]?.receivedAt ?? 0)
    // Client-side receive times jitter a little around the server's write times.
    t.ok(gap >= 50 - 10, `gap ${gap} ms respects the 50 ms window`)
    const prices = received[i]?.json.prices
    t.equal(prices.length, 1, 'one AAPL entry per event')
  }
})

t.test('heartbeat comments are written when the stream is idle', async (t) => {
  const { baseUrl } = await startApp(t, { HEARTBEAT_MS: '100' })
  const session = await register(baseUrl, 'frank', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  await client.waitForComment(0)
  await client.waitForComment(1)
  t.ok(client.comments.length >= 2, 'idle streams keep getting heartbeats')
  t.equal(client.events.length, 1, 'heartbeats are not events')
})

t.test('a second stream for the same session is a 409', async (t) => {
  const { baseUrl } = await startApp(t)
  const session = await register(baseUrl, 'grace', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  const second = await request(baseUrl, session.streamUrl)
  t.equal(second.status, 409)
  t.equal(second.body.error, 'Conflict')
  t.equal(client.ended, false, 'the first stream is untouched')
})

t.test('when the client goes away the session ends; reconnecting is a 404', async (t) => {
  const { app, baseUrl } = await startApp(t)
  const session = await register(baseUrl, 'hank', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  await client.next()
  const ended = new Promise<string>((resolve) => app.sessions.observeDeactivations((s, reason) => { if (s.id === session.sessionId) resolve(reason) }))
  client.close()
  t.equal(await ended, 'client_closed')
  t.equal((await request(baseUrl, session.streamUrl)).status, 404)
  t.equal((await request(baseUrl, `/sessions/${session.sessionId}`)).status, 404)
})

for (const [reason, endSession] of [
  ['deleted', async (baseUrl: string, sessionId: string) => { await request(baseUrl, `/sessions/${sessionId}`, { method: 'DELETE' }) }],
  ['evicted', async (baseUrl: string) => { await register(baseUrl, 'ivy', ['AAPL']) }]
] as const) {
  t.test(`a streaming session that is ${reason} gets event: end and the response ends`, async (t) => {
    const { baseUrl } = await startApp(t, { MAX_SESSIONS_PER_USER: '1' })
    const session = await register(baseUrl, 'ivy', ['AAPL'])
    const client = await SseClient.open(baseUrl, session.streamUrl)
    t.teardown(() => client.close())
    await client.next()
    await endSession(baseUrl, session.sessionId)
    const end = await client.next()
    t.equal(end.event, 'end')
    t.equal(end.id, '2')
    t.same(end.json, { reason })
    await client.finished
    t.equal(client.events.length, 2, 'nothing after end')
  })
}

t.test('an expired streaming session (max age) gets event: end with reason expired', async (t) => {
  const { baseUrl } = await startApp(t, { SESSION_MAX_AGE_MS: '300', SWEEP_INTERVAL_MS: '20' })
  const session = await register(baseUrl, 'jack', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  const end = await client.waitFor((event) => event.event === 'end')
  t.same(end.json, { reason: 'expired' })
  await client.finished
})

t.test('a session whose stream is never opened expires after SESSION_TTL_MS', async (t) => {
  const { app, baseUrl } = await startApp(t, { SESSION_TTL_MS: '100', SWEEP_INTERVAL_MS: '20' })
  const session = await register(baseUrl, 'kate', ['AAPL'])
  const expired = new Promise<string>((resolve) => app.sessions.observeDeactivations((s, reason) => { if (s.id === session.sessionId) resolve(reason) }))
  t.equal(await expired, 'expired')
  t.equal((await request(baseUrl, session.streamUrl)).status, 404)
})

t.test('streams are refused with 503 while shutting down; open ones end with reason shutdown', async (t) => {
  const { app, baseUrl } = await startApp(t, { RETRY_MS: '1000' })
  const session = await register(baseUrl, 'liam', ['AAPL'])
  const pending = await register(baseUrl, 'mia', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  const drained = app.drain(5000)
  const end = await client.next()
  t.same(end.json, { reason: 'shutdown' })
  const retry = client.retries.at(-1) ?? 0
  t.ok(retry >= 1000 && retry < 6000, `the shutdown retry hint (${retry}) is spread above RETRY_MS`)
  await client.finished
  t.same(await drained, { sessionsEnded: 2, responsesCutOff: 0 })
  const refused = await request(baseUrl, pending.streamUrl)
  t.equal(refused.status, 503)
})
