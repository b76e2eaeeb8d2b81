import t from 'tap'
import { startApp } from './helpers/app.js'
import { register } from './helpers/http.js'
import { assertNothingLeft, recordDeactivations } from './helpers/leaks.js'
import { publish } from './helpers/prices.js'
import { SseClient, type SseEvent } from './helpers/sse-client.js'

const BIG_TICKERS = Array.from({ length: 40 }, (_, i) => `BIG${i}`)
const PAD = 'x'.repeat(6000)
const SLOW_CONSUMER_MS = 1500

function lagsOf (events: SseEvent[]): number[] {
  return events
    .filter((event) => event.event === 'prices')
    .flatMap((event) => (event.json.prices as Array<{ ts: number }>).map((price) => event.receivedAt - price.ts))
}

const max = (values: number[]): number => values.reduce((a, b) => Math.max(a, b), 0)

t.test('a client that stops reading does not delay others, stays bounded, and is cut off', async (t) => {
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '20', SLOW_CONSUMER_MS: String(SLOW_CONSUMER_MS) })
  const seen = recordDeactivations(app)

  const fastSession = await register(baseUrl, 'fast', ['FAST'])
  const fast = await SseClient.open(baseUrl, fastSession.streamUrl)
  t.teardown(() => fast.close())
  await fast.next()

  // The fast client's price flow: one FAST price every 10 ms, stamped with its send time.
  let fastPrice = 1
  const fastFlow = setInterval(() => { void publish(app, [{ ticker: 'FAST', price: fastPrice++, ts: Date.now() }]) }, 10)
  t.teardown(() => clearInterval(fastFlow))

  // Baseline: the fast client's lag with no slow client around.
  const baselineStart = fast.events.length
  for (let i = 0; i < 15; i++) await fast.next()
  const baselineLag = max(lagsOf(fast.events.slice(baselineStart)))

  // The slow client watches big tickers (and FAST) and never reads.
  const slowSession = await register(baseUrl, 'slow', [...BIG_TICKERS, 'FAST'])
  const slow = await SseClient.open(baseUrl, slowSession.streamUrl)
  t.teardown(() => slow.close())
  await slow.next()
  slow.pause()
  let bigPrice = 1
  const bigFlow = setInterval(() => { void publish(app, BIG_TICKERS.map((ticker) => ({ ticker, price: bigPrice++, pad: PAD }))) }, 5)
  t.teardown(() => clearInterval(bigFlow))

  const cutOff = new Promise<string>((resolve) => app.sessions.observeDeactivations((s, reason) => { if (s.id === slowSession.sessionId) resolve(reason) }))

  // Wait (on the fast client's events, not a timer) until the slow stream is congested.
  let stats = app.sessions.streamStats(slowSession.sessionId)
  const withSlowStart = fast.events.length
  while (stats?.congested !== true) {
    await fast.next()
    stats = app.sessions.streamStats(slowSession.sessionId)
  }
  t.pass('the slow stream became congested')

  // While it is congested: its memory stays bounded, and the fast client keeps getting events.
  let congestedSamples = 0
  let maxPending = 0
  let maxBuffered = 0
  while (stats !== undefined) {
    maxPending = Math.max(maxPending, stats.pendingPrices)
    maxBuffered = Math.max(maxBuffered, stats.bufferedBytes)
    congestedSamples++
    await fast.next()
    stats = app.sessions.streamStats(slowSession.sessionId)
  }
  t.equal(await cutOff, 'slow_consumer', 'cut off for being slow')
  clearInterval(bigFlow)
  const eventSize = BIG_TICKERS.length * (PAD.length + 100) + 100
  t.ok(maxPending <= BIG_TICKERS.length + 1, `pending batch bounded by its tickers (max ${maxPending})`)
  t.ok(maxBuffered <= 2 * eventSize + 64 * 1024, `server-side buffer bounded (max ${maxBuffered} bytes)`)
  t.ok(congestedSamples >= 10, `the fast client received ${congestedSamples} events while the slow one was congested`)

  const withSlowLag = max(lagsOf(fast.events.slice(withSlowStart)))
  t.comment(`fast client max lag: ${baselineLag} ms alone, ${withSlowLag} ms next to a congested client (cut off after ${SLOW_CONSUMER_MS} ms)`)
  // Were it blocked by the slow socket, its lag would reach the cut-off time.
  t.ok(withSlowLag < SLOW_CONSUMER_MS / 2, `fast client not blocked by the slow one (${withSlowLag} ms)`)

  // Read what the kernel still holds so the cut-off connection can be seen to end.
  slow.resume()
  await slow.finished
  t.notOk(slow.events.some((event) => event.event === 'end' && event.json.reason !== 'slow_consumer'), 'no other end reason')
  clearInterval(fastFlow)
  fast.close()
  await fast.finished
  t.same(seen.get(slowSession.sessionId), ['slow_consumer'])
  await assertNothingLeft(t, app, baseUrl)
})
