import t from 'tap'
import { startApp } from './helpers/app.js'
import { request } from './helpers/http.js'
import { publish } from './helpers/prices.js'
import { SseClient } from './helpers/sse-client.js'

/** Blocks this process's event loop (the server runs in it). */
function blockEventLoop (ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) { /* busy: simulating a saturated event loop */ }
}

/**
 * The overload under test: every turn of this process's event loop blocks `ms` until stopped.
 * One long block is not enough: under-pressure samples the *mean* delay over its interval and
 * then starts afresh, so a single stall is diluted by the normal turns around it, or missed
 * when its sample runs first, and the test hung in CI on a request that was not refused.
 */
function saturateEventLoop (ms: number): () => void {
  const timer = setInterval(() => blockEventLoop(ms), 1)
  return () => clearInterval(timer)
}

async function waitUntil (condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10))
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

/** Opens a stream the same way: a busy test machine can shed the open, too. */
async function openWhenCalm (baseUrl: string, streamUrl: string): Promise<SseClient> {
  for (;;) {
    const client = await SseClient.open(baseUrl, streamUrl)
    if (client.status === 200) return client
    client.close()
    if (client.status !== 503) throw new Error(`unexpected ${client.status}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('a saturated event loop refuses new sessions and streams, never open streams', async (t) => {
  const { app, baseUrl } = await startApp(t, {}, { loadShedding: { maxEventLoopDelayMs: 100, sampleIntervalMs: 50 } })
  // Start from a calm loop (loading the test itself keeps it busy for a moment).
  const streaming = await registerWhenCalm(baseUrl, 'alice')
  const waiting = await registerWhenCalm(baseUrl, 'bob')
  const client = await openWhenCalm(baseUrl, streaming.streamUrl)
  t.teardown(() => client.close())
  await client.next()

  const stopSaturating = saturateEventLoop(150)
  await waitUntil(() => app.isUnderPressure())
  const [newSession, newStream, health] = await Promise.all([
    request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'carol', tickers: ['AAPL'] } }),
    request(baseUrl, waiting.streamUrl),
    request(baseUrl, '/health')
  ]).finally(stopSaturating)
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
