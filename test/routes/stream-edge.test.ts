import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { startApp } from '../helpers/app.js'
import { register, request } from '../helpers/http.js'
import { publish } from '../helpers/prices.js'
import { SseClient } from '../helpers/sse-client.js'

/**
 * `paths` requested back to back on one raw connection (HTTP pipelining), resolved once a
 * snapshot event has arrived on it; `received()` is everything read so far. Closed at teardown.
 */
async function pipelinedUntilSnapshot (t: Test, baseUrl: string, paths: string[]): Promise<{ socket: Socket, received: () => string }> {
  const url = new URL(baseUrl)
  const socket = connect(Number(url.port), url.hostname)
  t.teardown(() => socket.destroy())
  let received = ''
  const snapshotArrived = new Promise<void>((resolve) => socket.on('data', (chunk) => {
    received += chunk.toString()
    if (received.includes('event: snapshot')) resolve()
  }))
  socket.write(paths.map((path) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''))
  await snapshotArrived
  return { socket, received: () => received }
}

t.test('HEAD on a stream URL does not open (or use up) the stream', async (t) => {
  const { baseUrl } = await startApp(t)
  const session = await register(baseUrl, 'alice', ['AAPL'])
  const head = await request(baseUrl, session.streamUrl, { method: 'HEAD' })
  t.equal(head.status, 404)
  const view = await request(baseUrl, `/sessions/${session.sessionId}`)
  t.equal(view.body.state, 'pending', 'still pending')
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  t.equal((await client.next()).event, 'snapshot', 'the real stream still opens')
})

t.test('a stream request pipelined behind another request is served, not taken for gone', async (t) => {
  const { app, baseUrl } = await startApp(t)
  const first = await register(baseUrl, 'bob', ['AAPL'])
  const second = await register(baseUrl, 'carol', ['AAPL'])
  const { received } = await pipelinedUntilSnapshot(t, baseUrl, [`/sessions/${first.sessionId}`, second.streamUrl])
  t.match(received(), /"userId":"bob"/, 'the first response')
  t.match(received(), /content-type: text\/event-stream/, 'then the stream')
  t.equal(app.sessions.counters.deactivated.client_closed, 0, 'nothing was deactivated')
})

t.test('a session past its TTL but not yet swept is already gone', async (t) => {
  // Time is mocked here: the sweeper runs once a minute, the clock jumps past the TTL.
  let now = Date.now()
  const { app, baseUrl } = await startApp(t, { SESSION_TTL_MS: '1000', SWEEP_INTERVAL_MS: '60000' }, { clock: () => now })
  const session = await register(baseUrl, 'dave', ['AAPL'])
  const other = await register(baseUrl, 'erin', ['AAPL'])
  now += 1000
  t.equal((await request(baseUrl, `/sessions/${session.sessionId}`)).status, 404, 'not shown')
  t.equal((await request(baseUrl, other.streamUrl)).status, 404, 'not opened')
  t.equal(app.sessions.counters.deactivated.expired, 2, 'both ended as expired, once')
})

t.test('a wall clock stepped back does not stall a stream: flushes are spaced by a clock that never goes back', async (t) => {
  // The wall clock is mocked, stepped back a minute between two prices; the interval clock
  // is the real, monotonic one.
  let steppedBackMs = 0
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '20' }, { clock: () => Date.now() - steppedBackMs })
  const session = await register(baseUrl, 'ivy', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  t.equal((await client.next()).event, 'snapshot')
  await publish(app, [{ ticker: 'AAPL', price: 1 }])
  t.match((await client.waitFor((event) => event.event === 'prices')).json, { prices: [{ ticker: 'AAPL', price: 1 }] })
  steppedBackMs = 60_000
  await publish(app, [{ ticker: 'AAPL', price: 2 }])
  // On the wall clock the next flush would be due a minute from now.
  const next = await client.waitFor((event) => event.event === 'prices', 5000)
  t.match(next.json, { prices: [{ ticker: 'AAPL', price: 2 }] }, 'the next price went out in its window')
})

t.test('ids that the router cannot take are unknown sessions: 404 in the error shape', async (t) => {
  const { baseUrl } = await startApp(t)
  for (const path of [`/sessions/${encodeURIComponent('😀'.repeat(500))}`, `/sessions/${encodeURIComponent('😀'.repeat(500))}/stream`, '/sessions/%zz', '/sessions/%zz/stream', `/sessions/${'x'.repeat(5000)}`]) {
    const res = await request(baseUrl, path)
    t.equal(res.status, 404, path.slice(0, 30))
    t.same(Object.keys(res.body).sort(), ['error', 'message', 'statusCode'])
    t.equal(res.body.error, 'Not Found')
  }
})

t.test('a stream pipelined behind another stream ends with its connection', async (t) => {
  const { app, baseUrl } = await startApp(t)
  const first = await register(baseUrl, 'frank', ['AAPL'])
  const second = await register(baseUrl, 'gina', ['AAPL'])
  const { socket } = await pipelinedUntilSnapshot(t, baseUrl, [first.streamUrl, second.streamUrl])
  const bothEnded = new Promise<void>((resolve) => {
    const ended = new Set<string>()
    app.sessions.observeDeactivations((session) => {
      ended.add(session.id)
      if (ended.has(first.sessionId) && ended.has(second.sessionId)) resolve()
    })
  })
  socket.destroy()
  await bothEnded
  t.equal(app.sessions.activeCount, 0, 'the queued one is not left behind')
  t.equal(app.sessions.counters.deactivated.client_closed, 2)
  await app.streams.whenResponsesClosed()
  t.equal(app.streams.openCount, 0)
})

t.test('a stream queued behind another on its connection and ended there is not left among the open responses', async (t) => {
  const { app, baseUrl } = await startApp(t)
  const first = await register(baseUrl, 'ivan', ['AAPL'])
  const second = await register(baseUrl, 'jill', ['AAPL'])
  const { socket } = await pipelinedUntilSnapshot(t, baseUrl, [first.streamUrl, second.streamUrl])
  t.equal(app.streams.responseCount, 2, 'both responses are open, the second one without a socket')
  // Ended by something other than its connection (a DELETE; eviction, expiry or a slow consumer alike).
  t.equal((await request(baseUrl, `/sessions/${second.sessionId}`, { method: 'DELETE' })).status, 204)
  t.equal(app.streams.responseCount, 1, 'the queued one is no longer counted as open')
  const firstEnded = new Promise<void>((resolve) => app.sessions.observeDeactivations((session) => {
    if (session.id === first.sessionId) resolve()
  }))
  socket.destroy()
  await firstEnded
  await app.streams.whenResponsesClosed()
  t.equal(app.streams.responseCount, 0)
  t.equal(app.sessions.counters.deactivated.deleted, 1)
  t.equal(app.sessions.counters.deactivated.client_closed, 1)
})

t.test('an ended stream releases its connection even when the client never closes its side', async (t) => {
  const { app, baseUrl } = await startApp(t)
  const session = await register(baseUrl, 'hank', ['AAPL'])
  const url = new URL(baseUrl)
  // allowHalfOpen: this client does not answer the server's FIN with its own.
  const socket = connect({ port: Number(url.port), host: url.hostname, allowHalfOpen: true })
  t.teardown(() => socket.destroy())
  let received = ''
  const snapshot = new Promise<void>((resolve) => socket.on('data', (chunk) => {
    received += chunk.toString()
    if (received.includes('event: snapshot')) resolve()
  }))
  const ended = once(socket, 'end')
  socket.write(`GET ${session.streamUrl} HTTP/1.1\r\nHost: x\r\n\r\n`)
  await snapshot
  t.equal((await request(baseUrl, `/sessions/${session.sessionId}`, { method: 'DELETE' })).status, 204)
  await ended
  t.match(received, /event: end\ndata: \{"reason":"deleted"\}/, 'the end event came before the FIN')
  // The server's side is gone although this client still holds its own open.
  await app.streams.whenResponsesClosed()
  t.equal(app.streams.responseCount, 0)
  t.equal(socket.destroyed, false, 'the client had not closed')
})
