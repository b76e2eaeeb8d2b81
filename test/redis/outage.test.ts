import t from 'tap'
import { priceUpdate } from '../../src/price.js'
import { startApp } from '../helpers/app.js'
import { metric, metrics, register, request } from '../helpers/http.js'
import { ownRedisServer, redisClient, redisReady, uniqueTicker } from '../helpers/redis.js'
import { SseClient } from '../helpers/sse-client.js'
import { tcpProxy } from '../helpers/tcp-proxy.js'

t.test('Redis stopped and restarted: streams stay open and resume; /ready flips 503 -> 200', async (t) => {
  const redis = await ownRedisServer(t)
  const { app, baseUrl } = await startApp(t, { REDIS_URL: redis.url, HEARTBEAT_MS: '1000', PUBLISH_TOKEN: 'tok' })
  await redisReady(app)
  const tickers = [uniqueTicker('O'), uniqueTicker('O')]
  const clients = await Promise.all(tickers.map(async (ticker, i) => {
    const session = await register(baseUrl, `user-${i}`, [ticker])
    const client = await SseClient.open(baseUrl, session.streamUrl)
    t.teardown(() => client.close())
    await client.next()
    return client
  }))
  t.equal((await request(baseUrl, '/ready')).status, 200)

  const disconnected = new Promise<void>((resolve) => app.redis?.subscriber.once('close', () => resolve()))
  await redis.stop()
  await disconnected
  t.equal((await request(baseUrl, '/ready')).status, 503, '/ready is 503 while Redis is down')
  const refused = await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'late', tickers: ['AAPL'] } })
  t.equal(refused.status, 503, 'registrations get a clear 503 while Redis is down')
  const publishDuringOutage = await request(baseUrl, '/prices', { method: 'POST', headers: { authorization: 'Bearer tok' }, body: { ticker: tickers[0], price: 1 } })
  t.equal(publishDuringOutage.status, 503, 'publishing gets a clear 503 while Redis is down')
  // The outage lasts while the streams prove they are alive: two heartbeats each (about 2 s).
  await Promise.all(clients.map(async (client) => {
    const seen = client.comments.length
    await client.waitForComment(seen)
    await client.waitForComment(seen + 1)
  }))
  for (const client of clients) t.equal(client.ended, false, 'the stream is still open')

  await redis.start()
  await redisReady(app)
  t.equal((await request(baseUrl, '/ready')).status, 200, '/ready is 200 again')
  const publisher = redisClient(t, redis.url)
  // Re-subscription is sent on 'ready'; a PING on the same connection returns after it.
  await app.redis?.subscriber.ping()
  for (const [i, ticker] of tickers.entries()) {
    await publisher.publish(`prices:${ticker}`, JSON.stringify({ ticker, price: 100 + i }))
  }
  for (const [i, client] of clients.entries()) {
    const event = await client.waitFor((e) => e.event === 'prices')
    t.equal(event.json.prices[0].price, 100 + i, `stream ${i} receives prices published after the restart`)
  }
  t.equal(clients.filter((client) => client.events.some((e) => e.event === 'end')).length, 0, 'no stream was ended')
})

t.test('before Redis ever answers, the server runs and says 503; then becomes ready', async (t) => {
  const redis = await ownRedisServer(t)
  await redis.stop()
  const { app, baseUrl } = await startApp(t, { REDIS_URL: redis.url })
  t.equal((await request(baseUrl, '/health')).status, 200, 'the process serves')
  t.equal((await request(baseUrl, '/ready')).status, 503)
  const refused = await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'early', tickers: ['AAPL'] } })
  t.equal(refused.status, 503)
  t.equal(refused.body.error, 'Service Unavailable')
  await redis.start()
  await redisReady(app)
  t.equal((await request(baseUrl, '/ready')).status, 200)
  const accepted = await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'early', tickers: ['AAPL'] } })
  t.equal(accepted.status, 201)
})

t.test('Redis connected but answering nothing: requests that need it get an answer, not a wait', async (t) => {
  const proxy = await tcpProxy(t)
  // The default, Redis-backed rate limit: its count is one of the commands that would wait.
  // The liveness probe is kept out of the way: this is the time before it notices (the next
  // test is what happens after).
  const { app, baseUrl } = await startApp(t, { REDIS_URL: proxy.url, PUBLISH_TOKEN: 'tok', RATE_LIMIT_MAX: '300' }, { redisLiveness: { intervalMs: 600_000, timeoutMs: 2000 } })
  await redisReady(app)
  const ticker = uniqueTicker('H')
  await app.bus.publish([priceUpdate({ ticker, price: 7, ts: 1 })])
  proxy.stopForwarding()

  const session = await register(baseUrl, 'hung', [ticker])
  t.ok(session.sessionId, 'registration answers: the rate limiter lets it through once its count times out')
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  const snapshot = await client.next()
  t.equal(snapshot.event, 'snapshot', 'the snapshot comes from the local prices once the shared cache times out')
  t.same(snapshot.json.prices.map((price: { price: number }) => price.price), [7])
  const publish = await request(baseUrl, '/prices', { method: 'POST', headers: { authorization: 'Bearer tok' }, body: { ticker, price: 8 } })
  t.equal(publish.status, 503, 'a publish that gets no answer is a 503')
  const later = await register(baseUrl, 'hung-later', [ticker])
  const laterClient = await SseClient.open(baseUrl, later.streamUrl)
  t.teardown(() => laterClient.close())
  t.same((await laterClient.next()).json.prices.map((price: { price: number }) => price.price), [7], 'the price that got a 503 is not in a later snapshot')
})

t.test('a Redis that goes silent (no FIN, no RST, no answers) is noticed: /ready turns 503, and streams resume once it answers again', async (t) => {
  const proxy = await tcpProxy(t)
  // Probes every 200 ms, lost after 1 s of silence (production: 5 s and 5 s).
  const { app, baseUrl } = await startApp(t, { REDIS_URL: proxy.url }, { redisLiveness: { intervalMs: 200, timeoutMs: 1000 } })
  await redisReady(app)
  const clients = app.redis
  if (clients === undefined) throw new Error('not in Redis mode')
  const ticker = uniqueTicker('Z')
  const session = await register(baseUrl, 'silent', [ticker])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()

  const subscriberLost = new Promise<void>((resolve) => clients.subscriber.once('close', () => resolve()))
  proxy.stopForwarding()
  await subscriberLost
  // Its reconnect reaches the proxy, which drops its handshake.
  const reconnecting = new Promise<void>((resolve) => clients.subscriber.once('connect', () => resolve()))
    .then(async () => { await proxy.nextDrop() })
  t.equal((await request(baseUrl, '/ready')).status, 503, 'the silent connection was dropped: not ready')
  t.ok(metric(await metrics(baseUrl), 'tickstream_redis_silent_connections_dropped_total') >= 1, 'and counted')
  await reconnecting
  // Redis answers again, but that reconnect's handshake is lost: ioredis would wait for it
  // forever. The probe ends that connection too, and the next one gets through.
  proxy.release()
  await redisReady(app)
  t.equal((await request(baseUrl, '/ready')).status, 200, 'ready again')
  // Re-subscription is sent on 'ready'; a PING on the same connection returns after it.
  await new Promise((resolve) => process.nextTick(resolve))
  await clients.subscriber.ping()
  await redisClient(t).publish(`prices:${ticker}`, JSON.stringify({ ticker, price: 5 }))
  const event = await client.waitFor((e) => e.event === 'prices')
  t.equal(event.json.prices[0].price, 5, 'the stream delivers again')
  t.equal(client.ended, false, 'and was never ended')
})
