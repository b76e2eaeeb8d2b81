import t from 'tap'
import { startApp } from '../helpers/app.js'
import { metric, metrics, register, request } from '../helpers/http.js'
import { recordDeactivations } from '../helpers/leaks.js'
import { SseClient } from '../helpers/sse-client.js'

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

t.test('POST /sessions registers a session and describes it', async (t) => {
  const { baseUrl, config } = await startApp(t)
  const res = await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'alice', tickers: ['AAPL', ' msft '] } })
  t.equal(res.status, 201)
  const body = res.body
  t.match(body.sessionId, /^[A-Za-z0-9_-]{22,}$/, 'URL-safe id with at least 128 bits')
  t.equal(body.userId, 'alice')
  t.same(body.tickers, ['AAPL', 'MSFT'], 'trimmed and upper-cased')
  t.match(body.createdAt, ISO_UTC)
  t.match(body.expiresAt, ISO_UTC)
  t.equal(Date.parse(body.expiresAt) - Date.parse(body.createdAt), config.sessionTtlMs, 'never-streamed session expires after the TTL')
  t.equal(body.streamUrl, `/sessions/${body.sessionId}/stream`)
  t.same(body.evicted, [])
  t.same(Object.keys(body).sort(), ['createdAt', 'evicted', 'expiresAt', 'sessionId', 'streamUrl', 'tickers', 'userId'])
})

t.test('createdAt and expiresAt follow the clock, also for sessions made in the same millisecond', async (t) => {
  // A fake clock (time is the one thing tests may pin): the route remembers the last
  // formatted timestamp, and this proves it is reused only for the very same millisecond.
  let now = Date.UTC(2026, 10, 28, 12, 0, 0, 0)
  const { baseUrl, config } = await startApp(t, { MAX_SESSIONS_PER_USER: '10' }, { clock: () => now })
  const first = await register(baseUrl, 'erin', ['AAPL'])
  const sameMs = await register(baseUrl, 'erin', ['AAPL'])
  now += 1
  const nextMs = await register(baseUrl, 'erin', ['AAPL'])
  now += 86_400_000
  const nextDay = await register(baseUrl, 'erin', ['AAPL'])
  t.same([first.createdAt, sameMs.createdAt, nextMs.createdAt, nextDay.createdAt],
    ['2026-11-28T12:00:00.000Z', '2026-11-28T12:00:00.000Z', '2026-11-28T12:00:00.001Z', '2026-11-29T12:00:00.001Z'])
  for (const session of [first, sameMs, nextMs, nextDay]) {
    t.equal(Date.parse(String(session.expiresAt)) - Date.parse(String(session.createdAt)), config.sessionTtlMs)
  }
})

t.test('session lifetimes longer than a timer can wait show as dates, pending and streaming', async (t) => {
  const thirtyDays = 30 * 86_400_000
  const { baseUrl } = await startApp(t, { SESSION_TTL_MS: String(thirtyDays), SESSION_MAX_AGE_MS: String(2 * thirtyDays) })
  const created = await register(baseUrl, 'lena', ['AAPL'])
  t.equal(Date.parse(String(created.expiresAt)) - Date.parse(String(created.createdAt)), thirtyDays, 'pending: the TTL')
  const stream = await SseClient.open(baseUrl, created.streamUrl)
  t.teardown(() => stream.close())
  await stream.next()
  const shown = await request(baseUrl, `/sessions/${created.sessionId}`)
  t.equal(shown.body.state, 'streaming')
  t.equal(Date.parse(shown.body.expiresAt) - Date.parse(shown.body.createdAt), 2 * thirtyDays, 'streaming: the max age')
})

t.test('tickers are de-duplicated after normalization, order kept', async (t) => {
  const { baseUrl } = await startApp(t)
  const body = await register(baseUrl, 'bob', ['msft', 'AAPL', ' MSFT', 'brk.b', 'aapl'])
  t.same(body.tickers, ['MSFT', 'AAPL', 'BRK.B'])
})

t.test('session ids differ for every registration', async (t) => {
  const { baseUrl } = await startApp(t, { MAX_SESSIONS_PER_USER: '100' })
  const ids = new Set<string>()
  for (let i = 0; i < 20; i++) ids.add((await register(baseUrl, 'carol', ['AAPL'])).sessionId)
  t.equal(ids.size, 20)
})

t.test('registering one more than MAX_SESSIONS_PER_USER evicts the oldest', async (t) => {
  const { baseUrl } = await startApp(t, { MAX_SESSIONS_PER_USER: '3' })
  const first = await register(baseUrl, 'dave', ['AAPL'])
  const second = await register(baseUrl, 'dave', ['AAPL'])
  const third = await register(baseUrl, 'dave', ['AAPL'])
  const other = await register(baseUrl, 'erin', ['AAPL'])
  t.same(third.evicted, [])
  const fourth = await register(baseUrl, 'dave', ['AAPL'])
  t.same(fourth.evicted, [first.sessionId], 'only the oldest, only this user')
  t.equal((await request(baseUrl, `/sessions/${first.sessionId}`)).status, 404)
  for (const kept of [second, third, fourth, other]) {
    t.equal((await request(baseUrl, `/sessions/${kept.sessionId}`)).status, 200)
  }
})

t.test('deleting a session that is not the oldest frees its place; eviction still takes the oldest', async (t) => {
  const { baseUrl } = await startApp(t, { MAX_SESSIONS_PER_USER: '3' })
  const first = await register(baseUrl, 'fred', ['AAPL'])
  const second = await register(baseUrl, 'fred', ['AAPL'])
  const third = await register(baseUrl, 'fred', ['AAPL'])
  t.equal((await request(baseUrl, `/sessions/${second.sessionId}`, { method: 'DELETE' })).status, 204)
  const fourth = await register(baseUrl, 'fred', ['AAPL'])
  t.same(fourth.evicted, [], 'the deleted one made room')
  const fifth = await register(baseUrl, 'fred', ['AAPL'])
  t.same(fifth.evicted, [first.sessionId], 'then the oldest goes')
  const sixth = await register(baseUrl, 'fred', ['AAPL'])
  t.same(sixth.evicted, [third.sessionId], 'and the next oldest, in creation order')
})

t.test('a session past its TTL but not yet swept is expired by the next registration, not evicted in place of a live one', async (t) => {
  // A fake clock (time is the one thing tests may pin) and a sweeper that never comes round:
  // the pending session is overdue, and nothing but this registration notices it.
  let now = Date.UTC(2026, 10, 29, 12, 0, 0, 0)
  const { app, baseUrl } = await startApp(t, { MAX_SESSIONS_PER_USER: '2', SESSION_TTL_MS: '1000', SWEEP_INTERVAL_MS: '600000' }, { clock: () => now })
  const seen = recordDeactivations(app)
  const streaming = await register(baseUrl, 'hana', ['AAPL'])
  const client = await SseClient.open(baseUrl, streaming.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  const overdue = await register(baseUrl, 'hana', ['MSFT'])
  now += 1000
  const next = await register(baseUrl, 'hana', ['NVDA'])
  t.same(next.evicted, [], 'the overdue session made room; the streaming one was not evicted')
  t.same(seen.get(overdue.sessionId), ['expired'], 'the overdue session ended once, as expired')
  t.equal(seen.get(streaming.sessionId), undefined, 'the streaming session goes on')
  t.equal((await request(baseUrl, `/sessions/${streaming.sessionId}`)).body.state, 'streaming')
  const values = await metrics(baseUrl)
  t.equal(metric(values, 'tickstream_sessions_deactivated_total{reason="expired"}'), 1)
  t.equal(metric(values, 'tickstream_sessions_deactivated_total{reason="evicted"}'), 0)
  const last = await register(baseUrl, 'hana', ['AAPL'])
  t.same(last.evicted, [streaming.sessionId], 'at the limit again, the oldest live session is evicted')
})

t.test('with MAX_SESSIONS_PER_USER=1 each registration evicts the previous one', async (t) => {
  const { baseUrl } = await startApp(t, { MAX_SESSIONS_PER_USER: '1' })
  const first = await register(baseUrl, 'frank', ['AAPL'])
  const second = await register(baseUrl, 'frank', ['AAPL'])
  t.same(second.evicted, [first.sessionId])
})

t.test('concurrent registrations of one user never exceed the limit', async (t) => {
  const { app, baseUrl } = await startApp(t, { MAX_SESSIONS_PER_USER: '3' })
  const results = await Promise.all(Array.from({ length: 40 }, async () => await register(baseUrl, 'grace', ['AAPL', 'MSFT'])))
  const evicted = results.flatMap((r) => r.evicted)
  t.equal(evicted.length, 37, 'every registration beyond the third evicted exactly one')
  t.equal(new Set(evicted).size, 37, 'no session evicted twice')
  t.equal(app.sessions.activeCount, 3)
  t.equal(app.sessions.counters.deactivated.evicted, 37)
})

t.test('POST /sessions rejects invalid bodies with a 400 in the error shape', async (t) => {
  const { baseUrl } = await startApp(t, { MAX_TICKERS_PER_SESSION: '3' })
  const cases: Array<[string, unknown]> = [
    ['missing userId', { tickers: ['AAPL'] }],
    ['missing tickers', { userId: 'a' }],
    ['userId not a string', { userId: 42, tickers: ['AAPL'] }],
    ['userId empty', { userId: '', tickers: ['AAPL'] }],
    ['userId too long', { userId: 'x'.repeat(129), tickers: ['AAPL'] }],
    ['userId with a space', { userId: 'al ice', tickers: ['AAPL'] }],
    ['userId with unicode', { userId: 'alicé', tickers: ['AAPL'] }],
    ['tickers not an array', { userId: 'a', tickers: 'AAPL' }],
    ['tickers empty', { userId: 'a', tickers: [] }],
    ['ticker not a string', { userId: 'a', tickers: [42] }],
    ['ticker invalid', { userId: 'a', tickers: ['AAPL', 'NOT A TICKER'] }],
    ['ticker too long', { userId: 'a', tickers: ['ABCDEFGHIJKLMNOP'] }],
    ['ticker blank', { userId: 'a', tickers: ['   '] }],
    ['too many tickers', { userId: 'a', tickers: ['A', 'B', 'C', 'D'] }],
    ['extra property', { userId: 'a', tickers: ['AAPL'], admin: true }],
    ['body is an array', [{ userId: 'a', tickers: ['AAPL'] }]],
    ['body is null', null]
  ]
  for (const [name, body] of cases) {
    const res = await request(baseUrl, '/sessions', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    t.equal(res.status, 400, name)
    t.equal(res.body.statusCode, 400, `${name}: statusCode`)
    t.equal(res.body.error, 'Bad Request', `${name}: error`)
    t.type(res.body.message, 'string', `${name}: message`)
  }
})

t.test('userId accepts the whole allowed alphabet, as is', async (t) => {
  const { baseUrl } = await startApp(t)
  const userId = 'Az09_.@:-'
  const body = await register(baseUrl, userId, ['AAPL'])
  t.equal(body.userId, userId)
  const longest = await register(baseUrl, 'u'.repeat(128), ['AAPL'])
  t.equal(String(longest.userId).length, 128)
})

t.test('duplicates only count once against MAX_TICKERS_PER_SESSION', async (t) => {
  const { baseUrl } = await startApp(t, { MAX_TICKERS_PER_SESSION: '2' })
  const body = await register(baseUrl, 'hank', ['AAPL', 'aapl', 'MSFT', ' msft'])
  t.same(body.tickers, ['AAPL', 'MSFT'])
})

t.test('POST /sessions without JSON content type is a 415', async (t) => {
  const { baseUrl } = await startApp(t)
  const payload = JSON.stringify({ userId: 'a', tickers: ['AAPL'] })
  const missing = await request(baseUrl, '/sessions', { method: 'POST', body: payload })
  t.equal(missing.status, 415)
  t.equal(missing.body.error, 'Unsupported Media Type')
  const text = await request(baseUrl, '/sessions', { method: 'POST', body: payload, headers: { 'content-type': 'text/plain' } })
  t.equal(text.status, 415)
  const form = await request(baseUrl, '/sessions', { method: 'POST', body: 'userId=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(form.status, 415)
  const withCharset = await request(baseUrl, '/sessions', { method: 'POST', body: payload, headers: { 'content-type': 'application/json; charset=utf-8' } })
  t.equal(withCharset.status, 201, 'parameters on application/json are fine')
})

t.test('malformed JSON is a 400', async (t) => {
  const { baseUrl } = await startApp(t)
  const res = await request(baseUrl, '/sessions', { method: 'POST', body: '{"userId": "a", tickers', headers: { 'content-type': 'application/json' } })
  t.equal(res.status, 400)
  t.equal(res.body.error, 'Bad Request')
})

t.test('__proto__ keys are refused, not merged', async (t) => {
  const { baseUrl } = await startApp(t)
  const res = await request(baseUrl, '/sessions', { method: 'POST', body: '{"userId":"a","tickers":["AAPL"],"__proto__":{"polluted":true}}', headers: { 'content-type': 'application/json' } })
  t.equal(res.status, 400)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('a body over 16 KiB is a 413', async (t) => {
  const { baseUrl } = await startApp(t)
  const res = await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'a', tickers: Array.from({ length: 3000 }, () => 'AAPL') } })
  t.equal(res.status, 413)
  t.equal(res.body.error, 'Payload Too Large')
})

t.test('GET /sessions/:id shows a live session', async (t) => {
  const { baseUrl } = await startApp(t)
  const created = await register(baseUrl, 'ivy', ['nvda'])
  const res = await request(baseUrl, `/sessions/${created.sessionId}`)
  t.equal(res.status, 200)
  t.same(res.body, {
    sessionId: created.sessionId,
    userId: 'ivy',
    tickers: ['NVDA'],
    state: 'pending',
    createdAt: created.createdAt,
    expiresAt: created.expiresAt
  })
})

t.test('unknown session ids of any length up to 1000 characters are a 404', async (t) => {
  const { baseUrl } = await startApp(t)
  for (const id of ['x', 'does-not-exist', 'A'.repeat(100), 'B'.repeat(101), 'C'.repeat(1000), '%2E%2E', 'a%2Fb']) {
    for (const path of [`/sessions/${id}`, `/sessions/${id}/stream`]) {
      const res = await request(baseUrl, path)
      t.equal(res.status, 404, `GET ${path.slice(0, 40)}`)
      t.equal(res.body.error, 'Not Found')
    }
    const del = await request(baseUrl, `/sessions/${id}`, { method: 'DELETE' })
    t.equal(del.status, 404, `DELETE ${id.slice(0, 20)}`)
  }
})

t.test('DELETE /sessions/:id deactivates once, then 404', async (t) => {
  const { app, baseUrl } = await startApp(t)
  const created = await register(baseUrl, 'jack', ['AAPL'])
  const first = await request(baseUrl, `/sessions/${created.sessionId}`, { method: 'DELETE' })
  t.equal(first.status, 204)
  t.equal(first.text, '')
  const second = await request(baseUrl, `/sessions/${created.sessionId}`, { method: 'DELETE' })
  t.equal(second.status, 404)
  t.equal((await request(baseUrl, `/sessions/${created.sessionId}`)).status, 404)
  t.equal(app.sessions.counters.deactivated.deleted, 1)
})

t.test('DELETE from a client that sends a JSON content type on every request: no body is still no body', async (t) => {
  const { baseUrl } = await startApp(t)
  const created = await register(baseUrl, 'jill', ['AAPL'])
  const json = { 'content-type': 'application/json' }
  const empty = await request(baseUrl, `/sessions/${created.sessionId}`, { method: 'DELETE', headers: { ...json, 'content-length': '0' } })
  t.equal(empty.status, 204, 'an empty JSON body is no body')
  const again = await request(baseUrl, `/sessions/${created.sessionId}`, { method: 'DELETE', headers: json })
  t.equal(again.status, 404, 'unknown by now, and still not a body error')
  t.equal((await request(baseUrl, '/sessions/unknown-id', { method: 'DELETE', body: '{', headers: json })).status, 400, 'a body that is not JSON is still a 400')
  const emptyPost = await request(baseUrl, '/sessions', { method: 'POST', headers: { ...json, 'content-length': '0' } })
  t.equal(emptyPost.status, 400, 'POST /sessions still needs a body')
  t.match(emptyPost.body, { statusCode: 400, error: 'Bad Request', message: /empty/ })
})

t.test('new sessions are refused with 503 while shutting down', async (t) => {
  const { app, baseUrl } = await startApp(t)
  await app.drain(1000)
  const res = await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'a', tickers: ['AAPL'] } })
  t.equal(res.status, 503)
  t.equal(res.body.error, 'Service Unavailable')
  t.ok(res.headers['retry-after'])
})
