import t, { type Test } from 'tap'
import { startApp } from '../helpers/app.js'
import { metric, metrics, register, request } from '../helpers/http.js'
import { redisClient, redisReady, SHARED_REDIS_URL, uniqueTicker } from '../helpers/redis.js'
import { SseClient } from '../helpers/sse-client.js'
import { tcpProxy } from '../helpers/tcp-proxy.js'

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

/*
 * "Latest" is the order in which prices were published, never their `ts` (a publisher's
 * clock). Three cases where this instance's own remembered price and the shared cache
 * disagree, each with the later-published price carrying the smaller `ts`. (A message still
 * in flight from a subscription that ended is covered in test/unit/price-bus.test.ts, which
 * can hold it back.)
 */
/** A new session of `userId` for `ticker`, streaming: its first event read, checked to be the snapshot. */
async function streaming (t: Test, baseUrl: string, userId: string, ticker: string): Promise<{ sessionId: string, client: SseClient, snapshot: unknown }> {
  const session = await register(baseUrl, userId, [ticker])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  const first = await client.next()
  t.equal(first.event, 'snapshot')
  return { sessionId: session.sessionId, client, snapshot: first.json }
}

async function snapshotOf (t: Test, baseUrl: string, userId: string, ticker: string): Promise<unknown> {
  return (await streaming(t, baseUrl, userId, ticker)).snapshot
}

async function publishThrough (t: Test, baseUrl: string, body: object): Promise<void> {
  const res = await request(baseUrl, '/prices', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body })
  t.equal(res.status, 202)
}

t.test('a price published after this instance stopped watching its ticker is the snapshot, though its ts is smaller', async (t) => {
  const [a, b] = await twoInstances(t)
  if (a === undefined || b === undefined) throw new Error('no instances')
  const ticker = uniqueTicker()
  const { sessionId, client } = await streaming(t, a.baseUrl, 'dave', ticker)
  await publishThrough(t, b.baseUrl, { ticker, price: 1, ts: 5000 })
  await client.waitFor((e) => e.event === 'prices')
  // A's last session of the ticker ends (DELETE answers once it is released): A no longer hears it.
  t.equal((await request(a.baseUrl, `/sessions/${sessionId}`, { method: 'DELETE' })).status, 204)
  await publishThrough(t, b.baseUrl, { ticker, price: 2, ts: 1000 })
  t.same(await snapshotOf(t, a.baseUrl, 'erin', ticker), { prices: [{ ticker, price: 2, ts: 1000 }] },
    'A serves the price published last, from the shared cache, not the one it received before')
})

t.test('a price received straight off the channel after a cached one is the snapshot, though its ts is smaller', async (t) => {
  const a = await startApp(t, { REDIS_URL: SHARED_REDIS_URL, PUBLISH_TOKEN: TOKEN })
  await redisReady(a.app)
  const ticker = uniqueTicker()
  const { client } = await streaming(t, a.baseUrl, 'frank', ticker)
  await publishThrough(t, a.baseUrl, { ticker, price: 100 })
  await client.waitFor((e) => e.event === 'prices' && e.json.prices[0].price === 100)
  // Not through POST /prices: the shared cache keeps 100.
  await redisClient(t).publish(`prices:${ticker}`, JSON.stringify({ ticker, price: 200, ts: 1000 }))
  await client.waitFor((e) => e.event === 'prices' && e.json.prices[0].price === 200)
  t.same(await snapshotOf(t, a.baseUrl, 'grace', ticker), { prices: [{ ticker, price: 200, ts: 1000 }] },
    'a second client of the same instance sees what the first one was sent last')
})

t.test('a price published while this instance was cut off from Redis is the snapshot once it is back, though its ts is smaller', async (t) => {
  const proxy = await tcpProxy(t)
  const a = await startApp(t, { REDIS_URL: proxy.url, PUBLISH_TOKEN: TOKEN })
  const b = await startApp(t, { REDIS_URL: SHARED_REDIS_URL, PUBLISH_TOKEN: TOKEN })
  await redisReady(a.app)
  await redisReady(b.app)
  const ticker = uniqueTicker()
  const { client } = await streaming(t, a.baseUrl, 'heidi', ticker)
  await redisClient(t).publish(`prices:${ticker}`, JSON.stringify({ ticker, price: 1, ts: 9_000_000_000_000 }))
  await client.waitFor((e) => e.event === 'prices')

  const clients = a.app.redis
  if (clients === undefined) throw new Error('instance A is not in Redis mode')
  const closed = [clients.commands, clients.subscriber].map(async (connection) => await new Promise<void>((resolve) => connection.once('close', () => resolve())))
  proxy.cutConnections()
  await Promise.all(closed)
  // A cannot hear this one; B writes it into the shared cache.
  await publishThrough(t, b.baseUrl, { ticker, price: 2, ts: 1000 })
  proxy.release()
  await redisReady(a.app)
  t.same(await snapshotOf(t, a.baseUrl, 'ivan', ticker), { prices: [{ ticker, price: 2, ts: 1000 }] },
    'A serves the price it missed, from the shared cache')
  t.equal(client.ended, false, 'the first stream stayed open through it')
})
