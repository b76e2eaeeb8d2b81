import t from 'tap'
import { startApp } from '../helpers/app.js'
import { register, request } from '../helpers/http.js'
import { SseClient } from '../helpers/sse-client.js'

const TOKEN = 'publish-secret'
const auth = { authorization: `Bearer ${TOKEN}` }

t.test('POST /prices is a 404 when PUBLISH_TOKEN is unset', async (t) => {
  const { baseUrl } = await startApp(t)
  const res = await request(baseUrl, '/prices', { method: 'POST', body: { ticker: 'AAPL', price: 1 }, headers: auth })
  t.equal(res.status, 404)
})

t.test('a published price reaches the streams that watch its ticker', async (t) => {
  const { baseUrl } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  const session = await register(baseUrl, 'alice', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  const before = Date.now()
  const res = await request(baseUrl, '/prices', { method: 'POST', body: [{ ticker: ' aapl ', price: 187.42, venue: 'XNAS' }, { ticker: 'MSFT', price: 1, ts: 5 }], headers: auth })
  t.equal(res.status, 202)
  t.same(res.body, { accepted: 2 })
  const event = await client.next()
  t.equal(event.event, 'prices')
  const [price] = event.json.prices
  t.equal(price.ticker, 'AAPL', 'normalized')
  t.equal(price.price, 187.42)
  t.equal(price.venue, 'XNAS', 'extra fields pass through')
  t.ok(price.ts >= before && price.ts <= Date.now(), 'missing ts is the receive time')
})

t.test('a single price object is accepted', async (t) => {
  const { baseUrl } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  const res = await request(baseUrl, '/prices', { method: 'POST', body: { ticker: 'AAPL', price: 0, ts: 1764312345678 }, headers: auth })
  t.equal(res.status, 202)
  t.same(res.body, { accepted: 1 })
})

t.test('a bad or missing token is a 401', async (t) => {
  const { baseUrl } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }, { authorization: TOKEN }, { authorization: `Bearer ${TOKEN}x` }, { authorization: 'Bearer ' + 'a'.repeat(4000) }]) {
    const res = await request(baseUrl, '/prices', { method: 'POST', body: { ticker: 'AAPL', price: 1 }, headers })
    t.equal(res.status, 401, JSON.stringify(headers).slice(0, 40))
    t.equal(res.body.error, 'Unauthorized')
  }
})

t.test('one invalid price makes the whole body a 400 and nothing is published', async (t) => {
  const { app, baseUrl } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  const session = await register(baseUrl, 'bob', ['AAPL'])
  const invalid: unknown[] = [
    { ticker: 'AAPL', price: '12.5' },
    { ticker: 'AAPL', price: -1 },
    { ticker: 'AAPL' },
    { price: 1 },
    { ticker: 'NOT VALID', price: 1 },
    { ticker: 'AAPL', price: 1, ts: null },
    { ticker: 'AAPL', price: 1, ts: '1' },
    { ticker: 42, price: 1 },
    'AAPL',
    null,
    [1]
  ]
  for (const bad of invalid) {
    const res = await request(baseUrl, '/prices', { method: 'POST', body: [{ ticker: 'AAPL', price: 1 }, bad], headers: auth })
    t.equal(res.status, 400, JSON.stringify(bad))
    t.equal(res.body.error, 'Bad Request')
  }
  const huge = await request(baseUrl, '/prices', { method: 'POST', body: '{"ticker":"AAPL","price":1e400}', headers: { ...auth, 'content-type': 'application/json' } })
  t.equal(huge.status, 400, 'a number that overflows to Infinity')
  const tooMany = await request(baseUrl, '/prices', { method: 'POST', body: Array.from({ length: 1001 }, () => ({ ticker: 'AAPL', price: 1 })), headers: auth })
  t.equal(tooMany.status, 400, 'more than 1000 prices')
  t.equal(app.bus.counters.pricesReceived, 0, 'nothing was published')
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  t.same((await client.next()).json, { prices: [] }, 'no price reached the latest-value cache either')
})

t.test('a body over 1 MiB is a 413', async (t) => {
  const { baseUrl } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  const pad = 'x'.repeat(1100)
  const res = await request(baseUrl, '/prices', { method: 'POST', body: Array.from({ length: 1000 }, () => ({ ticker: 'AAPL', price: 1, pad })), headers: auth })
  t.equal(res.status, 413)
})

t.test('the snapshot has the latest price ever published of a ticker, however many other tickers were published since', async (t) => {
  const { baseUrl } = await startApp(t, { PUBLISH_TOKEN: TOKEN, FEED: 'none' })
  t.equal((await request(baseUrl, '/prices', { method: 'POST', body: { ticker: 'KEEP', price: 42, ts: 1 }, headers: auth })).status, 202)
  // 25 000 other tickers, 1000 per body: more than the 20 000 the server once remembered.
  for (let batch = 0; batch < 25; batch++) {
    const body = Array.from({ length: 1000 }, (_, i) => ({ ticker: `Q${batch}X${i}`, price: 1, ts: 2 }))
    t.equal((await request(baseUrl, '/prices', { method: 'POST', body, headers: auth })).status, 202)
  }
  const session = await register(baseUrl, 'keeper', ['KEEP', 'Q24X999'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  const snapshot = await client.next()
  t.same(snapshot.json, { prices: [{ ticker: 'KEEP', price: 42, ts: 1 }, { ticker: 'Q24X999', price: 1, ts: 2 }] })
})
