import t from 'tap'
import { priceUpdate, type PriceUpdate } from '../../src/price.js'
import { PendingBatch } from '../../src/stream/pending-batch.js'

function update (ticker: string, price: number, ts: number): PriceUpdate {
  return priceUpdate({ ticker, price, ts })
}

const WATCHED = ['AAPL', 'MSFT', 'NVDA']

t.test('a new batch is empty and takes nothing', async (t) => {
  const batch = new PendingBatch(WATCHED)
  t.equal(batch.size, 0)
  t.strictSame(batch.take(), [])
})

t.test('put returns false for a ticker without a pending value and true when it replaces one', async (t) => {
  const batch = new PendingBatch(WATCHED)
  t.equal(batch.put(update('AAPL', 1, 1)), false)
  t.equal(batch.put(update('MSFT', 2, 1)), false, 'another ticker replaces nothing')
  t.equal(batch.put(update('AAPL', 3, 2)), true, 'a second AAPL replaces the first')
  t.equal(batch.put(update('AAPL', 4, 3)), true)
})

t.test('the size is bounded by the number of distinct tickers however many updates arrive', async (t) => {
  const batch = new PendingBatch(WATCHED)
  const tickers = ['AAPL', 'MSFT', 'NVDA']
  for (let i = 0; i < 300; i++) {
    batch.put(update(tickers[i % tickers.length] ?? 'AAPL', i, i))
    t.ok(batch.size <= tickers.length)
  }
  t.equal(batch.size, 3)
})

t.test('take returns each ticker\'s latest serialized price in the stream\'s ticker order and empties the batch', async (t) => {
  const batch = new PendingBatch(WATCHED)
  const first = update('MSFT', 410, 1)
  const second = update('AAPL', 187, 2)
  const msftLater = update('MSFT', 411, 3)
  const third = update('NVDA', 950, 4)
  batch.put(first)
  batch.put(second)
  batch.put(msftLater)
  batch.put(third)
  t.strictSame(batch.take(), [second.json, msftLater.json, third.json])
  t.equal(batch.size, 0, 'emptied')
  t.strictSame(batch.take(), [], 'a second take has nothing')
  t.equal(batch.put(update('MSFT', 412, 5)), false, 'after take nothing is pending, so nothing is replaced')
})

t.test('discardSent drops the pending value that is the sent price, or serialized the same', async (t) => {
  const same = new PendingBatch(WATCHED)
  const sent = update('AAPL', 1, 100)
  same.put(sent)
  same.discardSent(sent)
  t.equal(same.size, 0, 'the very price the snapshot sent')

  const equal = new PendingBatch(WATCHED)
  equal.put(update('AAPL', 1, 100))
  equal.discardSent(update('AAPL', 1, 100))
  t.equal(equal.size, 0, 'another copy of the same price (a shared cache\'s) is covered too')
})

t.test('discardSent keeps any other pending price, whatever its ts: the bus order decides, not ts', async (t) => {
  const smallerTs = new PendingBatch(WATCHED)
  const later = update('AAPL', 2, 99)
  smallerTs.put(later)
  smallerTs.discardSent(update('AAPL', 1, 100))
  t.strictSame(smallerTs.take(), [later.json], 'a different price with a smaller ts is still sent')

  const largerTs = new PendingBatch(WATCHED)
  const newer = update('AAPL', 2, 101)
  largerTs.put(newer)
  largerTs.discardSent(update('AAPL', 1, 100))
  t.strictSame(largerTs.take(), [newer.json])
})

t.test('discardSent leaves other tickers alone and ignores tickers with nothing pending', async (t) => {
  const batch = new PendingBatch(WATCHED)
  const msft = update('MSFT', 1, 1)
  batch.put(msft)
  batch.discardSent(update('AAPL', 1, 1000))
  t.strictSame(batch.take(), [msft.json])
})

t.test('a price for a ticker the stream does not watch is ignored', async (t) => {
  const batch = new PendingBatch(WATCHED)
  t.equal(batch.put(update('TSLA', 1, 1)), false)
  t.equal(batch.size, 0)
  batch.discardSent(update('TSLA', 1, 1))
  t.equal(batch.size, 0, 'nothing to discard either')
  t.strictSame(batch.take(), [])
})

t.test('slots are reused across many put/take rounds without losing or duplicating prices', async (t) => {
  const batch = new PendingBatch(WATCHED)
  for (let round = 0; round < 50; round++) {
    const sent = WATCHED.filter((_, i) => (round + i) % 2 === 0).map((ticker) => update(ticker, round, round))
    for (const price of sent) batch.put(price)
    t.equal(batch.size, sent.length)
    t.strictSame(batch.take(), sent.map((price) => price.json), `round ${round}`)
  }
  t.equal(batch.size, 0)
})
