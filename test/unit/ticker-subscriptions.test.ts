import t from 'tap'
import type { PriceUpdate } from '../../src/price.js'
import { TickerSubscriptions, type PriceListener, type SubscriptionTarget } from '../../src/bus/ticker-subscriptions.js'
import { randomInt, seededRandom } from './seeded-random.js'

/** A transport's subscription side: records the calls and the resulting subscribed set. */
class RecordingTarget implements SubscriptionTarget {
  readonly subscribed = new Set<string>()
  readonly calls: string[] = []

  subscribe (ticker: string): void {
    this.calls.push(`subscribe ${ticker}`)
    if (this.subscribed.has(ticker)) throw new Error(`${ticker} subscribed twice`)
    this.subscribed.add(ticker)
  }

  unsubscribe (ticker: string): void {
    this.calls.push(`unsubscribe ${ticker}`)
    if (!this.subscribed.delete(ticker)) throw new Error(`${ticker} released while not subscribed`)
  }
}

function listener (): PriceListener {
  return (_update: PriceUpdate) => {}
}

t.test('the first listener of a ticker subscribes once; more listeners do not', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const [a, b, c] = [listener(), listener(), listener()]
  subscriptions.add('AAPL', a)
  subscriptions.add('AAPL', b)
  subscriptions.add('AAPL', c)
  subscriptions.add('AAPL', a)
  t.strictSame(target.calls, ['subscribe AAPL'])
  t.equal(subscriptions.listenerCount('AAPL'), 3, 'adding the same listener twice counts it once')
  t.ok(subscriptions.isSubscribed('AAPL'))
  t.equal(subscriptions.size, 1)
  t.strictSame(subscriptions.counters, { subscribeTotal: 1, unsubscribeTotal: 0 })
})

t.test('removing the last listener unsubscribes once', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const [a, b] = [listener(), listener()]
  subscriptions.add('AAPL', a)
  subscriptions.add('AAPL', b)
  subscriptions.remove('AAPL', a)
  t.strictSame(target.calls, ['subscribe AAPL'], 'one listener left: still subscribed')
  t.ok(subscriptions.isSubscribed('AAPL'))
  subscriptions.remove('AAPL', b)
  t.strictSame(target.calls, ['subscribe AAPL', 'unsubscribe AAPL'])
  t.notOk(subscriptions.isSubscribed('AAPL'))
  t.equal(subscriptions.listenerCount('AAPL'), 0)
  t.equal(subscriptions.listenersOf('AAPL'), undefined)
  t.equal(subscriptions.size, 0)
  subscriptions.remove('AAPL', b)
  t.strictSame(target.calls, ['subscribe AAPL', 'unsubscribe AAPL'], 'removing it again does nothing')
  t.strictSame(subscriptions.counters, { subscribeTotal: 1, unsubscribeTotal: 1 })
})

t.test('removing an unknown listener or from an unknown ticker is a no-op', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const watching = listener()
  subscriptions.add('AAPL', watching)
  subscriptions.remove('AAPL', listener())
  subscriptions.remove('MSFT', watching)
  subscriptions.remove('NOPE', listener())
  t.equal(subscriptions.listenerCount('AAPL'), 1, 'AAPL keeps its listener')
  t.equal(subscriptions.listenerCount('MSFT'), 0, 'never negative')
  t.strictSame(target.calls, ['subscribe AAPL'])
  t.strictSame(subscriptions.counters, { subscribeTotal: 1, unsubscribeTotal: 0 })
  t.equal(subscriptions.size, 1)
  subscriptions.add('MSFT', listener())
  t.equal(subscriptions.listenerCount('MSFT'), 1, 'a later add starts from zero')
  t.strictSame(target.calls, ['subscribe AAPL', 'subscribe MSFT'])
})

t.test('a ticker subscribes again after it was released', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const a = listener()
  subscriptions.add('AAPL', a)
  subscriptions.remove('AAPL', a)
  subscriptions.add('AAPL', a)
  t.strictSame(target.calls, ['subscribe AAPL', 'unsubscribe AAPL', 'subscribe AAPL'])
  t.strictSame(subscriptions.counters, { subscribeTotal: 2, unsubscribeTotal: 1 })
})

t.test('one listener may watch several tickers; each is counted apart', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const shared = listener()
  subscriptions.add('AAPL', shared)
  subscriptions.add('MSFT', shared)
  t.equal(subscriptions.size, 2)
  t.strictSame([...subscriptions.tickers()].sort(), ['AAPL', 'MSFT'])
  subscriptions.remove('AAPL', shared)
  t.strictSame([...subscriptions.tickers()], ['MSFT'])
  t.ok(subscriptions.listenersOf('MSFT')?.has(shared))
  t.strictSame(target.calls, ['subscribe AAPL', 'subscribe MSFT', 'unsubscribe AAPL'])
})

t.test('random adds and removes keep the target subscribed to exactly the watched tickers', async (t) => {
  // Randomness is mocked: a seeded generator makes the interleaving reproducible.
  const random = seededRandom(20251128)
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const tickers = ['AAPL', 'MSFT', 'NVDA', 'TSLA']
  const listeners = Array.from({ length: 6 }, () => listener())
  /** The model: which listeners watch which ticker. */
  const model = new Map<string, Set<PriceListener>>(tickers.map((ticker) => [ticker, new Set()]))
  let mismatches = 0
  for (let step = 0; step < 4000; step++) {
    const ticker = tickers[randomInt(random, tickers.length)] ?? 'AAPL'
    const chosen = listeners[randomInt(random, listeners.length)] ?? listener()
    const watchers = model.get(ticker) ?? new Set()
    if (random() < 0.5) {
      subscriptions.add(ticker, chosen)
      watchers.add(chosen)
    } else {
      subscriptions.remove(ticker, chosen)
      watchers.delete(chosen)
    }
    const watched = tickers.filter((candidate) => (model.get(candidate)?.size ?? 0) > 0)
    const subscribed = [...target.subscribed].sort()
    if (JSON.stringify(subscribed) !== JSON.stringify([...watched].sort()) ||
      subscriptions.size !== watched.length ||
      subscriptions.listenerCount(ticker) !== watchers.size ||
      subscriptions.counters.subscribeTotal - subscriptions.counters.unsubscribeTotal !== watched.length) {
      mismatches++
      t.fail(`step ${step}: subscribed ${subscribed.join(',')} but watched ${watched.join(',')}`)
      break
    }
  }
  t.equal(mismatches, 0, 'at every step the subscribed set is the set of watched tickers')
  t.ok(subscriptions.counters.subscribeTotal > 20, `many subscriptions came and went (${subscriptions.counters.subscribeTotal})`)
  for (const ticker of tickers) for (const each of listeners) subscriptions.remove(ticker, each)
  t.equal(subscriptions.counters.subscribeTotal, subscriptions.counters.unsubscribeTotal, 'subscribe_total == unsubscribe_total')
  t.equal(target.subscribed.size, 0, 'the target holds no subscription')
  t.equal(subscriptions.size, 0)
})
