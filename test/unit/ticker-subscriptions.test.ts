import t from 'tap'
import { priceUpdate, type PriceUpdate } from '../../src/price.js'
import { TickerSubscriptions, Watch, type PriceListener, type SubscriptionTarget } from '../../src/bus/ticker-subscriptions.js'
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

t.test('the first watch of a ticker subscribes once; more watches do not', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const watches = [subscriptions.add(['AAPL'], listener()), subscriptions.add(['AAPL', 'MSFT'], listener()), subscriptions.add(['AAPL'], listener())]
  t.strictSame(target.calls, ['subscribe AAPL', 'subscribe MSFT'])
  t.equal(subscriptions.listenerCount('AAPL'), 3)
  t.equal(subscriptions.listenerCount('MSFT'), 1)
  t.strictSame([...subscriptions.tickers()], ['AAPL', 'MSFT'], 'the subscribed tickers')
  t.equal(subscriptions.size, 2)
  t.ok(watches.every((watch) => watch.active), 'every watch is active until removed')
  t.strictSame(subscriptions.counters, { subscribeTotal: 2, unsubscribeTotal: 0 })
})

t.test('ending the last watch of a ticker unsubscribes once; ending a watch twice does nothing', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const a = subscriptions.add(['AAPL'], listener())
  const b = subscriptions.add(['AAPL'], listener())
  subscriptions.remove(a)
  t.strictSame(target.calls, ['subscribe AAPL'], 'one watch left: still subscribed')
  t.notOk(a.active)
  subscriptions.remove(a)
  t.equal(subscriptions.listenerCount('AAPL'), 1, 'a second remove of the same watch counts nothing')
  subscriptions.remove(b)
  t.strictSame(target.calls, ['subscribe AAPL', 'unsubscribe AAPL'])
  t.strictSame([...subscriptions.tickers()], [], 'nothing subscribed')
  t.equal(subscriptions.listenerCount('AAPL'), 0)
  t.equal(subscriptions.storedWatchCount('AAPL'), 0, 'a released ticker keeps no list')
  t.equal(subscriptions.size, 0)
  subscriptions.remove(b)
  t.strictSame(target.calls, ['subscribe AAPL', 'unsubscribe AAPL'], 'removing it again does nothing')
  t.strictSame(subscriptions.counters, { subscribeTotal: 1, unsubscribeTotal: 1 })
})

t.test('a ticker subscribes again after it was released', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const a = listener()
  subscriptions.remove(subscriptions.add(['AAPL'], a))
  const again = subscriptions.add(['AAPL'], a)
  t.strictSame(target.calls, ['subscribe AAPL', 'unsubscribe AAPL', 'subscribe AAPL'])
  t.strictSame(subscriptions.counters, { subscribeTotal: 2, unsubscribeTotal: 1 })
  t.ok(again.active)
})

t.test('one watch of several tickers: each ticker is counted apart, and ending it releases all', async (t) => {
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const both = subscriptions.add(['AAPL', 'MSFT'], listener())
  const msftOnly = subscriptions.add(['MSFT'], listener())
  t.equal(subscriptions.size, 2)
  t.strictSame([...subscriptions.tickers()].sort(), ['AAPL', 'MSFT'])
  subscriptions.remove(both)
  t.strictSame([...subscriptions.tickers()], ['MSFT'])
  t.equal(subscriptions.listenerCount('MSFT'), 1)
  t.strictSame(target.calls, ['subscribe AAPL', 'subscribe MSFT', 'unsubscribe AAPL'])
  subscriptions.remove(msftOnly)
  t.strictSame(target.calls, ['subscribe AAPL', 'subscribe MSFT', 'unsubscribe AAPL', 'unsubscribe MSFT'])
})

t.test('delivery calls the active watches of the ticker in order, skips ended ones, and survives a throwing listener', async (t) => {
  const subscriptions = new TickerSubscriptions(new RecordingTarget())
  const received: string[] = []
  const update = priceUpdate({ ticker: 'AAPL', price: 1, ts: 1 })
  const errors: unknown[] = []
  const onError = (err: unknown): void => { errors.push(err) }
  let second: Watch | undefined
  subscriptions.add(['AAPL'], () => {
    received.push('first')
    // Ends a later watch of the same delivery, and starts a new one: neither is called now.
    if (second !== undefined) subscriptions.remove(second)
    subscriptions.add(['AAPL'], () => received.push('added during delivery'))
  })
  second = subscriptions.add(['AAPL'], () => received.push('second'))
  subscriptions.add(['AAPL'], () => { throw new Error('listener bug') })
  subscriptions.add(['AAPL', 'MSFT'], () => received.push('last'))
  subscriptions.deliver('AAPL', update, onError)
  t.strictSame(received, ['first', 'last'], 'the ended watch is skipped, the new one waits for the next price')
  t.equal(errors.length, 1, 'the throwing listener is reported')
  t.match(String(errors[0]), /listener bug/)
  subscriptions.deliver('NOPE', update, onError)
  t.strictSame(received, ['first', 'last'], 'nothing watches NOPE')
})

t.test('ended watches are dropped from a list once they outnumber the active ones', async (t) => {
  const subscriptions = new TickerSubscriptions(new RecordingTarget())
  const keep = subscriptions.add(['AAPL'], listener())
  let maxStored = 0
  // Churn as a registration burst makes it: every new watch ends an older one.
  let previous = subscriptions.add(['AAPL'], listener())
  for (let i = 0; i < 10_000; i++) {
    const next = subscriptions.add(['AAPL'], listener())
    subscriptions.remove(previous)
    previous = next
    maxStored = Math.max(maxStored, subscriptions.storedWatchCount('AAPL'))
  }
  t.equal(subscriptions.listenerCount('AAPL'), 2, 'two active watches')
  // Three are active at each add (before the older one ends): at most 2 x 3 + 8 (the slack) stored.
  t.ok(maxStored <= 2 * 3 + 8, `the list never held more than twice its active watches plus the slack (at most ${maxStored})`)
  t.ok(keep.active)
  // A large crowd that leaves: the list shrinks with the next add, not only when the ticker is released.
  const crowd = Array.from({ length: 1000 }, () => subscriptions.add(['AAPL'], listener()))
  for (const watch of crowd) subscriptions.remove(watch)
  subscriptions.add(['AAPL'], listener())
  t.ok(subscriptions.storedWatchCount('AAPL') <= 2 * 3 + 8, `compacted after the crowd left (${subscriptions.storedWatchCount('AAPL')})`)
  t.equal(subscriptions.listenerCount('AAPL'), 3)
})

t.test('a list sheds its ended watches as they end, without waiting for another add', async (t) => {
  const subscriptions = new TickerSubscriptions(new RecordingTarget())
  const longLived = subscriptions.add(['RARE'], listener())
  // A burst of sessions watching RARE comes and goes; nobody watches RARE afterwards.
  const burst = Array.from({ length: 1000 }, () => subscriptions.add(['AAPL', 'RARE'], listener()))
  for (const watch of burst) subscriptions.remove(watch)
  t.ok(subscriptions.storedWatchCount('RARE') <= 2 * 1 + 8, `RARE keeps ${subscriptions.storedWatchCount('RARE')} entries for its one active watch`)
  t.equal(subscriptions.listenerCount('RARE'), 1)
  t.equal(subscriptions.storedWatchCount('AAPL'), 0, 'AAPL, released, keeps nothing')
  t.ok(longLived.active)
})

t.test('a list rebuilt during a delivery does not disturb that delivery', async (t) => {
  const subscriptions = new TickerSubscriptions(new RecordingTarget())
  const update = priceUpdate({ ticker: 'AAPL', price: 1, ts: 1 })
  const called: number[] = []
  const watches: Watch[] = []
  for (let i = 0; i < 20; i++) {
    watches.push(subscriptions.add(['AAPL'], () => {
      called.push(i)
      // The first listener ends watches 1 to 15: with 5 left active of 20, the list is rebuilt.
      if (i === 0) for (const other of watches.slice(1, 16)) subscriptions.remove(other)
    }))
  }
  subscriptions.deliver('AAPL', update, () => {})
  t.equal(subscriptions.storedWatchCount('AAPL'), 5, 'rebuilt with the five active watches')
  t.strictSame(called, [0, 16, 17, 18, 19], 'the ended ones skipped, every active one called once')
})

t.test('only a watch that add made can be removed', async (t) => {
  const subscriptions = new TickerSubscriptions(new RecordingTarget())
  const watch = subscriptions.add(['AAPL'], listener())
  t.ok(watch instanceof Watch)
  // @ts-expect-error -- a look-alike object is not a Watch: the type rejects it
  subscriptions.remove({ tickers: ['AAPL'], listener: listener(), active: true })
  t.equal(subscriptions.listenerCount('AAPL'), 1, 'and at run time it is ignored: AAPL keeps its watch')
  t.strictSame([...subscriptions.tickers()], ['AAPL'], 'still subscribed')
})

t.test('random adds and removes keep the target subscribed to exactly the watched tickers', async (t) => {
  // Randomness is mocked: a seeded generator makes the interleaving reproducible.
  const random = seededRandom(20251128)
  const target = new RecordingTarget()
  const subscriptions = new TickerSubscriptions(target)
  const tickers = ['AAPL', 'MSFT', 'NVDA', 'TSLA']
  /** The model: the live watches, each with its tickers. */
  const live: Watch[] = []
  let mismatches = 0
  for (let step = 0; step < 4000; step++) {
    if (random() < 0.5 || live.length === 0) {
      const chosen = tickers.filter(() => random() < 0.5)
      live.push(subscriptions.add(chosen.length > 0 ? chosen : ['AAPL'], listener()))
    } else {
      const [ended] = live.splice(randomInt(random, live.length), 1)
      if (ended !== undefined) subscriptions.remove(ended)
    }
    const watched = tickers.filter((ticker) => live.some((watch) => watch.tickers.includes(ticker)))
    const subscribed = [...target.subscribed].sort()
    const countsMatch = tickers.every((ticker) => subscriptions.listenerCount(ticker) === live.filter((watch) => watch.tickers.includes(ticker)).length)
    if (JSON.stringify(subscribed) !== JSON.stringify([...watched].sort()) ||
      subscriptions.size !== watched.length || !countsMatch ||
      subscriptions.counters.subscribeTotal - subscriptions.counters.unsubscribeTotal !== watched.length) {
      mismatches++
      t.fail(`step ${step}: subscribed ${subscribed.join(',')} but watched ${watched.join(',')}`)
      break
    }
  }
  t.equal(mismatches, 0, 'at every step the subscribed set is the set of watched tickers')
  t.ok(subscriptions.counters.subscribeTotal > 20, `many subscriptions came and went (${subscriptions.counters.subscribeTotal})`)
  for (const watch of live) subscriptions.remove(watch)
  t.equal(subscriptions.counters.subscribeTotal, subscriptions.counters.unsubscribeTotal, 'subscribe_total == unsubscribe_total')
  t.equal(target.subscribed.size, 0, 'the target holds no subscription')
  t.equal(subscriptions.size, 0)
})
