import t from 'tap'
import { InProcessTransport } from '../../src/bus/in-process-transport.js'
import { LatestPrices } from '../../src/bus/latest-prices.js'
import { PriceBus, type BusInbox, type BusTransport } from '../../src/bus/price-bus.js'
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

t.test('LatestPrices keeps the latest price of every ticker it was given, in the order given, whatever their ts', async (t) => {
  const latest = new LatestPrices()
  // More tickers than the 20 000 the map was once capped at: the contract's snapshot has the
  // latest price *ever* published of each.
  for (let i = 0; i < 30_000; i++) latest.published(update(`T${i}`, i, i))
  t.equal(latest.size, 30_000, 'nothing is forgotten')
  t.equal(latest.newest('T0', undefined)?.price.price, 0, 'the first one is still there')
  latest.received(update('T1', 10, 5000))
  latest.received(update('T1', 11, 1000))
  t.strictSame(latest.newest('T1', undefined)?.price, { ticker: 'T1', price: 11, ts: 1000 }, 'the later one, though its ts is smaller')
})

t.test('LatestPrices: a price received on a confirmed subscription beats the shared cache; any other loses to it', async (t) => {
  const latest = new LatestPrices()
  const cached = update('AAPL', 100, 9_000_000_000_000)
  latest.received(update('AAPL', 150, 1000))
  t.equal(latest.newest('AAPL', cached)?.price.price, 100, 'received before the subscription was confirmed: the cache wins')
  latest.subscriptionConfirmed('AAPL')
  latest.received(update('AAPL', 200, 1000))
  t.equal(latest.newest('AAPL', cached)?.price.price, 200, 'received since the subscription took effect: nothing can have passed it, whatever the ts')
  latest.subscriptionEnded('AAPL')
  t.equal(latest.newest('AAPL', update('AAPL', 300, 1))?.price.price, 300, 'once the subscription ended, the cache wins, whatever the ts')
  t.equal(latest.newest('AAPL', undefined)?.price.price, 200, 'and without a cached price, the one this instance has is the answer')
  latest.received(update('AAPL', 400, 1))
  t.equal(latest.newest('AAPL', cached)?.price.price, 100, 'one still in flight from the ended subscription: the cache wins')
  latest.subscriptionConfirmed('AAPL')
  t.equal(latest.newest('AAPL', cached)?.price.price, 100, 'a confirmation alone does not make an earlier price current')
  latest.received(update('AAPL', 500, 1))
  t.equal(latest.newest('AAPL', cached)?.price.price, 500, 'received after the new confirmation: current again')
  latest.subscriptionsInterrupted()
  t.equal(latest.newest('AAPL', cached)?.price.price, 100, 'after the connection dropped, the cache wins')
  latest.received(update('AAPL', 600, 1))
  t.equal(latest.newest('AAPL', cached)?.price.price, 100, 'and keeps winning until the subscription is confirmed again')

  latest.published(update('MSFT', 1, 5000))
  t.equal(latest.newest('MSFT', update('MSFT', 2, 1))?.price.price, 2, 'a price published here, unwatched, loses to the cache')
  t.equal(latest.newest('MSFT', undefined)?.price.price, 1, 'and is the answer without one')
  t.equal(latest.newest('NVDA', undefined), undefined, 'a ticker nobody priced has nothing')
})

t.test('LatestPrices.published keeps a price received since: the one received is as new or newer', async (t) => {
  const latest = new LatestPrices()
  latest.subscriptionConfirmed('AAPL')
  latest.received(update('AAPL', 2, 2))
  latest.published(update('AAPL', 1, 1))
  t.equal(latest.newest('AAPL', undefined)?.price.price, 2, 'not replaced by the publish returning late')
  latest.subscriptionEnded('AAPL')
  latest.published(update('AAPL', 3, 3))
  t.equal(latest.newest('AAPL', undefined)?.price.price, 3, 'once not current, a publish replaces it')
})

/**
 * A transport with a shared latest-price cache, as Redis mode has: a publish writes the cache
 * and reaches this instance only if it is subscribed; `publishElsewhere` is another
 * instance's publish (cache and channel), `publishRaw` a message straight to the channel.
 * What reaches this instance (messages, subscription confirmations) arrives at once, or, after
 * `holdWire()`, waits in order until `readWire()`: a socket not yet read.
 */
class SharedCacheTransport implements BusTransport {
  readonly isReady = true
  readonly cache = new Map<string, PriceUpdate>()
  private readonly subscribed = new Set<string>()
  private wire: Array<() => void> | undefined
  constructor (private readonly inbox: BusInbox) {}
  subscribe (ticker: string): void {
    this.subscribed.add(ticker)
    this.arrive(() => this.inbox.subscriptionConfirmed(ticker))
  }

  unsubscribe (ticker: string): void { this.subscribed.delete(ticker) }
  async publish (updates: readonly PriceUpdate[]): Promise<void> { this.publishElsewhere(updates) }
  publishElsewhere (updates: readonly PriceUpdate[]): void {
    for (const u of updates) this.cache.set(u.ticker, u)
    this.publishRaw(updates)
  }

  publishRaw (updates: readonly PriceUpdate[]): void {
    for (const u of updates) if (this.subscribed.has(u.ticker)) this.arrive(() => this.inbox.deliverMessage(u.ticker, u.json))
  }

  holdWire (): void { this.wire = [] }
  readWire (): void {
    const held = this.wire ?? []
    this.wire = undefined
    for (const arrival of held) arrival()
  }

  async latest (tickers: readonly string[]): Promise<PriceUpdate[]> {
    return tickers.flatMap((ticker) => this.cache.get(ticker) ?? [])
  }

  async close (): Promise<void> {}

  private arrive (arrival: () => void): void {
    if (this.wire === undefined) arrival()
    else this.wire.push(arrival)
  }
}

function sharedCacheBus (): { bus: PriceBus, transport: SharedCacheTransport } {
  let transport: SharedCacheTransport | undefined
  const bus = new PriceBus({
    createTransport: (inbox) => { transport = new SharedCacheTransport(inbox); return transport },
    clock: () => FIXED_NOW,
    logger: silentLogger
  })
  if (transport === undefined) throw new Error('no transport')
  return { bus, transport }
}

t.test('latest() with a shared cache: the bus\'s order decides, never ts', async (t) => {
  const { bus, transport } = sharedCacheBus()
  const watch = bus.watch(['AAPL'], () => {})
  transport.publishElsewhere([update('AAPL', 100, 9_000_000_000_000)])
  transport.publishRaw([update('AAPL', 200, 1000)])
  t.strictSame((await bus.latest(['AAPL'])).map((u) => u.price.price), [200],
    'a raw message received after the cached price is the latest, though its ts is smaller')

  transport.publishElsewhere([update('AAPL', 300, 5000)])
  bus.unwatch(watch)
  transport.publishElsewhere([update('AAPL', 400, 1)])
  t.strictSame((await bus.latest(['AAPL'])).map((u) => u.price.price), [400],
    'published after this instance unsubscribed: the cache has it, and it wins over the price received before')

  bus.watch(['AAPL'], () => {})
  transport.publishElsewhere([update('AAPL', 500, 9_000_000_000_000)])
  bus.subscriptionsInterrupted()
  transport.cache.set('AAPL', update('AAPL', 600, 1))
  t.strictSame((await bus.latest(['AAPL'])).map((u) => u.price.price), [600],
    'published while the connection was down: the cache wins over what was received before')
})

t.test('latest() with a shared cache: a message from before an unsubscribe, read after the ticker is watched again, is not taken as the latest', async (t) => {
  const { bus, transport } = sharedCacheBus()
  const first = bus.watch(['AAPL'], () => {})
  transport.holdWire()
  transport.publishElsewhere([update('AAPL', 1, 5000)])
  bus.unwatch(first)
  // Published while nothing here is subscribed: only the cache has it.
  transport.publishElsewhere([update('AAPL', 2, 1000)])
  const received = recorder()
  bus.watch(['AAPL'], received.listener)
  // Read now: the old subscription's message, then the new subscription's confirmation.
  transport.readWire()
  t.strictSame(received.received.map((u) => u.price.price), [1], 'the late message still reaches the new watcher')
  t.strictSame((await bus.latest(['AAPL'])).map((u) => u.price.price), [2], 'but the cache\'s price, published after it, is the snapshot')
  transport.publishRaw([update('AAPL', 3, 1)])
  t.strictSame((await bus.latest(['AAPL'])).map((u) => u.price.price), [3], 'a message after the confirmation is the latest again')
})

t.test('latest() with a shared cache: a price published here goes into the cache, and is the fallback without it', async (t) => {
  const { bus, transport } = sharedCacheBus()
  await bus.publish([update('MSFT', 1, 10)])
  t.strictSame((await bus.latest(['MSFT'])).map((u) => u.price.price), [1])
  transport.cache.clear()
  t.strictSame((await bus.latest(['MSFT'])).map((u) => u.price.price), [1], 'what this instance published is kept for when the cache has nothing')
})

t.test('embedded: a watch that starts while a publish is returning still finds the price in latest()', async (t) => {
  const bus = makeBus()
  // The in-process publish delivers synchronously, before the watch exists; the watch starts
  // before the publish's continuation runs.
  const publishing = bus.publish([update('AAPL', 1, 1)])
  const watcher = recorder()
  bus.watch(['AAPL'], watcher.listener)
  await publishing
  t.strictSame(watcher.received, [], 'the watch started after the delivery')
  t.strictSame((await bus.latest(['AAPL'])).map((u) => u.price.price), [1], 'the price is remembered all the same')
})
