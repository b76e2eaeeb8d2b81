import t from 'tap'
import { DEFAULT_FEED_TICKERS } from '../src/config.js'
import { startApp } from './helpers/app.js'
import { register } from './helpers/http.js'
import { SseClient } from './helpers/sse-client.js'

t.test('embedded defaults: the simulated feed drives live prices for its tickers', async (t) => {
  const { baseUrl, config } = await startApp(t, { FEED: '', FEED_RATE: '200' })
  t.equal(config.feed, 'simulated', 'without REDIS_URL the feed is on by default')
  const session = await register(baseUrl, 'alice', ['AAPL', 'MSFT', 'NVDA'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  const first = await client.waitFor((event) => event.event === 'prices')
  const second = await client.waitFor((event) => event.event === 'prices')
  for (const event of [first, second]) {
    for (const price of event.json.prices) {
      t.ok(['AAPL', 'MSFT', 'NVDA'].includes(price.ticker), `${price.ticker} is watched`)
      t.ok(Number.isFinite(price.price) && price.price > 0, 'a positive price')
      t.ok(Math.abs(Date.now() - price.ts) < 5000, 'ts is the publication time')
    }
  }
})

t.test('FEED_TICKERS chooses the simulated symbols; the snapshot has their prices', async (t) => {
  const { app, baseUrl } = await startApp(t, { FEED: 'simulated', FEED_TICKERS: 'abc, xyz', FEED_RATE: '500' })
  // Wait until the feed has published both symbols at least once (observed on the bus).
  const seen = new Set<string>()
  await new Promise<void>((resolve) => {
    const listener = (update: { ticker: string }): void => {
      seen.add(update.ticker)
      if (seen.size === 2) resolve()
    }
    app.bus.watch(['ABC', 'XYZ'], listener)
  })
  const session = await register(baseUrl, 'bob', ['ABC', 'XYZ', DEFAULT_FEED_TICKERS[0] ?? 'AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  const snapshot = await client.next()
  t.same(snapshot.json.prices.map((price: { ticker: string }) => price.ticker), ['ABC', 'XYZ'], 'only the configured symbols have prices')
})
