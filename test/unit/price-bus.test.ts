import t from 'tap'
import { InProcessTransport } from '../../src/bus/in-process-transport.js'
import { LatestPrices } from '../../src/bus/latest-prices.js'
import { PriceBus } from '../../src/bus/price-bus.js'
import type { PriceListener } from '../../src/bus/ticker-subscriptions.js'
import { RateLimitedWarning, silentLogger, type LogFn, type Logger } from '../../src/logger.js'
import { priceUpdate, type PriceUpdate } from '../../src/price.js'

/*
 * Time is mocked: the bus stamps prices without `ts` and rate-limits its warnings by the
 * clock it is given, so the tests give it a fixed (or explicitly advanced) time.
 */
const FIXED_NOW = 1_764_312_345_678

function makeBus (options: { clock?: () => number, logger?: Logger } = {}): PriceBus {
  return new PriceBus({
    createTransport: (inbox) => new InProcessTransport(inbox),
    clock: options.clock ?? (() => FIXED_NOW),
    logger: options.logger ?? silentLogger
  })
}

function update (ticker: string, price: number, ts: number): PriceUpdate {
  return priceUpdate({ ticker, price, ts })
}

/** A listener that keeps what it receives. */
function recorder (): { listener: PriceListener, received: PriceUpdate[] } {
  const received: PriceUpdate[] = []
  return { listener: (u) => { received.push(u) }, received }
}

interface LogEntry { level: keyof Logger, obj: object | undefined, msg: string | undefined }

/** A logger that keeps its entries, to check what was (not) logged. */
function capturingLogger (): { logger: Logger, entries: LogEntry[] } {
  const entries: LogEntry[] = []
  const at = (level: keyof Logger): LogFn => ((objOrMsg: object | string, msg?: string) => {
    if (typeof objOrMsg === 'string') entries.push({ level, obj: undefined, msg: objOrMsg })
    else entries.push({ level, obj: objOrMsg, msg })
  }) as LogFn
  return { logger: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }, entries }
}

t.test('watch and unwatch are reference counted per ticker', async (t) => {
  const bus = makeBus()
  const a = recorder()
  const b = recorder()
  const watchA = bus.watch(['AAPL'], a.listener)
  const watchB = bus.watch(['AAPL'], b.listener)
  t.equal(bus.subscriptions.size, 1)
  t.equal(bus.subscriptions.counters.subscribeTotal, 1, 'one bus subscription for two watchers')
  bus.unwatch(watchA)
  await bus.publish([update('AAPL', 1, 1)])
  t.equal(a.received.length, 0, 'an unwatched listener gets nothing')
  t.equal(b.received.length, 1, 'the remaining watcher still gets prices')
  t.equal(bus.subscriptions.counters.unsubscribeTotal, 0)
  bus.unwatch(watchB)
  bus.unwatch(watchB)
  t.equal(bus.subscriptions.counters.unsubscribeTotal, 1, 'ending a watch twice releases once')
  t.equal(bus.subscriptions.size, 0)
  t.equal(bus.subscriptions.counters.unsubscribeTotal, 1, 'released with the last watcher')
  await bus.publish([update('AAPL', 2, 2)])
  t.equal(b.received.length, 1, 'nothing is delivered once released')
  t.equal(bus.counters.pricesReceived, 1)
})

t.test('publish delivers each price to the watchers of its ticker only', async (t) => {
  const bus = makeBus()
  const apple = recorder()
  const microsoft = recorder()
  bus.watch(['AAPL'], apple.listener)
  bus.watch(['MSFT'], microsoft.listener)
  const prices = [update('AAPL', 187.42, 1), update('MSFT', 410.1, 2), update('NVDA', 950, 3), update('AAPL', 187.5, 4)]
  await bus.publish(prices)
  t.strictSame(apple.received, [prices[0], prices[3]])
  t.strictSame(microsoft.received, [prices[1]])
  t.equal(bus.counters.pricesReceived, 3, 'NVDA, watched by nobody, is not counted as received')
  t.equal(bus.counters.messagesInvalid, 0)
})

t.test('latest() answers the last published price of each ticker that has one, in the order asked', async (t) => {
  const bus = makeBus()
  await bus.publish([update('AAPL', 1, 10), update('MSFT', 2, 20)])
  await bus.publish([update('AAPL', 3, 30)])
  const latest = await bus.latest(['MSFT', 'NVDA', 'AAPL'])
  t.strictSame(latest.map((u) => u.price), [
    { ticker: 'MSFT', price: 2, ts: 20 },
    { ticker: 'AAPL', price: 3, ts: 30 }
  ], 'prices nobody watched are remembered; a ticker without a price is left out')
  t.strictSame((await bus.latest(['AAPL', 'MSFT'])).map((u) => u.ticker), ['AAPL', 'MSFT'], 'order follows the request')
  t.strictSame(await bus.latest([]), [])
  t.strictSame(await bus.latest(['NVDA']), [])
})

t.test('latest() includes prices received from the bus', async (t) => {
  const bus = makeBus()
  const watcher = recorder()
  bus.watch(['AAPL'], watcher.listener)
  bus.deliverMessage('AAPL', '{"ticker":"AAPL","price":187.42,"ts":5}')
  t.strictSame((await bus.latest(['AAPL'])).map((u) => u.price), [{ ticker: 'AAPL', price: 187.42, ts: 5 }])
})

t.test('deliverMessage drops and counts every malformed message class from the contract', async (t) => {
  const bus = makeBus()
  const watcher = recorder()
  bus.watch(['AAPL'], watcher.listener)
  const oversized = JSON.stringify({ ticker: 'AAPL', price: 1, ts: 1, pad: 'x'.repeat(8 * 1024) })
  const cases: Array<[string, string | Buffer]> = [
    ['not JSON', 'not json'],
    ['truncated JSON', '{"ticker":"AAPL","price":1'],
    ['an empty message', ''],
    ['a JSON array', '[{"ticker":"AAPL","price":1,"ts":1}]'],
    ['an empty JSON array', '[]'],
    ['a JSON string', '"AAPL"'],
    ['a JSON number', '187.42'],
    ['JSON null', 'null'],
    ['JSON true', 'true'],
    ['over 8 KiB', oversized],
    ['over 8 KiB, as a Buffer', Buffer.from(oversized)],
    ['ticker missing', '{"price":1,"ts":1}'],
    ['ticker not a string', '{"ticker":1,"price":1,"ts":1}'],
    ['ticker of another channel', '{"ticker":"MSFT","price":1,"ts":1}'],
    ['ticker of another channel, lower-case', '{"ticker":"msft","price":1,"ts":1}'],
    ['ticker invalid', '{"ticker":"AA PL","price":1,"ts":1}'],
    ['price as a string', '{"ticker":"AAPL","price":"12.5","ts":1}'],
    ['price negative', '{"ticker":"AAPL","price":-1,"ts":1}'],
    ['price null', '{"ticker":"AAPL","price":null,"ts":1}'],
    ['price missing', '{"ticker":"AAPL","ts":1}'],
    ['ts null', '{"ticker":"AAPL","price":1,"ts":null}'],
    ['ts a string', '{"ticker":"AAPL","price":1,"ts":"1764312345678"}'],
    ['ts a string, as a Buffer', Buffer.from('{"ticker":"AAPL","price":1,"ts":"1"}')]
  ]
  let expectedInvalid = 0
  for (const [label, message] of cases) {
    t.doesNotThrow(() => bus.deliverMessage('AAPL', message), `${label}: does not throw`)
    expectedInvalid++
    t.equal(bus.counters.messagesInvalid, expectedInvalid, `${label}: counted as invalid`)
  }
  t.strictSame(watcher.received, [], 'nothing was delivered')
  t.equal(bus.counters.pricesReceived, 0)
  t.strictSame(await bus.latest(['AAPL', 'MSFT']), [], 'nothing was remembered either')
})

t.test('a valid message with a lower-case ticker on the right channel is delivered', async (t) => {
  const bus = makeBus()
  const watcher = recorder()
  bus.watch(['AAPL'], watcher.listener)
  bus.deliverMessage('AAPL', '{"ticker":" aapl ","price":187.42,"ts":1764312345000,"venue":"XNAS"}')
  bus.deliverMessage('AAPL', Buffer.from('{"ticker":"aapl","price":187.5}'))
  t.equal(bus.counters.messagesInvalid, 0)
  t.equal(bus.counters.pricesReceived, 2)
  t.strictSame(watcher.received.map((u) => u.price), [
    { ticker: 'AAPL', price: 187.42, ts: 1764312345000, venue: 'XNAS' },
    { ticker: 'AAPL', price: 187.5, ts: FIXED_NOW }
  ], 'normalized, extra fields kept, a missing ts is the receive time')
  t.equal(watcher.received[0]?.json, JSON.stringify(watcher.received[0]?.price))
})

t.test('a valid message of exactly 8 KiB with ts is delivered', async (t) => {
  const bus = makeBus()
  const watcher = recorder()
  bus.watch(['AAPL'], watcher.listener)
  const base = '{"ticker":"AAPL","price":1,"ts":1,"pad":""}'
  const message = base.replace('""', `"${'x'.repeat(8 * 1024 - base.length)}"`)
  t.equal(Buffer.byteLength(message), 8 * 1024)
  bus.deliverMessage('AAPL', message)
  t.equal(bus.counters.messagesInvalid, 0)
  t.equal(watcher.received.length, 1)
})

t.test('a valid message of at most 8 KiB without ts is delivered', async (t) => {
  const bus = makeBus()
  const watcher = recorder()
  bus.watch(['AAPL'], watcher.listener)
  const base = '{"ticker":"AAPL","price":1,"pad":""}'
  const message = base.replace('""', `"${'x'.repeat(8 * 1024 - 10 - base.length)}"`)
  t.equal(Buffer.byteLength(message), 8 * 1024 - 10, 'the message is 10 bytes under 8 KiB')
  bus.deliverMessage('AAPL', message)
  t.equal(bus.counters.messagesInvalid, 0, 'it is not malformed')
  t.equal(watcher.received.length, 1, 'it is delivered')
})

t.test('a valid message for a ticker nobody watches is neither received nor invalid', async (t) => {
  const bus = makeBus()
  bus.deliverMessage('NVDA', '{"ticker":"NVDA","price":950,"ts":1}')
  t.equal(bus.counters.pricesReceived, 0)
  t.equal(bus.counters.messagesInvalid, 0)
})

t.test('a listener that throws does not keep the price from the other listeners', async (t) => {
  const { logger, entries } = capturingLogger()
  const bus = makeBus({ logger })
  const before = recorder()
  const after = recorder()
  bus.watch(['AAPL'], before.listener)
  bus.watch(['AAPL'], () => { throw new Error('listener bug') })
  bus.watch(['AAPL'], after.listener)
  const price = update('AAPL', 1, 1)
  await t.resolves(bus.publish([price]), 'publish does not fail')
  t.strictSame(before.received, [price])
  t.strictSame(after.received, [price], 'the listener after the failing one still gets it')
  t.equal(bus.counters.pricesReceived, 1)
  t.equal(entries.filter((entry) => entry.level === 'error').length, 1, 'the failure is logged')
})

t.test('malformed messages are logged at most once per interval, with the count held back', async (t) => {
  const { logger, entries } = capturingLogger()
  let now = FIXED_NOW
  const bus = makeBus({ logger, clock: () => now })
  for (let i = 0; i < 5; i++) bus.deliverMessage('AAPL', 'not json')
  t.equal(bus.counters.messagesInvalid, 5)
  const warnings = (): LogEntry[] => entries.filter((entry) => entry.level === 'warn')
  t.equal(warnings().length, 1, 'a flood of bad messages logs one warning')
  now += 60_000
  bus.deliverMessage('AAPL', 'still not json')
  t.equal(warnings().length, 2, 'a later one is logged again')
  t.match(warnings()[1]?.obj, { ticker: 'AAPL', suppressedSinceLast: 4 })
})

t.test('the in-process bus is ready and delivers nothing after close', async (t) => {
  const bus = makeBus()
  t.equal(bus.isReady, true)
  const watcher = recorder()
  bus.watch(['AAPL'], watcher.listener)
  await bus.close()
  await bus.publish([update('AAPL', 1, 1)])
  t.strictSame(watcher.received, [])
})

t.test('RateLimitedWarning lets one warning through per interval and reports how many it held back', async (t) => {
  // Time is mocked: the limiter's window is measured on the clock it is given.
  let now = 5000
  const { logger, entries } = capturingLogger()
  const warning = new RateLimitedWarning(logger, 1000, () => now)
  warning.warn({ ticker: 'AAPL' }, 'bad message')
  t.strictSame(entries, [{ level: 'warn', obj: { ticker: 'AAPL', suppressedSinceLast: 0 }, msg: 'bad message' }],
    'the first warning goes through')
  for (const at of [5000, 5001, 5500, 5999]) {
    now = at
    warning.warn({ ticker: 'MSFT' }, 'bad message')
  }
  t.equal(entries.length, 1, 'warnings within the interval are held back')
  now = 6000
  warning.warn({ ticker: 'NVDA', reason: 'not JSON' }, 'bad message')
  t.equal(entries.length, 2, 'one interval later the next goes through')
  t.strictSame(entries[1], { level: 'warn', obj: { ticker: 'NVDA', reason: 'not JSON', suppressedSinceLast: 4 }, msg: 'bad message' })
  now = 6999
  warning.warn({}, 'bad message')
  now = 50_000
  warning.warn({}, 'bad message')
  t.equal(entries.length, 3)
  t.match(entries[2]?.obj, { suppressedSinceLast: 1 }, 'the count starts over after each report')
  now = 51_000
  warning.warn({}, 'bad message')
  t.match(entries[3]?.obj, { suppressedSinceLast: 0 })
})

t.test('LatestPrices forgets the least recently updated ticker past its capacity', async (t) => {
  const latest = new LatestPrices(3)
  latest.remember(update('A', 1, 1))
  latest.remember(update('B', 1, 1))
  latest.remember(update('C', 1, 1))
  latest.remember(update('A', 2, 2))
  t.equal(latest.size, 3, 'updating a known ticker evicts nothing')
  t.equal(latest.get('A')?.price.price, 2, 'and keeps the newer value')
  latest.remember(update('D', 1, 1))
  t.equal(latest.size, 3, 'never more than the capacity')
  t.equal(latest.get('B'), undefined, 'B, the least recently updated, is forgotten')
  t.ok(latest.get('A') !== undefined && latest.get('C') !== undefined && latest.get('D') !== undefined, 'A stays: it was updated')
  latest.remember(update('E', 1, 1))
  t.equal(latest.get('C'), undefined, 'then C')
  t.strictSame(['A', 'D', 'E'].map((ticker) => latest.get(ticker)?.ticker), ['A', 'D', 'E'])
})

t.test('LatestPrices stays bounded under many distinct tickers', async (t) => {
  const latest = new LatestPrices(10)
  for (let i = 0; i < 1000; i++) latest.remember(update(`T${i}`, i, i))
  t.equal(latest.size, 10)
  t.equal(latest.get('T989'), undefined)
  t.equal(latest.get('T990')?.price.price, 990)
  t.equal(latest.get('T999')?.price.price, 999)
})
