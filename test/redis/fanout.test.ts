import t, { type Test } from 'tap'
import { startApp } from '../helpers/app.js'
import { metric, metrics, register, request } from '../helpers/http.js'
import { redisClient, redisReady, SHARED_REDIS_URL, uniqueTicker } from '../helpers/redis.js'
import { SseClient } from '../helpers/sse-client.js'

const TOKEN = 'redis-test-token'

async function twoInstances (t: Test): Promise<Array<Awaited<ReturnType<typeof startApp>>>> {
  const env = { REDIS_URL: SHARED_REDIS_URL, PUBLISH_TOKEN: TOKEN }
  const instances = [await startApp(t, env), await startApp(t, env)]
  // Each instance's connections must be ready before the test publishes.
  for (const instance of instances) await redisReady(instance.app)
  return instances
}

t.test('two instances on one Redis: a price published once is delivered by both', async (t) => {
  const [a, b] = await twoInstances(t)
  if (a === undefined || b === undefined) throw new Error('no instances')
  const ticker = uniqueTicker()
  const clients = []
  for (const instance of [a, b]) {
    const session = await register(instance.baseUrl, 'alice', [ticker])
    const client = await SseClient.open(instance.baseUrl, session.streamUrl)
    t.teardown(() => client.close())
    await client.next()
    clients.push(client)
  }
  const res = await request(a.baseUrl, '/prices', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: { ticker, price: 42.5, ts: 1 } })
  t.equal(res.status, 202)
  for (const [index, client] of clients.entries()) {
    const event = await client.waitFor((e) => e.event === 'prices')
    t.same(event.json.prices, [{ ticker, price: 42.5, ts: 1 }], `instance ${index === 0 ? 'A' : 'B'} delivered it`)
  }
  for (const instance of [a, b]) {
    t.equal(metric(await metrics(instance.baseUrl), 'tickstream_prices_received_total'), 1, 'received once per instance')
  }
})

t.test('a price published straight to the Redis channel reaches every instance', async (t) => {
  const [a, b] = await twoInstances(t)
  if (a === undefined || b === undefined) throw new Error('no instances')
  const ticker = uniqueTicker()
  const clients = await Promise.all([a, b].map(async (instance) => {
    const session = await register(instance.baseUrl, 'bob', [ticker.toLowerCase()])
    const client = await SseClient.open(instance.baseUrl, session.streamUrl)
    t.teardown(() => client.close())
    await client.next()
    return client
  }))
  const publisher = redisClient(t)
  const before = Date.now()
  const receivers = await publisher.publish(`prices:${ticker}`, JSON.stringify({ ticker: ticker.toLowerCase(), price: 7, source: 'external' }))
  t.equal(receivers, 2, 'one subscriber connection per instance')
  for (const client of clients) {
    const event = await client.waitFor((e) => e.event === 'prices')
    const [price] = event.json.prices
    t.equal(price.ticker, ticker)
    t.equal(price.price, 7)
    t.equal(price.source, 'external', 'extra fields pass through')
    t.ok(price.ts >= before, 'missing ts means now')
  }
})

t.test('the snapshot comes from the shared cache, whichever instance serves the stream', async (t) => {
  const [a, b] = await twoInstances(t)
  if (a === undefined || b === undefined) throw new Error('no instances')
  const ticker = uniqueTicker()
  // Nobody watches the ticker yet; the price goes through instance A.
  const res = await request(a.baseUrl, '/prices', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: [{ ticker, price: 1, ts: 10 }, { ticker, price: 2, ts: 11 }] })
  t.equal(res.status, 202)
  const session = await register(b.baseUrl, 'carol', [ticker, uniqueTicker()])
  const client = await SseClient.open(b.baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  const snapshot = await client.next()
  t.same(snapshot.json, { prices: [{ ticker, price: 2, ts: 11 }] }, 'instance B serves the latest price published through A')
})
