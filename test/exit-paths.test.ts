import { connect, type Socket } from 'node:net'
import type { FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import { startApp } from './helpers/app.js'
import { register, request } from './helpers/http.js'
import { assertNothingLeft, recordDeactivations } from './helpers/leaks.js'
import { publish } from './helpers/prices.js'
import { SseClient } from './helpers/sse-client.js'

/**
 * Every way a session can end goes through the one deactivate and leaves nothing behind:
 * gauges at 0, subscriptions made == released, each session deactivated exactly once.
 * Each path runs over several sessions sharing tickers, with prices flowing.
 */

const TICKERS = ['AAPL', 'MSFT', 'NVDA']
const SESSIONS = 6

function tickersFor (i: number): string[] {
  return [TICKERS[i % 3] ?? 'AAPL', TICKERS[(i + 1) % 3] ?? 'MSFT']
}

function startPriceFlow (t: Test, app: Parameters<typeof publish>[0]): void {
  let price = 100
  const timer = setInterval(() => { void publish(app, TICKERS.map((ticker) => ({ ticker, price: price++ }))) }, 5)
  t.teardown(() => clearInterval(timer))
}

async function openStreams (baseUrl: string, userPrefix: string): Promise<Array<{ sessionId: string, client: SseClient }>> {
  const opened = []
  for (let i = 0; i < SESSIONS; i++) {
    const session = await register(baseUrl, `${userPrefix}-${i}`, tickersFor(i))
    const client = await SseClient.open(baseUrl, session.streamUrl)
    await client.next()
    opened.push({ sessionId: session.sessionId, client })
  }
  return opened
}

function assertExactlyOnce (t: Test, seen: Map<string, string[]>, ids: string[], reason: string): void {
  for (const id of ids) t.same(seen.get(id), [reason], `${id.slice(0, 6)} deactivated once, ${reason}`)
}

t.test('client abort mid-stream', async (t) => {
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '10' })
  const seen = recordDeactivations(app)
  startPriceFlow(t, app)
  const streams = await openStreams(baseUrl, 'abort')
  await Promise.all(streams.map(async ({ client }) => await client.waitFor((event) => event.event === 'prices')))
  for (const { client } of streams) client.close()
  await app.streams.whenResponsesClosed()
  assertExactlyOnce(t, seen, streams.map((s) => s.sessionId), 'client_closed')
  await assertNothingLeft(t, app, baseUrl)
})

/**
 * A client that leaves while its stream request is still in the hooks. A test hook holds
 * the request until the server has seen the client go (`gone`), so the route then runs for a
 * client that is no longer there; it must still end the session, exactly once.
 */
async function abortBeforeFirstByte (t: Test, leave: (socket: Socket) => void, gone: (request: FastifyRequest) => Promise<unknown>): Promise<void> {
  let arrived: () => void = () => {}
  const requestArrived = new Promise<void>((resolve) => { arrived = resolve })
  const { app, baseUrl } = await startApp(t, {}, {
    beforeReady: (app) => app.addHook('onRequest', async (request) => {
      if (!request.url.endsWith('/stream')) return
      const clientGone = gone(request)
      arrived()
      await clientGone
    })
  })
  const seen = recordDeactivations(app)
  const session = await register(baseUrl, 'early', TICKERS)
  const url = new URL(baseUrl)
  const socket = connect(Number(url.port), url.hostname)
  socket.on('error', () => {})
  socket.write(`GET ${session.streamUrl} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`)
  let received = ''
  socket.on('data', (chunk) => { received += chunk.toString() })
  const deactivated = new Promise<string>((resolve) => app.sessions.observeDeactivations((s, reason) => { if (s.id === session.sessionId) resolve(reason) }))
  await requestArrived
  leave(socket)
  t.equal(await deactivated, 'client_closed')
  t.equal(received, '', 'the client got no byte')
  assertExactlyOnce(t, seen, [session.sessionId], 'client_closed')
  await assertNothingLeft(t, app, baseUrl)
}

t.test('client abort before the first byte: connection reset', async (t) => {
  // After a reset the server's socket is destroyed before the route runs.
  await abortBeforeFirstByte(t, (socket) => socket.resetAndDestroy(), async (request) => await new Promise((resolve) => request.raw.socket.once('close', resolve)))
})

t.test('client abort before the first byte: connection closed', async (t) => {
  // After a plain close the server only sees the request aborted; the route's first write
  // then fails and the response closes.
  await abortBeforeFirstByte(t, (socket) => socket.destroy(), async (request) => await new Promise((resolve) => request.raw.once('close', resolve)))
})

t.test('write error: the client resets the connection while the server is writing', async (t) => {
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '5' })
  const seen = recordDeactivations(app)
  const session = await register(baseUrl, 'reset', TICKERS)
  const url = new URL(baseUrl)
  const socket = connect(Number(url.port), url.hostname)
  socket.write(`GET ${session.streamUrl} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`)
  await new Promise((resolve) => socket.once('data', resolve))
  // A large, steady flow so the server is mid-write when the reset lands.
  const pad = 'x'.repeat(4000)
  let price = 1
  const timer = setInterval(() => { void publish(app, TICKERS.map((ticker) => ({ ticker, price: price++, pad }))) }, 2)
  t.teardown(() => clearInterval(timer))
  await new Promise((resolve) => socket.once('data', resolve))
  const deactivated = new Promise<string>((resolve) => app.sessions.observeDeactivations((s, reason) => { if (s.id === session.sessionId) resolve(reason) }))
  socket.resetAndDestroy()
  t.equal(await deactivated, 'client_closed')
  clearInterval(timer)
  assertExactlyOnce(t, seen, [session.sessionId], 'client_closed')
  await assertNothingLeft(t, app, baseUrl)
})

t.test('eviction of streaming and pending sessions', async (t) => {
  const { app, baseUrl } = await startApp(t, { MAX_SESSIONS_PER_USER: '2', FLUSH_INTERVAL_MS: '10' })
  const seen = recordDeactivations(app)
  startPriceFlow(t, app)
  const streaming = await register(baseUrl, 'evictee', ['AAPL'])
  const client = await SseClient.open(baseUrl, streaming.streamUrl)
  await client.next()
  const pending = await register(baseUrl, 'evictee', ['MSFT'])
  const third = await register(baseUrl, 'evictee', ['NVDA'])
  const fourth = await register(baseUrl, 'evictee', ['NVDA'])
  t.same([...third.evicted, ...fourth.evicted], [streaming.sessionId, pending.sessionId])
  const end = await client.waitFor((event) => event.event === 'end')
  t.same(end.json, { reason: 'evicted' })
  await client.finished
  assertExactlyOnce(t, seen, [streaming.sessionId, pending.sessionId], 'evicted')
  for (const s of [third, fourth]) await request(baseUrl, `/sessions/${s.sessionId}`, { method: 'DELETE' })
  await assertNothingLeft(t, app, baseUrl)
})

t.test('expiry of never-opened sessions and of streams at max age', async (t) => {
  const { app, baseUrl } = await startApp(t, { SESSION_TTL_MS: '150', SESSION_MAX_AGE_MS: '400', SWEEP_INTERVAL_MS: '10', FLUSH_INTERVAL_MS: '10' })
  const seen = recordDeactivations(app)
  startPriceFlow(t, app)
  const pending = await Promise.all([0, 1, 2].map(async (i) => await register(baseUrl, `ttl-${i}`, tickersFor(i))))
  const streams = await openStreams(baseUrl, 'maxage')
  const ends = await Promise.all(streams.map(async ({ client }) => await client.waitFor((event) => event.event === 'end')))
  for (const end of ends) t.same(end.json, { reason: 'expired' })
  await Promise.all(streams.map(async ({ client }) => await client.finished))
  assertExactlyOnce(t, seen, [...pending.map((s) => s.sessionId), ...streams.map((s) => s.sessionId)], 'expired')
  await assertNothingLeft(t, app, baseUrl)
})

t.test('DELETE of streaming and pending sessions', async (t) => {
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '10' })
  const seen = recordDeactivations(app)
  startPriceFlow(t, app)
  const streams = await openStreams(baseUrl, 'delete')
  const pending = await register(baseUrl, 'delete-pending', TICKERS)
  const statuses = await Promise.all([...streams.map((s) => s.sessionId), pending.sessionId]
    .map(async (id) => (await request(baseUrl, `/sessions/${id}`, { method: 'DELETE' })).status))
  t.same(new Set(statuses), new Set([204]))
  for (const { client } of streams) {
    const end = await client.waitFor((event) => event.event === 'end')
    t.same(end.json, { reason: 'deleted' })
    await client.finished
  }
  assertExactlyOnce(t, seen, [...streams.map((s) => s.sessionId), pending.sessionId], 'deleted')
  await assertNothingLeft(t, app, baseUrl)
})

t.test('shutdown ends every stream and pending session', async (t) => {
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '10' })
  const seen = recordDeactivations(app)
  startPriceFlow(t, app)
  const streams = await openStreams(baseUrl, 'shutdown')
  const pending = await register(baseUrl, 'shutdown-pending', TICKERS)
  const result = await app.drain(5000)
  t.same(result, { sessionsEnded: SESSIONS + 1, responsesCutOff: 0 })
  for (const { client } of streams) {
    await client.finished
    t.same(client.events.at(-1)?.json, { reason: 'shutdown' })
  }
  assertExactlyOnce(t, seen, [...streams.map((s) => s.sessionId), pending.sessionId], 'shutdown')
  await assertNothingLeft(t, app, baseUrl)
})
