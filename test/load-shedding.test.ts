import t from 'tap'
import { startApp } from './helpers/app.js'
import { request } from './helpers/http.js'
import { publish } from './helpers/prices.js'
import { SseClient } from './helpers/sse-client.js'

/** Blocks this process's event loop (the server runs in it): the overload under test. */
function blockEventLoop (ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) { /* busy: simulating a saturated event loop */ }
}

/**
 * Registers, retrying while the server sheds load, as a well-behaved client would: it backs
 * off between attempts (retrying at once would itself keep this shared event loop busy).
 */
async function registerWhenCalm (baseUrl: string, userId: string): Promise<{ sessionId: string, streamUrl: string }> {
  for (;;) {
    const res = await request(baseUrl, '/sessions', { method: 'POST', body: { userId, tickers: ['AAPL'] } })
    if (res.status === 201) return res.body
    if (res.status !== 503) throw new Error(`unexpected ${res.status}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('a saturated event loop refuses new sessions and streams, never open streams', async (t) => {
  const { app, baseUrl } = await startApp(t, {}, { loadShedding: { maxEventLoopDelayMs: 100, sampleIntervalMs: 50 } })
  // Start from a calm loop (loading the test itself keeps it busy for a moment).
  const streaming = await registerWhenCalm(baseUrl, 'alice')
  const waiting = await registerWhenCalm(baseUrl, 'bob')
  const client = await SseClient.open(baseUrl, streaming.streamUrl)
  t.teardown(() => client.close())
  await client.next()

  blockEventLoop(600)
  const [newSession, newStream, health] = await Promise.all([
    request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'carol', tickers: ['AAPL'] } }),
    request(baseUrl, waiting.streamUrl),
    request(baseUrl, '/health')
  ])
  t.equal(newSession.status, 503, 'new session refused')
  t.equal(newSession.body.error, 'Service Unavailable')
  t.ok(newSession.headers['retry-after'], 'with retry-after')
  t.equal(newStream.status, 503, 'new stream refused')
  t.equal(health.status, 200, 'the rest keeps answering')

  await publish(app, [{ ticker: 'AAPL', price: 1 }])
  const event = await client.waitFor((e) => e.event === 'prices')
  t.same(event.json.prices[0].price, 1, 'the open stream goes on')
  t.equal(client.ended, false)
  // Once the loop is calm again, new work is accepted (the next samples show it).
  const accepted = await registerWhenCalm(baseUrl, 'carol')
  t.type(accepted.sessionId, 'string')
})
