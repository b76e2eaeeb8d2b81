import t from 'tap'
import { systemClock } from '../../src/clock.js'
import { SimulatedFeed, type SimulatedFeedOptions } from '../../src/feed/simulated-feed.js'
import { silentLogger, type Logger } from '../../src/logger.js'
import { toPriceUpdate, type PriceUpdate } from '../../src/price.js'
import { seededRandom } from './seeded-random.js'

/*
 * Time and randomness are mocked: the feed stamps prices with the clock it is given and walks
 * with the random function it is given, so the tests give it a fixed time and a seeded
 * generator. The start/stop test uses the real timer and clock.
 */
const FIXED_NOW = 1_764_312_345_678
const TICKERS = ['AAPL', 'MSFT', 'BRK.B', 'NVDA']

function makeFeed (overrides: Partial<SimulatedFeedOptions> = {}): { feed: SimulatedFeed, batches: PriceUpdate[][] } {
  const batches: PriceUpdate[][] = []
  const feed = new SimulatedFeed({
    tickers: TICKERS,
    ratePerSecond: 50,
    publish: async (updates) => { batches.push(updates) },
    clock: () => FIXED_NOW,
    logger: silentLogger,
    random: seededRandom(42),
    ...overrides
  })
  return { feed, batches }
}

/** Whether `price` has at most two decimals as written in JSON. */
function hasAtMostTwoDecimals (price: number): boolean {
  return /^\d+(\.\d{1,2})?$/.test(String(price))
}

t.test('nextUpdates(n) returns n valid prices of the configured tickers, stamped with the clock', async (t) => {
  const { feed } = makeFeed()
  const updates = feed.nextUpdates(500)
  t.equal(updates.length, 500)
  let problems = 0
  for (const update of updates) {
    const check = toPriceUpdate(JSON.parse(update.json), 0)
    const ok = check.ok &&
      check.update.json === update.json &&
      TICKERS.includes(update.ticker) &&
      update.price.ticker === update.ticker &&
      update.price.price > 0 &&
      hasAtMostTwoDecimals(update.price.price) &&
      update.ts === FIXED_NOW &&
      update.price.ts === FIXED_NOW
    if (!ok) {
      problems++
      t.fail(`invalid simulated price ${update.json}`)
    }
  }
  t.equal(problems, 0, 'every price is valid, positive, in cents, for a configured ticker, at the clock\'s time')
  t.strictSame(new Set(updates.map((u) => u.ticker)), new Set(TICKERS), '500 draws cover every configured ticker')
  t.strictSame(feed.nextUpdates(0), [])
})

t.test('each step of the walk moves a ticker\'s price by at most 0.2 % (plus rounding to cents)', async (t) => {
  const { feed } = makeFeed({ tickers: ['AAPL'] })
  const prices = feed.nextUpdates(300).map((u) => u.price.price)
  let jumps = 0
  for (let i = 1; i < prices.length; i++) {
    const previous = prices[i - 1] ?? 0
    const current = prices[i] ?? 0
    if (Math.abs(current - previous) > previous * 0.002 + 0.005 + 1e-9) jumps++
  }
  t.equal(jumps, 0, 'no step jumps further than the walk allows')
  t.ok(new Set(prices).size > 1, 'the price does move')
})

t.test('prices stay positive even when the walk only ever goes down', async (t) => {
  // random() always 0: the lowest start price and a step down every time.
  const { feed } = makeFeed({ tickers: ['AAPL'], random: () => 0 })
  const updates = feed.nextUpdates(10_000)
  t.ok(updates.every((u) => u.price.price > 0), 'never zero or negative')
  t.ok(updates.every((u) => hasAtMostTwoDecimals(u.price.price)))
  t.ok((updates.at(-1)?.price.price ?? 0) < (updates[0]?.price.price ?? 0), 'it did go down')
})

t.test('the same seed gives the same walk', async (t) => {
  const first = makeFeed({ random: seededRandom(7) }).feed.nextUpdates(50).map((u) => u.json)
  const second = makeFeed({ random: seededRandom(7) }).feed.nextUpdates(50).map((u) => u.json)
  t.strictSame(first, second)
})

// The tick length is max(20 ms, floor(1000 / rate)), and each tick owes rate * tickMs / 1000
// updates; the fraction carries over to the next tick.
t.test('tick() publishes one update per tick at 50 per second (20 ms ticks)', async (t) => {
  const { feed, batches } = makeFeed({ ratePerSecond: 50 })
  for (let i = 0; i < 10; i++) feed.tick()
  t.strictSame(batches.map((batch) => batch.length), Array(10).fill(1))
  t.equal(feed.publishedCount, 10)
})

t.test('tick() publishes rate x 20 ms worth of updates at high rates', async (t) => {
  // 1000 per second: floor(1000/1000) = 1 ms is below the 20 ms minimum, so 20 updates a tick.
  const { feed, batches } = makeFeed({ ratePerSecond: 1000 })
  feed.tick()
  feed.tick()
  t.strictSame(batches.map((batch) => batch.length), [20, 20])
  t.equal(feed.publishedCount, 40)
})

t.test('tick() carries the fractional part of what it owes', async (t) => {
  // 75 per second: 20 ms ticks owe 1.5 updates each, so they alternate 1, 2, 1, 2.
  const { feed, batches } = makeFeed({ ratePerSecond: 75 })
  for (let i = 0; i < 8; i++) feed.tick()
  t.strictSame(batches.map((batch) => batch.length), [1, 2, 1, 2, 1, 2, 1, 2])
  t.equal(feed.publishedCount, 12, '75 per second over 8 x 20 ms = 160 ms is 12 updates')
})

t.test('tick() publishes nothing while it owes less than one update', async (t) => {
  // 3 per second: floor(1000/3) = 333 ms ticks owe 0.999 updates each.
  const { feed, batches } = makeFeed({ ratePerSecond: 3 })
  feed.tick()
  t.equal(batches.length, 0, 'the first tick owes 0.999: no publish call at all')
  feed.tick()
  t.strictSame(batches.map((batch) => batch.length), [1], 'the second owes 1.998: one update')
  for (let i = 0; i < 998; i++) feed.tick()
  t.equal(feed.publishedCount, 999, '1000 ticks of 0.999 add up to 999 updates')
})

t.test('a failing publish is logged, not thrown', async (t) => {
  const warned = new Promise<object>((resolve) => {
    const ignore = (): void => {}
    const logger: Logger = { error: ignore, info: ignore, debug: ignore, warn: (obj: object | string) => { resolve(obj as object) } }
    const { feed } = makeFeed({ logger, publish: async () => { throw new Error('bus down') } })
    t.doesNotThrow(() => feed.tick())
    t.equal(feed.publishedCount, 1, 'the updates were handed over')
  })
  const logged = await warned
  t.match(logged, { err: { message: 'bus down' } })
})

t.test('start() publishes on the real timer until stop()', async (t) => {
  let guard: NodeJS.Timeout | undefined
  let feed: SimulatedFeed | undefined
  const first = await new Promise<PriceUpdate[]>((resolve, reject) => {
    // The feed's timer is unref'd; this one keeps the process alive, and fails the test
    // instead of hanging if nothing is ever published.
    guard = setTimeout(() => reject(new Error('nothing published within 5 s')), 5000)
    feed = new SimulatedFeed({
      tickers: TICKERS,
      ratePerSecond: 50,
      publish: async (updates) => { resolve(updates) },
      clock: systemClock,
      logger: silentLogger
    })
    t.teardown(() => feed?.stop())
    feed.start()
    feed.start() // a second start is a no-op
  }).finally(() => clearTimeout(guard))
  feed?.stop()
  t.ok(first.length >= 1, 'a batch of prices was published')
  for (const update of first) {
    t.ok(TICKERS.includes(update.ticker))
    t.ok(toPriceUpdate(JSON.parse(update.json), 0).ok, 'a valid price')
  }
  const count = feed?.publishedCount ?? 0
  feed?.tick()
  t.equal(feed?.publishedCount, count + 1, 'tick() still works by hand after stop')
})
